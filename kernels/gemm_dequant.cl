// gemm_dequant.cl: prefill GEMM y[n_tok, rows] (+)= x[n_tok, cols] . W^T for the weight-only formats,
// W decoded tile by tile from its packed codes into local memory (never a dequantized copy), with the
// GEMV's decoders and scales (lut_common.cl). (int4 / q8_0 on sm_80+ take the int8 tensor cores instead:
// gemm_int8_blocks.cl.) The format is a build parameter:
//   WFMT 4: 4-bit codes (nf4 / fp4 / kmeans4 through the table, int4 with LUT_ARITH), matmul_lut layout
//   WFMT 8: 8-bit codes (dyn8 through the table, q8_0 with LUT_LINEAR), matmul_lut layout
//   WFMT 16: fp16 rows [rows, w_stride] (w_stride % 8 == 0)
// The packed layouts hold a row's columns in order (matmul_lut.cl), so a K step is KS consecutive
// columns for every format.
//  - NVIDIA (QUILL_PTX): 256 work-items (8 warps), output tile BN = 128 weight rows x BM = 128 tokens,
//    K steps of 32; W and x tiles in fp16, mma.sync.m16n8k16 (f16 x f16 -> f32) via inline PTX, each
//    warp 64 rows x 32 tokens. x arrives already in fp16, padded (gemm_x_to_f16, one pass per call):
//    half the bytes of fp32 per tile and no conversion in the loop. Two local stages and two register
//    stages: a step's codes and x are loaded two steps ahead, decoded into the free stage while the
//    tensor cores work on the other, one barrier per step. Two work-items decode each row (16 K values
//    each).
//  - portable: 128 work-items, tile 128 rows x 64 tokens, K steps of 32 in fp32, each work-item
//    8 rows x 8 tokens of FMAs.
#include "lut_common.cl"

#ifndef WFMT
#define WFMT 4
#endif
#define BN 128  // weight rows per work-group tile
#define KS 32   // K values (columns) per step

#if WFMT == 4
#define CPS 32  // codes per uint4 slot
#elif WFMT == 8
#define CPS 16
#else
#define CPS 8
#endif
#define SLOTS (KS / CPS)  // uint4 per row per K step

// Column of x that code kk (0 .. KS-1) of K step `step` multiplies.
inline int column_of(int step, int kk) { return step * KS + kk; }

// The 4 values of codes kk .. kk + 3 (kk % 4 == 0) of `word` (the 32-bit word holding them), scaled;
// columns past the row end (the packed row is padded to whole tiles) are 0: their block index would read
// the next row's scale, or past the array for the last row (NaN / inf in fp16 times x = 0 poisoned whole
// outputs). Not used for WFMT 16 (raw fp16).
inline float4 decode_group(uint word, int kk, int step, int cols, __local const float* T,
                           __global const uchar* scales, __global const float* absmax2,
                           __global const float* dq_lut, float dq_offset, size_t sbase, int block_shift) {
  const int c = column_of(step, kk);
#if WFMT == 4
  const float4 w = decode4_nibbles(word >> (16 * ((kk >> 2) & 1)), T);
#else
  const float4 w = decode4_bytes(word, T);
#endif
  return c < cols ? w * block_scale(scales, absmax2, dq_lut, dq_offset, sbase + (c >> block_shift)) : (float4)(0.0f);
}

// The per-row decoding tables in local memory: one table per weight row (4-bit, stride 17 against bank
// conflicts) or the shared 256-entry table (8-bit); none for the arithmetic decoders and fp16.
#if WFMT == 4 && !LUT_ARITH
#define TABLE_FLOATS (BN * 17)
#elif WFMT == 8 && !LUT_LINEAR
#define TABLE_FLOATS 256
#else
#define TABLE_FLOATS 1
#endif
inline __local const float* fill_tables(__local float* table, __global const float* lut, int lut_stride, int r0,
                                        int rows, int row_local, int lid, int threads) {
#if WFMT == 4 && !LUT_ARITH
  for (int i = lid; i < BN * 16; i += threads)
    table[(i / 16) * 17 + (i & 15)] = lut[(size_t)min(r0 + i / 16, rows - 1) * lut_stride + (i & 15)];
  return table + row_local * 17;
#elif WFMT == 8 && !LUT_LINEAR
  for (int i = lid; i < 256; i += threads) table[i] = lut[i];
  return table;
#else
  return table;
#endif
}

