// The int8 / llm-int8 Linear (kernels/quantize.cl + kernels/matmul_int8.cl through make_linear_int8)
// against matmul_llm_int8_reference on fresh random inputs with planted outliers (kept fp16 columns
// and the int8 fallback), output poisoned first, then again with accumulate (y += ...).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "engine/linear_factories.hpp"
#include "engine/quantize_int8.hpp"
#include "host/matmul_int8.hpp"
#include "tests/device_util.hpp"
#include "tests/int8_inputs.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

struct MShape {
  int rows, cols, n_tok;
  bool llm;
};

// Error budget of one output: a few fp32 roundings of the int8 term and of each outlier term (the
// integer part is exact, so an off-by-one in C32 moves y by SCA*SCB/16129, usually far above this).
// digits: the fallback outlier columns (int8 weights, not kept in fp16) ran on the int8 tensor cores
// with x as two int8 digits (host MatmulInt8::run): each such x within amax / 64516 (amax: the token's
// largest outlier value).
MatrixF32 error_bound(const MatrixF32& x, const Int8Matrix& w, float threshold, bool digits) {
  const Int8Activations q = quantize_activations_int8(x, threshold);
  const MatrixF32 w16 = dequantize(w);
  MatrixF32 bound{x.rows, w.rows, std::vector<float>(size_t(x.rows * w.rows))};
  for (int64_t i = 0; i < x.rows; ++i) {
    double amax = 0;
    for (int32_t j : q.outliers) amax = std::max(amax, std::fabs(double(x.row(i)[j])));
    for (int64_t k = 0; k < w.rows; ++k) {
      int64_t c32 = 0;
      for (int64_t j = 0; j < x.cols; ++j) c32 += int64_t(q.ca[size_t(i * x.cols + j)]) * w.cb[size_t(k * x.cols + j)];
      double mag = std::fabs(double(c32) * q.sca[size_t(i)] * w.scb[size_t(k)] / 16129.0), out = 0, dig = 0;
      for (int32_t j : q.outliers) {
        out += std::fabs(double(x.row(i)[j]) * w16.row(k)[j]);
        const bool kept = std::find(w.outlier_dims.begin(), w.outlier_dims.end(), j) != w.outlier_dims.end();
        if (digits && !kept) dig += std::fabs(double(w16.row(k)[j])) * amax / 64516.0 * 1.01;  // +1%: scale roundings
      }
      bound.row(i)[k] = float(8e-7 * mag + 2e-6 * out + dig + 1e-30);
    }
  }
  return bound;
}

void run_and_check(const MatrixF32& x, const Int8Matrix& w, QuantScheme scheme, float threshold,
                   const std::string& what) {
  host::Device& device = test::test_device();
  const int n_tok = int(x.rows), rows = int(w.rows);
  QuantParams params;
  params.int8_threshold = threshold;
  auto linear = make_linear_int8(device, w, scheme, params);
  Workspace ws(device);
  host::Buffer xb = host::upload(device, x.data);
  host::Buffer yb(device, size_t(n_tok) * rows * 4);
  yb.fill_bytes(0xff);  // NaN poison: every output must be written
  const MatrixF32 ref = matmul_llm_int8_reference(x, w, scheme == QuantScheme::LlmInt8 ? threshold : 0.0f);
  const bool digits = scheme == QuantScheme::LlmInt8 && host::MatmulInt8::mma_available(device.info()) &&
                      n_tok > host::MatmulInt8::kGemvMaxTokens;
  const MatrixF32 bound = error_bound(x, w, scheme == QuantScheme::LlmInt8 ? threshold : 0.0f, digits);

  linear->forward(xb, yb, n_tok, false, ws);
  const auto y1 = yb.read_vector<float>(size_t(n_tok) * rows);
  for (size_t e = 0; e < y1.size(); ++e)
    ASSERT_NEAR(y1[e], ref.data[e], bound.data[e]) << what << " i=" << e / rows << " k=" << e % rows;

  linear->forward(xb, yb, n_tok, true, ws);  // y += x W^T
  const auto y2 = yb.read_vector<float>(size_t(n_tok) * rows);
  for (size_t e = 0; e < y2.size(); ++e)
    ASSERT_NEAR(y2[e], y1[e] + ref.data[e], 2 * bound.data[e] + 1e-7f * std::fabs(y1[e]))
        << what << " accumulate i=" << e / rows << " k=" << e % rows;
}

