// The scheme dispatcher: every scheme quantizes and dequantizes fresh random matrices of several
// shapes (odd lengths included) back to their shape, within a bound that scales with the format's
// step, and reports its bits per weight.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/error.hpp"
#include "engine/quantize_matrix.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

// Largest |x - y| allowed for a weight x of a row with absmax row_amax and block absmax block_amax.
double bound(QuantScheme s, double x, double block_amax, double row_amax, double row_range) {
  switch (s) {
    case QuantScheme::F32:
      return 0.0;
    case QuantScheme::F16:
      return std::max(std::fabs(x) * 0x1p-11, 0x1p-25);  // half an ulp; subnormal halves: 2^-24 apart
    case QuantScheme::Q8_0:
      return block_amax / 127 * (0.5 + 127 * 0x1p-11);
    case QuantScheme::Int4:
      return block_amax / 8 * (1.0 + 8 * 0x1p-11);
    case QuantScheme::Int8:
    case QuantScheme::LlmInt8:
      // Half a step, plus fp32 rounding: x * 127 / scale and code * scale / 127 are each rounded in fp32
      // (relative 2^-24 per operation), at most 127 * 2^-22 of a step in all.
      return row_amax / 127 * (0.5 + 127 * 0x1p-22);
    case QuantScheme::Dyn8:
      // Half the widest gap of the map, plus fp32 rounding of code value * absmax (the 1e-5 slack the
      // other maps use is only ~2^-24 of absmax here).
      return block_amax * (0.0140625 / 2 + 0x1p-22);
    case QuantScheme::NF4:
      return block_amax * (1.0 - 0.6961928009986877) / 2 * (1 + 1e-5);
    case QuantScheme::FP4:
      return block_amax * (1.0 - 2.0 / 3) / 2 * (1 + 1e-5);
    case QuantScheme::KMeans4:
      return row_range / 2 + 1e-3 * row_amax;  // per-row codebook within the row's range
  }
  return 0.0;
}

TEST(QuantMatrix, EverySchemeRoundTripsWithinItsBound) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 17}, {5, 172}, {8, 256}, {2, 1000}};
  const QuantScheme schemes[] = {QuantScheme::F32,     QuantScheme::F16,    QuantScheme::Q8_0, QuantScheme::Int8,
                                 QuantScheme::LlmInt8, QuantScheme::Dyn8,   QuantScheme::NF4,  QuantScheme::FP4,
                                 QuantScheme::Int4,    QuantScheme::KMeans4};
  for (QuantScheme s : schemes) {
    for (const auto& [rows, cols] : shapes) {
      MatrixF32 w{rows, cols, test::random_floats(rng, size_t(rows * cols), -4.0f, 4.0f)};
      const QuantParams params{.kmeans_per_row = true};
      const int block = std::max(resolved_block(s, params), 1);
      const QuantizedMatrix q = quantize(w, s, params, std::vector<int32_t>{0});
      const MatrixF32 back = dequantize(q);
      ASSERT_EQ(back.rows, rows);
      ASSERT_EQ(back.cols, cols);
      ASSERT_EQ(back.data.size(), w.data.size());
      for (int64_t r = 0; r < rows; ++r) {
        const float* x = w.row(r);
        const auto [lo, hi] = std::minmax_element(x, x + cols);
        const double row_amax = std::max(std::fabs(*lo), std::fabs(*hi));
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t b0 = c / block * block, b1 = std::min(cols, b0 + block);
          double block_amax = 0.0;
          for (int64_t j = b0; j < b1; ++j) block_amax = std::max(block_amax, double(std::fabs(x[j])));
          double allowed = bound(s, x[c], block_amax, row_amax, double(*hi) - double(*lo));
          if (s == QuantScheme::LlmInt8 && c == 0) allowed = std::fabs(x[c]) * 0x1p-11;  // kept fp16 column
          ASSERT_LE(std::fabs(double(x[c]) - back.row(r)[c]), allowed)
              << scheme_name(s) << " " << rows << "x" << cols << " at " << r << "," << c;
        }
      }
    }
  }
}

TEST(QuantMatrix, BitsPerWeight) {
  MatrixF32 w{64, 4096, std::vector<float>(64 * 4096, 0.5f)};
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize(w, QuantScheme::F32)), 32.0);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize(w, QuantScheme::F16)), 16.0);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize(w, QuantScheme::Int4)), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize(w, QuantScheme::Q8_0)), 8.5);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize(w, QuantScheme::NF4)), 4.5);
  EXPECT_NEAR(bits_per_weight(quantize(w, QuantScheme::NF4, {.double_quant = true})), 4.127, 0.001);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize(w, QuantScheme::Dyn8)), 8.125);
  EXPECT_NEAR(bits_per_weight(quantize(w, QuantScheme::KMeans4)), 4.0625, 1e-9);  // per-row default
  EXPECT_TRUE(std::holds_alternative<GgmlBlockMatrix>(quantize(w, parse_quant_scheme("q4_0"))));
  EXPECT_TRUE(std::holds_alternative<BlockwiseMatrix>(quantize(w, QuantScheme::FP4)));
}

TEST(QuantMatrix, RejectsBadParams) {
  MatrixF32 w{1, 32, std::vector<float>(32, 1.0f)};
  EXPECT_THROW(quantize(w, QuantScheme::Int4, {.double_quant = true}), Error);
  EXPECT_THROW(quantize(w, QuantScheme::NF4, {.block = 100}), Error);
  EXPECT_THROW(quantize(w, QuantScheme::Int8, {.block = 64}), Error);
  w.data[3] = INFINITY;
  for (QuantScheme s : {QuantScheme::F32, QuantScheme::F16, QuantScheme::Q8_0, QuantScheme::Int8, QuantScheme::NF4,
                        QuantScheme::KMeans4}) {
    EXPECT_THROW(quantize(w, s), Error) << scheme_name(s);
  }
}

}  // namespace
}  // namespace quill
