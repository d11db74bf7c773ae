// Vector-wise int8 / LLM.int8(): weight rounding (half to even, never -128), zero rows, activation
// outlier split (>= exactly at the threshold), rows that are all outliers, and the reference
// mixed-precision matmul against an fp64 matmul within the quantization bound.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/quantize_int8.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

TEST(QuantInt8, WeightsRoundHalfToEven) {
  // SCB = 127, so CB = round_half_even(W) exactly.
  MatrixF32 w{1, 8, {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f}};
  const Int8Matrix q = quantize_llm_int8(w);
  EXPECT_EQ(q.scb[0], 127.0f);
  const int8_t expected[] = {127, 0, 2, 2, 0, -2, -2, 4};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(q.cb[j], expected[j]) << j;
}

TEST(QuantInt8, ZeroRowAndSymmetricRange) {
  MatrixF32 w{2, 3, {0.0f, 0.0f, 0.0f, -5.0f, 5.0f, 2.5f}};
  const Int8Matrix q = quantize_llm_int8(w);
  EXPECT_EQ(q.scb[0], 0.0f);
  for (int j = 0; j < 3; ++j) EXPECT_EQ(q.cb[j], 0);
  EXPECT_EQ(q.cb[3], -127);  // never -128
  EXPECT_EQ(q.cb[4], 127);
  EXPECT_EQ(q.cb[5], 64);  // 63.5 -> 64 (even)
  const MatrixF32 back = dequantize(q);
  for (float v : back.data) ASSERT_FALSE(std::isnan(v));
  EXPECT_EQ(back.data[0], 0.0f);
  EXPECT_EQ(back.data[3], -5.0f);
}

