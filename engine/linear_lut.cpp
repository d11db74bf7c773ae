// The table-lookup Linears: nf4 / fp4 / dyn8 (bitsandbytes blockwise, optional double quant), int4 /
// q8_0 (GGUF Q4_0 / Q8_0) and kmeans4, all through host/matmul_lut (one 4-bit and one 8-bit kernel;
// the format is the table, the scale kind and the block size). Repacked at upload:
//  - codes of a row in column order, 4-bit column i of each 32-bit word in bits 4 i (repack_rows):
//    every source nibble order (bitsandbytes / Q4_0-SoA / k-means: element 2i high) becomes this one;
//    a row is padded to whole warp tiles of 32 uint4 (code 0; the kernels mask x there);
//  - scales apart (structure of arrays): bitsandbytes absmax fp32 as stored; double quant kept as
//    uint8 codes + fp32 absmax2 + offset and decoded in the kernel; GGUF d fp16 as stored;
//  - tables fp32: the NF4 / FP4 / DYN8 constants, q - 8 for int4, the k-means fp16 codebooks widened.
#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/linear_factories.hpp"
#include "engine/linear_gemv_input.hpp"
#include "engine/quant_tables.hpp"
#include "host/env.hpp"
#include "host/gemm_dequant.hpp"
#include "host/matmul_lut.hpp"

namespace quill {
namespace {

// Repacks row-major codes [rows, padded_cols] (4-bit: element 2i in the HIGH nibble; 8-bit: one byte
// each) into the kernel layout (kernels/matmul_lut.cl): columns in order, 4-bit column c in the low
// nibble of byte c / 2 when c is even (bits 4 (c % 8) of 32-bit word c / 8), rows padded with code 0
// to row_bytes = a whole number of warp tiles (32 uint4 = 512 bytes).
std::vector<uint8_t> repack_rows(const std::vector<uint8_t>& codes, int64_t rows, int64_t padded_cols, int bits,
                                 int64_t& row_bytes) {
  const int64_t src_row = padded_cols * bits / 8;
  row_bytes = (src_row + 511) / 512 * 512;
  std::vector<uint8_t> out(size_t(rows * row_bytes), 0);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = codes.data() + r * src_row;
    uint8_t* dst = out.data() + r * row_bytes;
    for (int64_t b = 0; b < src_row; ++b) dst[b] = bits == 4 ? uint8_t((src[b] >> 4) | (src[b] << 4)) : src[b];
  }
  return out;
}

template <typename T>
std::vector<T> to_vector(std::span<const T> s) {
  return std::vector<T>(s.begin(), s.end());
}

class LinearLut final : public Linear {
 public:
  // What a factory hands over: the host-side repacked arrays and how the kernel must read them.
  struct Packed {
    int bits = 4;         // 4 or 8
    bool linear = false;  // 8-bit: code is the int8 value (q8_0)
    bool arith = false;   // 4-bit: the table is code - 8 (int4), decoded arithmetically
    host::LutScale scale = host::LutScale::kNone;
    int64_t padded_cols = 0;  // codes per row (a multiple of 32)
    int block = 32;
    int64_t blocks_per_row = 0;
    std::vector<uint8_t> codes;  // [rows, padded_cols * bits / 8]
    std::vector<float> lut;      // [16] / [rows, 16] / [256]; empty when linear
    int lut_stride = 0;
    std::vector<uint8_t> scale_bytes;  // [rows, blocks_per_row] f32 / f16 / uint8 as raw bytes
    std::vector<float> absmax2;        // double quant only
    float dq_offset = 0.0f;
  };

