// Static int8 activation scales (QuantParams::static_act_amax, `--act-scale`, QUANT_SPEC.md 6): every
// token is quantized with one fixed scale s = amax / 127, q = clamp(round_half_even(x / s), -127, 127), no
// outlier split, and y = C32 * s * SCB / 127. Checked on fresh random inputs against an fp64 reference of
// exactly that (the CPU fp32 quantizer, quantize_activations_int8_static, against it too), outputs
// NaN-poisoned first: kernels/quantize.cl (codes bit for bit), the fused decode kernel (its codes bit for
// bit on its own transformed input, which the static range applies to), and the int8 Linear end to end
// (decode GEMV, multi-token GEMM path; RMSNorm / SwiGLU inputs fused or not; inputs beyond the range
// clip). Then the synthetic tiny model with calibrated ranges against f32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "engine/calibration.hpp"
#include "engine/error.hpp"
#include "engine/linear_factories.hpp"
#include "engine/perplexity.hpp"
#include "engine/quantize_int8.hpp"
#include "engine/synthetic_model.hpp"
#include "host/matmul_int8.hpp"
#include "host/quantize_activations.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

enum class Tr { kNone, kRms, kSwiGlu };
const char* tr_name(Tr t) { return t == Tr::kNone ? "none" : t == Tr::kRms ? "rms" : "swiglu"; }

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// ---- the fp64 reference --------------------------------------------------------------------------

// The matmul input in double: x itself, rmsnorm(x) * nw, or silu(gate) * up (x = [gate | up]).
std::vector<double> transform_f64(const MatrixF32& x, Tr tr, const std::vector<float>& nw, float eps, int cols) {
  std::vector<double> out(size_t(x.rows) * cols);  // [n_tok, cols]
  for (int64_t i = 0; i < x.rows; ++i) {
    double ss = 0;
    for (int j = 0; j < cols && tr == Tr::kRms; ++j) ss += double(x.row(i)[j]) * x.row(i)[j];
    const double inv = 1.0 / std::sqrt(ss / cols + eps);
    for (int j = 0; j < cols; ++j) {
      const double v = x.row(i)[j];
      double& o = out[size_t(i) * cols + j];
      if (tr == Tr::kNone) o = v;
      if (tr == Tr::kRms) o = v * inv * nw[size_t(j)];
      if (tr == Tr::kSwiGlu) o = v / (1.0 + std::exp(-v)) * double(x.row(i)[cols + j]);
    }
  }
  return out;
}

// Relative error of x * 127 / amax computed in fp32 (two correctly rounded operations).
constexpr double kFp32Err = 2.5e-7;

// The static code of v = x * 127 / amax, and whether an input error of rel_err (relative to x) could move
// it to the other side of a rounding tie.
struct Code {
  int q;
  bool tie;
};
Code code_f64(double x, double amax, double rel_err) {
  const double v = x * 127.0 / amax;
  const double r = std::nearbyint(v);  // ties to even (default rounding mode)
  const double to_tie = std::fabs(std::fabs(v - std::trunc(v)) - 0.5);
  return {int(std::clamp(r, -127.0, 127.0)), to_tie <= rel_err * std::fabs(v) + 1e-12 && std::fabs(v) < 128.0};
}

