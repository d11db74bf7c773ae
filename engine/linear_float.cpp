// Linear for f32 and f16 weights: kernels/matmul_f16.cl with the weight type as a build flag.
#include <algorithm>
#include <vector>

#include "engine/linear_factories.hpp"
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
        weights_(host::upload(device, padded_rows(weights, rows, cols, stride_))),
        matmul_(device, sizeof(T) == 4) {}

  void run(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace&, const InputTransform&) override {
    std::lock_guard<std::mutex> lock(launch_mutex_);
    matmul_.run(weights_, x, y, int(rows()), int(cols()), int(stride_), n_tok, accumulate);
  }
  uint64_t weight_bytes() const override { return weights_.bytes(); }

 private:
  template <typename T>
  static std::vector<T> padded_rows(const std::vector<T>& w, int64_t rows, int64_t cols, int64_t stride) {
    if (stride == cols) return w;
    std::vector<T> out(size_t(rows * stride), T{0});
    for (int64_t r = 0; r < rows; ++r) std::copy_n(w.begin() + r * cols, cols, out.begin() + r * stride);
    return out;
  }

  int64_t stride_;
  host::Buffer weights_;  // [rows, stride] f32 or fp16
  host::MatmulF16 matmul_;
};

}  // namespace

std::unique_ptr<Linear> make_linear_float(host::Device& device, const MatrixF32& w) {
  return std::make_unique<LinearFloat>(device, w.rows, w.cols, w.data);
}

std::unique_ptr<Linear> make_linear_float(host::Device& device, const HalfMatrix& w) {
  return std::make_unique<LinearFloat>(device, w.rows, w.cols, w.data);
}

}  // namespace quill
