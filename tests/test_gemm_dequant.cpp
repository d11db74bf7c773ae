// The prefill GEMM (kernels/gemm_dequant.cl through Linear at prefill token counts) for every
// weight-only format against an fp64 CPU matmul over dequantize(q), fresh random inputs, outputs
// poisoned (or random for y +=), over shapes that are not multiples of the 128-row x 128-token tile
// (odd rows, an odd number of 32-column K steps, several token tiles).
// Bound: fp16 tiles on NVIDIA (w and x rounded to fp16: 2e-3 of the sum of |products|), fp32 elsewhere;
// int4 / q8_0 / nf4 / fp4 on the int8 tensor cores (sm_80+) also round x to int8 per block of 32 columns
// (|w| * amax / 254 per product), and nf4 / fp4 their table values (|x| * absmax / 254).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/linear.hpp"
#include "engine/quantize_matrix.hpp"
#include "host/gemm_dequant.hpp"
#include "tests/int8_gemm_rounding.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

struct GemmCase {
  QuantScheme scheme;
  int rows, cols, n_tok;
  bool accumulate = false;
  bool double_quant = false;
};

std::string gemm_case_name(const GemmCase& c) {
  std::string s{scheme_name(c.scheme)};
  for (char& ch : s)
    if (ch == '-') ch = '_';
  s += "_" + std::to_string(c.rows) + "x" + std::to_string(c.cols) + "_t" + std::to_string(c.n_tok);
  if (c.accumulate) s += "_acc";
  if (c.double_quant) s += "_dq";
  return s;
}

class GemmDequantTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmDequantTest, MatchesFp64ReferenceOverDequantized) {
  const GemmCase c = GetParam();
  host::Device& device = test::test_device();
  if (!host::GemmDequant::supported_on(device.info()))
    GTEST_SKIP() << "the dequant GEMM runs on the inline-PTX path only (see host/gemm_dequant.hpp)";
  ASSERT_GE(c.n_tok, host::GemmDequant::min_tokens());
  std::mt19937_64 rng(test::test_seed() + uint64_t(c.rows) * 131 + uint64_t(c.cols) * 7 + c.n_tok);
  MatrixF32 w{c.rows, c.cols, test::random_floats(rng, size_t(c.rows) * c.cols)};
  QuantParams params;
  params.double_quant = c.double_quant;
  const QuantizedMatrix q = quantize(w, c.scheme, params);
  const MatrixF32 wd = dequantize(q);
  auto linear = make_linear(device, q, c.scheme, params);
  ASSERT_TRUE(linear);

  const auto x = test::random_floats(rng, size_t(c.n_tok) * c.cols, -2.0f, 2.0f);
  const auto y0 = test::random_floats(rng, size_t(c.n_tok) * c.rows);
  host::Buffer xb = host::upload(device, x);
  host::Buffer yb(device, y0.size() * sizeof(float));
  if (c.accumulate)
    yb.write(y0.data(), y0.size() * sizeof(float));
  else
    yb.fill_bytes(0xff);  // NaN poison
  Workspace ws(device);
  linear->forward(xb, yb, c.n_tok, c.accumulate, ws);
  const auto y = yb.read_vector<float>(y0.size());

  const double rel = device.info().inline_ptx ? 2e-3 : 1e-5;
  const bool int8_core = test::int8_gemm_core(c.scheme, device.info());
  const std::vector<double> w_half = int8_core ? test::table_int8_half_steps(q) : std::vector<double>{};
  EXPECT_EQ(linear->launches_per_forward(c.n_tok), 2);  // x converted, then the GEMM
  for (int t = 0; t < c.n_tok; ++t) {
    const float* xr = x.data() + size_t(t) * c.cols;
    const std::vector<double> x_half =
        int8_core ? test::x_int8_half_steps(xr, c.cols, 32) : std::vector<double>(size_t(c.cols), 0.0);
    for (int r = 0; r < c.rows; ++r) {
      double ref = c.accumulate ? y0[size_t(t) * c.rows + r] : 0.0, mag = std::fabs(ref), rounding = 0.0;
      const float* wr = wd.row(r);
      for (int k = 0; k < c.cols; ++k) {
        const double p = double(wr[k]) * xr[k];
        ref += p;
        mag += std::fabs(p);
        const double wh = w_half.empty() ? 0.0 : w_half[size_t(r) * c.cols + k];
        rounding += (std::fabs(double(wr[k])) + wh) * x_half[size_t(k)] + std::fabs(double(xr[k])) * wh;
      }
      ASSERT_NEAR(y[size_t(t) * c.rows + r], ref, rel * mag + 1.001 * rounding + 1e-6)
          << "t=" << t << " r=" << r << " " << gemm_case_name(c) << " seed " << test::test_seed();
    }
  }
}

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> out;
  for (QuantScheme s : {QuantScheme::F16, QuantScheme::NF4, QuantScheme::FP4, QuantScheme::Int4, QuantScheme::Q8_0,
                        QuantScheme::Dyn8, QuantScheme::KMeans4}) {
    out.push_back({s, 200, 172, 9});
    out.push_back({s, 130, 1000, 70, true});
    out.push_back({s, 256, 2048, 64});
    if (s == QuantScheme::NF4 || s == QuantScheme::Dyn8) out.push_back({s, 131, 1100, 33, false, true});
    if (s == QuantScheme::F16 || s == QuantScheme::NF4 || s == QuantScheme::Q8_0 || s == QuantScheme::Int4)
      out.push_back({s, 97, 1100, 301});
    if (s == QuantScheme::Int4 || s == QuantScheme::Q8_0) out.push_back({s, 385, 4100, 129, true});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Schemes, GemmDequantTest, ::testing::ValuesIn(gemm_cases()),
                         [](const auto& info) { return gemm_case_name(info.param); });

}  // namespace
}  // namespace quill
