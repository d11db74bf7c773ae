// GGUF Q4_0 ("int4") and Q8_0 quantizers: ggml's rounding (signed max on code 0, truncation,
// half-away ties), both nibble orders (GGUF split halves, SoA high-first), padding, and the
// GGUF <-> SoA round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/quantize_ggml.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

uint8_t int4_code(const GgmlBlockMatrix& q, int64_t r, int64_t c) {
  const uint8_t b = q.codes[size_t(r * q.code_bytes_per_row() + c / 2)];
  return (c & 1) ? b & 0xF : b >> 4;
}

TEST(QuantGgml, Q4_0SignedMaxLandsOnCodeZeroAndTruncates) {
  MatrixF32 w{1, 32, std::vector<float>(32, 0.0f)};
  w.data[5] = -4.0f;   // signed max: d = -4 / -8 = 0.5, 1/d = 2
  w.data[6] = 1.2f;    // 2.4 + 8.5 = 10.9 -> 10 (truncated, not rounded to 11)
  w.data[7] = 4.0f;    // 8 + 8.5 = 16.5 -> 16 -> clamped to 15
  w.data[20] = -1.3f;  // -2.6 + 8.5 = 5.9 -> 5
  w.data[21] = 0.25f;  // 0.5 + 8.5 = 9.0 -> 9
  const GgmlBlockMatrix q = quantize_ggml_blocks(w, QuantScheme::Int4);
  EXPECT_EQ(half_to_float(q.d[0]), 0.5f);
  EXPECT_EQ(int4_code(q, 0, 5), 0);
  EXPECT_EQ(int4_code(q, 0, 6), 10);
  EXPECT_EQ(int4_code(q, 0, 7), 15);
  EXPECT_EQ(int4_code(q, 0, 20), 5);
  EXPECT_EQ(int4_code(q, 0, 21), 9);
  EXPECT_EQ(int4_code(q, 0, 0), 8);  // zero
  const MatrixF32 back = dequantize(q);
  EXPECT_EQ(back.data[5], -4.0f);
  EXPECT_EQ(back.data[6], 1.0f);
  EXPECT_EQ(back.data[7], 3.5f);
  EXPECT_EQ(back.data[20], -1.5f);
  EXPECT_EQ(back.data[0], 0.0f);
}

TEST(QuantGgml, Q4_0PositiveMaxAndFirstOfEqualMagnitudes) {
  MatrixF32 w{1, 32, std::vector<float>(32, 0.1f)};
  w.data[3] = 2.0f;   // first of the two largest magnitudes: d = 2 / -8 = -0.25
  w.data[7] = -2.0f;  // -2 * -4 + 8.5 = 16.5 -> 15 -> value (15 - 8) * -0.25 = -1.75
  const GgmlBlockMatrix q = quantize_ggml_blocks(w, QuantScheme::Int4);
  EXPECT_EQ(half_to_float(q.d[0]), -0.25f);
  EXPECT_EQ(int4_code(q, 0, 3), 0);
  EXPECT_EQ(int4_code(q, 0, 7), 15);
  const MatrixF32 back = dequantize(q);
  EXPECT_EQ(back.data[3], 2.0f);
  EXPECT_EQ(back.data[7], -1.75f);
}

TEST(QuantGgml, Q4_0NibbleOrders) {
  MatrixF32 w{1, 32, std::vector<float>(32)};
  // d = -8 / -8 = 1: element j gets code round-half-up(x) + 8 -> choose codes directly.
  for (int j = 0; j < 32; ++j) w.data[j] = j == 0 ? -8.0f : float((j % 16) - 8);
  const GgmlBlockMatrix q = quantize_ggml_blocks(w, QuantScheme::Int4);
  for (int j = 0; j < 32; ++j) ASSERT_EQ(int4_code(q, 0, j), j % 16) << j;
  // SoA: element 2i in the high nibble.
  EXPECT_EQ(q.codes[0], 0x01);
  EXPECT_EQ(q.codes[7], 0xEF);
  // GGUF: element j in the low nibble of qs[j], element j+16 in the high one.
  const auto bytes = to_gguf_blocks(q);
  ASSERT_EQ(bytes.size(), 18u);
  EXPECT_EQ(bytes[0], 0x00);  // d = 1.0 = 0x3C00 little-endian
  EXPECT_EQ(bytes[1], 0x3C);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(bytes[2 + j], uint8_t(j | (j << 4))) << j;
  std::vector<uint8_t> row(18);
  quantize_ggml_row(GgmlType::Q4_0, w.data.data(), row.data(), 32);
  EXPECT_EQ(row, bytes);
}

TEST(QuantGgml, Q8_0HalfAwayFromZero) {
  MatrixF32 w{1, 32, std::vector<float>(32, 0.0f)};
  const float x[] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, 3.49f, -127.0f};
  std::copy(std::begin(x), std::end(x), w.data.begin());
  const GgmlBlockMatrix q = quantize_ggml_blocks(w, QuantScheme::Q8_0);  // d = 127 / 127 = 1
  EXPECT_EQ(half_to_float(q.d[0]), 1.0f);
  const int8_t expected[] = {127, 3, -3, 1, -1, 2, 3, -127};  // half-even would give 2, -2, 0, 0, 2
  for (int j = 0; j < 8; ++j) EXPECT_EQ(int8_t(q.codes[j]), expected[j]) << j;
  const auto bytes = to_gguf_blocks(q);
  ASSERT_EQ(bytes.size(), 34u);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(bytes[2 + j], q.codes[j]);
}

