// Linear for f32 and f16 weights: kernels/matmul_f16.cl with the weight type as a build flag.
#include <vector>

#include "engine/linear_factories.hpp"
#include "host/matmul_f16.hpp"

namespace quill {
namespace {

class LinearFloat final : public Linear {
 public:
  // weights: [rows, cols] of f32 or fp16 values, row-major.
  template <typename T>
  LinearFloat(host::Device& device, int64_t rows, int64_t cols, const std::vector<T>& weights)
      : Linear(rows, cols, sizeof(T) == 4 ? QuantScheme::F32 : QuantScheme::F16),
        weights_(host::upload(device, weights)),
        matmul_(device, sizeof(T) == 4) {}

  void forward(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace&) override {
    std::lock_guard<std::mutex> lock(launch_mutex_);
    matmul_.run(weights_, x, y, int(rows()), int(cols()), int(cols()), n_tok, accumulate);
  }
  uint64_t weight_bytes() const override { return weights_.bytes(); }

 private:
  host::Buffer weights_;  // [rows, cols] f32 or fp16
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
