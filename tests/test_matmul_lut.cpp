// The table-lookup Linears (nf4, fp4, dyn8 with and without double quant, int4, q8_0, kmeans4 per
// row and per tensor) against an fp64 CPU matmul over dequantize(q), on fresh random inputs with
// the output poisoned first (or holding random values for accumulate), over odd and real shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/linear_factories.hpp"
#include "engine/quantize_matrix.hpp"
#include "host/gemm_dequant.hpp"
#include "tests/int8_gemm_rounding.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

struct Case {
  QuantScheme scheme;
  int rows, cols, n_tok;
  int block = 0;            // 0 = scheme default
  bool double_quant = false;
  bool accumulate = false;
  bool per_row = true;      // kmeans4
  int input = 0;            // input transform: 0 none, 1 RMSNorm, 2 SwiGLU (fused up to 8 tokens)
  bool dp4a = false;        // int4 / q8_0 / nf4 / fp4: x quantized to int8 per group and dp4a ($QUILL_GEMV_DP4A)
  bool stream = true;       // one token on NVIDIA: gemv_stream.cl; false: matmul_lut.cl ($QUILL_GEMV_STREAM)
};

std::string case_name(const Case& c) {
  std::string s{scheme_name(c.scheme)};
  for (char& ch : s)
    if (ch == '-') ch = '_';
  s += "_" + std::to_string(c.rows) + "x" + std::to_string(c.cols) + "_t" + std::to_string(c.n_tok);
  if (c.block) s += "_b" + std::to_string(c.block);
  if (c.double_quant) s += "_dq";
  if (c.accumulate) s += "_acc";
  if (c.scheme == QuantScheme::KMeans4) s += c.per_row ? "_row" : "_tensor";
  if (c.input == 1) s += "_rmsnorm";
  if (c.input == 2) s += "_swiglu";
  if (c.dp4a) s += "_dp4a";
  if (!c.stream) s += "_nostream";
  return s;
}

std::unique_ptr<Linear> make(host::Device& device, const QuantizedMatrix& q) {
  if (auto* b = std::get_if<BlockwiseMatrix>(&q)) return make_linear_blockwise(device, *b);
  if (auto* g = std::get_if<GgmlBlockMatrix>(&q)) return make_linear_ggml(device, *g);
  if (auto* k = std::get_if<KMeansMatrix>(&q)) return make_linear_kmeans(device, *k);
  ADD_FAILURE() << "unexpected variant";
  return nullptr;
}

class MatmulLutTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulLutTest, MatchesFp64ReferenceOverDequantized) {
  const Case c = GetParam();
  setenv("QUILL_FUSE_RMSNORM", "1", 1);  // the fused RMSNorm path for every format (tables default to unfused)
  setenv("QUILL_GEMV_DP4A", c.dp4a ? "1" : "0", 1);  // both int4 / q8_0 paths on every device
  setenv("QUILL_GEMV_STREAM", c.stream ? "1" : "0", 1);  // (only NVIDIA has the streaming GEMV)
  host::Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(c.rows) * 7919 + uint64_t(c.cols) * 31 + c.n_tok);
  MatrixF32 w{c.rows, c.cols, test::random_floats(rng, size_t(c.rows) * c.cols)};
  for (int i = 0; i < 4; ++i) w.data[rng() % w.data.size()] *= 8.0f;  // a few outliers
  QuantParams params;
  params.block = c.block;
  params.double_quant = c.double_quant;
  params.kmeans_per_row = c.per_row;
  const QuantizedMatrix q = quantize(w, c.scheme, params);
  const MatrixF32 wd = dequantize(q);
  ASSERT_EQ(wd.rows, c.rows);
  ASSERT_EQ(wd.cols, c.cols);

  const int x_cols = c.input == 2 ? 2 * c.cols : c.cols;
  const auto x = test::random_floats(rng, size_t(c.n_tok) * x_cols, -2.0f, 2.0f);
  const auto norm_w = test::random_floats(rng, size_t(c.cols), 0.5f, 1.5f);
  // The transformed input in fp64: what the matmul must see.
  std::vector<double> xe(size_t(c.n_tok) * c.cols);
  for (int t = 0; t < c.n_tok; ++t) {
    const float* xt = x.data() + size_t(t) * x_cols;
    double ss = 0.0;
    for (int k = 0; k < c.cols; ++k) ss += double(xt[k]) * xt[k];
    const double inv = 1.0 / std::sqrt(ss / c.cols + 1e-5);
    for (int k = 0; k < c.cols; ++k) {
      double v = xt[k];
      if (c.input == 1) v = v * inv * norm_w[k];
      if (c.input == 2) v = v / (1.0 + std::exp(-v)) * xt[c.cols + k];
      xe[size_t(t) * c.cols + k] = v;
    }
  }
  const auto y0 = test::random_floats(rng, size_t(c.n_tok) * c.rows);
  auto linear = make(device, q);
  ASSERT_TRUE(linear);
  EXPECT_EQ(linear->rows(), c.rows);
  EXPECT_EQ(linear->cols(), c.cols);
  EXPECT_GT(linear->weight_bytes(), uint64_t(c.rows) * c.cols / 2);

  host::Buffer xb = host::upload(device, x);
  host::Buffer nb = host::upload(device, norm_w);
  InputTransform transform;
  if (c.input == 1) transform = {InputTransform::Kind::kRmsNorm, &nb, 1e-5f};
  if (c.input == 2) transform = {InputTransform::Kind::kSwiGlu};
  if (c.input) {
    EXPECT_EQ(linear->fuses(transform, c.n_tok), c.n_tok <= 8);
  }
  host::Buffer yb(device, y0.size() * sizeof(float));
  if (c.accumulate)
    yb.write(y0.data(), y0.size() * sizeof(float));
  else
    yb.fill_bytes(0xff);  // NaN poison: every output must be written
  Workspace ws(device);
  linear->forward(xb, yb, c.n_tok, c.accumulate, ws, transform);
  const auto y = yb.read_vector<float>(y0.size());

  // Prefill token counts run the tiled GEMM: fp16 tiles (w and x rounded to fp16) on NVIDIA.
  const bool fp16_gemm = c.n_tok >= host::GemmDequant::min_tokens() && host::GemmDequant::used_on(device.info());
  const double rel = fp16_gemm ? 2e-3 : 1e-5;
  // dp4a: x rounded to int8 per group of `group` columns (the codes of one uint4), scale amax / 127,
  // so each product moves by at most |w| * amax / 254; so does the int8 tensor-core GEMM (int4, q8_0,
  // nf4, fp4 on sm_80+) with groups of 32, which also rounds nf4 / fp4 table values (|x| * absmax / 254).
  const bool int8_gemm = fp16_gemm && test::int8_gemm_core(c.scheme, device.info());
  const bool x_int8 = (c.dp4a && !fp16_gemm) || int8_gemm;
  const int group = c.scheme == QuantScheme::Q8_0 && !int8_gemm ? 16 : 32;
  // nf4 / fp4 through dp4a or the int8 GEMM: their table values rounded to int8 too (empty otherwise).
  const std::vector<double> w_half = x_int8 ? test::table_int8_half_steps(q) : std::vector<double>{};
  for (int t = 0; t < c.n_tok; ++t) {
    const double* xr = xe.data() + size_t(t) * c.cols;
    const std::vector<double> x_half =
        x_int8 ? test::x_int8_half_steps(xr, c.cols, group) : std::vector<double>(size_t(c.cols), 0.0);
    for (int r = 0; r < c.rows; ++r) {
      double ref = c.accumulate ? y0[size_t(t) * c.rows + r] : 0.0, mag = std::fabs(ref), rounding = 0.0;
      const float* wr = wd.row(r);
      for (int k = 0; k < c.cols; ++k) {
        const double p = double(wr[k]) * xr[k];
        ref += p;
        mag += std::fabs(p);
        const double wh = w_half.empty() ? 0.0 : w_half[size_t(r) * c.cols + k];
        rounding += (std::fabs(double(wr[k])) + wh) * x_half[size_t(k)] + std::fabs(xr[k]) * wh;
      }
      const double got = y[size_t(t) * c.rows + r];
      ASSERT_NEAR(got, ref, rel * mag + 1.001 * rounding + 1e-6)
          << "t=" << t << " r=" << r << " " << case_name(c) << " seed " << test::test_seed();
    }
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const QuantScheme all[] = {QuantScheme::NF4, QuantScheme::FP4, QuantScheme::Dyn8,
                             QuantScheme::Int4, QuantScheme::Q8_0, QuantScheme::KMeans4};
  for (QuantScheme s : all) {
    const bool blockwise = s == QuantScheme::NF4 || s == QuantScheme::FP4 || s == QuantScheme::Dyn8;
    // Odd and real shapes with the scheme's default parameters.
    out.push_back({s, 1, 64, 1});
    out.push_back({s, 3, 17, 1});
    out.push_back({s, 3, 172, 3});
    out.push_back({s, 64, 172, 17});
    out.push_back({s, 64, 4096, 3});
    out.push_back({s, 4100, 64, 1});
    out.push_back({s, 17, 172, 17, 0, false, true});  // y += epilogue, GEMM
    out.push_back({s, 33, 300, 1, 0, false, true});   // y += epilogue, GEMV
    if (s != QuantScheme::KMeans4) out.push_back({s, 4096, 4096, 1});
    if (blockwise) {
      for (int block : {64, 128})
        for (bool dq : {false, true}) {
          out.push_back({s, 64, 172, 3, block, dq});
          out.push_back({s, 5, 1000, 17, block, dq, true});
        }
      out.push_back({s, 300, 4096, 1, 64, true});  // > 256 blocks: several absmax2 groups
    }
    // Fused input transforms (GEMV / up to 8 tokens) and the unfused fallback (17 tokens).
    out.push_back({s, 64, 172, 1, 0, false, false, true, 1});
    out.push_back({s, 33, 4096, 3, 0, false, true, true, 1});
    out.push_back({s, 17, 1000, 8, 0, false, false, true, 2});
    out.push_back({s, 64, 172, 1, 0, false, true, true, 2});
    out.push_back({s, 19, 172, 17, 0, false, false, true, 1});
    out.push_back({s, 19, 300, 17, 0, false, true, true, 2});
    // Streaming GEMV limits: its widest fp32 staging (11008: Llama-2's FFN, SwiGLU) and wider rows
    // (matmul_lut on every device).
    out.push_back({s, 40, 11008, 1, 0, false, true, true, 2});
    out.push_back({s, 5, 16500, 1});
    if (s == QuantScheme::KMeans4) {
      out.push_back({s, 64, 172, 17, 0, false, false, false});
      out.push_back({s, 3, 17, 3, 0, false, true, false});
      out.push_back({s, 33, 300, 1, 0, false, true, false});  // per-tensor codebook GEMV
    }
  }
  // One-token cases again through matmul_lut where the streaming GEMV would run.
  for (size_t i = 0, n = out.size(); i < n; ++i) {
    const Case& c = out[i];
    if (c.n_tok == 1 && (c.rows == 33 || (c.rows == 64 && c.cols == 172))) {
      out.push_back(c);
      out.back().stream = false;
    }
  }
  // int4 / q8_0 / nf4 / fp4 again through the dp4a path (x quantized to int8; nf4 / fp4 tables as int8).
  const size_t n = out.size();
  for (size_t i = 0; i < n; ++i) {
    const QuantScheme s = out[i].scheme;
    if (s == QuantScheme::Int4 || s == QuantScheme::Q8_0 || s == QuantScheme::NF4 || s == QuantScheme::FP4) {
      out.push_back(out[i]);
      out.back().dp4a = true;
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Schemes, MatmulLutTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return case_name(info.param); });

}  // namespace
}  // namespace quill