// y[i, k] = sum_j q[i, j] CB[k, j] * amax * SCB[k] / 16129 in double, and each output's tolerance:
// fp32 rounding of the epilogue plus, for every code at a tie (rel_err > 0), the change one step makes.
struct RefOut {
  std::vector<double> y, tol;  // [n_tok, rows]
};
// amax <= 0: per-token scales (each token's max |xt|), which move with the input by up to rel_err as well.
RefOut reference_f64(const std::vector<double>& xt, int n_tok, const Int8Matrix& w, double amax, double rel_err) {
  const int64_t cols = w.cols, rows = w.rows;
  RefOut r{std::vector<double>(size_t(n_tok * rows)), std::vector<double>(size_t(n_tok * rows))};
  std::vector<Code> codes(size_t(n_tok * cols));  // [n_tok, cols]
  std::vector<double> token_amax(size_t(n_tok), amax);
  for (int i = 0; i < n_tok && amax <= 0.0; ++i)
    for (int64_t j = 0; j < cols; ++j)
      token_amax[size_t(i)] = std::max(token_amax[size_t(i)], std::fabs(xt[size_t(i * cols + j)]));
  const double code_err = amax <= 0.0 ? 2 * rel_err : rel_err;  // per token: x and its scale both move
  for (size_t e = 0; e < codes.size(); ++e)
    codes[e] =
        token_amax[e / size_t(cols)] > 0 ? code_f64(xt[e], token_amax[e / size_t(cols)], code_err) : Code{0, false};
  for (int i = 0; i < n_tok; ++i)
    for (int64_t k = 0; k < rows; ++k) {
      int64_t c32 = 0, mag = 0, slack = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const Code c = codes[size_t(i * cols + j)];
        const int cb = w.cb[size_t(k * cols + j)];
        c32 += int64_t(c.q) * cb;
        mag += std::abs(int64_t(c.q) * cb);
        if (c.tie) slack += std::abs(cb);
      }
      const double unit = token_amax[size_t(i)] * w.scb[size_t(k)] / 16129.0;
      r.y[size_t(i * rows + k)] = double(c32) * unit;
      r.tol[size_t(i * rows + k)] =
          double(slack) * unit + (1e-6 + (amax <= 0.0 ? rel_err : 0.0)) * double(mag) * unit + 1e-30;
    }
  return r;
}

// Random activations in [-2, 2] with a zero row, exact rounding ties for amax = 127 / 64 (x = (n + 0.5) / 64,
// so x * 127 / amax = n + 0.5 exactly), and values far beyond any clip (|x| = 30: no outlier split either).
MatrixF32 make_inputs(std::mt19937_64& rng, int n_tok, int cols) {
  MatrixF32 x{n_tok, cols, test::random_floats(rng, size_t(n_tok) * cols, -2.0f, 2.0f)};
  if (n_tok >= 3) std::fill(x.row(1), x.row(1) + cols, 0.0f);
  for (int i = 0; i < n_tok; ++i) {
    if (n_tok >= 3 && i == 1) continue;
    x.row(i)[size_t(rng() % uint64_t(cols))] = (i & 1) ? -30.0f : 30.0f;
    for (int t = 0; t < 4; ++t)
      x.row(i)[size_t(rng() % uint64_t(cols))] = (float(int(rng() % 200) - 100) + 0.5f) / 64.0f;
  }
  return x;
}

float max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double e : v) m = std::max(m, std::fabs(e));
  return float(m);
}

void expect_codes_equal(const std::vector<int8_t>& device_codes, int kpad, const Int8Activations& cpu,
                        const std::string& what) {
  for (int64_t i = 0; i < cpu.tokens; ++i)
    for (int j = 0; j < kpad; ++j)
      ASSERT_EQ(int(device_codes[size_t(i * kpad + j)]), j < cpu.cols ? int(cpu.ca[size_t(i * cpu.cols + j)]) : 0)
          << what << " i=" << i << " j=" << j;
}

// ---- the CPU quantizer ---------------------------------------------------------------------------