class MatmulInt8Test : public ::testing::TestWithParam<MShape> {};

TEST_P(MatmulInt8Test, MatchesLlmInt8Reference) {
  const MShape s = GetParam();
  std::mt19937_64 rng(test::test_seed() + uint64_t(s.rows * 7919 + s.cols * 31 + s.n_tok) + (s.llm ? 1 : 0));
  const auto in = test::make_int8_inputs(rng, s.n_tok, s.cols, s.llm);
  MatrixF32 wf{s.rows, s.cols, test::random_floats(rng, size_t(s.rows) * s.cols)};
  if (s.rows >= 3) std::fill(wf.row(1), wf.row(1) + s.cols, 0.0f);  // zero weight row: SCB 0
  const Int8Matrix w = quantize_llm_int8(wf, s.llm ? std::span<const int32_t>(in.outlier_dims) : std::span<const int32_t>());
  run_and_check(in.x, w, s.llm ? QuantScheme::LlmInt8 : QuantScheme::Int8, 6.0f,
                "seed " + std::to_string(test::test_seed()));
}

// Small integer inputs where the whole epilogue is exact: y must equal C32 exactly (an off-by-one in
// the integer part, e.g. a wrong mma fragment layout, cannot hide in the tolerance).
TEST(MatmulInt8, IntegerPartExact) {
  std::mt19937_64 rng(test::test_seed());
  std::uniform_int_distribution<int> small(-1, 1);
  for (int n_tok : {3, 17, 70}) {
    const int rows = 200, cols = 172;
    MatrixF32 x{n_tok, cols, std::vector<float>(size_t(n_tok) * cols)}, wf{rows, cols, std::vector<float>(size_t(rows) * cols)};
    for (auto& v : x.data) v = float(small(rng));
    for (auto& v : wf.data) v = float(small(rng));
    for (int i = 0; i < n_tok; ++i) x.row(i)[i % 50] = 127.0f;            // SCA = 127: codes = x
    for (int k = 0; k < rows; ++k) wf.row(k)[100 + k % 50] = -127.0f;    // SCB = 127: CB = W
    const Int8Matrix w = quantize_llm_int8(wf);
    host::Device& device = test::test_device();
    auto linear = make_linear_int8(device, w, QuantScheme::Int8, QuantParams{});
    Workspace ws(device);
    host::Buffer xb = host::upload(device, x.data), yb(device, size_t(n_tok) * rows * 4);
    yb.fill_bytes(0xff);
    linear->forward(xb, yb, n_tok, false, ws);
    const auto y = yb.read_vector<float>(size_t(n_tok) * rows);
    for (int i = 0; i < n_tok; ++i) {
      for (int k = 0; k < rows; ++k) {
        int c32 = 0;
        for (int j = 0; j < cols; ++j) c32 += int(x.row(i)[j]) * int(wf.row(k)[j]);
        ASSERT_NEAR(y[size_t(i) * rows + k], float(c32), 0.25f) << "n_tok " << n_tok << " i=" << i << " k=" << k;
      }
    }
  }
}

// One token whose every column is an outlier: SCA 0, the result is the fp16 / fallback side path only.
TEST(MatmulInt8, AllOutlierRow) {
  std::mt19937_64 rng(test::test_seed());
  MatrixF32 x{1, 17, std::vector<float>(17)};
  for (int j = 0; j < 17; ++j) x.data[size_t(j)] = (j & 1 ? -1.0f : 1.0f) * (6.0f + float(rng() % 100) / 10.0f);
  MatrixF32 wf{64, 17, test::random_floats(rng, 64 * 17)};
  const std::vector<int32_t> dims{0, 3, 16};
  run_and_check(x, quantize_llm_int8(wf, dims), QuantScheme::LlmInt8, 6.0f, "all-outlier");
}

