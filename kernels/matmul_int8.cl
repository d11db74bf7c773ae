// matmul_int8.cl: vector-wise int8 / LLM.int8() matmul (QUANT_SPEC.md 1) on activation codes from
// quantize.cl. The int32 part is exact; the epilogue recombines in fp32 in the same kernel:
//   y[i,k] (+)= C32[i,k] * SCA[i] * SCB[k] / 16129 + sum_{j in O} A[i,j] * W16[k,j]
// with W16[k,j] the kept fp16 column (slot[j] >= 0) or the int8 fallback CB[k,j] * SCB[k] / 127, and SCA
// quantize.cl's row scales (each token's absmax, or the static calibrated amax for every token).
// Two kernels:
//   matmul_int8_rows: one 32-lane group per weight row, TOK_TILE tokens per pass (decode / skinny);
//     NVIDIA: dp4a on uint4 loads + shfl.sync reduction; portable: the same with integer byte dots.
//   matmul_int8_mma (QUILL_PTX only): tiled GEMM on int8 tensor cores, mma.sync m16n8k32, tiles staged
//     in local memory, two stages (16-byte chunks swizzled: conflict-free fragment loads). The outlier
//     part is a side GEMM on the tf32 tensor cores in the same tiles (A[:, O] W16[:, O]^T, 16 outlier
//     columns per staged chunk), each operand split hi + lo so that the sum keeps fp32 accuracy.
//   matmul_int8_digits (QUILL_PTX only): the outlier columns whose weight is the int8 fallback, when
//     int8_outliers.cl has gathered them (x as two int8 digits, within amax / 64516 of each value), on
//     the same int8 tensor cores, added to matmul_int8_mma's output; its side GEMM then takes only the
//     kept fp16 columns and any past the gather's capacity.
// Layouts (written by engine/linear_int8.cpp): CB [rows_pad, kpad] int8 (zero padded; rows_pad a
// multiple of BN, kpad a multiple of BK), SCB [rows_pad] f32, slot [cols] int, W16 [rows_pad, n16] fp16.
#include "common.cl"

#ifndef WG_SIZE
#define WG_SIZE 128
#endif
#ifndef TOK_TILE
#define TOK_TILE 4
#endif
#define ROWS_PER_WG (WG_SIZE / QUILL_LANES)

#ifndef WARPS_M
#define WARPS_M 2
#endif
#ifndef WARPS_N
#define WARPS_N 4
#endif
#ifndef MT
#define MT 2
#endif
#ifndef NT
#define NT 4
#endif
#ifndef BK
#define BK 64
#endif

// A[i,j] * W16[k,j] for the outlier column j.
inline float outlier_term(int i, int k, int j, __global const float* X, int cols, __global const int* slot,
                          __global const half* W16, int n16, __global const char* CB, __global const float* SCB,
                          int kpad) {
  const int s = slot[j];
  const float w = s >= 0 ? vload_half((size_t)k * n16 + s, W16) : (float)CB[(size_t)k * kpad + j] * SCB[k] / 127.0f;
  return X[(size_t)i * cols + j] * w;
}

