// matmul_lut8.cl: y (+)= x W^T with W as 8-bit codes times a per-block scale: the dynamic-exponent
// map (bitsandbytes dyn8, its 256-entry table in local memory; fp32 absmax or double quant) and,
// with LUT_LINEAR=1, GGUF Q8_0 (value = the int8 code itself, decoded arithmetically, fp16 d per 32).
// A work-group owns ROWS_PER_WARP weight rows and its warps split the tiles (partial sums added
// through local memory): per tile of 512 columns a lane loads one uint4
// (16 codes) per row, plus the next tile's (prefetch), loads each 4-column group of x once (with the
// input transform, INPUT_KIND) for all its rows; fp32 accumulation, warp reduction, y += epilogue.
#include "lut_common.cl"

// codes: [rows, row_words] uint4, row_words a multiple of 32: tiles of 32 uint4 cover 512 columns;
//        word g of uint4 l of a tile holds the 4 columns at tile column 128 g + 4 l (byte i = column i)
// lut: [256] f32 (ignored when LUT_LINEAR)
// scales / absmax2 / dq_lut / dq_offset: see block_scale(); block of column c is c >> block_shift
// x: [n_tok, cols] f32 ([n_tok, 2 cols] with SwiGLU)   y: [n_tok, rows] f32 (y += when accumulate != 0)
// norm_w: [cols] f32 and eps (RMSNorm only)
// NDRange: global (ceil(rows / ROWS_PER_WG) * WG_SIZE, ceil(n_tok / TOK_TILE)), local (WG_SIZE, 1).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void matmul_lut8(__global const uint4* codes, int row_words, __global const float* lut,
                 __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                 float dq_offset, int blocks_per_row, int block_shift, __global const float* x,
                 __global float* y, int rows, int cols, int n_tok, int accumulate, __global const float* norm_w,
                 float eps) {
  __local float table[256];  // [256]
  __local float scratch[WG_SIZE];
  __local float inv[TOK_TILE];
  __local float part[WARPS_PER_WG * ROWS_PER_WARP * TOK_TILE];
  const int lid = get_local_id(0);
  const int lane = lid % QUILL_LANES;
  const int row0 = get_group_id(0) * ROWS_PER_WG;
  const int warp = lid / QUILL_LANES;
  const int t0 = get_group_id(1) * TOK_TILE;
  const int n_here = min(TOK_TILE, n_tok - t0);

#if !LUT_LINEAR
  for (int i = lid; i < 256; i += WG_SIZE) table[i] = lut[i];
#endif
  input_prologue(x, t0, n_here, cols, eps, inv, scratch);
  barrier(CLK_LOCAL_MEM_FENCE);

  float acc[ROWS_PER_WARP][TOK_TILE];
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
  uint4 q[ROWS_PER_WARP];
#pragma unroll
  for (int j = 0; j < ROWS_PER_WARP; ++j) q[j] = warp * QUILL_LANES < row_words ? wrow[j][warp * QUILL_LANES] : (uint4)(0);
  for (int tile = warp * QUILL_LANES; tile < row_words; tile += QUILL_LANES * WARPS_PER_WG) {
    uint4 qn[ROWS_PER_WARP];
    if (tile + QUILL_LANES * WARPS_PER_WG < row_words) {
#pragma unroll
      for (int j = 0; j < ROWS_PER_WARP; ++j) qn[j] = wrow[j][tile + QUILL_LANES * WARPS_PER_WG];
    }
#pragma unroll
    for (int g = 0; g < 4; ++g) {  // group g: 4 columns at tile * 16 + 128 g + 4 lane
      const int c = tile * 16 + 128 * g + 4 * lane;
      if (c < cols) {
        float4 xv[TOK_TILE];
        for (int t = 0; t < TOK_TILE; ++t)
          xv[t] = t < n_here ? load_x4(x, norm_w, t0 + t, c, cols, aligned) : (float4)(0.0f);
#pragma unroll
        for (int j = 0; j < ROWS_PER_WARP; ++j) {
          const float4 w = decode4_bytes(word_of(q[j], g), table);
          const float s = block_scale(scales, absmax2, dq_lut, dq_offset, sbase[j] + (c >> block_shift));
          for (int t = 0; t < TOK_TILE; ++t) acc[j][t] = fma(s, dot(w, xv[t]), acc[j][t]);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < ROWS_PER_WARP; ++j) q[j] = qn[j];
  }
  GEMV_REDUCE_STORE(acc, scratch, part, inv, y, row0, rows, t0, n_here, accumulate);
}
