// The fp16- (and f32-) weight matmul kernel, plain and accumulating, against an fp64 CPU reference on fresh random inputs, output
// buffer poisoned first, over odd and real shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/half.hpp"
#include "host/matmul_f16.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill::host {
namespace {

struct Shape {
  int rows, cols, n_tok, stride_pad;
  bool f32 = false;         // f32 weights instead of fp16
  bool accumulate = false;  // y += x W^T
  int input = 0;            // fused input transform: 0 none, 1 RMSNorm, 2 SwiGLU
};

class MatmulF16Test : public ::testing::TestWithParam<Shape> {};

TEST_P(MatmulF16Test, MatchesFp64Reference) {
  const Shape s = GetParam();
  const int stride = s.cols + s.stride_pad;
  Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(s.rows * 7919 + s.cols * 31 + s.n_tok));
  const auto wf = test::random_floats(rng, size_t(s.rows) * stride);
  const int x_cols = s.input == 2 ? 2 * s.cols : s.cols;
  const auto x = test::random_floats(rng, size_t(s.n_tok) * x_cols, -2.0f, 2.0f);
  const auto norm_w = test::random_floats(rng, size_t(s.cols), 0.5f, 1.5f);
  std::vector<double> xe(size_t(s.n_tok) * s.cols);  // the transformed input, fp64
  for (int t = 0; t < s.n_tok; ++t) {
    const float* xt = x.data() + size_t(t) * x_cols;
    double ss = 0.0;
    for (int k = 0; k < s.cols; ++k) ss += double(xt[k]) * xt[k];
    const double inv = 1.0 / std::sqrt(ss / s.cols + 1e-5);
    for (int k = 0; k < s.cols; ++k) {
      double v = xt[k];
      if (s.input == 1) v = v * inv * norm_w[k];
      if (s.input == 2) v = v / (1.0 + std::exp(-v)) * xt[s.cols + k];
      xe[size_t(t) * s.cols + k] = v;
    }
  }
  std::vector<uint16_t> w(wf.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = float_to_half(wf[i]);
  auto weight = [&](size_t i) { return s.f32 ? double(wf[i]) : double(half_to_float(w[i])); };

  Buffer wb = s.f32 ? upload(device, wf) : upload(device, w);
  Buffer xb = upload(device, x);
  Buffer yb(device, size_t(s.n_tok) * s.rows * sizeof(float));
  const auto y0 = test::random_floats(rng, size_t(s.n_tok) * s.rows);
  if (s.accumulate) {
    yb.write(y0.data(), y0.size() * sizeof(float));
  } else {
    yb.fill_bytes(0xff);  // NaN poison: every output must be written
  }
  Buffer nb = upload(device, norm_w);
  FusedInput input;
  if (s.input == 1) input = {FusedInput::kRmsNorm, &nb, 1e-5f};
  if (s.input == 2) input.kind = FusedInput::kSwiGlu;
  MatmulF16 matmul(device, s.f32);
  matmul.run(wb, xb, yb, s.rows, s.cols, stride, s.n_tok, s.accumulate, nullptr, input);
  const auto y = yb.read_vector<float>(size_t(s.n_tok) * s.rows);

  for (int t = 0; t < s.n_tok; ++t) {
    for (int r = 0; r < s.rows; ++r) {
      double ref = s.accumulate ? y0[size_t(t) * s.rows + r] : 0.0, mag = std::fabs(ref);
      for (int c = 0; c < s.cols; ++c) {
        const double p = weight(size_t(r) * stride + c) * xe[size_t(t) * s.cols + c];
        ref += p;
        mag += std::fabs(p);
      }
      const double got = y[size_t(t) * s.rows + r];
      ASSERT_NEAR(got, ref, 1e-5 * mag + 1e-6)
          << "t=" << t << " r=" << r << " shape " << s.rows << "x" << s.cols << " seed " << test::test_seed();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulF16Test,
                         ::testing::Values(Shape{1, 1, 1, 0}, Shape{3, 17, 1, 0}, Shape{64, 64, 1, 0},
                                           Shape{172, 64, 3, 0}, Shape{64, 172, 17, 0}, Shape{5, 8, 5, 8},
                                           Shape{33, 4096, 2, 0}, Shape{4096, 64, 1, 0}, Shape{7, 263, 9, 1},
                                           Shape{172, 64, 3, 0, true}, Shape{17, 33, 5, 3, true, true},
                                           Shape{64, 172, 1, 0, false, true}, Shape{64, 4096, 1, 0, false, false, 1},
                                           Shape{33, 172, 3, 0, false, true, 1}, Shape{17, 263, 8, 1, false, false, 2},
                                           Shape{64, 1000, 1, 0, false, true, 2}, Shape{9, 64, 5, 0, true, false, 1}),
                         [](const auto& info) {
                           const Shape& s = info.param;
                           return std::to_string(s.rows) + "x" + std::to_string(s.cols) + "_t" +
                                  std::to_string(s.n_tok) + "_pad" + std::to_string(s.stride_pad) +
                                  (s.f32 ? "_f32" : "_f16") + (s.accumulate ? "_acc" : "") +
                                  (s.input == 1 ? "_rmsnorm" : s.input == 2 ? "_swiglu" : "");
                         });

}  // namespace
}  // namespace quill::host