#if QUILL_PTX
// ---------------------------------------------------------------- tensor cores (NVIDIA, inline PTX)
#define GD_THREADS 256
#define BM 128
#define LDK (KS / 2)  // uints per local tile row: KS fp16 values as KS / 4 pairs (uint2) of 4 K values
#if WFMT == 4
#define UCODES 16  // codes per uint2 of the packed row
#elif WFMT == 8
#define UCODES 8
#else
#define UCODES 4
#endif
#define UNITS (16 / UCODES)                   // uint2 per work-item per step: 16 K values of its row
#define X_PER (BM * KS / 4 / GD_THREADS)      // uint2 (4 fp16 x values, one tile pair) per work-item per step

// x [n_tok, cols] f32 -> xh [tok_pad, ld] fp16 (ld = the GEMM's K steps * KS, tok_pad a multiple of BM),
// zero past n_tok and cols, rounded to nearest even as pack_half2 rounds: the tensor-core GEMM's A
// operand, read with no bounds checks. NDRange: global (tok_pad * ld / 4).
__kernel void gemm_x_to_f16(__global const float* x, int n_tok, int cols, __global uint2* xh, int ld) {
  const int id = get_global_id(0), t = id / (ld / 4), c = 4 * (id % (ld / 4));
  const float4 v = t < n_tok && c < cols ? load_x4(x, 0, t, c, cols, (cols & 3) == 0) : (float4)(0.0f);
  xh[id] = (uint2)(pack_half2(v.x, v.y), pack_half2(v.z, v.w));
}

// Pair p of local tile row r sits at pair position p ^ swz(r) of that row: the 64-bit fragment loads
// (a half-warp reads 4 rows x 4 pairs) and the decode stores (16 consecutive rows, one pair) are both
// free of bank conflicts. The mma takes K in any order that A and B share, so a lane's two fragment
// words are the two halves of one pair.
inline int tile_pair(int r, int p) { return r * LDK + 2 * (p ^ ((((r >> 1) & 1) << 2) | ((r >> 2) & 3))); }

inline void store_pair(__local uint* tile, int r, int p, float4 v) {
  *(__local uint2*)(tile + tile_pair(r, p)) = (uint2)(pack_half2(v.x, v.y), pack_half2(v.z, v.w));
}

