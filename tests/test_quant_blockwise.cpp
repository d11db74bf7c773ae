// bitsandbytes blockwise formats (NF4, FP4, DYN8) and double quantization: packing order, ties,
// zero blocks, padding of odd row lengths, and the round-trip error bound on random matrices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/error.hpp"
#include "engine/quant_tables.hpp"
#include "engine/quantize_blockwise.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

MatrixF32 random_matrix(std::mt19937_64& rng, int64_t rows, int64_t cols, float range = 1.0f) {
  return {rows, cols, test::random_floats(rng, size_t(rows * cols), -range, range)};
}

uint8_t code_at(const BlockwiseMatrix& q, int64_t r, int64_t c) {
  const uint8_t* row = q.codes.data() + r * q.code_bytes_per_row();
  return q.scheme == QuantScheme::Dyn8 ? row[c] : ((c & 1) ? row[c / 2] & 0xF : row[c / 2] >> 4);
}

// Largest distance from a value in [-1, 1] to its nearest table entry (half the widest gap; 1 - max
// entry for DYN8, whose lowest entry is -0.99296875).
double max_rounding_error(QuantScheme scheme) {
  switch (scheme) {
    case QuantScheme::NF4:
      return (1.0 - 0.6961928009986877) / 2;  // 0.1519, between codes 0 and 1
    case QuantScheme::FP4:
      return (1.0 - 2.0 / 3) / 2;  // 0.1667
    default:
      return 0.0140625 / 2;  // DYN8: spacing of the top decade
  }
}

TEST(QuantBlockwise, Nf4PacksHighNibbleFirst) {
  MatrixF32 w{1, 64, std::vector<float>(64)};
  for (int i = 0; i < 64; ++i) w.data[i] = nf4_table()[i % 16] * 2.0f;
  const BlockwiseMatrix q = quantize_blockwise(w, QuantScheme::NF4);
  ASSERT_EQ(q.codes.size(), 32u);
  ASSERT_EQ(q.absmax.size(), 1u);
  EXPECT_EQ(q.absmax[0], 2.0f);
  EXPECT_EQ(q.codes[0], 0x01);  // element 0 (code 0) in the high nibble, element 1 (code 1) low
  EXPECT_EQ(q.codes[1], 0x23);
  EXPECT_EQ(q.codes[7], 0xEF);
  EXPECT_EQ(q.codes[31], 0xEF);
  const MatrixF32 back = dequantize(q);
  EXPECT_EQ(back.data, w.data);
}

TEST(QuantBlockwise, Fp4CodesThroughTheQuantizer) {
  MatrixF32 w{1, 32, std::vector<float>(32)};
  for (int i = 0; i < 32; ++i) w.data[i] = fp4_table()[i % 16] * 3.0f;
  const BlockwiseMatrix q = quantize_blockwise(w, QuantScheme::FP4, {.block = 32});
  EXPECT_EQ(q.absmax[0], 3.0f);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(code_at(q, 0, i), i % 16 == 8 ? 0 : i % 16) << i;  // -0 -> code 0
  EXPECT_EQ(q.codes[0], 0x01);
  EXPECT_EQ(q.codes[5], 0xAB);
  EXPECT_EQ(dequantize(q).data, w.data);
}

TEST(QuantBlockwise, Nf4TieThroughTheQuantizer) {
  const auto& t = nf4_table();
  const float mid = float((double(t[10]) + double(t[11])) / 2.0);
  MatrixF32 w{1, 4, {1.0f, mid, std::nextafter(mid, 1.0f), -1.0f}};
  const BlockwiseMatrix q = quantize_blockwise(w, QuantScheme::NF4);
  EXPECT_EQ(code_at(q, 0, 1), 10);
  EXPECT_EQ(code_at(q, 0, 2), 11);
  EXPECT_EQ(code_at(q, 0, 3), 0);
}

