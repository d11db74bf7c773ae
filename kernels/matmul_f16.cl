// matmul_f16.cl: y = x W^T (or y += x W^T) with W stored as fp16 (read with vload_half), or as
// f32 when built with -DWEIGHT_F32=1; fp32 accumulation.
// One 32-lane group per weight row; each group computes TOK_TILE tokens per pass, so W is read
// once per TOK_TILE tokens (GEMV when n_tok = 1, skinny GEMM otherwise).
#include "common.cl"

#ifndef WG_SIZE
#define WG_SIZE 128
#endif
#ifndef TOK_TILE
#define TOK_TILE 4
#endif
#ifndef WEIGHT_F32
#define WEIGHT_F32 0
#endif
#define ROWS_PER_WG (WG_SIZE / QUILL_LANES)

#ifndef UNROLL
#define UNROLL 4
#endif

// LOAD_W8: 8 weights from p + c; aligned: (p + c) is 16-byte aligned (fp16 rows padded to 8).
#if WEIGHT_F32
#define W_T float
#define LOAD_W8(c, p, aligned) vload8(0, (p) + (c))
#define LOAD_W1(c, p) ((p)[c])
#else
#define W_T half
#define LOAD_W8(c, p, aligned) \
  ((aligned) ? half8_bits_to_float8(*(__global const uint4*)((p) + (c))) : vload_half8(0, (p) + (c)))
#define LOAD_W1(c, p) vload_half((c), (p))
#endif

// W: [rows, w_stride] W_T (row-major, w_stride >= cols)   x: [n_tok, cols] f32   y: [n_tok, rows] f32
// accumulate != 0: y += x W^T.
// NDRange: global (ceil(rows / ROWS_PER_WG) * WG_SIZE, ceil(n_tok / TOK_TILE)), local (WG_SIZE, 1).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void matmul_f16(__global const W_T* W, __global const float* x, __global float* y,
                int rows, int cols, int w_stride, int n_tok, int accumulate) {
  __local float scratch[WG_SIZE];
  const int lane = get_local_id(0) % QUILL_LANES;
  const int row = get_group_id(0) * ROWS_PER_WG + get_local_id(0) / QUILL_LANES;
  const int t0 = get_group_id(1) * TOK_TILE;
  const int n_here = min(TOK_TILE, n_tok - t0);

  float acc[TOK_TILE];
  for (int t = 0; t < TOK_TILE; ++t) acc[t] = 0.0f;

  if (row < rows) {
    __global const W_T* w = W + (size_t)row * w_stride;
    const int cols8 = cols & ~7;
    const int aligned = (w_stride & 7) == 0;
    const int step = QUILL_LANES * 8;
    int c = lane * 8;
    // UNROLL independent 16-byte weight loads in flight per lane before they are used.
    for (; c + (UNROLL - 1) * step < cols8; c += UNROLL * step) {
      float8 wv[UNROLL];
      for (int u = 0; u < UNROLL; ++u) wv[u] = LOAD_W8(c + u * step, w, aligned);
      for (int u = 0; u < UNROLL; ++u)
        for (int t = 0; t < TOK_TILE; ++t)
          if (t < n_here) acc[t] += dot8(wv[u], vload8(0, x + (size_t)(t0 + t) * cols + c + u * step));
    }
    for (; c < cols8; c += step) {
      const float8 wv = LOAD_W8(c, w, aligned);
      for (int t = 0; t < TOK_TILE; ++t)
        if (t < n_here) acc[t] += dot8(wv, vload8(0, x + (size_t)(t0 + t) * cols + c));
    }
    for (int c = cols8 + lane; c < cols; c += QUILL_LANES) {
      const float wv = LOAD_W1(c, w);
      for (int t = 0; t < TOK_TILE; ++t)
        if (t < n_here) acc[t] += wv * x[(size_t)(t0 + t) * cols + c];
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
