// matmul_lut4.cl: y (+)= x W^T with W as 4-bit codes into a 16-entry table times a per-block scale.
// One kernel for NF4 / FP4 (constant tables), INT4 = GGUF Q4_0 (table q - 8, fp16 d) and k-means
// (per-row or per-tensor codebook, no scale): the table and the scale kind are parameters.
// One 32-lane group per weight row; lane l reads uint4 l, l+32, .. of the row (a warp reads 512
// consecutive bytes), decodes 32 codes through the table in local memory, and FMAs them against
// TOK_TILE tokens of x (coalesced float4 per lane); fp32 accumulation, warp reduction, y += epilogue.
#include "lut_common.cl"

// codes: [rows, row_words] uint4, row_words a multiple of 32: tiles of 32 uint4 cover 1024 columns;
//        uint4 l of a tile holds 8 groups of 4 columns, group g at tile column 128 g + 4 l, in bits
//        16 (g & 1) + 4 i of word g / 2 (column i of the group), so for each group the 32 lanes
//        read 512 contiguous bytes of x (the host repacks every source order into this one)
// lut: [16] f32 (lut_stride 0) or [rows, 16] f32 (lut_stride 16)
// scales / absmax2 / dq_lut / dq_offset: see block_scale(); block of column c is c >> block_shift
// x: [n_tok, cols] f32   y: [n_tok, rows] f32 (y += when accumulate != 0)
// NDRange: global (ceil(rows / ROWS_PER_WG) * WG_SIZE, ceil(n_tok / TOK_TILE)), local (WG_SIZE, 1).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void matmul_lut4(__global const uint4* codes, int row_words, __global const float* lut, int lut_stride,
                 __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                 float dq_offset, int blocks_per_row, int block_shift, __global const float* x,
                 __global float* y, int rows, int cols, int n_tok, int accumulate) {
  __local float table[ROWS_PER_WG * 16];  // [ROWS_PER_WG, 16]
  __local float scratch[WG_SIZE];
  const int lid = get_local_id(0);
  const int lane = lid % QUILL_LANES;
  const int warp = lid / QUILL_LANES;
  const int row = get_group_id(0) * ROWS_PER_WG + warp;
  const int t0 = get_group_id(1) * TOK_TILE;
  const int n_here = min(TOK_TILE, n_tok - t0);

  if (lane < 16) table[warp * 16 + lane] = row < rows ? lut[(size_t)row * lut_stride + lane] : 0.0f;
  barrier(CLK_LOCAL_MEM_FENCE);
  __local const float* T = table + warp * 16;

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
      for (int g = 0; g < 8; ++g) {  // group g: 4 columns at tile * 32 + 128 g + 4 lane
        const int c = tile * 32 + 128 * g + 4 * lane;
        if (c >= cols) continue;
        const uint v = words[g >> 1] >> (16 * (g & 1));
        const float4 w = (float4)(T[v & 15], T[(v >> 4) & 15], T[(v >> 8) & 15], T[(v >> 12) & 15]) *
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