TEST(StaticActScale, CpuQuantizerIsTheFixedScaleFormula) {
  std::mt19937_64 rng(test::test_seed());
  const MatrixF32 x = make_inputs(rng, 5, 300);
  for (const float amax : {127.0f / 64.0f, 0.75f, 40.0f}) {
    const Int8Activations q = quantize_activations_int8_static(x, amax);
    EXPECT_TRUE(q.outliers.empty());
    for (float s : q.sca) EXPECT_EQ(s, amax);
    int clipped = 0;
    for (size_t e = 0; e < x.data.size(); ++e) {
      const Code c = code_f64(x.data[e], amax, kFp32Err);  // the fp32 quantizer may differ only at a tie
      if (!c.tie) {
        ASSERT_EQ(int(q.ca[e]), c.q) << "amax=" << amax << " e=" << e;
      }
      ASSERT_LE(std::abs(int(q.ca[e]) - c.q), 1);
      clipped += std::fabs(x.data[e]) > amax;
    }
    if (amax < 2.0f) {
      EXPECT_GT(clipped, 0);
    }
  }
  // Ties to even, saturation, the sign.
  const MatrixF32 t{1, 6, {0.5f / 64, 1.5f / 64, 2.5f / 64, -2.5f / 64, 1e6f, -1e30f}};
  const Int8Activations q = quantize_activations_int8_static(t, 127.0f / 64.0f);
  EXPECT_EQ(q.ca, (std::vector<int8_t>{0, 2, 2, -2, 127, -127}));
  for (const float bad : {0.0f, -1.0f, NAN, INFINITY}) EXPECT_THROW(quantize_activations_int8_static(t, bad), Error);
}

// ---- kernels/quantize.cl -------------------------------------------------------------------------

struct QShape {
  int n_tok, cols;
  float clip;  // amax = clip * max|x| (< 1: values beyond it saturate); 0: amax = 127 / 64 (exact ties)
};

class StaticActScaleQuantize : public ::testing::TestWithParam<QShape> {};