// CB: [rows_pad, kpad] int8   SCB: [rows_pad] f32   slot: [cols] int   W16: [rows_pad, n16] fp16
// codes: [n_tok, kpad] int8   SCA: [n_tok] f32   X: [n_tok, cols] f32 (the unquantized activations)
// olist: [cols] int, ocount: [1] int (from quantize_rows)   Y: [n_tok, rows] f32
// NDRange: global (ceil(rows / ROWS_PER_WG) * WG_SIZE, ceil(n_tok / TOK_TILE)), local (WG_SIZE, 1).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void matmul_int8_rows(__global const char* CB, __global const float* SCB, __global const int* slot,
                      __global const half* W16, int n16, __global const char* codes, __global const float* SCA,
                      __global const float* X, __global const int* olist, __global const int* ocount,
                      __global float* Y, int rows, int cols, int kpad, int n_tok, int accumulate) {
  __local int iscratch[WG_SIZE];
  __local float fscratch[WG_SIZE];
  const int lane = get_local_id(0) % QUILL_LANES;
  const int row = get_group_id(0) * ROWS_PER_WG + get_local_id(0) / QUILL_LANES;
  const int t0 = get_group_id(1) * TOK_TILE;
  const int n_here = min(TOK_TILE, n_tok - t0);
  const int n_out = ocount[0];

  int acc[TOK_TILE];
  for (int t = 0; t < TOK_TILE; ++t) acc[t] = 0;
  if (row < rows) {
    __global const uint4* w = (__global const uint4*)(CB + (size_t)row * kpad);
    __global const uint4* x = (__global const uint4*)(codes + (size_t)t0 * kpad);
    const int nv = kpad / 16, xstride = kpad / 16;
#pragma unroll 4
    for (int v = lane; v < nv; v += QUILL_LANES) {
      const uint4 wv = w[v];
      for (int t = 0; t < TOK_TILE; ++t) {
        if (t < n_here) {
          const uint4 xv = x[(size_t)t * xstride + v];
          acc[t] = dot_s8x4(wv.w, xv.w, dot_s8x4(wv.z, xv.z, dot_s8x4(wv.y, xv.y, dot_s8x4(wv.x, xv.x, acc[t]))));
        }
      }
    }
  }
  for (int t = 0; t < TOK_TILE; ++t) {
    const int c32 = lane_group_isum(acc[t], iscratch);
    float part = 0.0f;
    if (row < rows && t < n_here)
      for (int o = lane; o < n_out; o += QUILL_LANES)
        part += outlier_term(t0 + t, row, olist[o], X, cols, slot, W16, n16, CB, SCB, kpad);
    const float osum = n_out > 0 ? lane_group_sum(part, fscratch) : 0.0f;
    if (lane == 0 && row < rows && t < n_here) {
      const size_t at = (size_t)(t0 + t) * rows + row;
      const float y = int8_dequant(c32, SCA[t0 + t], SCB[row]) + osum;
      Y[at] = accumulate ? Y[at] + y : y;
    }
  }
}

#if QUILL_PTX
#define MMA_THREADS (WARPS_M * WARPS_N * 32)
#ifndef MMA_DIST
#define MMA_DIST 1  // k-tiles between a k-tile's global loads and its use: 1 or 2
#endif
#define BM (WARPS_M * MT * 16)
#define BN (WARPS_N * NT * 8)
#define LDS_STRIDE BK            // bytes per staged row: no padding, 16-byte chunks swizzled (tile_chunk)
#define VPR (BK / 16)            // uint4 per tile row
#define A_LOADS (BM * VPR / MMA_THREADS)
#define B_LOADS (BN * VPR / MMA_THREADS)
#define A_STAGE (BM * LDS_STRIDE)  // bytes
#define B_STAGE (BN * LDS_STRIDE)
#define OCH 16                 // outlier columns per staged chunk of the side GEMM (two k8 steps)
#define OSTRIDE (OCH + 4)      // words per staged row: conflict-free fragment loads
#include "int8_mma_tile.cl"
// Local arrays: the two k-tile stages, or the outlier chunk's hi / lo rows after the main loop.
#define A_LOCAL_BYTES (2 * A_STAGE > 2 * BM * OSTRIDE * 4 ? 2 * A_STAGE : 2 * BM * OSTRIDE * 4)
#define B_LOCAL_BYTES (2 * B_STAGE > 2 * BN * OSTRIDE * 4 ? 2 * B_STAGE : 2 * BN * OSTRIDE * 4)

