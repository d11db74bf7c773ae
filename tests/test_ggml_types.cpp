// GGUF type ids and block geometry, and dequantize_ggml_row against hand-made blocks with known
// answers for every layout (Q4_0 split halves, Q4_K split 32s with packed 6-bit scales, Q6_K).
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "engine/error.hpp"
#include "engine/ggml_types.hpp"
#include "engine/half.hpp"

namespace quill {
namespace {

void put_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v & 0xFF);
  p[1] = uint8_t(v >> 8);
}

TEST(GgmlTypes, IdsNamesAndGeometry) {
  EXPECT_EQ(ggml_type_from_id(0), GgmlType::F32);
  EXPECT_EQ(ggml_type_from_id(1), GgmlType::F16);
  EXPECT_EQ(ggml_type_from_id(2), GgmlType::Q4_0);
  EXPECT_EQ(ggml_type_from_id(3), GgmlType::Q4_1);
  EXPECT_EQ(ggml_type_from_id(8), GgmlType::Q8_0);
  EXPECT_EQ(ggml_type_from_id(12), GgmlType::Q4_K);
  EXPECT_EQ(ggml_type_from_id(14), GgmlType::Q6_K);
  EXPECT_EQ(ggml_type_from_id(30), GgmlType::BF16);
  for (uint32_t unsupported : {4u, 5u, 6u, 7u, 9u, 10u, 11u, 13u, 15u, 16u, 29u, 31u, 1000u}) {
    EXPECT_FALSE(ggml_type_from_id(unsupported).has_value()) << unsupported;
  }
  EXPECT_EQ(ggml_type_name(GgmlType::Q4_K), "Q4_K");
  EXPECT_EQ(ggml_type_name(GgmlType::BF16), "BF16");
  const std::array<std::tuple<GgmlType, int64_t, int64_t>, 8> geometry = {{{GgmlType::F32, 1, 4},
                                                                           {GgmlType::F16, 1, 2},
                                                                           {GgmlType::BF16, 1, 2},
                                                                           {GgmlType::Q4_0, 32, 18},
                                                                           {GgmlType::Q4_1, 32, 20},
                                                                           {GgmlType::Q8_0, 32, 34},
                                                                           {GgmlType::Q4_K, 256, 144},
                                                                           {GgmlType::Q6_K, 256, 210}}};
  for (const auto& [type, elements, bytes] : geometry) {
    EXPECT_EQ(ggml_block_elements(type), elements) << ggml_type_name(type);
    EXPECT_EQ(ggml_block_bytes(type), bytes) << ggml_type_name(type);
  }
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_K, 512), 288);
}

TEST(GgmlTypes, FloatRows) {
  const float f32[3] = {1.5f, -2.0f, 3.25f};
  float out[3];
  dequantize_ggml_row(GgmlType::F32, f32, out, 3);
  EXPECT_EQ(out[2], 3.25f);

  uint8_t f16[6];
  put_u16(f16, 0x3C00);      // 1.0
  put_u16(f16 + 2, 0xC100);  // -2.5
  put_u16(f16 + 4, 0x0001);  // smallest subnormal 2^-24
  dequantize_ggml_row(GgmlType::F16, f16, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.5f);
  EXPECT_EQ(out[2], 5.9604644775390625e-08f);

  uint8_t bf16[6];
  put_u16(bf16, 0x3F80);      // 1.0
  put_u16(bf16 + 2, 0xC000);  // -2.0
  put_u16(bf16 + 4, 0x4049);  // 3.140625
  dequantize_ggml_row(GgmlType::BF16, bf16, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 3.140625f);
}

TEST(GgmlTypes, Q4_0SplitHalves) {
  uint8_t block[18];
  put_u16(block, 0x3800);                                                    // d = 0.5
  for (int j = 0; j < 16; ++j) block[2 + j] = uint8_t(j | ((15 - j) << 4));  // low nibble j, high 15-j
  float y[32];
  dequantize_ggml_row(GgmlType::Q4_0, block, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;            // element j: low nibble of qs[j]
    EXPECT_EQ(y[j + 16], (15 - j - 8) * 0.5f) << j;  // element j+16: high nibble of qs[j]
  }
}