TEST(QuantBlockwise, ZeroBlocksGiveZerosNotNaN) {
  for (QuantScheme s : {QuantScheme::NF4, QuantScheme::FP4, QuantScheme::Dyn8}) {
    MatrixF32 w{2, 128, std::vector<float>(256, 0.0f)};
    w.data[200] = 0.5f;  // second row, second block is non-zero
    const BlockwiseMatrix q = quantize_blockwise(w, s, {.block = 64});
    EXPECT_EQ(q.absmax[0], 0.0f);
    const uint8_t zero_code = s == QuantScheme::NF4 ? 7 : s == QuantScheme::FP4 ? 0 : 127;
    for (int c = 0; c < 128; ++c) EXPECT_EQ(code_at(q, 0, c), zero_code) << scheme_name(s);
    const MatrixF32 back = dequantize(q);
    for (size_t i = 0; i < back.data.size(); ++i) {
      ASSERT_FALSE(std::isnan(back.data[i]));
      EXPECT_EQ(back.data[i], i == 200 ? 0.5f : 0.0f) << scheme_name(s) << " " << i;
    }
  }
}

TEST(QuantBlockwise, PadsOddRowLengths) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  for (QuantScheme s : {QuantScheme::NF4, QuantScheme::FP4, QuantScheme::Dyn8}) {
    for (int64_t cols : {172, 17, 1}) {
      const MatrixF32 w = random_matrix(rng, 3, cols);
      const BlockwiseMatrix q = quantize_blockwise(w, s, {.block = 64});
      const int64_t padded = (cols + 63) / 64 * 64;
      EXPECT_EQ(q.padded_cols, padded);
      EXPECT_EQ(q.absmax.size(), size_t(3 * padded / 64));
      EXPECT_EQ(q.codes.size(), size_t(3 * (s == QuantScheme::Dyn8 ? padded : padded / 2)));
      const uint8_t zero_code = s == QuantScheme::NF4 ? 7 : s == QuantScheme::FP4 ? 0 : 127;
      for (int64_t r = 0; r < 3; ++r) {
        for (int64_t c = cols; c < padded; ++c) ASSERT_EQ(code_at(q, r, c), zero_code);
        // the tail block's absmax covers only real values
        float amax = 0.0f;
        for (int64_t c = (padded - 64); c < cols; ++c) amax = std::max(amax, std::fabs(w.row(r)[c]));
        EXPECT_EQ(q.absmax[size_t(r * padded / 64 + padded / 64 - 1)], amax);
      }
      const MatrixF32 back = dequantize(q);
      EXPECT_EQ(back.rows, 3);
      EXPECT_EQ(back.cols, cols);
      ASSERT_EQ(back.data.size(), size_t(3 * cols));
    }
  }
}

// The property: every code is the nearest table entry to x / absmax (ties lower), and the value
// is TABLE[code] * absmax, so |x - y| <= max_rounding_error * absmax of its block.
TEST(QuantBlockwise, RoundTripWithinBoundOnRandomMatrices) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {4, 100}, {7, 256}, {3, 1000}};
  for (QuantScheme s : {QuantScheme::NF4, QuantScheme::FP4, QuantScheme::Dyn8}) {
    for (int block : {32, 64, 256}) {
      for (const auto& [rows, cols] : shapes) {
        const MatrixF32 w = random_matrix(rng, rows, cols, 3.0f);
        const BlockwiseMatrix q = quantize_blockwise(w, s, {.block = block});
        const MatrixF32 back = dequantize(q);
        const auto table = blockwise_table(s);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) {
            const float amax = q.absmax[size_t(r * q.blocks_per_row() + c / block)];
            const float x = w.row(r)[c], y = back.row(r)[c];
            ASSERT_EQ(y, table[code_at(q, r, c)] * amax);
            ASSERT_LE(std::fabs(x - y), (max_rounding_error(s) + 1e-6) * amax + 1e-30)  // + fp32 table rounding
                << scheme_name(s) << " block " << block << " at " << r << "," << c;
          }
        }
      }
    }
  }
}

