// matmul_lut.cl: y (+)= x W^T with W as 4-bit (LUT_BITS 4) or 8-bit (LUT_BITS 8) codes into a table
// times a per-block scale -- one kernel for every weight-only quantized format, the format being the
// build parameters: NF4 / FP4 (16-entry constant tables), INT4 = GGUF Q4_0 (code - 8, LUT_ARITH),
// k-means (per-row or per-tensor codebook, no scale), dyn8 (256-entry table), Q8_0 (the int8 code
// itself, LUT_LINEAR); scale storage SCALE_KIND and the fused input transform INPUT_KIND
// (lut_common.cl).
// A work-group owns ROWS_PER_WARP weight rows and its warps split the row into tiles of 32 uint4
// (warp w: tiles w, w + WARPS_PER_WG, ..; partial sums added through local memory). Per tile a lane
// loads one uint4 per row (and prefetches its next tile's), i.e. 32 (4-bit) or 16 (8-bit)
// consecutive columns: the lane's x values of those columns are loaded once and used for all its
// rows, and the uint4 lies in one scale block (block >= 32), so a lane loads one scale per row per
// uint4. fp32 accumulation, warp reduction, y (+)= in the epilogue.
#include "lut_common.cl"

#ifndef LUT_BITS
#define LUT_BITS 4
#endif
#define CODES_PER_WORD (32 / LUT_BITS)      // 8 or 4
#define CODES_PER_UINT4 (4 * CODES_PER_WORD)  // 32 or 16

// LUT_DP4A (integer codes only: int4 = LUT_ARITH, q8_0 = LUT_LINEAR): llama.cpp's route. A lane
// quantizes its CODES_PER_UINT4 x values of each uint4 to int8 (one scale per group: amax / 127,
// round half even) and multiplies with dp4a: 2 (4-bit) / 1 (8-bit) integer ops per 4 codes instead
// of a float decode + 4 FMAs. The x rounding adds at most |w| * amax / 254 per product.
#ifndef LUT_DP4A
#define LUT_DP4A 0
#endif
#if LUT_DP4A && !((LUT_BITS == 4 && LUT_ARITH) || (LUT_BITS == 8 && LUT_LINEAR))
#error "LUT_DP4A needs integer codes (LUT_ARITH 4-bit or LUT_LINEAR 8-bit)"
#endif
#define X_WORDS (CODES_PER_UINT4 / 4)  // int8x4 words of a lane's quantized x group: 8 or 4

// The 4 components of v (|v| <= 127.5) rounded half even to int8, packed (v.x in the low byte):
// 1.5 * 2^23 + v has the integer in its low mantissa bits.
inline uint pack_s8x4(float4 v) {
  const uint4 u = as_uint4(v + 12582912.0f);
  return (u.x & 0xFFu) | ((u.y & 0xFFu) << 8) | ((u.z & 0xFFu) << 16) | (u.w << 24);
}

// The 8 values of a word of 4-bit codes: lo = nibbles 0..3, hi = nibbles 4..7 (nibble n = bits 4n).
inline void decode8_nibbles(uint w, __local const float* T, float4* lo, float4* hi) {
#if LUT_ARITH && QUILL_PTX
  // Two codes per integer op: (w >> 4s) & 0x000F000F puts nibbles s and s + 4 in the two halves, and
  // | 0x6400 makes each the fp16 number 1024 + code; code - 8 is then exact in fp32.
  float2 v[4];
#pragma unroll
  for (int s = 0; s < 4; ++s) v[s] = half2_bits_to_float2(((w >> (4 * s)) & 0x000F000Fu) | 0x64006400u) - 1032.0f;
  *lo = (float4)(v[0].x, v[1].x, v[2].x, v[3].x);
  *hi = (float4)(v[0].y, v[1].y, v[2].y, v[3].y);
#else
  *lo = decode4_nibbles(w, T);
  *hi = decode4_nibbles(w >> 16, T);
#endif
}

// Token t's x at columns c .. c + 3 (after the input transform), 0 past the row end.
inline float4 x4_or_zero(__global const float* x, __global const float* norm_w, int t, int c, int cols,
                         int aligned, float* ss) {
  return c < cols ? load_x4_ss(x, norm_w, t, c, cols, aligned, ss) : (float4)(0.0f);
}

