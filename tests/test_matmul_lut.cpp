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
#include "tests/device_util.hpp"
#include "tests/int8_gemm_rounding.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

struct Case {
  QuantScheme scheme;
  int rows, cols, n_tok;
  int block = 0;  // 0 = scheme default
  bool double_quant = false;
  bool accumulate = false;
  bool per_row = true;  // kmeans4
  int input = 0;        // input transform: 0 none, 1 RMSNorm, 2 SwiGLU (fused up to 8 tokens)
  bool dp4a = false;    // int4 / q8_0 / nf4 / fp4: x quantized to int8 per group and dp4a ($QUILL_GEMV_DP4A)
  bool stream = true;   // one token on NVIDIA: gemv_stream.cl; false: matmul_lut.cl ($QUILL_GEMV_STREAM)
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

// A case's inputs: the weights (quantized and dequantized), x, the norm weight, and x as the matmul must
// see it (after the input transform) in fp64.
struct Inputs {
  QuantizedMatrix q;
  MatrixF32 wd;
  std::vector<float> x, norm_w;  // x: [n_tok, cols] ([n_tok, 2 cols] for SwiGLU)
  std::vector<double> xe;        // [n_tok, cols]
};

Inputs make_inputs(const Case& c, std::mt19937_64& rng) {
  Inputs in;
  MatrixF32 w{c.rows, c.cols, test::random_floats(rng, size_t(c.rows) * c.cols)};
  for (int i = 0; i < 4; ++i) w.data[rng() % w.data.size()] *= 8.0f;  // a few outliers
  QuantParams params;
  params.block = c.block;
  params.double_quant = c.double_quant;
  params.kmeans_per_row = c.per_row;
  in.q = quantize(w, c.scheme, params);
  in.wd = dequantize(in.q);
  const int x_cols = c.input == 2 ? 2 * c.cols : c.cols;
  in.x = test::random_floats(rng, size_t(c.n_tok) * x_cols, -2.0f, 2.0f);
  in.norm_w = test::random_floats(rng, size_t(c.cols), 0.5f, 1.5f);
  in.xe.resize(size_t(c.n_tok) * c.cols);
  for (int t = 0; t < c.n_tok; ++t) {
    const float* xt = in.x.data() + size_t(t) * x_cols;
    double ss = 0.0;
    for (int k = 0; k < c.cols; ++k) ss += double(xt[k]) * xt[k];
    const double inv = 1.0 / std::sqrt(ss / c.cols + 1e-5);
    for (int k = 0; k < c.cols; ++k) {
      double v = xt[k];
      if (c.input == 1) v = v * inv * in.norm_w[k];
      if (c.input == 2) v = v / (1.0 + std::exp(-v)) * xt[c.cols + k];
      in.xe[size_t(t) * c.cols + k] = v;
    }
  }
  return in;
}

// The fp64 reference y [n_tok, rows] (y0 added when accumulating) and each element's tolerance for the
// path the device takes.
struct Reference {
  std::vector<double> y, tol;
};

Reference reference(const Case& c, const Inputs& in, const std::vector<float>& y0, const host::DeviceInfo& info) {
  // Prefill token counts run the tiled GEMM: fp16 tiles (w and x rounded to fp16) on NVIDIA.
  const bool fp16_gemm = c.n_tok >= host::GemmDequant::min_tokens() && host::GemmDequant::used_on(info);
  const double rel = fp16_gemm ? 2e-3 : 1e-5;
  // dp4a: x rounded to int8 per group of `group` columns (the codes of one uint4), scale amax / 127,
  // so each product moves by at most |w| * amax / 254; so does the int8 tensor-core GEMM (int4, q8_0,
  // nf4, fp4 on sm_80+) with groups of 32, which also rounds nf4 / fp4 table values (|x| * absmax / 254).
  const bool int8_gemm = fp16_gemm && test::int8_gemm_core(c.scheme, info);
  const bool x_int8 = (c.dp4a && !fp16_gemm) || int8_gemm;
  const int group = c.scheme == QuantScheme::Q8_0 && !int8_gemm ? 16 : 32;
  // nf4 / fp4 through dp4a or the int8 GEMM: their table values rounded to int8 too (empty otherwise).
  const std::vector<double> w_half = x_int8 ? test::table_int8_half_steps(in.q) : std::vector<double>{};
  Reference out{std::vector<double>(size_t(c.n_tok) * c.rows), std::vector<double>(size_t(c.n_tok) * c.rows)};
  for (int t = 0; t < c.n_tok; ++t) {
    const double* xr = in.xe.data() + size_t(t) * c.cols;
    const std::vector<double> x_half =
        x_int8 ? test::x_int8_half_steps(xr, c.cols, group) : std::vector<double>(size_t(c.cols), 0.0);
    for (int r = 0; r < c.rows; ++r) {
      double ref = c.accumulate ? y0[size_t(t) * c.rows + r] : 0.0, mag = std::fabs(ref), rounding = 0.0;
      const float* wr = in.wd.row(r);
      for (int k = 0; k < c.cols; ++k) {
        const double p = double(wr[k]) * xr[k];
        ref += p;
        mag += std::fabs(p);
        const double wh = w_half.empty() ? 0.0 : w_half[size_t(r) * c.cols + k];
        rounding += (std::fabs(double(wr[k])) + wh) * x_half[size_t(k)] + std::fabs(xr[k]) * wh;
      }
      out.y[size_t(t) * c.rows + r] = ref;
      out.tol[size_t(t) * c.rows + r] = rel * mag + 1.001 * rounding + 1e-6;
    }
  }
  return out;
}

void set_path_env(const Case& c) {
  setenv("QUILL_FUSE_RMSNORM", "1", 1);  // the fused RMSNorm path for every format (tables default to unfused)
  setenv("QUILL_GEMV_DP4A", c.dp4a ? "1" : "0", 1);      // both int4 / q8_0 paths on every device
  setenv("QUILL_GEMV_STREAM", c.stream ? "1" : "0", 1);  // (only NVIDIA has the streaming GEMV)
}

class MatmulLutTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulLutTest, MatchesFp64ReferenceOverDequantized) {
  const Case c = GetParam();
  set_path_env(c);
  host::Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(c.rows) * 7919 + uint64_t(c.cols) * 31 + c.n_tok);
  const Inputs in = make_inputs(c, rng);
  ASSERT_EQ(in.wd.rows, c.rows);
  ASSERT_EQ(in.wd.cols, c.cols);
  const auto y0 = test::random_floats(rng, size_t(c.n_tok) * c.rows);
  auto linear = make(device, in.q);
  ASSERT_TRUE(linear);
  EXPECT_EQ(linear->rows(), c.rows);
  EXPECT_EQ(linear->cols(), c.cols);
  EXPECT_GT(linear->weight_bytes(), uint64_t(c.rows) * c.cols / 2);

  host::Buffer xb = host::upload(device, in.x);
  host::Buffer nb = host::upload(device, in.norm_w);
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

  const Reference ref = reference(c, in, y0, device.info());
  for (int t = 0; t < c.n_tok; ++t)
    for (int r = 0; r < c.rows; ++r) {
      const size_t i = size_t(t) * c.rows + r;
      ASSERT_NEAR(y[i], ref.y[i], ref.tol[i])
          << "t=" << t << " r=" << r << " " << case_name(c) << " seed " << test::test_seed();
    }
}

