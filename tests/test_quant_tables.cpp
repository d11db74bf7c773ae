// The fixed code tables (NF4, bitsandbytes FP4, the dynamic 8-bit maps) and nearest-entry rounding
// with its tie rule.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/quant_tables.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

TEST(QuantTables, Nf4ValuesFromTheSpec) {
  const float expected[16] = {-1.0f,
                              -0.6961928009986877f,
                              -0.5250730514526367f,
                              -0.39491748809814453f,
                              -0.28444138169288635f,
                              -0.18477343022823334f,
                              -0.09105003625154495f,
                              0.0f,
                              0.07958029955625534f,
                              0.16093020141124725f,
                              0.24611230194568634f,
                              0.33791524171829224f,
                              0.44070982933044434f,
                              0.5626170039176941f,
                              0.7229568362236023f,
                              1.0f};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(nf4_table()[i], expected[i]) << i;
  for (int i = 0; i < 16; ++i) EXPECT_EQ(nf4_codebook().nearest_code(expected[i]), i) << i;
}

TEST(QuantTables, Nf4MidpointTieGoesToLowerCode) {
  const auto& t = nf4_table();
  for (int i = 0; i + 1 < 16; ++i) {
    const float mid = float((double(t[i]) + double(t[i + 1])) / 2.0);
    EXPECT_EQ(nf4_codebook().nearest_code(mid), i) << i;
    EXPECT_EQ(nf4_codebook().nearest_code(std::nextafter(mid, 2.0f)), i + 1) << i;
  }
  EXPECT_EQ(nf4_codebook().nearest_code(0.03979014977812767f), 7);  // bitsandbytes' pivot between 0 and code 8
  EXPECT_EQ(nf4_codebook().nearest_code(-5.0f), 0);
  EXPECT_EQ(nf4_codebook().nearest_code(5.0f), 15);
}

TEST(QuantTables, Fp4PermutedTable) {
  const float magnitude[8] = {0.0f, 1.0f / 192, 2.0f / 3, 1.0f, 1.0f / 3, 0.5f, 1.0f / 6, 0.25f};
  for (int code = 0; code < 8; ++code) {
    EXPECT_EQ(fp4_table()[code], magnitude[code]) << code;
    EXPECT_EQ(fp4_table()[code | 8], -magnitude[code]) << code;
  }
  EXPECT_TRUE(std::signbit(fp4_table()[8]));  // code 8 is -0
  for (int code = 0; code < 16; ++code) {
    if (code == 8) continue;
    EXPECT_EQ(fp4_code(fp4_table()[code]), code) << code;
  }
  EXPECT_EQ(fp4_code(0.0f), 0);
  EXPECT_EQ(fp4_code(-0.0f), 0);  // sign only when x < 0
  EXPECT_EQ(fp4_code(-1e-9f), 8);
  EXPECT_EQ(fp4_code(0.3f), 0b100);  // nearest 1/3
  EXPECT_EQ(fp4_code(-0.3f), 0b1100);
  EXPECT_EQ(fp4_code(0.004f), 0b001);  // nearest 1/192, not 0
  // A tie goes to the smaller magnitude for either sign (bitsandbytes compares |x| > pivot).
  const float mid = float((double(fp4_table()[0b111]) + double(fp4_table()[0b100])) / 2);
  EXPECT_EQ(fp4_code(mid), 0b111);
  EXPECT_EQ(fp4_code(-mid), 0b1111);
  EXPECT_EQ(fp4_code(std::nextafter(mid, 1.0f)), 0b100);
}

TEST(QuantTables, SignedDynamicMap) {
  const auto& t = dyn8_signed_table();
  EXPECT_EQ(t.size(), 256u);
  EXPECT_EQ(t[0], -0.99296875f);
  EXPECT_EQ(t[127], 0.0f);
  EXPECT_EQ(t[255], 1.0f);
  EXPECT_EQ(t[254], 0.99296875f);
  EXPECT_NEAR(t[128], 5.5e-7f, 1e-13f);  // smallest positive
  EXPECT_NEAR(t[126], -5.5e-7f, 1e-13f);
  for (int i = 0; i + 1 < 256; ++i) EXPECT_LT(t[i], t[i + 1]) << i;
  for (int i = 0; i < 127; ++i) EXPECT_EQ(t[i], -t[254 - i]) << i;  // symmetric apart from +1.0
  // Every value within float rounding of the ideal 10^(i-6) * (0.1 + 0.9 (2k+1) / 2^(i+1)).
  int idx = 128;
  for (int i = 0; i < 7; ++i) {
    for (int k = 0; k < (1 << i); ++k, ++idx) {
      const double ideal = std::pow(10.0, i - 6) * (0.1 + 0.9 * (2 * k + 1) / double(1 << (i + 1)));
      EXPECT_NEAR(t[idx], ideal, ideal * 1e-6) << i << " " << k;
    }
  }
}

TEST(QuantTables, UnsignedDynamicMap) {
  const auto& t = dyn8_unsigned_table();
  EXPECT_EQ(t[0], 0.0f);
  EXPECT_EQ(t[255], 1.0f);
  EXPECT_NEAR(t[1], 3.25e-7f, 1e-13f);  // 1e-6 * (0.1 + 0.55) / 2
  for (int i = 0; i + 1 < 256; ++i) EXPECT_LT(t[i], t[i + 1]) << i;
}

TEST(QuantTables, DynamicMapRoundsToTheNearestEntry) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const auto& t = dyn8_signed_table();
  const auto& book = dyn8_signed_codebook();
  const auto x = test::random_floats(rng, 20000, -1.0f, 1.0f);
  for (float v : x) {
    const float s = v * std::pow(10.0f, -float(rng() % 7));  // cover every decade
    const int q = book.nearest_code(s);
    for (int j = 0; j < 256; ++j) ASSERT_LE(std::fabs(double(s) - t[q]), std::fabs(double(s) - t[j]) * (1 + 1e-7)) << s;
  }
  // Ties between two entries go to the lower one.
  const float mid = float((double(t[200]) + double(t[201])) / 2.0);
  EXPECT_EQ(book.nearest_code(mid), 200);
  EXPECT_EQ(book.nearest_code(std::nextafter(mid, 2.0f)), 201);
}

}  // namespace
}  // namespace quill
