// GGUF Q4_0 / Q8_0 quantization and the GGUF <-> structure-of-arrays re-layout (see quantize_ggml.hpp).
#include "engine/quantize_ggml.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/quantize_common.hpp"

namespace quill {
namespace {

constexpr int kBlock = GgmlBlockMatrix::kBlock;

// One block of 32 values, codes in element order (Q4_0: 0..15; Q8_0: int8 as a byte).
struct Block {
  uint16_t d = 0;
  std::array<uint8_t, kBlock> q{};
};

Block quantize_block(GgmlType type, const float* x) {
  Block b;
  if (type == GgmlType::Q4_0) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kBlock; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = float_to_half(d);
    for (int j = 0; j < kBlock; ++j) b.q[j] = uint8_t(std::min(15, int(int8_t(x[j] * id + 8.5f))));
  } else {
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = float_to_half(d);
    for (int j = 0; j < kBlock; ++j) b.q[j] = uint8_t(int8_t(std::roundf(x[j] * id)));
  }
  return b;
}

void write_gguf_block(GgmlType type, const Block& b, uint8_t* dst) {
  dst[0] = uint8_t(b.d & 0xFF);
  dst[1] = uint8_t(b.d >> 8);
  if (type == GgmlType::Q4_0) {
    for (int j = 0; j < kBlock / 2; ++j) dst[2 + j] = uint8_t(b.q[j] | (b.q[j + kBlock / 2] << 4));
  } else {
    std::copy(b.q.begin(), b.q.end(), dst + 2);
  }
}

Block read_gguf_block(GgmlType type, const uint8_t* src) {
  Block b;
  b.d = uint16_t(src[0] | (src[1] << 8));
  if (type == GgmlType::Q4_0) {
    for (int j = 0; j < kBlock / 2; ++j) {
      b.q[j] = src[2 + j] & 0x0F;
      b.q[j + kBlock / 2] = src[2 + j] >> 4;
    }
  } else {
    std::copy_n(src + 2, kBlock, b.q.begin());
  }
  return b;
}

// Stores block bi of row r in the SoA layout.
void write_soa_block(GgmlBlockMatrix& q, int64_t r, int64_t bi, const Block& b) {
  q.d[size_t(r * q.blocks_per_row() + bi)] = b.d;
  uint8_t* dst = q.codes.data() + r * q.code_bytes_per_row();
  if (q.scheme == QuantScheme::Int4) {
    pack_nibbles_high_first(b.q, dst + bi * kBlock / 2);
  } else {
    std::copy(b.q.begin(), b.q.end(), dst + bi * kBlock);
  }
}

Block read_soa_block(const GgmlBlockMatrix& q, int64_t r, int64_t bi) {
  Block b;
  b.d = q.d[size_t(r * q.blocks_per_row() + bi)];
  const uint8_t* src = q.codes.data() + r * q.code_bytes_per_row();
  for (int j = 0; j < kBlock; ++j) {
    b.q[j] = q.scheme == QuantScheme::Int4 ? nibble_high_first(src, bi * kBlock + j) : src[bi * kBlock + j];
  }
  return b;
}

GgmlBlockMatrix empty_matrix(QuantScheme scheme, int64_t rows, int64_t cols) {
  GgmlBlockMatrix q;
  q.scheme = scheme;
  q.rows = rows;
  q.cols = cols;
  q.padded_cols = round_up(cols, kBlock);
  q.d.resize(size_t(rows * q.blocks_per_row()));
  q.codes.resize(size_t(rows * q.code_bytes_per_row()));
  return q;
}

}  // namespace

GgmlType ggml_type_of(QuantScheme scheme) {
  if (scheme == QuantScheme::Int4) return GgmlType::Q4_0;
  if (scheme == QuantScheme::Q8_0) return GgmlType::Q8_0;
  fail(ErrorKind::kInvalidArgument, "scheme {} is not a GGUF block format (int4/q4_0, q8_0)", scheme_name(scheme));
}