// More outlier columns than one staged chunk of the GEMM's side path (16), kept fp16 and fallback
// columns interleaved, several tokens per column, both signs, and one token with no outlier at all.
TEST(MatmulInt8, ManyOutlierColumns) {
  std::mt19937_64 rng(test::test_seed() + 17);
  for (int n_tok : {5, 70}) {
    const int rows = 300, cols = 172;
    MatrixF32 x{n_tok, cols, test::random_floats(rng, size_t(n_tok) * cols, -2.0f, 2.0f)};
    std::vector<int32_t> kept;
    std::uniform_real_distribution<float> big(6.0f, 40.0f);
    for (int j = 3; j < cols; j += 4) {  // 43 outlier columns
      for (int hit = 0; hit < 3; ++hit) {
        const int i = int(rng() % uint64_t(n_tok - 1));  // the last token keeps no outlier
        x.row(i)[j] = (rng() & 1 ? 1.0f : -1.0f) * big(rng);
      }
      if (j % 8 == 3) kept.push_back(j);  // every other one kept in fp16, the rest use the int8 fallback
    }
    MatrixF32 wf{rows, cols, test::random_floats(rng, size_t(rows) * cols)};
    run_and_check(x, quantize_llm_int8(wf, kept), QuantScheme::LlmInt8, 6.0f, "many outliers t" + std::to_string(n_tok));
  }
}

TEST(MatmulInt8, LaunchesPerForward) {
  host::Device& device = test::test_device();
  MatrixF32 wf{3, 17, std::vector<float>(51, 0.5f)};
  QuantParams p;
  EXPECT_EQ(make_linear_int8(device, quantize_llm_int8(wf), QuantScheme::Int8, p)->launches_per_forward(64), 2);
  auto llm = make_linear_int8(device, quantize_llm_int8(wf), QuantScheme::LlmInt8, p);
  EXPECT_EQ(llm->launches_per_forward(1), 1);  // decode: the fused kernel
  // prefill: find outliers, quantize, GEMM (on the tensor cores also the fallback columns' gather and GEMM)
  EXPECT_EQ(llm->launches_per_forward(64), host::MatmulInt8::mma_available(device.info()) ? 5 : 3);
}
// The tensor-core GEMM tilings (host/matmul_int8.cpp: the general 128x128 one and the 128x64 one for
// grids the general one would not fill, which loads two k-tiles ahead), and a 128x64 one loading one
// k-tile ahead, on every grid: the test shapes are small, so without the override every GEMM here would
// take the small-grid tiling. 300 columns are 5 k-tiles: an odd count for the two-ahead loop. (PoCL:
// the rows kernel, as elsewhere.)
TEST(MatmulInt8, EveryGemmTiling) {
  for (const char* tiling : {"4,2,2,8,1", "4,2,2,4,2", "2,4,4,2,1"}) {
    setenv("QUILL_INT8_MMA", tiling, 1);
    setenv("QUILL_INT8_MMA_SMALL", tiling, 1);
    std::mt19937_64 rng(test::test_seed() + 23);
    const auto in = test::make_int8_inputs(rng, 70, 300, true);
    MatrixF32 wf{261, 300, test::random_floats(rng, size_t(261) * 300)};
    run_and_check(in.x, quantize_llm_int8(wf, in.outlier_dims), QuantScheme::LlmInt8, 6.0f,
                  std::string("tiling ") + tiling + " seed " + std::to_string(test::test_seed()));
    run_and_check(in.x, quantize_llm_int8(wf), QuantScheme::Int8, 6.0f, std::string("int8, tiling ") + tiling);
  }
  unsetenv("QUILL_INT8_MMA");
  unsetenv("QUILL_INT8_MMA_SMALL");
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulInt8Test,
    ::testing::Values(MShape{1, 17, 1, false}, MShape{1, 17, 1, true}, MShape{3, 17, 3, true}, MShape{64, 64, 17, false},
                      MShape{64, 64, 17, true}, MShape{300, 172, 64, false}, MShape{300, 172, 64, true},
                      MShape{64, 4096, 1, false}, MShape{64, 4096, 1, true}, MShape{3, 4096, 17, true},
                      MShape{300, 64, 3, true}, MShape{1, 172, 64, true}, MShape{300, 4096, 64, true},
                      MShape{64, 64, 130, true}),
    [](const auto& info) {
      const MShape& s = info.param;
      return std::to_string(s.rows) + "x" + std::to_string(s.cols) + "_t" + std::to_string(s.n_tok) +
             (s.llm ? "_llm" : "_int8");
    });

}  // namespace
}  // namespace quill
