// kernels/matmul_int8_fused.cl (decode in one launch: input transform + outlier split + quantization +
// dp4a GEMV + outlier part): work-group 0's transformed input, codes, row scales and outlier list are
// bit-exact with quantize_activations_int8 on that transformed input; the transformed input is close to
// the CPU transform; the output matches matmul_llm_int8_reference on it (poisoned first, then y +=).
// Shapes cover several token passes (kpad > 16384), > OCAP outliers (the bitmask path), zero rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "engine/linear_factories.hpp"
#include "engine/quantize_int8.hpp"
#include "host/matmul_int8.hpp"
#include "tests/device_util.hpp"
#include "tests/int8_inputs.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

enum class Tr { kNone, kRms, kSwiGlu };

struct FShape {
  int rows, cols, n_tok;
  Tr tr;
  bool llm;
};

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

struct DeviceWeights {
  host::Buffer cb, scb, slot, w16;
  host::Int8WeightBuffers view;
};

// The layout engine/linear_int8.cpp uploads.
DeviceWeights upload_weights(host::Device& device, const Int8Matrix& w) {
  const int64_t rows_pad = round_up(w.rows, host::MatmulInt8::kRowAlign), kpad = round_up(w.cols, host::MatmulInt8::kColAlign);
  const int64_t n16 = int64_t(w.outlier_dims.size());
  std::vector<int8_t> cb(size_t(rows_pad * kpad), 0);
  for (int64_t k = 0; k < w.rows; ++k) std::memcpy(&cb[size_t(k * kpad)], &w.cb[size_t(k * w.cols)], size_t(w.cols));
  std::vector<float> scb(size_t(rows_pad), 0.0f);
  std::copy(w.scb.begin(), w.scb.end(), scb.begin());
  std::vector<int32_t> slot(size_t(w.cols), -1);
  for (int64_t o = 0; o < n16; ++o) slot[size_t(w.outlier_dims[size_t(o)])] = int32_t(o);
  std::vector<uint16_t> w16(size_t(rows_pad * std::max<int64_t>(n16, 1)), 0);
  std::copy(w.w16.begin(), w.w16.end(), w16.begin());
  DeviceWeights d{host::upload(device, cb), host::upload(device, scb), host::upload(device, slot), host::upload(device, w16), {}};
  d.view = {&d.cb, &d.scb, &d.slot, &d.w16, int(w.rows), int(w.cols), int(rows_pad), int(kpad), int(n16)};
  return d;
}

// CPU transform in double (what the kernel approximates in fp32).
MatrixF32 cpu_transform(const MatrixF32& x, Tr tr, const std::vector<float>& nw, float eps, int cols) {
  MatrixF32 out{x.rows, cols, std::vector<float>(size_t(x.rows) * cols)};
  for (int64_t i = 0; i < x.rows; ++i) {
    double ss = 0;
    if (tr == Tr::kRms)
      for (int j = 0; j < cols; ++j) ss += double(x.row(i)[j]) * x.row(i)[j];
    const double inv = 1.0 / std::sqrt(ss / cols + eps);
    for (int j = 0; j < cols; ++j) {
      if (tr == Tr::kNone) out.row(i)[j] = x.row(i)[j];
      if (tr == Tr::kRms) out.row(i)[j] = float(x.row(i)[j] * inv * nw[size_t(j)]);
      if (tr == Tr::kSwiGlu) {
        const double g = x.row(i)[j], u = x.row(i)[cols + j];
        out.row(i)[j] = float(g / (1.0 + std::exp(-g)) * u);
      }
    }
  }
  return out;
}

float bound_of(const MatrixF32& xt, const Int8Matrix& w, const Int8Activations& q, const MatrixF32& w16, int64_t i,
               int64_t k) {
  int64_t c32 = 0;
  for (int64_t j = 0; j < xt.cols; ++j) c32 += int64_t(q.ca[size_t(i * xt.cols + j)]) * w.cb[size_t(k * xt.cols + j)];
  double mag = std::fabs(double(c32) * q.sca[size_t(i)] * w.scb[size_t(k)] / 16129.0), out = 0;
  for (int32_t j : q.outliers) out += std::fabs(double(xt.row(i)[j]) * w16.row(k)[j]);
  return float(8e-7 * mag + 2e-6 * out + 1e-30);
}

class MatmulInt8FusedTest : public ::testing::TestWithParam<FShape> {};