  LinearLut(host::Device& device, int64_t rows, int64_t cols, QuantScheme scheme, Packed p)
      : Linear(rows, cols, scheme) {
    if (rows <= 0 || cols <= 0 || rows > INT32_MAX || cols > INT32_MAX || p.padded_cols < cols ||
        p.padded_cols % 32 != 0 || p.codes.size() != size_t(rows) * size_t(p.padded_cols) * p.bits / 8)
      fail(ErrorKind::kInvalidArgument, "{} linear: inconsistent matrix {}x{} (padded {}, {} code bytes)",
           scheme_name(scheme), rows, cols, p.padded_cols, p.codes.size());
    int64_t row_bytes = 0;
    const std::vector<uint8_t> tiles = repack_rows(p.codes, rows, p.padded_cols, p.bits, row_bytes);
    codes_ = host::upload(device, tiles);
    bytes_ = tiles.size();
    w_.rows = int(rows);
    w_.cols = int(cols);
    w_.codes = &codes_;
    w_.row_words = int(row_bytes / 16);
    if (!p.lut.empty()) {
      lut_ = host::upload(device, p.lut);
      bytes_ += p.lut.size() * sizeof(float);
      w_.lut = &lut_;
      w_.lut_stride = p.lut_stride;
    }
    w_.scale = p.scale;
    w_.block = p.block;
    w_.blocks_per_row = int(p.blocks_per_row);
    if (p.scale != host::LutScale::kNone) {
      scales_ = host::upload(device, p.scale_bytes);
      bytes_ += p.scale_bytes.size();
      w_.scales = &scales_;
    }
    if (p.scale == host::LutScale::kDoubleQuant) {
      absmax2_ = host::upload(device, p.absmax2);
      dq_lut_ = host::upload(device, to_vector(std::span<const float>(dyn8_signed_table())));
      bytes_ += p.absmax2.size() * sizeof(float) + 256 * sizeof(float);
      w_.absmax2 = &absmax2_;
      w_.dq_lut = &dq_lut_;
      w_.dq_offset = p.dq_offset;
    }
    arith_codes_ = p.bits == 4 ? p.arith : p.linear;
    fuse_norm_ = host::fuse_rmsnorm(!arith_codes_, device.info().inline_ptx);
    lut_kernel_.emplace(device, p.bits, p.scale, arith_codes_);
    if (host::GemmDequant::used_on(device.info()))
      gemm_.emplace(device, p.bits == 4 ? host::GemmDequant::Format::kLut4 : host::GemmDequant::Format::kLut8, p.scale,
                    p.bits == 4 ? p.arith : p.linear);
  }

  // The GEMV kernels apply SwiGLU, and RMSNorm where it pays, as they load x, up to kMaxFusedTokens
  // tokens: host::fuse_rmsnorm (not for table lookups in matmul_lut), and always in the streaming
  // one-token GEMV, whose work-groups stage the whole of x anyway.
  bool fuses(const InputTransform& transform, int n_tok) const override {
    return gemv_fuses(transform, n_tok, fuse_norm_ || lut_kernel_->streams(w_, n_tok));
  }

  void run(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace& ws,
           const InputTransform& transform) override {
    std::lock_guard<std::mutex> lock(launch_mutex_);
    const host::FusedInput input = fused_input(transform);
    if (uses_gemm(n_tok, input)) {  // prefill: the tiled GEMM
      gemm_->run(w_, x, y, n_tok, accumulate, gemm_scratch(ws, *gemm_, n_tok, w_.cols, w_.row_words));
    } else
      lut_kernel_->run(w_, x, y, n_tok, accumulate, nullptr, input, n_tok == 1 ? l2_prefetch_ : host::L2Prefetch{});
  }
  // One token on the streaming GEMV: each warp takes a (gate, up) row pair and writes silu(gate) * up, so
  // the down GEMV stages plain x instead of evaluating SwiGLU in every work-group. $QUILL_SWIGLU_OUT=0
  // turns it off (A/B).
  bool fuses_swiglu_output(int n_tok) const override {
    return n_tok == 1 && swiglu_output_ && lut_kernel_->streams_swiglu_output(w_);
  }
  void run_swiglu_output(const host::Buffer& x, host::Buffer& h, int n_tok, Workspace&,
                         const InputTransform& transform) override {
    std::lock_guard<std::mutex> lock(launch_mutex_);
    lut_kernel_->run_swiglu_output(w_, x, h, fused_input(transform), n_tok == 1 ? l2_prefetch_ : host::L2Prefetch{});
  }
  uint64_t weight_bytes() const override { return bytes_; }
  int launches_per_forward(int n_tok) const override { return uses_gemm(n_tok, {}) ? gemm_->launches() : 1; }
  host::L2Prefetch l2_head(size_t bytes) const override { return {&codes_, std::min(bytes, codes_.bytes())}; }

 private:
  bool uses_gemm(int n_tok, const host::FusedInput& input) const {
    return prefill_gemm_applies(gemm_, gemm_min_tokens_, n_tok, input);
  }

  bool arith_codes_ = false;  // int4 / q8_0: the code is the value (no table lookup)
  bool swiglu_output_ = host::env_int("QUILL_SWIGLU_OUT", 1) != 0;  // fuses_swiglu_output
  bool fuse_norm_ = false;                                          // host::fuse_rmsnorm
  host::Buffer codes_;                                              // [rows, row_words] uint4
  host::Buffer lut_;                                                // [16] | [rows, 16] | [256] f32
  host::Buffer scales_;                                             // [rows, blocks_per_row] f32 | f16 | uint8
  host::Buffer absmax2_;                                            // [ceil(rows * blocks_per_row / 256)] f32
  host::Buffer dq_lut_;                                             // [256] f32
  host::LutWeights w_;
  uint64_t bytes_ = 0;
  std::optional<host::MatmulLut> lut_kernel_;  // GEMV and small-batch GEMM
  std::optional<host::GemmDequant> gemm_;
  int gemm_min_tokens_ = host::GemmDequant::min_tokens();
};

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return std::vector<uint8_t>(p, p + v.size() * sizeof(T));
}

}  // namespace