TEST(QuantBlockwise, DoubleQuantHandMadeAbsmax) {
  const std::vector<float> absmax = {1.0f, 2.0f, 3.0f, 4.0f};
  const DoubleQuantAbsmax dq = double_quantize_absmax(absmax);
  EXPECT_EQ(dq.offset, 2.5f);
  ASSERT_EQ(dq.absmax2.size(), 1u);
  EXPECT_EQ(dq.absmax2[0], 1.5f);
  EXPECT_EQ(dq.codes[0], 0);    // -1 -> nearest entry -0.99296875
  EXPECT_EQ(dq.codes[3], 255);  // +1
  const auto back = dequantize_absmax(dq);
  EXPECT_EQ(back[0], -0.99296875f * 1.5f + 2.5f);
  EXPECT_EQ(back[3], 4.0f);
}

TEST(QuantBlockwise, DoubleQuantGroupsOf256WithOwnTail) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const auto absmax = test::random_floats(rng, 300, 0.01f, 2.0f);
  const DoubleQuantAbsmax dq = double_quantize_absmax(absmax);
  ASSERT_EQ(dq.absmax2.size(), 2u);
  ASSERT_EQ(dq.codes.size(), 300u);
  float tail = 0.0f;
  for (int i = 256; i < 300; ++i) tail = std::max(tail, std::fabs(absmax[i] - dq.offset));
  EXPECT_EQ(dq.absmax2[1], tail);
  const auto back = dequantize_absmax(dq);
  for (int i = 0; i < 300; ++i) {
    EXPECT_LE(std::fabs(back[i] - absmax[i]), 0.0071 * dq.absmax2[i / 256] + 1e-6) << i;
  }
}

TEST(QuantBlockwise, DoubleQuantRoundTripAndBits) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const MatrixF32 w = random_matrix(rng, 64, 4096, 2.0f);
  for (QuantScheme s : {QuantScheme::NF4, QuantScheme::FP4}) {
    const BlockwiseMatrix plain = quantize_blockwise(w, s);
    const BlockwiseMatrix dq = quantize_blockwise(w, s, {.double_quant = true});
    EXPECT_TRUE(dq.absmax.empty());
    EXPECT_EQ(dq.codes, plain.codes);  // codes come from the exact absmax
    EXPECT_DOUBLE_EQ(bits_per_weight(plain), 4.5);
    EXPECT_NEAR(bits_per_weight(dq), 4.127, 0.001);
    const auto exact = plain.absmax;
    const auto approx = block_absmax(dq);
    const MatrixF32 a = dequantize(plain), b = dequantize(dq);
    float spread = 0.0f;
    for (float v : exact) spread = std::max(spread, std::fabs(v - dq.dq.offset));
    for (size_t i = 0; i < w.data.size(); ++i) {
      const float amax = exact[i / 64];
      const float absmax_err = 0.0071f * spread;
      ASSERT_LE(std::fabs(w.data[i] - b.data[i]), max_rounding_error(s) * amax + absmax_err + 1e-5f) << i;
      ASSERT_LE(std::fabs(a.data[i] - b.data[i]), absmax_err * 1.0001f + 1e-6f) << i;
    }
  }
}

TEST(QuantBlockwise, RejectsBadInput) {
  MatrixF32 w{1, 4, {1.0f, 2.0f, NAN, 0.0f}};
  try {
    quantize_blockwise(w, QuantScheme::NF4);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
  MatrixF32 ok{1, 4, {1.0f, 2.0f, 3.0f, 0.0f}};
  EXPECT_THROW(quantize_blockwise(ok, QuantScheme::Int4), Error);
  EXPECT_THROW(quantize_blockwise(ok, QuantScheme::NF4, {.block = 48}), Error);
  MatrixF32 wrong_size{2, 4, {1.0f}};
  EXPECT_THROW(quantize_blockwise(wrong_size, QuantScheme::FP4), Error);
}

}  // namespace
}  // namespace quill