TEST_P(MatmulInt8FusedTest, BitExactCodesAndMatchesReference) {
  const FShape s = GetParam();
  std::mt19937_64 rng(test::test_seed() + uint64_t(s.rows * 7919 + s.cols * 31 + s.n_tok * 3 + int(s.tr)) + (s.llm ? 1 : 0));
  host::Device& device = test::test_device();
  const float threshold = s.llm ? 6.0f : 0.0f, eps = 1e-5f;
  auto in = test::make_int8_inputs(rng, s.n_tok, s.cols, s.llm);
  std::vector<float> nw = test::random_floats(rng, size_t(s.cols), 0.5f, 1.5f);
  MatrixF32 x = in.x;
  if (s.tr == Tr::kSwiGlu) {  // gate | up: up = the planted inputs, gate = 4 on planted columns (silu ~ 3.9)
    x = MatrixF32{s.n_tok, 2 * s.cols, std::vector<float>(size_t(s.n_tok) * 2 * s.cols)};
    const auto gate = test::random_floats(rng, size_t(s.n_tok) * s.cols, -2.0f, 2.0f);
    for (int i = 0; i < s.n_tok; ++i)
      for (int j = 0; j < s.cols; ++j) {
        const float u = in.x.row(i)[j];
        x.row(i)[j] = std::fabs(u) >= 5.0f ? 4.0f : gate[size_t(i) * s.cols + j];
        x.row(i)[s.cols + j] = u;
      }
  }
  MatrixF32 wf{s.rows, s.cols, test::random_floats(rng, size_t(s.rows) * s.cols)};
  if (s.rows >= 3) std::fill(wf.row(1), wf.row(1) + s.cols, 0.0f);
  const Int8Matrix w = quantize_llm_int8(wf, s.llm ? std::span<const int32_t>(in.outlier_dims) : std::span<const int32_t>());
  DeviceWeights dw = upload_weights(device, w);
  const int kpad = dw.view.kpad, n = s.n_tok;

  host::Buffer xb = host::upload(device, x.data), nwb = host::upload(device, nw);
  host::Buffer yb(device, size_t(n) * s.rows * 4);
  host::Buffer dxt(device, size_t(n) * s.cols * 4), dcodes(device, size_t(n) * kpad), dsca(device, size_t(n) * 4),
      dolist(device, size_t(s.cols) * 4), docount(device, 4);
  for (host::Buffer* b : {&yb, &dxt, &dcodes, &dsca, &docount}) b->fill_bytes(0xff);
  const host::FusedDebugBuffers dbg{&dxt, &dcodes, &dsca, &dolist, &docount};
  const auto tr = s.tr == Tr::kRms ? host::FusedTransform::kRmsNorm
                  : s.tr == Tr::kSwiGlu ? host::FusedTransform::kSwiGlu : host::FusedTransform::kNone;
  host::MatmulInt8 matmul(device);
  ASSERT_TRUE(host::MatmulInt8::fused_ok(n, s.cols, kpad));
  matmul.run_fused(dw.view, xb, tr, &nwb, eps, threshold, yb, n, false, &dbg);

  // The transformed input: close to the CPU's.
  const MatrixF32 xt{n, s.cols, dxt.read_vector<float>(size_t(n) * s.cols)};
  const MatrixF32 xt_cpu = cpu_transform(x, s.tr, nw, eps, s.cols);
  for (size_t e = 0; e < xt.data.size(); ++e)
    ASSERT_NEAR(xt.data[e], xt_cpu.data[e], 2e-5f * std::fabs(xt_cpu.data[e]) + 1e-30f) << "xt e=" << e;

  // Codes, scales, outliers: bit for bit with the CPU quantizer on that xt.
  const Int8Activations q = quantize_activations_int8(xt, threshold);
  const int n_out = docount.read_vector<int32_t>(1)[0];
  ASSERT_EQ(n_out, int(q.outliers.size()));
  if (s.llm && s.tr == Tr::kNone) {
    EXPECT_GT(n_out, 0);
  }
  const auto olist = dolist.read_vector<int32_t>(size_t(s.cols));
  for (int o = 0; o < n_out; ++o) ASSERT_EQ(olist[size_t(o)], q.outliers[size_t(o)]) << "o=" << o;
  const auto sca = dsca.read_vector<float>(size_t(n));
  const auto codes = dcodes.read_vector<int8_t>(size_t(n) * kpad);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(std::memcmp(&sca[size_t(i)], &q.sca[size_t(i)], 4), 0) << "sca i=" << i;
    for (int j = 0; j < kpad; ++j)
      ASSERT_EQ(int(codes[size_t(i) * kpad + j]), j < s.cols ? int(q.ca[size_t(i) * s.cols + j]) : 0) << "i=" << i << " j=" << j;
  }

  // Output against the reference on xt, then y +=.
  const MatrixF32 ref = matmul_llm_int8_reference(xt, w, threshold);
  const MatrixF32 w16 = dequantize(w);
  const auto y1 = yb.read_vector<float>(size_t(n) * s.rows);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < s.rows; ++k) {
      const size_t e = size_t(i) * s.rows + k;
      ASSERT_NEAR(y1[e], ref.data[e], bound_of(xt, w, q, w16, i, k)) << "i=" << i << " k=" << k;
    }
  matmul.run_fused(dw.view, xb, tr, &nwb, eps, threshold, yb, n, true);
  const auto y2 = yb.read_vector<float>(size_t(n) * s.rows);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < s.rows; ++k) {
      const size_t e = size_t(i) * s.rows + k;
      ASSERT_NEAR(y2[e], y1[e] + ref.data[e], 2 * bound_of(xt, w, q, w16, i, k) + 1e-7f * std::fabs(y1[e]))
          << "accumulate i=" << i << " k=" << k;
    }
}