std::unique_ptr<Linear> make_linear_blockwise(host::Device& device, const BlockwiseMatrix& w) {
  if (w.scheme != QuantScheme::NF4 && w.scheme != QuantScheme::FP4 && w.scheme != QuantScheme::Dyn8)
    fail(ErrorKind::kInvalidArgument, "make_linear_blockwise: scheme {} is not blockwise", scheme_name(w.scheme));
  LinearLut::Packed p;
  p.bits = w.scheme == QuantScheme::Dyn8 ? 8 : 4;
  p.padded_cols = w.padded_cols;
  p.block = w.block;
  p.blocks_per_row = w.blocks_per_row();
  p.codes = p.bits == 4 ? w.codes : w.codes;
  p.lut = to_vector(blockwise_table(w.scheme));
  const size_t n_blocks = size_t(w.rows) * size_t(p.blocks_per_row);
  if (w.double_quant) {
    if (w.dq.codes.size() != n_blocks || w.dq.absmax2.size() != (n_blocks + 255) / 256)
      fail(ErrorKind::kInvalidArgument, "make_linear_blockwise: double-quant arrays do not match {} blocks", n_blocks);
    p.scale = host::LutScale::kDoubleQuant;
    p.scale_bytes = w.dq.codes;
    p.absmax2 = w.dq.absmax2;
    p.dq_offset = w.dq.offset;
  } else {
    if (w.absmax.size() != n_blocks)
      fail(ErrorKind::kInvalidArgument, "make_linear_blockwise: {} absmax values for {} blocks", w.absmax.size(),
           n_blocks);
    p.scale = host::LutScale::kF32;
    p.scale_bytes = as_bytes(w.absmax);
  }
  return std::make_unique<LinearLut>(device, w.rows, w.cols, w.scheme, std::move(p));
}

std::unique_ptr<Linear> make_linear_ggml(host::Device& device, const GgmlBlockMatrix& w) {
  if (w.scheme != QuantScheme::Int4 && w.scheme != QuantScheme::Q8_0)
    fail(ErrorKind::kInvalidArgument, "make_linear_ggml: scheme {} is not a GGUF block format", scheme_name(w.scheme));
  if (w.d.size() != size_t(w.rows) * size_t(w.blocks_per_row()))
    fail(ErrorKind::kInvalidArgument, "make_linear_ggml: {} scales for {}x{} blocks", w.d.size(), w.rows,
         w.blocks_per_row());
  LinearLut::Packed p;
  p.padded_cols = w.padded_cols;
  p.block = GgmlBlockMatrix::kBlock;
  p.blocks_per_row = w.blocks_per_row();
  p.scale = host::LutScale::kF16;
  p.scale_bytes = as_bytes(w.d);
  if (w.scheme == QuantScheme::Int4) {
    p.bits = 4;
    p.arith = true;
    p.codes = w.codes;
    for (int q = 0; q < 16; ++q) p.lut.push_back(float(q - 8));
  } else {
    p.bits = 8;
    p.linear = true;
    p.codes = w.codes;
  }
  return std::make_unique<LinearLut>(device, w.rows, w.cols, w.scheme, std::move(p));
}

std::unique_ptr<Linear> make_linear_kmeans(host::Device& device, const KMeansMatrix& w) {
  const size_t tables = w.per_row ? size_t(w.rows) : 1;
  if (w.centroids.size() != tables * KMeansMatrix::kCentroids)
    fail(ErrorKind::kInvalidArgument, "make_linear_kmeans: {} centroids for {} tables", w.centroids.size(), tables);
  LinearLut::Packed p;
  p.bits = 4;
  p.padded_cols = w.padded_cols;
  p.codes = w.codes;
  p.lut.resize(w.centroids.size());
  for (size_t i = 0; i < p.lut.size(); ++i) p.lut[i] = half_to_float(w.centroids[i]);
  p.lut_stride = w.per_row ? KMeansMatrix::kCentroids : 0;
  p.scale = host::LutScale::kNone;
  return std::make_unique<LinearLut>(device, w.rows, w.cols, QuantScheme::KMeans4, std::move(p));
}

}  // namespace quill
