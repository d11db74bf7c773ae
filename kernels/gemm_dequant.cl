// gemm_dequant.cl: prefill GEMM y[n_tok, rows] (+)= x[n_tok, cols] . W^T for the weight-only formats,
// W decoded tile by tile from its packed codes into local memory (never a dequantized copy), with the
// GEMV's decoders and scales (lut_common.cl). The format is a build parameter:
//   WFMT 4: 4-bit codes (nf4 / fp4 / kmeans4 through the table, int4 with LUT_ARITH), matmul_lut layout
//   WFMT 8: 8-bit codes (dyn8 through the table, q8_0 with LUT_LINEAR), matmul_lut layout
//   WFMT 16: fp16 rows [rows, w_stride] (w_stride % 8 == 0)
// Work-group: 128 work-items, output tile BN = 128 weight rows x BM = 64 tokens, K in steps of KS
// codes (a step = whole uint4 "slots" of each row, so every row's codes are read as 16-byte words).
//  - NVIDIA (QUILL_PTX): W and x tiles in fp16, mma.sync.m16n8k16 (f16 x f16 -> f32) via inline PTX;
//    4 warps of 64 rows x 32 tokens each; the next step's codes and x are loaded into registers
//    while the tensor cores work on the current step.
//  - portable: the same tiles in fp32, each work-item 8 rows x 8 tokens of FMAs.
#include "lut_common.cl"

#ifndef WFMT
#define WFMT 4
#endif
#define BN 128
#define BM 64
#if QUILL_PTX
#define KS 64
#else
#define KS 32
#endif

#if WFMT == 4
#define CPS 32  // codes per uint4 slot
#elif WFMT == 8
#define CPS 16
#else
#define CPS 8
#endif
#define SLOTS (KS / CPS)  // uint4 per row per K step

#if QUILL_PTX
#define LDK (KS / 2 + 4)  // local row stride in uints (2 fp16 each), padded: conflict-free fragments
typedef uint TILE_T;
#else
#define LDK (KS + 1)  // local row stride in floats
typedef float TILE_T;
#endif

// Column of x that code kk (0 .. KS-1) of K step `step` multiplies: the packed layouts hold a row's
// columns in order (matmul_lut.cl), so a step is KS consecutive columns for every format.
inline int column_of(int step, int kk) { return step * KS + kk; }

