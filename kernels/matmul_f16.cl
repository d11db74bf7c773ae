// matmul_f16.cl: y = x W^T (or y += x W^T) with W stored as fp16, or as f32 when built with
// -DWEIGHT_F32=1; fp32 accumulation; the input transform (INPUT_KIND, lut_common.cl) on load.
// A work-group owns ROWS_PER_WARP weight rows and its warps split the columns (warp w: 256 columns
// at 256 w of every 1024; partial sums added through local memory): a lane loads 8 weights
// (16 bytes of fp16) per row, plus the next step's (prefetch), loads its 8 columns of x once for all
// its rows. TOK_TILE tokens per pass (GEMV when n_tok = 1, skinny GEMM otherwise).
#include "lut_common.cl"

#ifndef WEIGHT_F32
#define WEIGHT_F32 0
#endif

#if WEIGHT_F32
#define W_T float
typedef float8 WRAW;
#define LOAD_RAW(p, c) vload8(0, (p) + (c))
#define CVT_RAW(r) (r)
#define LOAD_W8_ANY(p, c) vload8(0, (p) + (c))
#define LOAD_W1(p, c) ((p)[c])
#else
#define W_T half
typedef uint4 WRAW;  // 8 fp16 bit patterns; needs a 16-byte-aligned row (w_stride % 8 == 0)
#define LOAD_RAW(p, c) load_stream4((__global const uint4*)((p) + (c)))
#define CVT_RAW(r) half8_bits_to_float8(r)
#define LOAD_W8_ANY(p, c) vload_half8(0, (p) + (c))
#define LOAD_W1(p, c) vload_half((c), (p))
#endif

// W: [rows, w_stride] W_T (row-major, w_stride >= cols)   x: [n_tok, cols] f32 ([n_tok, 2 cols] with
// SwiGLU)   y: [n_tok, rows] f32; accumulate != 0: y += x W^T.   norm_w: [cols], eps (RMSNorm only)
// pf / pf_bytes: what the last work-groups prefetch into L2 (common.cl prefetch_l2).
// NDRange: global (ceil(rows / ROWS_PER_WG) * WG_SIZE, ceil(n_tok / TOK_TILE)), local (WG_SIZE, 1).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void matmul_f16(__global const W_T* W, __global const float* x, __global float* y, int rows, int cols, int w_stride,
                int n_tok, int accumulate, __global const float* norm_w, float eps, __global const uchar* pf,
                int pf_bytes) {
  __local float scratch[WG_SIZE];
  __local float ss_part[WARPS_PER_WG * TOK_TILE];
  __local float part[WARPS_PER_WG * ROWS_PER_WARP * TOK_TILE];
  const int lane = get_local_id(0) % QUILL_LANES;
  const int row0 = get_group_id(0) * ROWS_PER_WG;
  const int warp = get_local_id(0) / QUILL_LANES;
  const int t0 = get_group_id(1) * TOK_TILE;
  const int n_here = min(TOK_TILE, n_tok - t0);

  float acc[ROWS_PER_WARP][TOK_TILE];
  float ss[TOK_TILE];  // RMSNorm: this work-item's share of each token's sum of squares
  for (int t = 0; t < TOK_TILE; ++t) ss[t] = 0.0f;
  __global const W_T* w[ROWS_PER_WARP];
#pragma unroll
  for (int j = 0; j < ROWS_PER_WARP; ++j) {
    w[j] = W + (size_t)min(row0 + j, rows - 1) * w_stride;  // rows past the end: not stored
    for (int t = 0; t < TOK_TILE; ++t) acc[j][t] = 0.0f;
  }
  const int cols8 = cols & ~7;
  const int xal = (cols & 3) == 0;
  const int step = QUILL_LANES * 8 * WARPS_PER_WG;  // warp w takes columns 256 w .. of each step
  if (WEIGHT_F32 || (w_stride & 7) == 0) {
    int c = warp * QUILL_LANES * 8 + lane * 8;
    WRAW raw[ROWS_PER_WARP];
    if (c < cols8) {
#pragma unroll
      for (int j = 0; j < ROWS_PER_WARP; ++j) raw[j] = LOAD_RAW(w[j], c);
    }
    for (; c < cols8; c += step) {
      WRAW next[ROWS_PER_WARP];
      if (c + step < cols8) {  // prefetch: 2 ROWS_PER_WARP 16-byte loads in flight per lane
#pragma unroll
        for (int j = 0; j < ROWS_PER_WARP; ++j) next[j] = LOAD_RAW(w[j], c + step);
      }
      float8 xv[TOK_TILE];
      for (int t = 0; t < TOK_TILE; ++t)
        xv[t] = t < n_here ? (float8)(load_x4_ss(x, norm_w, t0 + t, c, cols, xal, &ss[t]),
                                      load_x4_ss(x, norm_w, t0 + t, c + 4, cols, xal, &ss[t]))
                           : (float8)(0.0f);
#pragma unroll
      for (int j = 0; j < ROWS_PER_WARP; ++j) {
        const float8 wv = CVT_RAW(raw[j]);
        for (int t = 0; t < TOK_TILE; ++t) acc[j][t] += dot8(wv, xv[t]);
        raw[j] = next[j];
      }
    }
  } else {  // unaligned fp16 rows (w_stride % 8 != 0): vload_half8
    for (int c = warp * QUILL_LANES * 8 + lane * 8; c < cols8; c += step) {
      float8 xv[TOK_TILE];
      for (int t = 0; t < TOK_TILE; ++t)
        xv[t] = t < n_here ? (float8)(load_x4_ss(x, norm_w, t0 + t, c, cols, xal, &ss[t]),
                                      load_x4_ss(x, norm_w, t0 + t, c + 4, cols, xal, &ss[t]))
                           : (float8)(0.0f);
      for (int j = 0; j < ROWS_PER_WARP; ++j) {
        const float8 wv = LOAD_W8_ANY(w[j], c);
        for (int t = 0; t < TOK_TILE; ++t) acc[j][t] += dot8(wv, xv[t]);
      }
    }
  }
  for (int c = cols8 + get_local_id(0); c < cols; c += WG_SIZE) {  // the last cols % 8 columns
    for (int t = 0; t < n_here; ++t) {
      const float xv = load_x1_ss(x, norm_w, t0 + t, c, cols, &ss[t]);
      for (int j = 0; j < ROWS_PER_WARP; ++j) acc[j][t] += LOAD_W1(w[j], c) * xv;
    }
  }
  GEMV_REDUCE_STORE(acc, ss, scratch, part, ss_part, y, row0, rows, t0, n_here, accumulate, cols, eps);
  prefetch_l2(pf, pf_bytes);
}