// Linear::forward_swiglu: rows = 2 ffn (gate, then up), h [n_tok, ffn] = silu(gate) * up. One token on
// NVIDIA's streaming dp4a GEMV writes h itself (each warp a gate / up row pair); elsewhere the matmul and
// the SwiGLU kernel run in turn. Checked against the fp64 reference's gate and up, their tolerances
// carried through silu(g) * u (|silu'| <= 1.1).
class MatmulLutSwigluOutput : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulLutSwigluOutput, MatchesFp64SiluGateTimesUp) {
  const Case c = GetParam();
  ASSERT_EQ(c.rows % 2, 0);
  set_path_env(c);
  host::Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(c.rows) * 104729 + uint64_t(c.cols) * 37 + c.n_tok);
  const Inputs in = make_inputs(c, rng);
  auto linear = make(device, in.q);
  ASSERT_TRUE(linear);
  const bool dp4a_format = c.scheme == QuantScheme::Int4 || c.scheme == QuantScheme::Q8_0 ||
                           c.scheme == QuantScheme::NF4 || c.scheme == QuantScheme::FP4;
  const bool fused = device.info().inline_ptx && c.stream && c.dp4a && dp4a_format && c.n_tok == 1;
  EXPECT_EQ(linear->fuses_swiglu_output(c.n_tok), fused);

  host::Buffer xb = host::upload(device, in.x);
  host::Buffer nb = host::upload(device, in.norm_w);
  InputTransform transform;
  if (c.input == 1) transform = {InputTransform::Kind::kRmsNorm, &nb, 1e-5f};
  const int ffn = c.rows / 2;
  host::Buffer hb(device, size_t(c.n_tok) * ffn * sizeof(float));
  hb.fill_bytes(0xff);  // NaN poison
  Workspace ws(device);
  linear->forward_swiglu(xb, hb, c.n_tok, ws, transform);
  const auto h = hb.read_vector<float>(size_t(c.n_tok) * ffn);

  const Reference ref = reference(c, in, {}, device.info());
  for (int t = 0; t < c.n_tok; ++t)
    for (int r = 0; r < ffn; ++r) {
      const size_t ig = size_t(t) * c.rows + r, iu = ig + ffn;
      const double g = ref.y[ig], u = ref.y[iu], eg = ref.tol[ig], eu = ref.tol[iu];
      const double silu = g / (1.0 + std::exp(-g)), want = silu * u;
      const double tol = 1.1 * eg * (std::fabs(u) + eu) + std::fabs(silu) * eu + 1e-6 + 1e-5 * std::fabs(want);
      ASSERT_NEAR(h[size_t(t) * ffn + r], want, tol)
          << "t=" << t << " r=" << r << " " << case_name(c) << " seed " << test::test_seed();
    }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const QuantScheme all[] = {QuantScheme::NF4,  QuantScheme::FP4,  QuantScheme::Dyn8,
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

std::vector<Case> swiglu_output_cases() {
  std::vector<Case> out;
  for (QuantScheme s : {QuantScheme::Int4, QuantScheme::Q8_0, QuantScheme::NF4, QuantScheme::FP4, QuantScheme::Dyn8}) {
    const bool dp4a = s != QuantScheme::Dyn8;
    out.push_back({s, 2, 172, 1, 0, false, false, true, 0, dp4a});     // one pair
    out.push_back({s, 66, 4096, 1, 0, false, false, true, 1, dp4a});   // RMSNorm fused
    out.push_back({s, 2000, 300, 1, 0, false, false, true, 0, dp4a});  // more pairs than warps per SM
    out.push_back({s, 34, 172, 3, 0, false, false, true, 1, dp4a});    // several tokens: matmul + SwiGLU
    out.push_back({s, 34, 172, 1, 0, false, false, true, 0, false});   // table / fp32 path
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Schemes, MatmulLutSwigluOutput, ::testing::ValuesIn(swiglu_output_cases()),
                         [](const auto& info) { return case_name(info.param); });

}  // namespace
}  // namespace quill