#if QUILL_PTX
inline uint pack_half2(float lo, float hi) {
  uint r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
#endif

// Stores 4 consecutive K values v of a tile row at element kk (a multiple of 4).
inline void store4(__local TILE_T* row, int kk, float4 v) {
#if QUILL_PTX
  *(__local uint2*)(row + kk / 2) = (uint2)(pack_half2(v.x, v.y), pack_half2(v.z, v.w));
#else
  row[kk] = v.x;
  row[kk + 1] = v.y;
  row[kk + 2] = v.z;
  row[kk + 3] = v.w;
#endif
}

// codes: [rows, row_words] uint4 (WFMT 4 / 8: the matmul_lut.cl layout; WFMT 16: fp16 rows,
//        row_words = w_stride / 8)   lut / lut_stride / scales / absmax2 / dq_lut / dq_offset /
//        blocks_per_row / block_shift: as matmul_lut.cl   x: [n_tok, cols] f32   y: [n_tok, rows] f32
// NDRange: global (ceil(rows / 128) * 128, ceil(n_tok / 64)), local (128, 1).
__kernel __attribute__((reqd_work_group_size(128, 1, 1)))
void gemm_dequant(__global const uint4* codes, int row_words, __global const float* lut, int lut_stride,
                  __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                  float dq_offset, int blocks_per_row, int block_shift, __global const float* x,
                  __global float* y, int rows, int cols, int n_tok, int accumulate) {
  __local TILE_T Bs[BN * LDK] __attribute__((aligned(16)));  // [BN rows][KS] decoded weights
  __local TILE_T As[BM * LDK] __attribute__((aligned(16)));  // [BM tokens][KS] x
#if WFMT == 4 && !LUT_ARITH
  __local float table[BN * 17];  // a table per row (stride 17: fewer bank conflicts), or one shared
#elif WFMT == 8 && !LUT_LINEAR
  __local float table[256];
#endif
  const int lid = get_local_id(0);
  const int r0 = get_group_id(0) * BN;
  const int t0 = get_group_id(1) * BM;
  const int my_row = min(r0 + lid, rows - 1);  // the row this work-item decodes (clamped: not stored)

#if WFMT == 4 && !LUT_ARITH
  for (int i = lid; i < BN * 16; i += 128)
    table[(i / 16) * 17 + (i & 15)] = lut[(size_t)min(r0 + i / 16, rows - 1) * lut_stride + (i & 15)];
  __local const float* T = table + lid * 17;
#elif WFMT == 8 && !LUT_LINEAR
  for (int i = lid; i < 256; i += 128) table[i] = lut[i];
  __local const float* T = table;
#else
  __local const float* T = 0;
#endif

  __global const uint4* wrow = codes + (size_t)my_row * row_words;
  const size_t sbase = (size_t)my_row * blocks_per_row;
  const int aligned = (cols & 3) == 0;
  const int steps = (WFMT == 16) ? (cols + KS - 1) / KS : row_words / SLOTS;
#define A_PER (BM * KS / 4 / 128)  // float4 of x per work-item per step

  // Staging registers: this work-item's row codes and x values of the next step.
  uint4 qr[SLOTS];
  float4 xr[A_PER];
#define LOAD_STEP(step)                                                                     \
  {                                                                                         \
    for (int s = 0; s < SLOTS; ++s) {                                                       \
      const int slot = (step) * SLOTS + s;                                                  \
      qr[s] = slot < row_words ? wrow[slot] : (uint4)(0);                                   \
    }                                                                                       \
    for (int i = 0; i < A_PER; ++i) {                                                       \
      const int idx = lid + 128 * i, tok = idx / (KS / 4), kk = 4 * (idx % (KS / 4));       \
      const int c = column_of((step), kk);                                                  \
      xr[i] = (t0 + tok < n_tok && c < cols) ? load_x4(x, 0, t0 + tok, c, cols, aligned) : (float4)(0.0f); \
    }                                                                                       \
  }

#if QUILL_PTX
  const int lane = lid & 31, warp = lid >> 5;
  const int wm = warp & 1, wn = warp >> 1;  // warp tile: tokens 32 wm .., rows 64 wn ..
  const int gq = lane >> 2, tq = lane & 3;
  float acc[2][8][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 8; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;
#else
  const int tr = lid % 16, tt = lid / 16;  // rows tr + 16 i, tokens tt + 8 j
  float acc[8][8];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
#endif

  LOAD_STEP(0);
  for (int step = 0; step < steps; ++step) {
    // Decode this work-item's row slots into Bs, and its x values into As.
    __local TILE_T* brow = Bs + lid * LDK;
#pragma unroll
    for (int s = 0; s < SLOTS; ++s) {
#if WFMT == 16
#if QUILL_PTX
      *(__local uint4*)(brow + s * 4) = qr[s];
#else
      const float8 h = half8_bits_to_float8(qr[s]);
      store4(brow, s * 8, h.lo);
      store4(brow, s * 8 + 4, h.hi);
#endif
#else
#pragma unroll
      for (int g = 0; g < CPS / 4; ++g) {
        const int kk = s * CPS + 4 * g;
        const int c = column_of(step, kk);
#if WFMT == 4
        const float4 w = decode4_nibbles(word_of(qr[s], g >> 1) >> (16 * (g & 1)), T);
#else
        const float4 w = decode4_bytes(word_of(qr[s], g), T);
#endif
        // Columns past the row end (the packed row is padded to whole tiles) are stored as 0: their
        // block index would read the next row's scale, or past the array for the last row (NaN / inf
        // in fp16 times x = 0 poisoned whole outputs).
        store4(brow, kk, c < cols ? w * block_scale(scales, absmax2, dq_lut, dq_offset, sbase + (c >> block_shift))
                                  : (float4)(0.0f));
      }
#endif
    }
#pragma unroll
    for (int i = 0; i < A_PER; ++i) {
      const int idx = lid + 128 * i, tok = idx / (KS / 4), kk = 4 * (idx % (KS / 4));
      store4(As + tok * LDK, kk, xr[i]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    LOAD_STEP(min(step + 1, steps - 1));  // in flight while this step computes (unconditional: PoCL 3.1
                                          // mis-compiles loops inside a uniform `if` between barriers)

#if QUILL_PTX
#pragma unroll
    for (int k16 = 0; k16 < KS / 16; ++k16) {
      const int kw = k16 * 8 + tq;  // uint column of this lane's fragment elements
      uint a[2][4], b[8][2];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        const __local uint* ap = As + (32 * wm + 16 * mi + gq) * LDK + kw;
        a[mi][0] = ap[0];
        a[mi][1] = ap[8 * LDK];
        a[mi][2] = ap[4];
        a[mi][3] = ap[8 * LDK + 4];
      }
#pragma unroll
      for (int ni = 0; ni < 8; ++ni) {
        const __local uint* bp = Bs + (64 * wn + 8 * ni + gq) * LDK + kw;
        b[ni][0] = bp[0];
        b[ni][1] = bp[4];
      }
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 8; ++ni)
          asm volatile(
              "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
              "{%0,%1,%2,%3};"
              : "+f"(acc[mi][ni][0]), "+f"(acc[mi][ni][1]), "+f"(acc[mi][ni][2]), "+f"(acc[mi][ni][3])
              : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1]));
    }
#else
    for (int k = 0; k < KS; ++k) {
      float bv[8], av[8];
      for (int i = 0; i < 8; ++i) bv[i] = Bs[(tr + 16 * i) * LDK + k];
      for (int j = 0; j < 8; ++j) av[j] = As[(tt + 8 * j) * LDK + k];
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 8; ++j) acc[i][j] = fma(bv[i], av[j], acc[i][j]);
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
  }

#if QUILL_PTX
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 8; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int tok = t0 + 32 * wm + 16 * mi + gq + (e >= 2 ? 8 : 0);
        const int row = r0 + 64 * wn + 8 * ni + 2 * tq + (e & 1);
        if (tok < n_tok && row < rows) {
          __global float* out = y + (size_t)tok * rows + row;
          *out = accumulate ? *out + acc[mi][ni][e] : acc[mi][ni][e];
        }
      }
#else
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      const int row = r0 + tr + 16 * i, tok = t0 + tt + 8 * j;
      if (tok < n_tok && row < rows) {
        __global float* out = y + (size_t)tok * rows + row;
        *out = accumulate ? *out + acc[i][j] : acc[i][j];
      }
    }
#endif
}
