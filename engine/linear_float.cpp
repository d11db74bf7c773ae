// Linear for f32 and f16 weights: kernels/matmul_f16.cl with the weight type as a build flag.
#include <algorithm>
#include <optional>
#include <vector>

#include "engine/linear_factories.hpp"
#include "engine/linear_gemv_input.hpp"
#include "host/gemm_dequant.hpp"
#include "host/matmul_f16.hpp"

namespace quill {
namespace {

class LinearFloat final : public Linear {
 public:
  // weights: [rows, cols] of f32 or fp16 values, row-major; uploaded as [rows, stride] with each row
  // padded to a multiple of 8 values, so the kernel reads 16-byte-aligned words.
  template <typename T>
  LinearFloat(host::Device& device, int64_t rows, int64_t cols, const std::vector<T>& weights)
      : Linear(rows, cols, sizeof(T) == 4 ? QuantScheme::F32 : QuantScheme::F16),
        stride_((cols + 7) / 8 * 8),
        fuse_norm_(host::fuse_rmsnorm(false, device.info().inline_ptx)),
        weights_(host::upload(device, padded_rows(weights, rows, cols, stride_))),
        matmul_(device, sizeof(T) == 4) {
    if (sizeof(T) == 2 && host::GemmDequant::used_on(device.info())) gemm_.emplace(device, host::GemmDequant::Format::kF16);
  }

  // The GEMV kernel applies SwiGLU and RMSNorm ($QUILL_FUSE_RMSNORM=0: not RMSNorm) as it loads x, up to
  // kMaxFusedTokens tokens.
  bool fuses(const InputTransform& transform, int n_tok) const override {
    return gemv_fuses(transform, n_tok, fuse_norm_);
  }

  void run(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace& ws,
           const InputTransform& transform) override {
    std::lock_guard<std::mutex> lock(launch_mutex_);
    const host::FusedInput input = fused_input(transform);
    if (uses_gemm(n_tok, input)) {  // prefill: tiled GEMM
      gemm_->run_f16(weights_, int(stride_), x, y, int(rows()), int(cols()), n_tok, accumulate,
                     gemm_scratch(ws, *gemm_, n_tok, int(cols()), 0));
    } else
      matmul_.run(weights_, x, y, int(rows()), int(cols()), int(stride_), n_tok, accumulate, nullptr, input,
                  n_tok == 1 ? l2_prefetch_ : host::L2Prefetch{});
  }
  uint64_t weight_bytes() const override { return weights_.bytes(); }
  int launches_per_forward(int n_tok) const override { return uses_gemm(n_tok, {}) ? gemm_->launches() : 1; }
  host::L2Prefetch l2_head(size_t bytes) const override { return {&weights_, std::min(bytes, weights_.bytes())}; }

 private:
  bool uses_gemm(int n_tok, const host::FusedInput& input) const {
    return prefill_gemm_applies(gemm_, gemm_min_tokens_, n_tok, input);
  }

  template <typename T>
  static std::vector<T> padded_rows(const std::vector<T>& w, int64_t rows, int64_t cols, int64_t stride) {
    if (stride == cols) return w;
    std::vector<T> out(size_t(rows * stride), T{0});
    for (int64_t r = 0; r < rows; ++r) std::copy_n(w.begin() + r * cols, cols, out.begin() + r * stride);
    return out;
  }

  int64_t stride_;
  bool fuse_norm_;  // host::fuse_rmsnorm
  host::Buffer weights_;  // [rows, stride] f32 or fp16
  host::MatmulF16 matmul_;
  std::optional<host::GemmDequant> gemm_;  // fp16 weights only (f32 stays exact on the GEMV kernel)
  int gemm_min_tokens_ = host::GemmDequant::min_tokens();
};

}  // namespace

std::unique_ptr<Linear> make_linear_float(host::Device& device, const MatrixF32& w) {
  return std::make_unique<LinearFloat>(device, w.rows, w.cols, w.data);
}

std::unique_ptr<Linear> make_linear_float(host::Device& device, const HalfMatrix& w) {
  return std::make_unique<LinearFloat>(device, w.rows, w.cols, w.data);
}

}  // namespace quill