TEST(GgmlTypes, Q4_1AndQ8_0) {
  uint8_t q41[20];
  put_u16(q41, 0x3800);      // d = 0.5
  put_u16(q41 + 2, 0xBC00);  // m = -1
  for (int j = 0; j < 16; ++j) q41[4 + j] = uint8_t(j | ((15 - j) << 4));
  float y[64];
  dequantize_ggml_row(GgmlType::Q4_1, q41, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], j * 0.5f - 1.0f);
    EXPECT_EQ(y[j + 16], (15 - j) * 0.5f - 1.0f);
  }

  uint8_t q80[68];            // two blocks
  put_u16(q80, 0x3400);       // d = 0.25
  put_u16(q80 + 34, 0xC000);  // d = -2
  for (int j = 0; j < 32; ++j) {
    q80[2 + j] = uint8_t(int8_t(j - 16));
    q80[36 + j] = uint8_t(int8_t(j == 0 ? -127 : j));
  }
  dequantize_ggml_row(GgmlType::Q8_0, q80, y, 64);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], (j - 16) * 0.25f);
  EXPECT_EQ(y[32], 254.0f);
  EXPECT_EQ(y[63], -62.0f);
}

// Packs 8 six-bit (scale, min) pairs the way ggml's get_scale_min_k4 reads them.
std::array<uint8_t, 12> pack_q4_k_scales(const std::array<int, 8>& sc, const std::array<int, 8>& m) {
  std::array<uint8_t, 12> s{};
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t(m[j] | ((m[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  return s;
}

TEST(GgmlTypes, Q4_KSplit32sAndPackedScales) {
  const std::array<int, 8> sc = {1, 2, 3, 63, 17, 40, 5, 63};
  const std::array<int, 8> m = {0, 1, 2, 3, 50, 4, 33, 63};
  const auto scales = pack_q4_k_scales(sc, m);
  // One literal check of the packing itself: sub-block 5 has scale 40 = 0b10'1000 -> low 4 bits
  // in s[9], top 2 bits in s[1] >> 6; min 4 -> high nibble of s[9], top bits of s[5] are 0.
  EXPECT_EQ(scales[9], uint8_t(0x08 | (4 << 4)));
  EXPECT_EQ(scales[1] >> 6, 2);
  uint8_t block[144];
  put_u16(block, 0x3C00);      // d = 1
  put_u16(block + 2, 0x3800);  // dmin = 0.5
  std::memcpy(block + 4, scales.data(), 12);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) block[16 + 32 * c + l] = uint8_t((l & 0xF) | (((l + 3 * c) & 0xF) << 4));
  }
  float y[256];
  dequantize_ggml_row(GgmlType::Q4_K, block, y, 256);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(y[64 * c + l], float(sc[2 * c] * (l & 0xF)) - 0.5f * m[2 * c]) << c << " " << l;
      EXPECT_EQ(y[64 * c + 32 + l], float(sc[2 * c + 1] * ((l + 3 * c) & 0xF)) - 0.5f * m[2 * c + 1]) << c << " " << l;
    }
  }
}

TEST(GgmlTypes, Q6_K) {
  // q[e] in 0..63 and one int8 scale per 16 consecutive elements; packed as ggml lays them out:
  // in half h (128 values), element 32g + l (g = 0..3, l = 0..31) keeps its low 4 bits in
  // ql[64h + l + 32 (g & 1)] (low nibble for g < 2, high for g >= 2) and its top 2 bits in
  // qh[32h + l] at bit 2g.
  std::array<int, 256> q;
  for (int e = 0; e < 256; ++e) q[e] = (e * 7 + 3) % 64;
  std::array<int, 16> scale;
  for (int s = 0; s < 16; ++s) scale[s] = s * 9 - 70;  // -70 .. 65
  uint8_t block[210] = {};
  for (int h = 0; h < 2; ++h) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        const int v = q[128 * h + 32 * g + l];
        uint8_t& lo = block[64 * h + l + 32 * (g & 1)];
        lo |= uint8_t(g < 2 ? (v & 0xF) : (v & 0xF) << 4);
        block[128 + 32 * h + l] |= uint8_t((v >> 4) << (2 * g));
      }
    }
  }
  for (int s = 0; s < 16; ++s) block[192 + s] = uint8_t(int8_t(scale[s]));
  put_u16(block + 208, 0x3800);  // d = 0.5
  float y[256];
  dequantize_ggml_row(GgmlType::Q6_K, block, y, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.5f * float(scale[e / 16]) * float(q[e] - 32)) << e;
}

TEST(GgmlTypes, RejectsPartialBlocks) {
  std::vector<uint8_t> bytes(64);
  std::vector<float> out(64);
  EXPECT_THROW(dequantize_ggml_row(GgmlType::Q4_0, bytes.data(), out.data(), 31), Error);
  EXPECT_THROW(dequantize_ggml_row(GgmlType::Q4_K, bytes.data(), out.data(), 32), Error);
}

}  // namespace
}  // namespace quill