// x rounded to tf32 (nearest, ties away), as the bits the tf32 mma reads.
inline uint tf32_rna(float x) {
  uint r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

// d += a b on the tf32 tensor cores: m16n8k8, f32 accumulate (fragment layouts at the call site).
inline void mma_tf32(float* d, const uint* a, const uint* b) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Global -> registers: this thread's share of the k-tile kt of A (codes, tokens m0..) and B (CB, rows n0..).
inline void load_tile(uint4* ra, uint4* rb, __global const char* codes, __global const char* CB, int m0, int n0,
                      int n_tok, int kpad, int kt, int tid) {
  for (int l = 0; l < A_LOADS; ++l) {
    const int idx = tid + l * MMA_THREADS, r = idx / VPR, v = idx % VPR;
    ra[l] = m0 + r < n_tok ? *(__global const uint4*)(codes + (size_t)(m0 + r) * kpad + kt * BK + v * 16) : (uint4)(0);
  }
  for (int l = 0; l < B_LOADS; ++l) {
    const int idx = tid + l * MMA_THREADS, r = idx / VPR, v = idx % VPR;
    rb[l] = *(__global const uint4*)(CB + (size_t)(n0 + r) * kpad + kt * BK + v * 16);
  }
}

// This thread's share of a k-tile, held in registers (ra, rb: load_tile), stored into local stage st.
#define MMA_STORE_STAGE(st, ra, rb)                                                  \
  {                                                                                  \
    _Pragma("unroll") for (int l_ = 0; l_ < A_LOADS; ++l_) {                         \
      const int idx_ = tid + l_ * MMA_THREADS;                                       \
      sA4[(st) * (A_STAGE / 16) + tile_chunk(idx_ / VPR, idx_ % VPR)] = (ra)[l_];    \
    }                                                                                \
    _Pragma("unroll") for (int l_ = 0; l_ < B_LOADS; ++l_) {                         \
      const int idx_ = tid + l_ * MMA_THREADS;                                       \
      sB4[(st) * (B_STAGE / 16) + tile_chunk(idx_ / VPR, idx_ % VPR)] = (rb)[l_];    \
    }                                                                                \
  }

// acc += the products of local stage st (two k32 steps) for this warp's MT x NT tiles.
#define MMA_COMPUTE_STAGE(st)                                                                          \
  {                                                                                                    \
    __local const uint* cA_ = (__local const uint*)(sA4 + (st) * (A_STAGE / 16));                      \
    __local const uint* cB_ = (__local const uint*)(sB4 + (st) * (B_STAGE / 16));                      \
    _Pragma("unroll") for (int kk_ = 0; kk_ < BK / 4; kk_ += 8) { /* word offset of each k32 step */   \
      uint af_[MT][4], bf_[NT][2];                                                                     \
      load_fragments(cA_, cB_, wm * MT * 16, wn * NT * 8, kk_ == 0 ? lane_w0 : lane_w1, af_, bf_);     \
      _Pragma("unroll") for (int a_ = 0; a_ < MT; ++a_)                                                \
        _Pragma("unroll") for (int b_ = 0; b_ < NT; ++b_) mma_s8(acc[a_][b_], af_[a_], bf_[b_]);       \
    }                                                                                                  \
  }

// The K loop of MMA_K_LOOP over a_ / b_ (row stride ld_), k-tiles 0 .. kn_ - 1, tile origin m0_ / n0_.
#if MMA_DIST == 1
// Two local stages: the registers of k-tile kt+1 are stored into the other stage while this one is
// consumed; one barrier per k-tile.
#define MMA_K_TILES()                                                                     \
  {                                                                                       \
    uint4 ra[A_LOADS], rb[B_LOADS];                                                       \
    load_tile(ra, rb, a_, b_, m0_, n0_, n_tok, ld_, 0, tid);                              \
    MMA_STORE_STAGE(0, ra, rb);                                                           \
    barrier(CLK_LOCAL_MEM_FENCE);                                                         \
    for (int kt = 0; kt < kn_; ++kt) {                                                    \
      const int cur = kt & 1;                                                             \
      if (kt + 1 < kn_) load_tile(ra, rb, a_, b_, m0_, n0_, n_tok, ld_, kt + 1, tid);     \
      MMA_COMPUTE_STAGE(cur);                                                             \
      if (kt + 1 < kn_) MMA_STORE_STAGE(cur ^ 1, ra, rb);                                 \
      barrier(CLK_LOCAL_MEM_FENCE);                                                       \
    }                                                                                     \
  }
#else
// Two local stages and two register sets: k-tile kt + 2's loads are issued as k-tile kt is consumed, and
// k-tile kt + 1 (loaded one k-tile earlier) is stored into the other stage; one barrier per k-tile.
// Unrolled by two so that the register sets swap roles without copies (a copy would wait for the loads).
#define MMA_K_TILES()                                                                     \
  {                                                                                       \
    uint4 ra0[A_LOADS], rb0[B_LOADS], ra1[A_LOADS], rb1[B_LOADS];                         \
    load_tile(ra0, rb0, a_, b_, m0_, n0_, n_tok, ld_, 0, tid);                            \
    if (1 < kn_) load_tile(ra1, rb1, a_, b_, m0_, n0_, n_tok, ld_, 1, tid);               \
    MMA_STORE_STAGE(0, ra0, rb0);                                                         \
    barrier(CLK_LOCAL_MEM_FENCE);                                                         \
    for (int kt = 0; kt < kn_; kt += 2) {                                                 \
      if (kt + 2 < kn_) load_tile(ra0, rb0, a_, b_, m0_, n0_, n_tok, ld_, kt + 2, tid);   \
      MMA_COMPUTE_STAGE(0);                                                               \
      if (kt + 1 < kn_) MMA_STORE_STAGE(1, ra1, rb1);                                     \
      barrier(CLK_LOCAL_MEM_FENCE);                                                       \
      if (kt + 1 < kn_) { /* (uniform) */                                                 \
        if (kt + 3 < kn_) load_tile(ra1, rb1, a_, b_, m0_, n0_, n_tok, ld_, kt + 3, tid); \
        MMA_COMPUTE_STAGE(1);                                                             \
        if (kt + 2 < kn_) MMA_STORE_STAGE(0, ra0, rb0);                                   \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
      }                                                                                   \
    }                                                                                     \
  }
#endif

// acc = A [n_tok, ld] . Bw [rows_pad, ld]^T over k-tiles 0 .. ktiles - 1 for the tile at tokens M0 .., rows
// N0 .. (the local stages free again at the end).
#define MMA_K_LOOP(A, Bw, ld, ktiles, M0, N0)                                             \
  {                                                                                       \
    __global const char* a_ = (A);                                                        \
    __global const char* b_ = (Bw);                                                       \
    const int ld_ = (ld), kn_ = (ktiles), m0_ = (M0), n0_ = (N0);                         \
    _Pragma("unroll") for (int ta_ = 0; ta_ < MT; ++ta_)                                  \
      _Pragma("unroll") for (int tb_ = 0; tb_ < NT; ++tb_)                                \
        _Pragma("unroll") for (int tc_ = 0; tc_ < 4; ++tc_) acc[ta_][tb_][tc_] = 0;      \
    MMA_K_TILES();                                                                        \
  }

// The token and weight row of accumulator element c of the warp's m16 tile a and n8 tile b (mma.sync's
// layout: c0, c1 at token g, rows 2 t4, 2 t4 + 1; c2, c3 at token g + 8).
#define ACC_TOKEN(a, c) (m0 + wm * MT * 16 + (a) * 16 + g + ((c) >> 1) * 8)
#define ACC_ROW(b, c) (n0 + wn * NT * 8 + (b) * 8 + t4 * 2 + ((c) & 1))

// Arguments and layouts as matmul_int8_rows; olist / ocount: the columns of the fp32 side GEMM (after
// int8_outlier_gather: its side list, the rest being matmul_int8_digits' part).
// NDRange: global (rows_pad / BN * MMA_THREADS, ceil(n_tok / BM)), local (MMA_THREADS, 1).
__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1)))
void matmul_int8_mma(__global const char* CB, __global const float* SCB, __global const int* slot,
                     __global const half* W16, int n16, __global const char* codes, __global const float* SCA,
                     __global const float* X, __global const int* olist, __global const int* ocount,
                     __global float* Y, int rows, int cols, int kpad, int n_tok, int accumulate) {
  __local uint4 sA4[A_LOCAL_BYTES / 16];  // 2 stages of [BM, BK] bytes: activation codes (tokens)
  __local uint4 sB4[B_LOCAL_BYTES / 16];  // 2 stages of [BN, BK] bytes: weight codes (output rows)
  const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int g = lane >> 2, t4 = lane & 3;
  const int n0 = get_group_id(0) * BN;  // first weight row
  const int m0 = get_group_id(1) * BM;  // first token

  const int lane_w0 = fragment_word(lane, 0), lane_w1 = fragment_word(lane, 1);
  int acc[MT][NT][4];
  MMA_K_LOOP(codes, CB, kpad, kpad / BK, m0, n0);

  // Dequantized, y = C32 * SCA[i] * SCB[k] / 16129; then the side GEMM over olist / ocount by tf32 mma (in the
  // same layout).
  float facc[MT][NT][4];
#pragma unroll
  for (int a = 0; a < MT; ++a)
#pragma unroll
    for (int b = 0; b < NT; ++b)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int i = ACC_TOKEN(a, c);
        const int k = ACC_ROW(b, c);  // < rows_pad: SCB is zero padded
        facc[a][b][c] = i < n_tok ? int8_dequant(acc[a][b][c], SCA[i], SCB[k]) : 0.0f;
      }
  const int n_out = ocount[0];
  for (int o0 = 0; o0 < n_out; o0 += OCH) {
    // Stage the chunk's outlier columns o0 .. o0 + OCH - 1 (zero past n_out) as tf32 hi / lo pairs:
    // sXh, sXl [BM][OSTRIDE] (tokens m0..), sWh, sWl [BN][OSTRIDE] (rows n0..), in the free stages.
    __local uint* sXh = (__local uint*)sA4;
    __local uint* sXl = sXh + BM * OSTRIDE;
    __local uint* sWh = (__local uint*)sB4;
    __local uint* sWl = sWh + BN * OSTRIDE;
    barrier(CLK_LOCAL_MEM_FENCE);  // the previous chunk's (or the main loop's) fragments are consumed
    for (int e = tid; e < BM * OCH; e += MMA_THREADS) {
      const int r = e / OCH, c = e % OCH, o = o0 + c;
      const float x = o < n_out && m0 + r < n_tok ? X[(size_t)(m0 + r) * cols + olist[o]] : 0.0f;
      const uint hi = tf32_rna(x);
      sXh[r * OSTRIDE + c] = hi;
      sXl[r * OSTRIDE + c] = tf32_rna(x - as_float(hi));
    }
    for (int e = tid; e < BN * OCH; e += MMA_THREADS) {
      const int r = e / OCH, c = e % OCH, o = o0 + c;
      float w = 0.0f;
      if (o < n_out) {
        const int j = olist[o], s = slot[j], k = n0 + r;
        w = s >= 0 ? vload_half((size_t)k * n16 + s, W16) : (float)CB[(size_t)k * kpad + j] * SCB[k] / 127.0f;
      }
      const uint hi = tf32_rna(w);
      sWh[r * OSTRIDE + c] = hi;
      sWl[r * OSTRIDE + c] = tf32_rna(w - as_float(hi));
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int kk = 0; kk < OCH; kk += 8) {  // m16n8k8: a0 (g, t4), a1 (g+8, t4), a2 (g, t4+4), a3 (g+8, t4+4)
      uint ah[MT][4], al[MT][4], bh[NT][2], bl[NT][2];
#pragma unroll
      for (int a = 0; a < MT; ++a) {
        const int base = (wm * MT * 16 + a * 16 + g) * OSTRIDE + kk + t4;
        const int at[4] = {base, base + 8 * OSTRIDE, base + 4, base + 8 * OSTRIDE + 4};
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          ah[a][q] = sXh[at[q]];
          al[a][q] = sXl[at[q]];
        }
      }
#pragma unroll
      for (int b = 0; b < NT; ++b) {  // b0 (k t4, n g), b1 (k t4+4, n g)
        const int base = (wn * NT * 8 + b * 8 + g) * OSTRIDE + kk + t4;
        bh[b][0] = sWh[base];
        bh[b][1] = sWh[base + 4];
        bl[b][0] = sWl[base];
        bl[b][1] = sWl[base + 4];
      }
#pragma unroll
      for (int a = 0; a < MT; ++a)
#pragma unroll
        for (int b = 0; b < NT; ++b) {  // hi*hi + hi*lo + lo*hi: the lo*lo term is below fp32 rounding
          mma_tf32(facc[a][b], ah[a], bh[b]);
          mma_tf32(facc[a][b], ah[a], bl[b]);
          mma_tf32(facc[a][b], al[a], bh[b]);
        }
    }
  }

