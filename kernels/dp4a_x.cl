// dp4a_x.cl: the int8 form of x that the dp4a GEMVs (matmul_lut.cl's LUT_DP4A path, gemv_stream.cl)
// multiply the integer codes with (int4, q8_0; nf4 / fp4 through their int8 table, LUT_INT8 in
// lut_common.cl): one group per uint4 of codes (CODES_PER_UINT4 columns: 32 for 4-bit, 16 for 8-bit),
// scale amax / 127, round half even. Needs LUT_BITS and CODES_PER_UINT4.
#ifndef QUILL_DP4A_X_CL
#define QUILL_DP4A_X_CL

#define X_WORDS (CODES_PER_UINT4 / 4)  // int8x4 words of one group: 8 (4-bit) or 4 (8-bit)

// How a 4-bit table's codes (LUT_INT8) become int8 values: 1, a code word's nibbles in order through
// table_s8x4_nibbles (6 operations per 4 codes: gemv_stream, one token, +11% nf4 tg); 0, its even and odd
// nibbles through table_s8x4 (11). matmul_lut (2-8 tokens, 8 rows of decoded codes per warp) keeps 0: with 1
// its 4-token GEMV ran 30% slower (ptxas: 255 registers; docs/PERFORMANCE.md, session 9). x follows the codes.
#ifndef DP4A_NIBBLE_ORDER
#define DP4A_NIBBLE_ORDER 0
#endif
#define DP4A_TABLE_IN_ORDER (LUT_BITS == 4 && LUT_INT8 && DP4A_NIBBLE_ORDER)

// The 4 components of v (|v| <= 127.5) rounded half even to int8, packed (v.x in the low byte):
// 1.5 * 2^23 + v has the integer in its low mantissa bits.
inline uint pack_s8x4(float4 v) {
  const uint4 u = as_uint4(v + 12582912.0f);
  return (u.x & 0xFFu) | ((u.y & 0xFFu) << 8) | ((u.z & 0xFFu) << 16) | (u.w << 24);
}

// One group's x values xv (CODES_PER_UINT4 columns in order) -> xq, the int8x4 words in the order the
// codes' bytes take them (4-bit: word 2k the even columns of code word k, 2k + 1 the odd ones; 8-bit and
// DP4A_TABLE_IN_ORDER: the columns in order, word k = columns 4k .. 4k + 3); *dx the group's scale; *xsum the
// sum of its int8 values (int4: for the -8).
inline void quantize_x_group(const float4* xv, uint* xq, float* dx, int* xsum) {
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < X_WORDS; ++i) {
    const float4 a = fabs(xv[i]);
    amax = fmax(amax, fmax(fmax(a.x, a.y), fmax(a.z, a.w)));
  }
  *dx = amax / 127.0f;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  int sum = 0;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
#if DP4A_TABLE_IN_ORDER
    xq[2 * k] = pack_s8x4(xv[2 * k] * inv);
    xq[2 * k + 1] = pack_s8x4(xv[2 * k + 1] * inv);
    sum = dot_s8x4(xq[2 * k], 0x01010101u, dot_s8x4(xq[2 * k + 1], 0x01010101u, sum));
#elif LUT_BITS == 4
    const float4 a = xv[2 * k] * inv, b = xv[2 * k + 1] * inv;
    xq[2 * k] = pack_s8x4((float4)(a.x, a.z, b.x, b.z));
    xq[2 * k + 1] = pack_s8x4((float4)(a.y, a.w, b.y, b.w));
    sum = dot_s8x4(xq[2 * k], 0x01010101u, dot_s8x4(xq[2 * k + 1], 0x01010101u, sum));
#else
    xq[k] = pack_s8x4(xv[k] * inv);
#endif
  }
  *xsum = sum;
}

// The codes of q (one uint4) as X_WORDS words of signed bytes in the order of quantize_x_group's
// words: 4-bit: word 2k the even codes of code word k (0..15 each; LUT_INT8: their int8 table values, tab
// from int8_table), 2k + 1 the odd ones; DP4A_TABLE_IN_ORDER: the int8 table values of code word k's nibbles
// 0..3 (word 2k) and 4..7 (2k + 1), its columns in order; 8-bit: the words.
inline void code_bytes(uint4 q, uint* cb, const uint* tab) {
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const uint w = word_of(q, k);
#if DP4A_TABLE_IN_ORDER
    cb[2 * k] = table_s8x4_nibbles(w, tab);
    cb[2 * k + 1] = table_s8x4_nibbles(w >> 16, tab);
#elif LUT_BITS == 4 && LUT_INT8
    cb[2 * k] = table_s8x4(w & 0x0F0F0F0Fu, tab);
    cb[2 * k + 1] = table_s8x4((w >> 4) & 0x0F0F0F0Fu, tab);
#elif LUT_BITS == 4
    cb[2 * k] = w & 0x0F0F0F0Fu;
    cb[2 * k + 1] = (w >> 4) & 0x0F0F0F0Fu;
#else
    cb[k] = w;
#endif
  }
}

// The exact integer dot product of code bytes cb (code_bytes) with a group's int8 x words xq:
// int4: sum (code - 8) * xq (xsum: the group's int8 sum); LUT_INT8 and 8-bit: sum code_bytes * xq.
inline int dot_codes_x(const uint* cb, const uint* xq, int xsum) {
  int dot = 0;
#pragma unroll
  for (int i = 0; i < X_WORDS; ++i) dot = dot_s8x4(cb[i], xq[i], dot);
#if LUT_BITS == 4 && !LUT_INT8
  return dot - 8 * xsum;
#else
  return dot;
#endif
}

// This kernel's int8 table (LUT_INT8: 4 words in registers, from the format's [16] f32 lut) or none.
#if LUT_INT8
#define DECLARE_INT8_TABLE(tab, lut) \
  uint tab[4];                       \
  int8_table(lut, tab)
#else
#define DECLARE_INT8_TABLE(tab, lut) const uint* tab = 0
#endif

#endif  // QUILL_DP4A_X_CL