// codes: [rows, row_words] uint4 (WFMT 4 / 8: the matmul_lut.cl layout; WFMT 16: fp16 rows,
//        row_words = w_stride / 8)   lut / lut_stride / scales / absmax2 / dq_lut / dq_offset /
//        blocks_per_row / block_shift: as matmul_lut.cl   xh: [ceil(n_tok / BM) * BM, ld] fp16 from
//        gemm_x_to_f16, ld = the K steps * KS   y: [n_tok, rows] f32
// NDRange: global (ceil(rows / 128) * 256, ceil(n_tok / 128)), local (256, 1).
__kernel __attribute__((reqd_work_group_size(GD_THREADS, 1, 1)))
void gemm_dequant(__global const uint4* codes, int row_words, __global const float* lut, int lut_stride,
                  __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                  float dq_offset, int blocks_per_row, int block_shift, __global const uint2* xh, int ld,
                  __global float* y, int rows, int cols, int n_tok, int accumulate) {
  __local uint Bs[2 * BN * LDK] __attribute__((aligned(16)));  // [stage][BN rows][KS] fp16 weights
  __local uint As[2 * BM * LDK] __attribute__((aligned(16)));  // [stage][BM tokens][KS] fp16 x
  __local float table[TABLE_FLOATS];
  const int lid = get_local_id(0);
  const int r0 = get_group_id(0) * BN;
  const int t0 = get_group_id(1) * BM;
  const int row_local = lid & (BN - 1), half_k = lid / BN;  // this work-item decodes K values 16 half_k ..
  const int my_row = min(r0 + row_local, rows - 1);          // of this row (clamped: not stored)
  __local const float* T = fill_tables(table, lut, lut_stride, r0, rows, row_local, lid, GD_THREADS);

  __global const uint2* wrow = (__global const uint2*)(codes + (size_t)my_row * row_words);
  const int row_units = row_words * 2;
  const size_t sbase = (size_t)my_row * blocks_per_row;
  const int steps = ld / KS;            // = ceil(cols / KS) for WFMT 16, row_words / SLOTS otherwise
  const int steps2 = (steps + 1) & ~1;  // the loop runs steps in pairs; a step past the end loads zeros
  __global const uint2* xt = xh + (size_t)t0 * (ld / 4);  // this tile's first token

  // Register stages: this work-item's codes and x pairs of a coming step (0: even steps, 1: odd).
  uint2 q0[UNITS], q1[UNITS];
  uint2 x0[X_PER], x1[X_PER];
#define LOAD_STEP(q, xr, step)                                                                  \
  {                                                                                             \
    _Pragma("unroll") for (int u = 0; u < UNITS; ++u) {                                         \
      const int unit = (step) * (KS / UCODES) + half_k * UNITS + u;                             \
      q[u] = unit < row_units ? wrow[unit] : (uint2)(0);                                        \
    }                                                                                           \
    _Pragma("unroll") for (int i = 0; i < X_PER; ++i) {                                         \
      const int idx = lid + GD_THREADS * i, tok = idx / (KS / 4);                               \
      xr[i] = (step) < steps ? xt[(size_t)tok * (ld / 4) + (step) * (KS / 4) + idx % (KS / 4)] : (uint2)(0); \
    }                                                                                           \
  }
  // Decodes a register stage into local stage `st`: pairs 4 half_k .. + 3 of the row, and the x pairs.
#if WFMT == 16
#define DECODE_W(q, Bt, step)                                                                   \
  _Pragma("unroll") for (int j = 0; j < 4; ++j)                                                 \
      *(__local uint2*)(Bt + tile_pair(row_local, 4 * half_k + j)) = q[j];
#else
#define DECODE_W(q, Bt, step)                                                                   \
  _Pragma("unroll") for (int j = 0; j < 4; ++j) {                                               \
    const int kk = 16 * half_k + 4 * j;                                                         \
    const uint2 u = q[(4 * j) / UCODES];                                                        \
    const uint word = ((4 * j) % UCODES) < UCODES / 2 ? u.x : u.y;                              \
    store_pair(Bt, row_local, kk / 4,                                                           \
               decode_group(word, kk, (step), cols, T, scales, absmax2, dq_lut, dq_offset, sbase, block_shift)); \
  }
#endif
#define STORE_STEP(q, xr, st, step)                                                             \
  {                                                                                             \
    __local uint* Bt = Bs + (st) * (BN * LDK);                                                  \
    DECODE_W(q, Bt, step)                                                                       \
    _Pragma("unroll") for (int i = 0; i < X_PER; ++i) {                                         \
      const int idx = lid + GD_THREADS * i;                                                     \
      *(__local uint2*)(As + (st) * (BM * LDK) + tile_pair(idx / (KS / 4), idx % (KS / 4))) = xr[i]; \
    }                                                                                           \
  }

  const int lane = lid & 31, warp = lid >> 5;
  const int wm = warp & 3, wn = warp >> 2;  // warp tile: tokens 32 wm .., rows 64 wn ..
  const int gq = lane >> 2, tq = lane & 3;
  float acc[2][8][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 8; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;

#define MMA_STAGE(st)                                                                           \
  _Pragma("unroll") for (int kq = 0; kq < KS / 16; ++kq) {                                      \
    const int p = 4 * kq + tq;                                                                  \
    const __local uint* At = As + (st) * (BM * LDK);                                            \
    const __local uint* Bt = Bs + (st) * (BN * LDK);                                            \
    uint2 a[2][2], b[8];                                                                        \
    _Pragma("unroll") for (int mi = 0; mi < 2; ++mi) {                                          \
      const int r = 32 * wm + 16 * mi + gq;                                                     \
      a[mi][0] = *(const __local uint2*)(At + tile_pair(r, p));                                 \
      a[mi][1] = *(const __local uint2*)(At + tile_pair(r + 8, p));                             \
    }                                                                                           \
    _Pragma("unroll") for (int ni = 0; ni < 8; ++ni)                                            \
        b[ni] = *(const __local uint2*)(Bt + tile_pair(64 * wn + 8 * ni + gq, p));              \
    _Pragma("unroll") for (int mi = 0; mi < 2; ++mi) {                                          \
      const uint af[4] = {a[mi][0].x, a[mi][1].x, a[mi][0].y, a[mi][1].y};                      \
      _Pragma("unroll") for (int ni = 0; ni < 8; ++ni) mma_f16(acc[mi][ni], af, b[ni].x, b[ni].y); \
    }                                                                                           \
  }

  LOAD_STEP(q0, x0, 0);
  LOAD_STEP(q1, x1, 1);
  barrier(CLK_LOCAL_MEM_FENCE);  // the tables
  STORE_STEP(q0, x0, 0, 0);
  LOAD_STEP(q0, x0, 2);
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int step = 0; step < steps2; step += 2) {
    // Stage 0 holds `step`, registers 1 hold step + 1, registers 0 step + 2 (in flight).
    MMA_STAGE(0);
    STORE_STEP(q1, x1, 1, step + 1);
    LOAD_STEP(q1, x1, step + 3);
    barrier(CLK_LOCAL_MEM_FENCE);
    MMA_STAGE(1);
    STORE_STEP(q0, x0, 0, step + 2);
    LOAD_STEP(q0, x0, step + 4);
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  // Fragment element e of (mi, ni): token 32 wm + 16 mi + gq (+ 8 for e >= 2), rows 2 tq, 2 tq + 1.
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 8; ++ni)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        store_row_pair(y, t0 + 32 * wm + 16 * mi + gq + 8 * h, r0 + 64 * wn + 8 * ni + 2 * tq, n_tok, rows,
                       (float2)(acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]), accumulate);
}

