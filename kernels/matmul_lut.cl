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

// LUT_DP4A (int8 codes: int4 = LUT_ARITH, q8_0 = LUT_LINEAR, nf4 / fp4 = LUT_INT8's rounded table):
// llama.cpp's route. A lane quantizes its CODES_PER_UINT4 x values of each uint4 to int8 (one scale per
// group: amax / 127, round half even) and multiplies with dp4a: 2 (4-bit) / 1 (8-bit) integer ops per
// 4 codes instead of a float decode + 4 FMAs. The x rounding adds at most |w| * amax / 254 per
// product (LUT_INT8: and the table's, |x| * absmax / 254).
#ifndef LUT_DP4A
#define LUT_DP4A 0
#endif
#if LUT_DP4A && !((LUT_BITS == 4 && (LUT_ARITH || LUT_INT8)) || (LUT_BITS == 8 && LUT_LINEAR))
#error "LUT_DP4A needs int8 codes (LUT_ARITH or LUT_INT8 4-bit, LUT_LINEAR 8-bit)"
#endif
#include "dp4a_x.cl"

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

#if LUT_DP4A
  DECLARE_INT8_TABLE(tab, lut);  // nf4 / fp4: the table as int8 (LUT_INT8; one table, lut_stride 0)
#endif
#if LUT_BITS == 4 && !LUT_ARITH && !LUT_DP4A
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
        s[j] = INT8_CODE_UNIT * block_scale(scales, absmax2, dq_lut, dq_offset, sbase[j] + (c0 >> block_shift));
#if LUT_DP4A
      // xq[t]: token t's x of columns c0 .. c0 + CODES_PER_UINT4 - 1 as int8 (dp4a_x.cl), dx[t] its
      // scale, xsum[t] its sum.
      uint xq[TOK_TILE][X_WORDS];
      float dx[TOK_TILE];
      int xsum[TOK_TILE];
#pragma unroll
      for (int t = 0; t < TOK_TILE; ++t) {
        float4 xv[X_WORDS];
#pragma unroll
        for (int i = 0; i < X_WORDS; ++i)
          xv[i] = t < n_here ? x4_or_zero(x, norm_w, t0 + t, c0 + 4 * i, cols, aligned, &ss[t]) : (float4)(0.0f);
        quantize_x_group(xv, xq[t], &dx[t], &xsum[t]);
      }
#pragma unroll
      for (int j = 0; j < ROWS_PER_WARP; ++j) {
        uint cb[X_WORDS];
        code_bytes(q[j], cb, tab);
#pragma unroll
        for (int t = 0; t < TOK_TILE; ++t)
          acc[j][t] = fma(s[j] * dx[t], (float)dot_codes_x(cb, xq[t], xsum[t]), acc[j][t]);
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