#pragma unroll
  for (int a = 0; a < MT; ++a) {
#pragma unroll
    for (int b = 0; b < NT; ++b) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int i = ACC_TOKEN(a, c);
        const int k = ACC_ROW(b, c);
        if (i < n_tok && k < rows) {
          const size_t at = (size_t)i * rows + k;
          Y[at] = accumulate ? Y[at] + facc[a][b][c] : facc[a][b][c];
        }
      }
    }
  }
}

// The outlier columns that int8_outlier_gather put on the int8 tensor cores: for each of x's two digits d,
// y += (xd[d] . cbo^T) * xds[d] * SCB / 16129 over the first n_dig = min(dcount[1], cap) outlier columns
// (nothing when the gather found no fallback column among them, dcount[2] == 0). Runs after
// matmul_int8_mma on the same y. (A kernel of its own: in matmul_int8_mma's epilogue it raised the
// 128x128 tiling from 128 to 178 registers, docs/PERFORMANCE.md.)
// xd: [2, n_tok, cap] int8   xds: [2, n_tok] f32   cbo: [rows_pad, cap] int8   dcount: [3] int (scount)
// NDRange: as matmul_int8_mma.
__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1)))
void matmul_int8_digits(__global const char* cbo, __global const float* SCB, __global const char* xd,
                        __global const float* xds, __global const int* dcount, int cap, __global float* Y, int rows,
                        int n_tok) {
  __local uint4 sA4[2 * A_STAGE / 16];  // 2 stages of [BM, BK] bytes: x's digits (tokens)
  __local uint4 sB4[2 * B_STAGE / 16];  // 2 stages of [BN, BK] bytes: weight codes (output rows)
  const int n_dig = dcount[2] > 0 ? min(dcount[1], cap) : 0;
  if (n_dig == 0) return;  // (uniform, before any barrier)
  const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int g = lane >> 2, t4 = lane & 3;
  const int n0 = get_group_id(0) * BN;  // first weight row
  const int m0 = get_group_id(1) * BM;  // first token
  const int lane_w0 = fragment_word(lane, 0), lane_w1 = fragment_word(lane, 1);
  for (int d = 0; d < 2; ++d) {
    int acc[MT][NT][4];
    MMA_K_LOOP(xd + (size_t)d * n_tok * cap, cbo, cap, (n_dig + BK - 1) / BK, m0, n0);
#pragma unroll
    for (int a = 0; a < MT; ++a)
#pragma unroll
      for (int b = 0; b < NT; ++b)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int i = ACC_TOKEN(a, c);
          const int k = ACC_ROW(b, c);
          if (i < n_tok && k < rows)
            Y[(size_t)i * rows + k] += int8_dequant(acc[a][b][c], xds[d * n_tok + i], SCB[k]);
        }
  }
}
#endif  // QUILL_PTX
