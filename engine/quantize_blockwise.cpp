// bitsandbytes blockwise quantization: NF4, FP4, DYN8 and double quantization (see quantize_blockwise.hpp).
#include "engine/quantize_blockwise.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"
#include "engine/quant_tables.hpp"
#include "engine/quantize_common.hpp"

namespace quill {
namespace {

uint8_t nearest_code(QuantScheme scheme, float x) {
  switch (scheme) {
    case QuantScheme::NF4:
      return nf4_codebook().nearest_code(x);
    case QuantScheme::FP4:
      return fp4_code(x);
    case QuantScheme::Dyn8:
      return dyn8_signed_codebook().nearest_code(x);
    default:
      fail(ErrorKind::kInternal, "blockwise: scheme {} is not blockwise", scheme_name(scheme));
  }
}

// Quantizes x in blocks of `block` (the last block may be shorter and gets its own absmax):
// codes[i] = nearest code of x[i] / absmax, absmax[b] = max |x| over block b.
void quantize_blocks(QuantScheme scheme, std::span<const float> x, int64_t block, uint8_t* codes, float* absmax) {
  for (int64_t start = 0, b = 0; start < int64_t(x.size()); start += block, ++b) {
    const int64_t end = std::min<int64_t>(start + block, int64_t(x.size()));
    float amax = 0.0f;
    for (int64_t i = start; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    absmax[b] = amax;
    const float inv = amax != 0.0f ? 1.0f / amax : 0.0f;
    for (int64_t i = start; i < end; ++i) codes[i] = nearest_code(scheme, x[i] * inv);
  }
}

void check_scheme(QuantScheme scheme) {
  if (scheme != QuantScheme::NF4 && scheme != QuantScheme::FP4 && scheme != QuantScheme::Dyn8) {
    fail(ErrorKind::kInvalidArgument, "quantize_blockwise: scheme {} is not nf4, fp4 or dyn8", scheme_name(scheme));
  }
}

}  // namespace

DoubleQuantAbsmax double_quantize_absmax(std::span<const float> absmax) {
  constexpr int64_t kGroup = 256;
  DoubleQuantAbsmax dq;
  if (absmax.empty()) return dq;
  double sum = 0.0;
  for (float a : absmax) sum += a;
  dq.offset = float(sum / double(absmax.size()));
  std::vector<float> centered(absmax.size());
  for (size_t i = 0; i < absmax.size(); ++i) centered[i] = absmax[i] - dq.offset;
  dq.codes.resize(absmax.size());
  dq.absmax2.resize(size_t(round_up(int64_t(absmax.size()), kGroup) / kGroup));
  quantize_blocks(QuantScheme::Dyn8, centered, kGroup, dq.codes.data(), dq.absmax2.data());
  return dq;
}

std::vector<float> dequantize_absmax(const DoubleQuantAbsmax& dq) {
  const auto& table = dyn8_signed_table();
  std::vector<float> out(dq.codes.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = table[dq.codes[i]] * dq.absmax2[i / 256] + dq.offset;
  return out;
}

BlockwiseMatrix quantize_blockwise(const MatrixF32& w, QuantScheme scheme, const QuantParams& params) {
  check_scheme(scheme);
  check_matrix(w, "quantize_blockwise");
  BlockwiseMatrix q;
  q.scheme = scheme;
  q.rows = w.rows;
  q.cols = w.cols;
  q.block = resolved_block(scheme, params);
  q.padded_cols = round_up(w.cols, q.block);
  q.codes.resize(size_t(q.rows * q.code_bytes_per_row()));
  std::vector<float> absmax(size_t(q.rows * q.blocks_per_row()));
  std::vector<float> row;
  std::vector<uint8_t> row_codes(size_t(q.padded_cols));
  for (int64_t r = 0; r < q.rows; ++r) {
    copy_padded_row(w, r, q.padded_cols, row);
    quantize_blocks(scheme, row, q.block, row_codes.data(), absmax.data() + r * q.blocks_per_row());
    uint8_t* dst = q.codes.data() + r * q.code_bytes_per_row();
    if (scheme == QuantScheme::Dyn8) {
      std::copy(row_codes.begin(), row_codes.end(), dst);
    } else {
      pack_nibbles_high_first(row_codes, dst);
    }
  }
  q.double_quant = params.double_quant;
  if (q.double_quant) {
    q.dq = double_quantize_absmax(absmax);
  } else {
    q.absmax = std::move(absmax);
  }
  return q;
}

std::vector<float> block_absmax(const BlockwiseMatrix& q) {
  return q.double_quant ? dequantize_absmax(q.dq) : q.absmax;
}

std::span<const float> blockwise_table(QuantScheme scheme) {
  switch (scheme) {
    case QuantScheme::NF4:
      return nf4_table();
    case QuantScheme::FP4:
      return fp4_table();
    case QuantScheme::Dyn8:
      return dyn8_signed_table();
    default:
      fail(ErrorKind::kInvalidArgument, "blockwise_table: scheme {} is not nf4, fp4 or dyn8", scheme_name(scheme));
  }
}

MatrixF32 dequantize(const BlockwiseMatrix& q) {
  const std::span<const float> table = blockwise_table(q.scheme);
  const std::vector<float> absmax = block_absmax(q);
  MatrixF32 out{q.rows, q.cols, std::vector<float>(size_t(q.rows * q.cols))};
  for (int64_t r = 0; r < q.rows; ++r) {
    const uint8_t* codes = q.codes.data() + r * q.code_bytes_per_row();
    const float* scales = absmax.data() + r * q.blocks_per_row();
    float* y = out.row(r);
    for (int64_t c = 0; c < q.cols; ++c) {
      const uint8_t code = q.scheme == QuantScheme::Dyn8 ? codes[c] : nibble_high_first(codes, c);
      y[c] = table[code] * scales[c / q.block];
    }
  }
  return out;
}

double bits_per_weight(const BlockwiseMatrix& q) {
  if (q.rows * q.cols == 0) return 0.0;
  double bits = 8.0 * double(q.codes.size());
  bits += q.double_quant ? 8.0 * double(q.dq.codes.size()) + 32.0 * double(q.dq.absmax2.size() + 1)
                         : 32.0 * double(q.absmax.size());
  return bits / double(q.rows * q.cols);
}

}  // namespace quill
