// matmul_lut8.cl: y (+)= x W^T with W as 8-bit codes times a per-block scale: the dynamic-exponent
// map (bitsandbytes dyn8, its 256-entry table in local memory; fp32 absmax or double quant) and,
// with LUT_LINEAR=1, GGUF Q8_0 (value = the int8 code itself, fp16 d per 32).
// One 32-lane group per weight row; lane l reads uint4 l, l+32, .. (16 codes each), so a warp reads
// 512 consecutive bytes and each 4-column group's x in 512 contiguous bytes; fp32 accumulation, warp reduction, optional y += epilogue.
#include "lut_common.cl"

#ifndef LUT_LINEAR
#define LUT_LINEAR 0
#endif

#if LUT_LINEAR
#define LUT8(T, b) ((float)(char)(b))
#else
#define LUT8(T, b) (T)[(b)]
#endif

// codes: [rows, row_words] uint4, row_words a multiple of 32: tiles of 32 uint4 cover 512 columns;
//        word g of uint4 l of a tile holds the 4 columns at tile column 128 g + 4 l (byte i = column i)
// lut: [256] f32 (ignored when LUT_LINEAR)
// scales / absmax2 / dq_lut / dq_offset: see block_scale(); block of column c is c >> block_shift
// x: [n_tok, cols] f32   y: [n_tok, rows] f32 (y += when accumulate != 0)
// NDRange: global (ceil(rows / ROWS_PER_WG) * WG_SIZE, ceil(n_tok / TOK_TILE)), local (WG_SIZE, 1).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void matmul_lut8(__global const uint4* codes, int row_words, __global const float* lut,
                 __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                 float dq_offset, int blocks_per_row, int block_shift, __global const float* x,
                 __global float* y, int rows, int cols, int n_tok, int accumulate) {
  __local float table[256];  // [256]
  __local float scratch[WG_SIZE];
  const int lid = get_local_id(0);
  const int lane = lid % QUILL_LANES;
  const int row = get_group_id(0) * ROWS_PER_WG + lid / QUILL_LANES;
  const int t0 = get_group_id(1) * TOK_TILE;
  const int n_here = min(TOK_TILE, n_tok - t0);

#if !LUT_LINEAR
  for (int i = lid; i < 256; i += WG_SIZE) table[i] = lut[i];
  barrier(CLK_LOCAL_MEM_FENCE);
#endif
  __local const float* T = table;

  float acc[TOK_TILE];
  for (int t = 0; t < TOK_TILE; ++t) acc[t] = 0.0f;

  if (row < rows) {
    __global const uint4* wrow = codes + (size_t)row * row_words;
    const size_t scale_base = (size_t)row * blocks_per_row;
    const int aligned = (cols & 3) == 0;  // x rows 16-byte aligned: float4 loads
    for (int tile = 0; tile < row_words; tile += QUILL_LANES) {
      const uint4 q = wrow[tile + lane];
      const uint words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int g = 0; g < 4; ++g) {  // group g: 4 columns at tile * 32 + 128 g + 4 lane
        const int c = tile * 16 + 128 * g + 4 * lane;
        if (c >= cols) continue;
        const uint v = words[g];
        const float4 w = (float4)(LUT8(T, v & 255), LUT8(T, (v >> 8) & 255), LUT8(T, (v >> 16) & 255), LUT8(T, v >> 24)) *
                         block_scale(scales, absmax2, dq_lut, dq_offset, scale_base + (c >> block_shift));
        for (int t = 0; t < TOK_TILE; ++t) {
          if (t >= n_here) break;
          __global const float* xr = x + (size_t)(t0 + t) * cols + c;
          if (aligned)
            acc[t] += dot(w, *(__global const float4*)xr);
          else
            for (int e = 0; e < 4 && c + e < cols; ++e) acc[t] += ((float*)&w)[e] * xr[e];
        }
      }
    }
  }
  for (int t = 0; t < TOK_TILE; ++t) {
    const float sum = lane_group_sum(acc[t], scratch);
    if (lane == 0 && row < rows && t < n_here) {
      __global float* out = y + (size_t)(t0 + t) * rows + row;
      *out = accumulate ? *out + sum : sum;
    }
  }
}