// codes: [rows, row_words] uint4, row_words a multiple of 32; uint4 u of a row holds columns
//        CODES_PER_UINT4 u .. + CODES_PER_UINT4 - 1 in order: word k the next CODES_PER_WORD columns,
//        4-bit column i of a word in bits 4 i, 8-bit in byte i (the host repacks every source order
//        into this one and pads the row with code 0 to whole tiles)
// lut: 4-bit [16] f32 (lut_stride 0) or [rows, 16] (lut_stride 16); 8-bit [256]; unused with
//      LUT_ARITH / LUT_LINEAR
// scales / absmax2 / dq_lut / dq_offset: see block_scale(); block of column c is c >> block_shift
// x: [n_tok, cols] f32 ([n_tok, 2 cols] with SwiGLU)   y: [n_tok, rows] f32 (y += when accumulate != 0)
// norm_w: [cols] f32 and eps (RMSNorm only)
// NDRange: global (ceil(rows / ROWS_PER_WG) * WG_SIZE, ceil(n_tok / TOK_TILE)), local (WG_SIZE, 1).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void matmul_lut(__global const uint4* codes, int row_words, __global const float* lut, int lut_stride,
                __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                float dq_offset, int blocks_per_row, int block_shift, __global const float* x,
                __global float* y, int rows, int cols, int n_tok, int accumulate, __global const float* norm_w,
                float eps) {
#if LUT_BITS == 4
  __local float table[ROWS_PER_WG * 16];  // [ROWS_PER_WG, 16]: 16 entries in 16 banks, conflict-free
#else
  __local float table[256];
#endif
  __local float scratch[WG_SIZE];
  __local float ss_part[WARPS_PER_WG * TOK_TILE];
  __local float part[WARPS_PER_WG * ROWS_PER_WARP * TOK_TILE];
  const int lid = get_local_id(0);
  const int lane = lid % QUILL_LANES;
  const int warp = lid / QUILL_LANES;
  const int row0 = get_group_id(0) * ROWS_PER_WG;
  const int t0 = get_group_id(1) * TOK_TILE;
  const int n_here = min(TOK_TILE, n_tok - t0);

#if LUT_BITS == 4 && !LUT_ARITH
  for (int i = lid; i < ROWS_PER_WG * 16; i += WG_SIZE)
    table[i] = lut[(size_t)min(row0 + i / 16, rows - 1) * lut_stride + (i & 15)];
#elif LUT_BITS == 8 && !LUT_LINEAR
  for (int i = lid; i < 256; i += WG_SIZE) table[i] = lut[i];
#endif
  barrier(CLK_LOCAL_MEM_FENCE);

  float acc[ROWS_PER_WARP][TOK_TILE];
  float ss[TOK_TILE];  // RMSNorm: this work-item's share of each token's sum of squares
  for (int t = 0; t < TOK_TILE; ++t) ss[t] = 0.0f;
  __global const uint4* wrow[ROWS_PER_WARP];
  size_t sbase[ROWS_PER_WARP];
#pragma unroll
  for (int j = 0; j < ROWS_PER_WARP; ++j) {
    const int r = min(row0 + j, rows - 1);  // rows past the end recompute the last (not stored)
    wrow[j] = codes + (size_t)r * row_words + lane;
    sbase[j] = (size_t)r * blocks_per_row;
    for (int t = 0; t < TOK_TILE; ++t) acc[j][t] = 0.0f;
  }
  const int aligned = (cols & 3) == 0;
  const int stride = QUILL_LANES * WARPS_PER_WG;  // uint4 between a warp's tiles
  uint4 q[ROWS_PER_WARP];
#pragma unroll
  for (int j = 0; j < ROWS_PER_WARP; ++j) q[j] = warp * QUILL_LANES < row_words ? wrow[j][warp * QUILL_LANES] : (uint4)(0);
  for (int tile = warp * QUILL_LANES; tile < row_words; tile += stride) {
    uint4 qn[ROWS_PER_WARP];
    if (tile + stride < row_words) {  // prefetch the next tile: 2 ROWS_PER_WARP loads in flight
#pragma unroll
      for (int j = 0; j < ROWS_PER_WARP; ++j) qn[j] = wrow[j][tile + stride];
    }
    const int c0 = (tile + lane) * CODES_PER_UINT4;  // this lane's first column
    if (c0 < cols) {  // (a uint4 wholly past the row end is padding: its block index would be too)
      float s[ROWS_PER_WARP];
#pragma unroll
      for (int j = 0; j < ROWS_PER_WARP; ++j)
        s[j] = block_scale(scales, absmax2, dq_lut, dq_offset, sbase[j] + (c0 >> block_shift));
#if LUT_DP4A
      // xq[t]: token t's x of columns c0 .. c0 + CODES_PER_UINT4 - 1 as int8x4 words in the order the
      // codes' bytes take them (4-bit: word 2k the even columns of code word k, 2k + 1 the odd ones;
      // 8-bit: word k = code word k); dx[t] its scale; xsum[t] the codes' sum (the -8 of int4).
      uint xq[TOK_TILE][X_WORDS];
      float dx[TOK_TILE];
      int xsum[TOK_TILE];
      for (int t = 0; t < TOK_TILE; ++t) {
        float4 xv[X_WORDS];
        float amax = 0.0f;
#pragma unroll
        for (int i = 0; i < X_WORDS; ++i) {
          xv[i] = t < n_here ? x4_or_zero(x, norm_w, t0 + t, c0 + 4 * i, cols, aligned, &ss[t]) : (float4)(0.0f);
          const float4 a = fabs(xv[i]);
          amax = fmax(amax, fmax(fmax(a.x, a.y), fmax(a.z, a.w)));
        }
        dx[t] = amax / 127.0f;
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        xsum[t] = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
#if LUT_BITS == 4
          const float4 a = xv[2 * k] * inv, b = xv[2 * k + 1] * inv;
          xq[t][2 * k] = pack_s8x4((float4)(a.x, a.z, b.x, b.z));
          xq[t][2 * k + 1] = pack_s8x4((float4)(a.y, a.w, b.y, b.w));
          xsum[t] = dot_s8x4(xq[t][2 * k], 0x01010101u, dot_s8x4(xq[t][2 * k + 1], 0x01010101u, xsum[t]));
#else
          xq[t][k] = pack_s8x4(xv[k] * inv);
#endif
        }
      }
#pragma unroll
      for (int j = 0; j < ROWS_PER_WARP; ++j) {
        int dot[TOK_TILE];
        for (int t = 0; t < TOK_TILE; ++t) dot[t] = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const uint w = word_of(q[j], k);
#if LUT_BITS == 4
          const uint even = w & 0x0F0F0F0Fu, odd = (w >> 4) & 0x0F0F0F0Fu;  // codes 0..15 as bytes
          for (int t = 0; t < TOK_TILE; ++t) dot[t] = dot_s8x4(even, xq[t][2 * k], dot_s8x4(odd, xq[t][2 * k + 1], dot[t]));
#else
          for (int t = 0; t < TOK_TILE; ++t) dot[t] = dot_s8x4(w, xq[t][k], dot[t]);
#endif
        }
        for (int t = 0; t < TOK_TILE; ++t) {
#if LUT_BITS == 4
          const int exact = dot[t] - 8 * xsum[t];  // sum (code - 8) * xq
#else
          const int exact = dot[t];
#endif
          acc[j][t] = fma(s[j] * dx[t], (float)exact, acc[j][t]);
        }
      }
#else
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int c = c0 + k * CODES_PER_WORD;
        float4 xa[TOK_TILE];
#if LUT_BITS == 4
        float4 xb[TOK_TILE];
#endif
        for (int t = 0; t < TOK_TILE; ++t) {
          const int valid = t < n_here;
          xa[t] = valid ? x4_or_zero(x, norm_w, t0 + t, c, cols, aligned, &ss[t]) : (float4)(0.0f);
#if LUT_BITS == 4
          xb[t] = valid ? x4_or_zero(x, norm_w, t0 + t, c + 4, cols, aligned, &ss[t]) : (float4)(0.0f);
#endif
        }
#pragma unroll
        for (int j = 0; j < ROWS_PER_WARP; ++j) {
          const uint w = word_of(q[j], k);
#if LUT_BITS == 4
          float4 lo, hi;
          decode8_nibbles(w, table + j * 16, &lo, &hi);
          for (int t = 0; t < TOK_TILE; ++t) acc[j][t] = fma(s[j], dot(lo, xa[t]) + dot(hi, xb[t]), acc[j][t]);
#else
          const float4 v = decode4_bytes(w, table);
          for (int t = 0; t < TOK_TILE; ++t) acc[j][t] = fma(s[j], dot(v, xa[t]), acc[j][t]);
#endif
        }
      }
#endif  // LUT_DP4A
    }
#pragma unroll
    for (int j = 0; j < ROWS_PER_WARP; ++j) q[j] = qn[j];
  }
  GEMV_REDUCE_STORE(acc, ss, scratch, part, ss_part, y, row0, rows, t0, n_here, accumulate, cols, eps);
}