#else
// ---------------------------------------------------------------- portable (fp32 FMAs)
#define BM 64
#define LDK (KS + 1)  // local row stride in floats

inline void store4(__local float* row, int kk, float4 v) {
  row[kk] = v.x;
  row[kk + 1] = v.y;
  row[kk + 2] = v.z;
  row[kk + 3] = v.w;
}

// Arguments as the tensor-core kernel. NDRange: global (ceil(rows / 128) * 128, ceil(n_tok / 64)),
// local (128, 1).
__kernel __attribute__((reqd_work_group_size(128, 1, 1)))
void gemm_dequant(__global const uint4* codes, int row_words, __global const float* lut, int lut_stride,
                  __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                  float dq_offset, int blocks_per_row, int block_shift, __global const float* x,
                  __global float* y, int rows, int cols, int n_tok, int accumulate) {
  __local float Bs[BN * LDK];  // [BN rows][KS] decoded weights
  __local float As[BM * LDK];  // [BM tokens][KS] x
  __local float table[TABLE_FLOATS];
  const int lid = get_local_id(0);
  const int r0 = get_group_id(0) * BN;
  const int t0 = get_group_id(1) * BM;
  const int my_row = min(r0 + lid, rows - 1);  // the row this work-item decodes (clamped: not stored)
  __local const float* T = fill_tables(table, lut, lut_stride, r0, rows, lid, lid, 128);

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

  const int tr = lid % 16, tt = lid / 16;  // rows tr + 16 i, tokens tt + 8 j
  float acc[8][8];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  LOAD_STEP(0);
  barrier(CLK_LOCAL_MEM_FENCE);  // the tables
  for (int step = 0; step < steps; ++step) {
    // Decode this work-item's row slots into Bs, and its x values into As.
    __local float* brow = Bs + lid * LDK;
    for (int s = 0; s < SLOTS; ++s) {
#if WFMT == 16
      const float8 h = half8_bits_to_float8(qr[s]);
      store4(brow, s * 8, h.lo);
      store4(brow, s * 8 + 4, h.hi);
#else
      for (int g = 0; g < CPS / 4; ++g) {
        const int kk = s * CPS + 4 * g;
        store4(brow, kk, decode_group(word_of(qr[s], (kk % CPS) * WFMT / 32), kk, step, cols, T, scales, absmax2, dq_lut,
                                      dq_offset, sbase, block_shift));
      }
#endif
    }
    for (int i = 0; i < A_PER; ++i) {
      const int idx = lid + 128 * i, tok = idx / (KS / 4), kk = 4 * (idx % (KS / 4));
      store4(As + tok * LDK, kk, xr[i]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    LOAD_STEP(min(step + 1, steps - 1));  // in flight while this step computes (unconditional: PoCL 3.1
                                          // mis-compiles loops inside a uniform `if` between barriers)
    for (int k = 0; k < KS; ++k) {
      float bv[8], av[8];
      for (int i = 0; i < 8; ++i) bv[i] = Bs[(tr + 16 * i) * LDK + k];
      for (int j = 0; j < 8; ++j) av[j] = As[(tt + 8 * j) * LDK + k];
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 8; ++j) acc[i][j] = fma(bv[i], av[j], acc[i][j]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      const int row = r0 + tr + 16 * i, tok = t0 + tt + 8 * j;
      if (tok < n_tok && row < rows) {
        __global float* out = y + (size_t)tok * rows + row;
        *out = accumulate ? *out + acc[i][j] : acc[i][j];
      }
    }
}
#endif