TEST(QuantInt8, KeepsFp16OutlierColumnsAndWholeRowScale) {
  MatrixF32 w{2, 4, {0.3f, 1.0f, 100.0f, -2.0f, 8.0f, 0.1f, 0.2f, 0.3f}};
  const int32_t dims[] = {2, 0, 2};
  const Int8Matrix q = quantize_llm_int8(w, dims);
  EXPECT_EQ(q.outlier_dims, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(q.scb[0], 100.0f);  // the outlier column counts in SCB (weights quantized whole)
  ASSERT_EQ(q.w16.size(), 4u);
  EXPECT_EQ(q.w16[0], float_to_half(0.3f));
  EXPECT_EQ(q.w16[1], float_to_half(100.0f));
  EXPECT_EQ(q.w16[2], float_to_half(8.0f));
  const MatrixF32 back = dequantize(q);
  EXPECT_EQ(back.data[0], half_to_float(float_to_half(0.3f)));  // kept column, not CB * SCB / 127
  EXPECT_EQ(back.data[1], float(q.cb[1]) * 100.0f / 127.0f);
  EXPECT_THROW(quantize_llm_int8(w, std::vector<int32_t>{4}), Error);
  EXPECT_THROW(quantize_llm_int8(w, std::vector<int32_t>{-1}), Error);
}

TEST(QuantInt8, ActivationOutliersUseGreaterOrEqual) {
  MatrixF32 a{2,
              4,
              {1.0f, 6.0f, 2.0f, 5.9999995f,  //
               0.5f, -5.0f, -3.0f, 1.0f}};
  const Int8Activations x = quantize_activations_int8(a, 6.0f);
  EXPECT_EQ(x.outliers, (std::vector<int32_t>{1}));  // exactly 6.0 is an outlier, 5.9999995 is not
  EXPECT_EQ(x.sca[0], 5.9999995f);                   // outlier column excluded from the absmax
  EXPECT_EQ(x.sca[1], 3.0f);
  EXPECT_EQ(x.ca[1], 0);
  EXPECT_EQ(x.ca[5], 0);  // the whole outlier column is zeroed, also in rows where it is small
  EXPECT_EQ(x.ca[6], -127);
  EXPECT_EQ(x.ca[7], 42);  // 127 / 3 = 42.33
  const Int8Activations negative = quantize_activations_int8(MatrixF32{1, 2, {-6.0f, 1.0f}}, 6.0f);
  EXPECT_EQ(negative.outliers, (std::vector<int32_t>{0}));
  const Int8Activations off = quantize_activations_int8(a, 0.0f);
  EXPECT_TRUE(off.outliers.empty());
  EXPECT_EQ(off.sca[0], 6.0f);
}

TEST(QuantInt8, AllOutlierRowGivesZerosNotNaN) {
  MatrixF32 a{2,
              2,
              {7.0f, -8.0f,  //
               0.0f, 0.0f}};
  const Int8Activations x = quantize_activations_int8(a, 6.0f);
  EXPECT_EQ(x.outliers, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(x.sca[0], 0.0f);
  EXPECT_EQ(x.sca[1], 0.0f);
  for (int8_t v : x.ca) EXPECT_EQ(v, 0);
  MatrixF32 w{1, 2, {0.5f, 0.25f}};
  const Int8Matrix q = quantize_llm_int8(w, std::vector<int32_t>{0, 1});
  const MatrixF32 out = matmul_llm_int8_reference(a, q, 6.0f);
  EXPECT_EQ(out.data[0], 7.0f * 0.5f - 8.0f * 0.25f);
  EXPECT_EQ(out.data[1], 0.0f);
}

TEST(QuantInt8, MatmulHandExample) {
  // A = [10, 1, -1], t = 6 -> O = {0}; non-outlier absmax 1 -> CA = [0, 127, -127].
  // W row 0 = [2, -1, 0.5]: SCB 2, CB = [127, -63.5 -> -64, 31.75 -> 32]
  // W row 1 = [0.3, 1, 1]:  SCB 1, CB = [38, 127, 127]
  MatrixF32 a{1, 3, {10.0f, 1.0f, -1.0f}};
  MatrixF32 w{2, 3, {2.0f, -1.0f, 0.5f, 0.3f, 1.0f, 1.0f}};
  const Int8Matrix kept = quantize_llm_int8(w, std::vector<int32_t>{0});
  const Int8Matrix fallback = quantize_llm_int8(w);
  EXPECT_EQ(kept.cb, (std::vector<int8_t>{127, -64, 32, 38, 127, 127}));
  const float c0 = float(127 * -64 + -127 * 32), c1 = float(127 * 127 - 127 * 127);
  const std::vector<float> bias = {0.5f, -0.5f};
  const MatrixF32 out = matmul_llm_int8_reference(a, kept, 6.0f, bias);
  EXPECT_EQ(out.data[0], c0 * 1.0f * 2.0f / 16129.0f + 0.5f + 10.0f * 2.0f);
  EXPECT_EQ(out.data[1], c1 * 1.0f * 1.0f / 16129.0f - 0.5f + 10.0f * half_to_float(float_to_half(0.3f)));
  const MatrixF32 fb = matmul_llm_int8_reference(a, fallback, 6.0f, bias);
  EXPECT_EQ(fb.data[1], c1 / 16129.0f - 0.5f + 10.0f * (38.0f * 1.0f / 127.0f));  // int8 fallback column
  EXPECT_NE(fb.data[1], out.data[1]);
  EXPECT_THROW(matmul_llm_int8_reference(MatrixF32{1, 2, {1.0f, 2.0f}}, kept, 6.0f), Error);
  EXPECT_THROW(matmul_llm_int8_reference(a, kept, 6.0f, std::vector<float>{1.0f}), Error);
}

// The property: each product's error is at most |a| * half a step of W plus |w~| * half a step of
// A (zero for outlier columns with a kept fp16 column, up to fp16 rounding).
TEST(QuantInt8, MatmulWithinBoundOfFp64) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 17}, {5, 64}, {4, 300}};
  for (const auto& [tokens, in] : shapes) {
    const int64_t out_dim = 7;
    MatrixF32 a{tokens, in, test::random_floats(rng, size_t(tokens * in), -2.0f, 2.0f)};
    const int32_t planted = int32_t(in / 2);
    for (int64_t i = 0; i < tokens; ++i) a.row(i)[planted] = (i % 2 ? -1 : 1) * 20.0f;  // a systematic outlier dim
    MatrixF32 w{out_dim, in, test::random_floats(rng, size_t(out_dim * in), -1.0f, 1.0f)};
    for (bool keep : {false, true}) {
      const Int8Matrix q = keep ? quantize_llm_int8(w, std::vector<int32_t>{planted}) : quantize_llm_int8(w);
      const MatrixF32 y = matmul_llm_int8_reference(a, q, 6.0f);
      const Int8Activations x = quantize_activations_int8(a, 6.0f);
      ASSERT_EQ(x.outliers, (std::vector<int32_t>{planted}));
      for (int64_t i = 0; i < tokens; ++i) {
        for (int64_t k = 0; k < out_dim; ++k) {
          double exact = 0.0, bound = 1e-5;
          const double step_w = q.scb[k] / 127.0 / 2, step_a = x.sca[i] / 127.0 / 2;
          for (int64_t j = 0; j < in; ++j) {
            const double av = a.row(i)[j], wv = w.row(k)[j];
            exact += av * wv;
            if (j == planted) {
              bound += std::fabs(av) * (keep ? std::fabs(wv) * 0x1p-11 : step_w);
            } else {
              bound += std::fabs(av) * step_w + (std::fabs(wv) + step_w) * step_a;
            }
          }
          ASSERT_NEAR(y.row(i)[k], exact, bound) << tokens << "x" << in << " keep " << keep << " at " << i << "," << k;
        }
      }
    }
  }
}

TEST(QuantInt8, Bits) {
  MatrixF32 w{8, 64, std::vector<float>(512, 1.0f)};
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize_llm_int8(w)), 8.0 + 32.0 / 64);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize_llm_int8(w, std::vector<int32_t>{1})),
                   8.0 + 32.0 / 64 + 16.0 / 64 + 32.0 / 512);
}

}  // namespace
}  // namespace quill