TEST_P(StaticActScaleQuantize, CodesBitExactScaleFixedNoOutliers) {
  const QShape s = GetParam();
  std::mt19937_64 rng(test::test_seed() + uint64_t(s.n_tok * 131 + s.cols));
  host::Device& device = test::test_device();
  const MatrixF32 x = make_inputs(rng, s.n_tok, s.cols);
  const float amax = s.clip > 0 ? s.clip * 30.0f : 127.0f / 64.0f;
  const int kpad = int(round_up(s.cols, 64));
  host::Buffer xb = host::upload(device, x.data);
  host::Buffer codes(device, size_t(s.n_tok) * kpad), sca(device, size_t(s.n_tok) * 4),
      flags(device, size_t(s.cols) * 4), olist(device, size_t(s.cols) * 4), ocount(device, 4);
  for (host::Buffer* b : {&codes, &sca, &ocount}) b->fill_bytes(0xff);
  host::QuantizeActivations quantize(device);
  quantize.run(xb, s.n_tok, s.cols, kpad, host::Int8ActScale::fixed(amax), {&codes, &sca, &flags, &olist, &ocount});
  EXPECT_EQ(host::QuantizeActivations::launches(s.n_tok, host::Int8ActScale::fixed(amax)), 1);

  const Int8Activations cpu = quantize_activations_int8_static(x, amax);
  expect_codes_equal(codes.read_vector<int8_t>(size_t(s.n_tok) * kpad), kpad, cpu, "quantize.cl");
  for (float v : sca.read_vector<float>(size_t(s.n_tok))) ASSERT_EQ(v, amax);
  EXPECT_EQ(ocount.read_vector<int32_t>(1)[0], 0);  // |x| = 30 >= 6 everywhere, but no outlier split
  // And against fp64 directly (exactly representable ties included: none is ambiguous in fp32 here).
  for (size_t e = 0; e < x.data.size(); ++e) {
    const Code c = code_f64(x.data[e], amax, kFp32Err);
    if (!c.tie) {
      ASSERT_EQ(int(cpu.ca[e]), c.q) << e;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, StaticActScaleQuantize,
                         ::testing::Values(QShape{1, 64, 0}, QShape{3, 172, 0.05f}, QShape{17, 172, 0},
                                           QShape{17, 4097, 0.04f}, QShape{9, 4096, 1.2f}, QShape{1, 4100, 0.05f}),
                         [](const auto& info) {
                           return "tok" + std::to_string(info.param.n_tok) + "_cols" + std::to_string(info.param.cols) +
                                  "_clip" + std::to_string(int(info.param.clip * 100));
                         });

// ---- the fused decode kernel (debug buffers) and the int8 Linear -----------------------------------

struct LShape {
  int rows, cols, n_tok;
  Tr tr;
  float clip;  // amax = clip * max |matmul input|
};
std::string lshape_name(const ::testing::TestParamInfo<LShape>& info) {
  const LShape& s = info.param;
  return std::to_string(s.rows) + "x" + std::to_string(s.cols) + "_tok" + std::to_string(s.n_tok) + "_" +
         tr_name(s.tr) + "_clip" + std::to_string(int(s.clip * 100));
}

struct Case {
  MatrixF32 x;             // [n_tok, cols] ([n_tok, 2 cols] for SwiGLU)
  std::vector<float> nw;   // [cols] norm weight
  Int8Matrix w;            // [rows, cols]
  std::vector<double> xt;  // [n_tok, cols] the matmul input in fp64
  float amax = 0;
  static constexpr float kEps = 1e-5f;
};

Case make_case(const LShape& s, uint64_t salt) {
  std::mt19937_64 rng(test::test_seed() + salt);
  Case c;
  const MatrixF32 a = make_inputs(rng, s.n_tok, s.cols);
  c.x = a;
  if (s.tr == Tr::kSwiGlu) {  // gate | up: the planted inputs as up, gate random (silu(30) ~ 30 for the large ones)
    c.x = MatrixF32{s.n_tok, 2 * s.cols, std::vector<float>(size_t(s.n_tok) * 2 * s.cols)};
    const auto gate = test::random_floats(rng, size_t(s.n_tok) * s.cols, -3.0f, 3.0f);
    for (int i = 0; i < s.n_tok; ++i)
      for (int j = 0; j < s.cols; ++j) {
        c.x.row(i)[j] = std::fabs(a.row(i)[j]) > 10.0f ? 4.0f : gate[size_t(i) * s.cols + j];
        c.x.row(i)[s.cols + j] = a.row(i)[j];
      }
  }
  c.nw = test::random_floats(rng, size_t(s.cols), 0.5f, 1.5f);
  MatrixF32 wf{s.rows, s.cols, test::random_floats(rng, size_t(s.rows) * s.cols)};
  if (s.rows >= 3) std::fill(wf.row(1), wf.row(1) + s.cols, 0.0f);  // SCB 0
  c.w = quantize_llm_int8(wf);
  c.xt = transform_f64(c.x, s.tr, c.nw, Case::kEps, s.cols);
  c.amax = s.clip * max_abs(c.xt);
  return c;
}

// The device computes the transform in fp32: its input to the quantizer is within this of the fp64 one.
double transform_rel_err(Tr tr) { return tr == Tr::kNone ? 0.0 : 3e-5; }

void check_output(const std::vector<float>& y, const RefOut& ref, const std::vector<float>* before,
                  const std::string& what) {
  for (size_t e = 0; e < y.size(); ++e) {
    const double want = ref.y[e] + (before ? (*before)[e] : 0.0);
    const double tol = ref.tol[e] + (before ? 2e-7 * std::fabs((*before)[e]) : 0.0);
    ASSERT_TRUE(std::isfinite(y[e])) << what << " e=" << e;
    ASSERT_NEAR(y[e], want, tol) << what << " e=" << e << " seed " << test::test_seed();
  }
}

// kernels/matmul_int8_fused.cl directly, with its debug buffers: the codes of ITS transformed input xt
// (after RMSNorm / SwiGLU) are bit-exact with the CPU static quantizer, SCA is amax, no outlier, and the
// output is the fp64 reference on that xt.
class StaticActScaleFused : public ::testing::TestWithParam<LShape> {};

TEST_P(StaticActScaleFused, CodesOfTransformedInputBitExactAndOutputMatches) {
  const LShape s = GetParam();
  const Case c = make_case(s, uint64_t(s.rows * 7 + s.cols * 13 + s.n_tok * 17 + int(s.tr)));
  host::Device& device = test::test_device();
  const int64_t rows_pad = round_up(s.rows, host::MatmulInt8::kRowAlign),
                kpad = round_up(s.cols, host::MatmulInt8::kColAlign);
  // The layout engine/linear_int8.cpp uploads (no fp16 columns: int8): cb [rows_pad, kpad], scb [rows_pad].
  std::vector<int8_t> cb(size_t(rows_pad * kpad), 0);
  for (int64_t k = 0; k < s.rows; ++k) std::memcpy(&cb[size_t(k * kpad)], &c.w.cb[size_t(k * s.cols)], size_t(s.cols));
  std::vector<float> scb(size_t(rows_pad), 0.0f);
  std::copy(c.w.scb.begin(), c.w.scb.end(), scb.begin());
  host::Buffer cbb = host::upload(device, cb), scbb = host::upload(device, scb),
               slot = host::upload(device, std::vector<int32_t>(size_t(s.cols), -1)),
               w16 = host::upload(device, std::vector<uint16_t>(size_t(rows_pad), 0));
  const host::Int8WeightBuffers wv{&cbb, &scbb, &slot, &w16, s.rows, s.cols, int(rows_pad), int(kpad), 0};

  const int n = s.n_tok;
  host::Buffer xb = host::upload(device, c.x.data), nwb = host::upload(device, c.nw);
  host::Buffer yb(device, size_t(n) * s.rows * 4), dxt(device, size_t(n) * s.cols * 4),
      dcodes(device, size_t(n) * kpad), dsca(device, size_t(n) * 4), dolist(device, size_t(s.cols) * 4),
      docount(device, 4);
  for (host::Buffer* b : {&yb, &dxt, &dcodes, &dsca, &docount}) b->fill_bytes(0xff);
  const host::FusedDebugBuffers dbg{&dxt, &dcodes, &dsca, &dolist, &docount};
  const auto tr = s.tr == Tr::kRms      ? host::FusedTransform::kRmsNorm
                  : s.tr == Tr::kSwiGlu ? host::FusedTransform::kSwiGlu
                                        : host::FusedTransform::kNone;
  host::MatmulInt8 matmul(device);
  ASSERT_TRUE(host::MatmulInt8::fused_ok(n, s.cols, int(kpad)));
  const auto act = host::Int8ActScale::fixed(c.amax);
  matmul.run_fused(wv, xb, tr, &nwb, Case::kEps, act, yb, n, false, &dbg);

  const MatrixF32 xt{n, s.cols, dxt.read_vector<float>(size_t(n) * s.cols)};
  for (size_t e = 0; e < xt.data.size(); ++e)
    ASSERT_NEAR(xt.data[e], c.xt[e], transform_rel_err(s.tr) * std::fabs(c.xt[e]) + 1e-30) << "xt e=" << e;
  const Int8Activations q = quantize_activations_int8_static(xt, c.amax);
  expect_codes_equal(dcodes.read_vector<int8_t>(size_t(n) * kpad), int(kpad), q, "fused");
  for (float v : dsca.read_vector<float>(size_t(n))) ASSERT_EQ(v, c.amax);
  EXPECT_EQ(docount.read_vector<int32_t>(1)[0], 0);

  // The codes are the fp32 quantizer's (checked above); the fp64 reference may round a value within fp32's
  // error of a tie the other way (seeds 100014, 100049 at 64x4097 clip 0.05), hence kFp32Err.
  const RefOut ref = reference_f64(std::vector<double>(xt.data.begin(), xt.data.end()), n, c.w, c.amax, kFp32Err);
  const auto y1 = yb.read_vector<float>(size_t(n) * s.rows);
  check_output(y1, ref, nullptr, "fused");
  matmul.run_fused(wv, xb, tr, &nwb, Case::kEps, act, yb, n, true);
  check_output(yb.read_vector<float>(size_t(n) * s.rows), ref, &y1, "fused accumulate");
}

INSTANTIATE_TEST_SUITE_P(Shapes, StaticActScaleFused,
                         ::testing::Values(LShape{130, 64, 1, Tr::kRms, 0.5f},  // one-token variant
                                           LShape{37, 172, 1, Tr::kSwiGlu, 0.3f},
                                           LShape{64, 4097, 1, Tr::kNone, 0.05f},    // general variant (odd cols)
                                           LShape{33, 4096, 3, Tr::kRms, 0.4f},      // several tokens
                                           LShape{129, 172, 3, Tr::kSwiGlu, 1.1f}),  // no clipping
                         lshape_name);

// Through make_linear_int8 with QuantParams::static_act_amax and Linear::forward (the Model's path):
// one token = the fused decode kernel; 3 / 17 tokens = quantize.cl (which applies the transform) and the GEMM
// (matmul_int8_rows here; the tensor-core GEMM above 8 tokens on PTX devices).
class StaticActScaleLinear : public ::testing::TestWithParam<LShape> {};

TEST_P(StaticActScaleLinear, MatchesFp64Reference) {
  const LShape s = GetParam();
  const Case c = make_case(s, uint64_t(s.rows * 5 + s.cols * 11 + s.n_tok * 19 + int(s.tr)));
  host::Device& device = test::test_device();
  QuantParams params;
  params.static_act_amax = c.amax;
  auto linear = make_linear_int8(device, c.w, QuantScheme::Int8, params);
  EXPECT_EQ(linear->launches_per_forward(s.n_tok), s.n_tok == 1 ? 1 : 2);
  Workspace ws(device);
  host::Buffer xb = host::upload(device, c.x.data), nwb = host::upload(device, c.nw);
  host::Buffer yb(device, size_t(s.n_tok) * s.rows * 4);
  yb.fill_bytes(0xff);
  const InputTransform transform = s.tr == Tr::kRms ? InputTransform{InputTransform::Kind::kRmsNorm, &nwb, Case::kEps}
                                   : s.tr == Tr::kSwiGlu ? InputTransform{InputTransform::Kind::kSwiGlu}
                                                         : InputTransform{};
  linear->forward(xb, yb, s.n_tok, false, ws, transform);
  const RefOut ref = reference_f64(c.xt, s.n_tok, c.w, c.amax, transform_rel_err(s.tr) + kFp32Err);
  const auto y1 = yb.read_vector<float>(size_t(s.n_tok) * s.rows);
  check_output(y1, ref, nullptr, "linear");
  linear->forward(xb, yb, s.n_tok, true, ws, transform);
  check_output(yb.read_vector<float>(size_t(s.n_tok) * s.rows), ref, &y1, "linear accumulate");
}

INSTANTIATE_TEST_SUITE_P(Shapes, StaticActScaleLinear,
                         ::testing::Values(LShape{64, 172, 1, Tr::kNone, 0.5f}, LShape{130, 64, 1, Tr::kRms, 0.3f},
                                           LShape{40, 4097, 1, Tr::kSwiGlu, 0.2f}, LShape{172, 64, 3, Tr::kRms, 0.5f},
                                           LShape{64, 172, 3, Tr::kSwiGlu, 1.0f}, LShape{37, 4096, 3, Tr::kNone, 0.05f},
                                           LShape{130, 172, 17, Tr::kRms, 0.4f}, LShape{64, 4097, 17, Tr::kNone, 0.3f},
                                           LShape{33, 64, 17, Tr::kSwiGlu, 0.25f}),
                         lshape_name);

// The same through per-token scales (int8 without a calibration): above one token, quantize.cl applies
// RMSNorm / SwiGLU as it loads x (no transform kernel), so its codes and scales come from its own fp32
// transform, within transform_rel_err of the fp64 one.
class Int8LinearTransformedInput : public ::testing::TestWithParam<LShape> {};

TEST_P(Int8LinearTransformedInput, MatchesFp64Reference) {
  const LShape s = GetParam();
  const Case c = make_case(s, uint64_t(s.rows * 3 + s.cols * 7 + s.n_tok * 23 + int(s.tr)));
  host::Device& device = test::test_device();
  auto linear = make_linear_int8(device, c.w, QuantScheme::Int8, QuantParams{});
  const InputTransform transform = s.tr == Tr::kRms
                                       ? InputTransform{InputTransform::Kind::kRmsNorm, nullptr, Case::kEps}
                                   : s.tr == Tr::kSwiGlu ? InputTransform{InputTransform::Kind::kSwiGlu}
                                                         : InputTransform{};
  EXPECT_TRUE(linear->fuses(transform, s.n_tok));
  EXPECT_EQ(linear->launches_per_forward(s.n_tok), s.n_tok == 1 ? 1 : 2);
  Workspace ws(device);
  host::Buffer xb = host::upload(device, c.x.data), nwb = host::upload(device, c.nw);
  InputTransform with_norm = transform;
  if (s.tr == Tr::kRms) with_norm.norm_weight = &nwb;
  host::Buffer yb(device, size_t(s.n_tok) * s.rows * 4);
  yb.fill_bytes(0xff);
  linear->forward(xb, yb, s.n_tok, false, ws, with_norm);
  const RefOut ref = reference_f64(c.xt, s.n_tok, c.w, 0.0, transform_rel_err(s.tr) + kFp32Err);
  check_output(yb.read_vector<float>(size_t(s.n_tok) * s.rows), ref, nullptr, "int8 linear");
}

INSTANTIATE_TEST_SUITE_P(Shapes, Int8LinearTransformedInput,
                         ::testing::Values(LShape{130, 172, 17, Tr::kRms, 1}, LShape{64, 4097, 17, Tr::kRms, 1},
                                           LShape{33, 64, 17, Tr::kSwiGlu, 1}, LShape{40, 4096, 70, Tr::kSwiGlu, 1},
                                           LShape{129, 4096, 70, Tr::kRms, 1}, LShape{64, 1001, 9, Tr::kNone, 1},
                                           LShape{37, 172, 1, Tr::kRms, 1}),
                         lshape_name);

TEST(StaticActScaleLinearParams, RefusesWhatItCannotHonor) {
  host::Device& device = test::test_device();
  const Int8Matrix w = quantize_llm_int8(MatrixF32{3, 17, std::vector<float>(51, 0.5f)});
  QuantParams p;
  p.static_act_amax = 2.0f;
  EXPECT_THROW(make_linear_int8(device, w, QuantScheme::LlmInt8, p), Error);  // llm-int8 splits per call
  for (const float bad : {-1.0f, NAN, INFINITY}) {
    p.static_act_amax = bad;
    EXPECT_THROW(make_linear_int8(device, w, QuantScheme::Int8, p), Error) << bad;
  }
  host::QuantizeActivations quantize(device);
  host::Buffer x(device, 17 * 4), b(device, 64 * 4);
  host::Int8ActScale both = host::Int8ActScale::fixed(1.0f);
  both.threshold = 6.0f;
  EXPECT_THROW(quantize.run(x, 1, 17, 64, both, {&b, &b, &b, &b, &b}), Error);
}

// ---- the model ------------------------------------------------------------------------------------

ModelOptions device_options(QuantScheme scheme) {
  ModelOptions o;
  o.device = "cpu";
  if (const char* env = std::getenv("QUILL_TEST_DEVICE"); env && *env) o.device = env;
  o.scheme = scheme;
  return o;
}

std::vector<int32_t> story_tokens(const Tokenizer& tokenizer) {
  return tokenizer.encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day she saw "
      "a big red ball in the park and ran to get it. Her mom said: be careful! Lily smiled and threw the ball to "
      "her friend Tom, and they played until the sun went down.",
      false);
}

class StaticActScaleModel : public ::testing::TestWithParam<RangeMethod> {
 protected:
  static void SetUpTestSuite() {
    f32_ = new std::shared_ptr<Model>(Model::synthetic("tiny", device_options(QuantScheme::F32)));
    text_ = new std::vector<int32_t>(story_tokens((*f32_)->tokenizer()));
    stats_ = new CalibrationStats(calibrate(*synthetic_weight_source("tiny"), *text_, {.ctx = 64}));
    per_token_ = new PerplexityResult(
        compute_perplexity(Model::synthetic("tiny", device_options(QuantScheme::Int8)), *text_, {.ctx = 64}, *f32_));
  }
  static void TearDownTestSuite() {
    delete f32_;
    delete text_;
    delete stats_;
    delete per_token_;
  }
  static PerplexityResult run_static(const std::vector<float>& amax) {
    ModelOptions o = device_options(QuantScheme::Int8);
    o.static_act_amax = amax;
    return compute_perplexity(Model::synthetic("tiny", o), *text_, {.ctx = 64}, *f32_);
  }
  static std::shared_ptr<Model>* f32_;
  static std::vector<int32_t>* text_;
  static CalibrationStats* stats_;
  static PerplexityResult* per_token_;
};
std::shared_ptr<Model>* StaticActScaleModel::f32_ = nullptr;
std::vector<int32_t>* StaticActScaleModel::text_ = nullptr;
CalibrationStats* StaticActScaleModel::stats_ = nullptr;
PerplexityResult* StaticActScaleModel::per_token_ = nullptr;

// Calibrated ranges: finite, close to f32, and really applied (absmax: a range 100x too narrow is far worse).
TEST_P(StaticActScaleModel, CalibratedTinyIsCloseToF32) {
  const std::vector<float> amax = stats_->site_amax(GetParam());
  ASSERT_EQ(amax.size(), size_t(4 * (*f32_)->config().n_layers + 1));
  for (float a : amax) ASSERT_GT(a, 0.0f);
  const PerplexityResult r = run_static(amax);
  ASSERT_GT(r.tokens, 50);
  ASSERT_TRUE(std::isfinite(r.nll()) && std::isfinite(r.kl_mean()));
  EXPECT_LT(r.kl_mean(), 0.01);
  EXPECT_GT(r.top1_agree(), 0.9);
  EXPECT_NEAR(r.ppl() / r.reference_ppl(), 1.0, 0.03);
  EXPECT_NE(r.nll(), per_token_->nll());  // not the per-token path
  std::printf("[ static %-10s ] KL %.3g (per-token int8 %.3g), top-1 %.4f, ppl / f32 %.4f\n",
              std::string(range_method_name(GetParam())).c_str(), r.kl_mean(), per_token_->kl_mean(), r.top1_agree(),
              r.ppl() / r.reference_ppl());

  if (GetParam() != RangeMethod::kAbsmax) return;
  std::vector<float> narrow = amax;
  for (float& a : narrow) a /= 100.0f;
  const PerplexityResult clipped = run_static(narrow);
  ASSERT_TRUE(std::isfinite(clipped.nll()));
  EXPECT_GT(clipped.kl_mean(), 10 * r.kl_mean());
}

INSTANTIATE_TEST_SUITE_P(Methods, StaticActScaleModel,
                         ::testing::Values(RangeMethod::kAbsmax, RangeMethod::kPercentile, RangeMethod::kMse,
                                           RangeMethod::kEntropy),
                         [](const auto& info) { return std::string(range_method_name(info.param)); });

}  // namespace
}  // namespace quill
