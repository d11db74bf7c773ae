// The prefill SwiGLU kernel (elementwise.cl swiglu) against an fp64 reference: h = silu(gate) * up, on shapes
// with ffn a multiple of 4 (16-byte path) and not (per-column path), the output poisoned before the run.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "host/transformer_kernels.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill::host {
namespace {

struct SwigluShape {
  int n_tok, ffn;
};

class Swiglu : public ::testing::TestWithParam<SwigluShape> {};

TEST_P(Swiglu, MatchesFp64) {
  const auto [n_tok, ffn] = GetParam();
  Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(n_tok * 7919 + ffn));
  const std::vector<float> gate_up =
      test::random_floats(rng, size_t(n_tok) * 2 * ffn, -12.0f, 12.0f);  // [n_tok, 2 ffn]
  Buffer in = upload(device, gate_up);
  Buffer out(device, size_t(n_tok) * ffn * 4);  // [n_tok, ffn]
  out.fill_bytes(0xff);
  TransformerKernels kernels(device, {});
  kernels.swiglu(in, out, n_tok, ffn);
  const auto got = out.read_vector<float>(size_t(n_tok) * ffn);
  for (int t = 0; t < n_tok; ++t)
    for (int i = 0; i < ffn; ++i) {
      const double g = gate_up[size_t(t) * 2 * ffn + size_t(i)], u = gate_up[size_t(t) * 2 * ffn + size_t(ffn + i)];
      const double want = g / (1.0 + std::exp(-g)) * u;
      ASSERT_NEAR(got[size_t(t) * ffn + size_t(i)], want, 1e-6 + 1e-5 * std::fabs(want))
          << "token " << t << " column " << i << " seed " << test::test_seed();
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Swiglu,
                         ::testing::Values(SwigluShape{1, 1}, SwigluShape{3, 7}, SwigluShape{2, 172},
                                           SwigluShape{5, 1027}, SwigluShape{4, 11008}, SwigluShape{9, 2050}),
                         [](const auto& info) {
                           return "t" + std::to_string(info.param.n_tok) + "_ffn" + std::to_string(info.param.ffn);
                         });

}  // namespace
}  // namespace quill::host