TEST(QuantGgml, ZeroBlocksAndPadding) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  for (QuantScheme s : {QuantScheme::Int4, QuantScheme::Q8_0}) {
    for (int64_t cols : {172, 17, 1}) {
      MatrixF32 w{2, cols, test::random_floats(rng, size_t(2 * cols))};
      std::fill(w.data.begin(), w.data.begin() + cols, 0.0f);  // row 0 all zeros
      const GgmlBlockMatrix q = quantize_ggml_blocks(w, s);
      const int64_t padded = (cols + 31) / 32 * 32;
      EXPECT_EQ(q.padded_cols, padded);
      EXPECT_EQ(q.d.size(), size_t(2 * padded / 32));
      EXPECT_EQ(q.codes.size(), size_t(2 * (s == QuantScheme::Int4 ? padded / 2 : padded)));
      EXPECT_EQ(half_to_float(q.d[0]), 0.0f);  // Q4_0 stores -0 (0 / -8), as ggml does
      for (int64_t r = 0; r < 2; ++r) {
        for (int64_t c = (r == 0 ? 0 : cols); c < padded; ++c) {
          if (s == QuantScheme::Int4) {
            ASSERT_EQ(int4_code(q, r, c), 8) << r << "," << c;
          } else {
            ASSERT_EQ(q.codes[size_t(r * padded + c)], 0) << r << "," << c;
          }
        }
      }
      const MatrixF32 back = dequantize(q);
      ASSERT_EQ(back.data.size(), size_t(2 * cols));
      for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(back.data[size_t(c)], 0.0f);
      for (float v : back.data) ASSERT_FALSE(std::isnan(v));
    }
  }
}

TEST(QuantGgml, GgufAndSoaRoundTrip) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  for (QuantScheme s : {QuantScheme::Int4, QuantScheme::Q8_0}) {
    const GgmlType type = ggml_type_of(s);
    MatrixF32 w{3, 96, test::random_floats(rng, 3 * 96, -2.0f, 2.0f)};
    const GgmlBlockMatrix q = quantize_ggml_blocks(w, s);
    const auto bytes = to_gguf_blocks(q);
    ASSERT_EQ(int64_t(bytes.size()), 3 * ggml_row_bytes(type, 96));
    for (int64_t r = 0; r < 3; ++r) {
      std::vector<uint8_t> row(size_t(ggml_row_bytes(type, 96)));
      quantize_ggml_row(type, w.row(r), row.data(), 96);
      EXPECT_TRUE(std::equal(row.begin(), row.end(), bytes.begin() + r * ggml_row_bytes(type, 96)));
    }
    const GgmlBlockMatrix back = from_gguf_blocks(type, bytes, 3, 96);
    EXPECT_EQ(back.d, q.d);
    EXPECT_EQ(back.codes, q.codes);
    EXPECT_EQ(back.scheme, s);
    EXPECT_THROW(from_gguf_blocks(type, std::span(bytes).subspan(1), 3, 96), Error);
    EXPECT_THROW(from_gguf_blocks(type, bytes, 3, 95), Error);
  }
  EXPECT_THROW(ggml_type_of(QuantScheme::NF4), Error);
}

// The property: Q4_0 rounds x/d to the nearest step (truncation of +8.5 is round-half-up), off by
// at most |d| at the clamp, plus the fp16 rounding of d over at most 8 steps; Q8_0 is off by half a
// step plus 127 steps of fp16 rounding of d.
TEST(QuantGgml, RoundTripWithinBoundOnRandomMatrices) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {5, 33}, {4, 256}, {2, 1000}};
  for (QuantScheme s : {QuantScheme::Int4, QuantScheme::Q8_0}) {
    for (const auto& [rows, cols] : shapes) {
      MatrixF32 w{rows, cols, test::random_floats(rng, size_t(rows * cols), -5.0f, 5.0f)};
      const MatrixF32 back = dequantize(quantize_ggml_blocks(w, s));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t b = 0; b < cols; b += 32) {
          float amax = 0.0f;
          for (int64_t c = b; c < std::min(cols, b + 32); ++c) amax = std::max(amax, std::fabs(w.row(r)[c]));
          const double d = s == QuantScheme::Int4 ? amax / 8.0 : amax / 127.0;
          const double bound = s == QuantScheme::Int4 ? d * (1.0 + 8 * 0x1p-11) : d * (0.5 + 127 * 0x1p-11);
          for (int64_t c = b; c < std::min(cols, b + 32); ++c) {
            ASSERT_LE(std::fabs(w.row(r)[c] - back.row(r)[c]), bound * (1 + 1e-6))
                << scheme_name(s) << " " << r << "," << c;
          }
        }
      }
    }
  }
}

TEST(QuantGgml, Bits) {
  MatrixF32 w{4, 256, std::vector<float>(1024, 1.0f)};
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize_ggml_blocks(w, QuantScheme::Int4)), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize_ggml_blocks(w, QuantScheme::Q8_0)), 8.5);
}

}  // namespace
}  // namespace quill
