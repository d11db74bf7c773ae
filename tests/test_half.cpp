// engine/half.hpp: the host's IEEE binary16 conversions, on every half value and on hand-made
// rounding cases (normal and subnormal ties to even, underflow, overflow).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "engine/half.hpp"

namespace quill {
namespace {

TEST(Half, EveryFiniteHalfRoundTripsBitExactly) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;  // inf / nan: below
    EXPECT_EQ(float_to_half(half_to_float(uint16_t(h))), h) << std::hex << h;
  }
  EXPECT_EQ(float_to_half(half_to_float(0x7c00u)), 0x7c00u);
  EXPECT_EQ(float_to_half(half_to_float(0xfc00u)), 0xfc00u);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

TEST(Half, SubnormalsRoundToNearestEven) {
  const float tiny = 0x1p-24f;  // the smallest subnormal half
  EXPECT_EQ(half_to_float(0x0001), tiny);
  EXPECT_EQ(half_to_float(0x0200), 0x1p-15f);
  EXPECT_EQ(float_to_half(tiny), 0x0001);
  EXPECT_EQ(float_to_half(0x1p-15f), 0x0200);
  EXPECT_EQ(float_to_half(0x1.ff8p-15f), 0x03ff);        // the largest subnormal, 1023 * 2^-24
  EXPECT_EQ(float_to_half(0x1.ffcp-15f), 0x0400);        // tie with 2^-14: to even, the smallest normal
  EXPECT_EQ(float_to_half(0.5f * tiny), 0x0000);         // tie: to even (0)
  EXPECT_EQ(float_to_half(0.75f * tiny), 0x0001);
  EXPECT_EQ(float_to_half(1.5f * tiny), 0x0002);         // tie: to even (2)
  EXPECT_EQ(float_to_half(2.5f * tiny), 0x0002);         // tie: to even (2)
  EXPECT_EQ(float_to_half(2.5000002f * tiny), 0x0003);   // just above the tie
  EXPECT_EQ(float_to_half(0.4999f * tiny), 0x0000);
  EXPECT_EQ(float_to_half(-1.5f * tiny), 0x8002);
  EXPECT_EQ(float_to_half(1.57e-5f), 0x0107);            // 263 * 2^-24 = 1.5676e-5
}

TEST(Half, NormalsRoundToNearestEvenAndOverflow) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(1.0f + 0x1p-11f), 0x3c00);     // tie: to even
  EXPECT_EQ(float_to_half(1.0f + 0x3p-11f), 0x3c02);     // tie: to even (up)
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);            // rounds past the largest half: inf
  EXPECT_EQ(float_to_half(-1e6f), 0xfc00);
}

}  // namespace
}  // namespace quill