// More outliers than the kernel's local list holds (every column): the bitmask path.
TEST(MatmulInt8Fused, ManyOutliersBitmaskPath) {
  std::mt19937_64 rng(test::test_seed());
  host::Device& device = test::test_device();
  const int cols = 300, rows = 70;
  MatrixF32 x{2, cols, std::vector<float>(size_t(2) * cols)};
  for (int j = 0; j < cols; ++j) {
    x.row(0)[j] = (j & 1 ? -1.0f : 1.0f) * (6.0f + float(rng() % 100) / 10.0f);
    x.row(1)[j] = float(int(rng() % 401) - 200) / 100.0f;
  }
  MatrixF32 wf{rows, cols, test::random_floats(rng, size_t(rows) * cols)};
  const std::vector<int32_t> dims{0, 5, 299};
  const Int8Matrix w = quantize_llm_int8(wf, dims);
  DeviceWeights dw = upload_weights(device, w);
  host::Buffer xb = host::upload(device, x.data), yb(device, size_t(2) * rows * 4);
  yb.fill_bytes(0xff);
  host::MatmulInt8 matmul(device);
  matmul.run_fused(dw.view, xb, host::FusedTransform::kNone, nullptr, 0.0f, 6.0f, yb, 2, false);
  const MatrixF32 ref = matmul_llm_int8_reference(x, w, 6.0f);
  const auto y = yb.read_vector<float>(size_t(2) * rows);
  for (size_t e = 0; e < y.size(); ++e) ASSERT_NEAR(y[e], ref.data[e], 1e-4f * (1.0f + std::fabs(ref.data[e]))) << e;
}

// Through make_linear: fused transforms for decode, one launch; prefill not fused.
TEST(MatmulInt8Fused, LinearFusesDecode) {
  host::Device& device = test::test_device();
  MatrixF32 wf{3, 17, std::vector<float>(51, 0.5f)};
  auto lin = make_linear_int8(device, quantize_llm_int8(wf), QuantScheme::LlmInt8, QuantParams{});
  host::Buffer nwb = host::upload(device, std::vector<float>(17, 1.0f));
  const InputTransform rms{InputTransform::Kind::kRmsNorm, &nwb, 1e-5f};
  EXPECT_TRUE(lin->fuses(rms, 1));
  EXPECT_TRUE(lin->fuses(InputTransform{InputTransform::Kind::kSwiGlu}, 1));
  EXPECT_FALSE(lin->fuses(rms, 2));  // 2..8 tokens: quantize + GEMV measured faster
  EXPECT_EQ(lin->launches_per_forward(1), 1);
  EXPECT_EQ(lin->launches_per_forward(8), 2);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulInt8FusedTest,
    ::testing::Values(FShape{1, 17, 1, Tr::kNone, true}, FShape{64, 17, 1, Tr::kNone, false},
                      FShape{64, 172, 3, Tr::kRms, true}, FShape{300, 172, 5, Tr::kSwiGlu, true},
                      FShape{130, 4096, 1, Tr::kRms, true}, FShape{130, 4096, 8, Tr::kNone, true},
                      FShape{64, 4096, 2, Tr::kSwiGlu, false}, FShape{40, 14336, 3, Tr::kNone, true},
                      FShape{33, 20000, 2, Tr::kRms, true}, FShape{300, 64, 7, Tr::kRms, false},
                      FShape{70, 14336, 1, Tr::kSwiGlu, true}, FShape{129, 11008, 1, Tr::kNone, true},
                      FShape{64, 4096, 1, Tr::kNone, false}, FShape{33, 20000, 1, Tr::kRms, true}),
    [](const auto& info) {
      const FShape& s = info.param;
      const char* tr = s.tr == Tr::kRms ? "rms" : s.tr == Tr::kSwiGlu ? "swiglu" : "none";
      return std::to_string(s.rows) + "x" + std::to_string(s.cols) + "_t" + std::to_string(s.n_tok) + "_" + tr +
             (s.llm ? "_llm" : "_int8");
    });

}  // namespace
}  // namespace quill