GgmlBlockMatrix quantize_ggml_blocks(const MatrixF32& w, QuantScheme scheme) {
  const GgmlType type = ggml_type_of(scheme);
  check_matrix(w, "quantize_ggml_blocks");
  GgmlBlockMatrix q = empty_matrix(scheme, w.rows, w.cols);
  std::vector<float> row;
  for (int64_t r = 0; r < q.rows; ++r) {
    copy_padded_row(w, r, q.padded_cols, row);
    for (int64_t bi = 0; bi < q.blocks_per_row(); ++bi)
      write_soa_block(q, r, bi, quantize_block(type, &row[bi * kBlock]));
  }
  return q;
}

std::vector<uint8_t> to_gguf_blocks(const GgmlBlockMatrix& q) {
  const GgmlType type = ggml_type_of(q.scheme);
  const int64_t bytes = ggml_block_bytes(type);
  std::vector<uint8_t> out(size_t(q.rows * q.blocks_per_row() * bytes));
  for (int64_t r = 0; r < q.rows; ++r) {
    for (int64_t bi = 0; bi < q.blocks_per_row(); ++bi) {
      write_gguf_block(type, read_soa_block(q, r, bi), out.data() + (r * q.blocks_per_row() + bi) * bytes);
    }
  }
  return out;
}

GgmlBlockMatrix from_gguf_blocks(GgmlType type, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const QuantScheme scheme = type == GgmlType::Q4_0 ? QuantScheme::Int4 : QuantScheme::Q8_0;
  if (type != GgmlType::Q4_0 && type != GgmlType::Q8_0) {
    fail(ErrorKind::kInvalidArgument, "from_gguf_blocks: type {} is not Q4_0 or Q8_0", ggml_type_name(type));
  }
  if (rows < 0 || cols < 0 || cols % kBlock != 0) {
    fail(ErrorKind::kFormat, "from_gguf_blocks: {} tensor [{}, {}]: row length is not a multiple of 32",
         ggml_type_name(type), rows, cols);
  }
  const int64_t block_bytes = ggml_block_bytes(type);
  if (int64_t(bytes.size()) != rows * (cols / kBlock) * block_bytes) {
    fail(ErrorKind::kFormat, "from_gguf_blocks: {} tensor [{}, {}] needs {} bytes, got {}", ggml_type_name(type), rows,
         cols, rows * (cols / kBlock) * block_bytes, bytes.size());
  }
  GgmlBlockMatrix q = empty_matrix(scheme, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t bi = 0; bi < q.blocks_per_row(); ++bi) {
      write_soa_block(q, r, bi, read_gguf_block(type, bytes.data() + (r * q.blocks_per_row() + bi) * block_bytes));
    }
  }
  return q;
}

void quantize_ggml_row(GgmlType type, const float* src, void* dst, int64_t n) {
  if (type != GgmlType::Q4_0 && type != GgmlType::Q8_0) {
    fail(ErrorKind::kInvalidArgument, "quantize_ggml_row: type {} is not Q4_0 or Q8_0", ggml_type_name(type));
  }
  if (n < 0 || n % kBlock != 0) fail(ErrorKind::kInvalidArgument, "quantize_ggml_row: {} is not a multiple of 32", n);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t bi = 0; bi < n / kBlock; ++bi) {
    write_gguf_block(type, quantize_block(type, src + bi * kBlock), out + bi * ggml_block_bytes(type));
  }
}

MatrixF32 dequantize(const GgmlBlockMatrix& q) {
  const GgmlType type = ggml_type_of(q.scheme);
  const std::vector<uint8_t> blocks = to_gguf_blocks(q);
  const int64_t row_bytes = q.blocks_per_row() * ggml_block_bytes(type);
  MatrixF32 out{q.rows, q.cols, std::vector<float>(size_t(q.rows * q.cols))};
  std::vector<float> row(size_t(q.padded_cols));
  for (int64_t r = 0; r < q.rows; ++r) {
    dequantize_ggml_row(type, blocks.data() + r * row_bytes, row.data(), q.padded_cols);
    std::copy_n(row.begin(), q.cols, out.row(r));
  }
  return out;
}

double bits_per_weight(const GgmlBlockMatrix& q) {
  if (q.rows * q.cols == 0) return 0.0;
  return (8.0 * double(q.codes.size()) + 16.0 * double(q.d.size())) / double(q.rows * q.cols);
}

}  // namespace quill
