// gemm_int8_blocks.cl: prefill GEMM y[n_tok, rows] (+)= x[n_tok, cols] . W^T on the int8 tensor cores
// for the weight formats with one scale per block of >= 32 columns whose codes are, or are rounded to,
// int8: int4 (GGUF Q4_0: code - 8, WFMT 4) and q8_0 (the signed code, WFMT 8) exactly; nf4 / fp4
// (LUT_INT8: WFMT 4 through the 16-entry table, each value rounded to round(T[c] * 127) and the block
// scale divided by 127), in the matmul_lut.cl layout. The 4-bit codes are unpacked tile by tile to int8,
// never to a copy of the weights. As llama.cpp's MMQ kernels do, x is quantized per token and block of
// 32 columns first (gemm_quantize_x: int8 codes and one fp32 scale each, dx = absmax / 127), so each K
// step of 32 is one block of both operands:
//   y[t, r] = sum_b dx[t, b] * dw[r, b] * sum_{j in b} qx[t, j] * qw[r, j]
// with the inner sum exact in int32 (mma.sync m16n8k32 s8.s8.s32) and the outer one in fp32.
// Precision: x's int8 rounding (at most dx / 2 per value) on top of the format's own; LUT_INT8 also
// rounds each weight by at most absmax / 254 of its block.
// The K order inside a block is free as long as both operands share it: a 32-bit word of 4-bit codes
// (columns 8w .. 8w+7, nibble i = column 8w + i) unpacks with two masks into the bytes of columns
// 8w + {0, 2, 4, 6} and 8w + {1, 3, 5, 7}, so gemm_quantize_x writes x's codes in that order (WFMT 4).
// NVIDIA only (QUILL_PTX): the host uses it where inline PTX and sm_80+ exist.
#include "lut_common.cl"

#ifndef WFMT
#define WFMT 4
#endif
#define QX_BLOCK 32  // columns per x scale: one k32 step of the mma

// x [n_tok, cols] f32 -> qx [tok_pad, ld] int8 codes rint(x * (127 / amax)) (half even; the tests bound
// the rounding, so no exact division is needed) in the K order above, dx [tok_pad, ld / 32] f32 = amax /
// 127 of the token's block (0 and codes 0 past n_tok, past cols, and for an all-zero block). ld % 32 == 0,
// tok_pad a multiple of the GEMM's BM.
// NDRange: global (tok_pad * ld / 32): one work-item per (token, block).
__kernel void gemm_quantize_x(__global const float* x, int n_tok, int cols, __global uint* qx, __global float* dx,
                              int ld) {
  const int id = get_global_id(0), nb = ld / QX_BLOCK, t = id / nb, c0 = (id % nb) * QX_BLOCK;
  float v[QX_BLOCK];
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < QX_BLOCK; ++i) {
    v[i] = t < n_tok && c0 + i < cols ? x[(size_t)t * cols + c0 + i] : 0.0f;
    amax = fmax(amax, fabs(v[i]));
  }
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
#pragma unroll
  for (int w = 0; w < QX_BLOCK / 4; ++w) {
    int q[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#if WFMT == 4  // word w of the block: columns 8 (w / 2) + {0, 2, 4, 6} (w even) or + {1, 3, 5, 7} (w odd)
      const int col = 8 * (w >> 1) + 2 * i + (w & 1);
#else
      const int col = 4 * w + i;
#endif
      q[i] = (int)clamp(rint(v[col] * inv), -127.0f, 127.0f);
    }
    qx[(size_t)id * (QX_BLOCK / 4) + w] =
        (uint)(q[0] & 255) | ((uint)(q[1] & 255) << 8) | ((uint)(q[2] & 255) << 16) | ((uint)(q[3] & 255) << 24);
  }
  dx[id] = amax / 127.0f;
}

#if QUILL_PTX
#define GI_THREADS 256
#define WARPS_M 4  // warp grid: 4 x 2 warps, each 2 m16 tiles (tokens) x 8 n8 tiles (rows)
#define WARPS_N 2
#define MT 2
#define NT 8
#define BM (WARPS_M * MT * 16)  // 128 tokens per tile
#define BN (WARPS_N * NT * 8)   // 128 weight rows per tile
#define BK 64                   // K values per stage: two blocks of 32
#define VPR (BK / 16)           // uint4 per staged row
#define A_LOADS (BM * VPR / GI_THREADS)
#if WFMT == 4
#define B_UNITS (BN * BK / 32 / GI_THREADS)  // uint4 of 32 nibbles per work-item per stage
#else
#define B_UNITS (BN * BK / 16 / GI_THREADS)  // uint4 of 16 codes
#endif
#define A_STAGE (BM * BK)  // bytes
#define B_STAGE (BN * BK)
#include "int8_mma_tile.cl"

#if LUT_INT8
inline uint gi_nibbles_to_s8(uint b, const uint* tab) { return table_s8x4(b, tab); }
#else
// 4 nibbles in bytes (0..15 each) -> the signed bytes code - 8: no borrow crosses a byte with bit 7 set.
inline uint gi_nibbles_to_s8(uint b, const uint* unused) {
  return ((b | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}
#endif

// Two words of 4-bit codes (columns 8w .. 8w + 15) -> 16 int8 values in the K order above: columns
// 8w + {0, 2, 4, 6}, 8w + {1, 3, 5, 7}, then the same for the second word.
inline uint4 gi_unpack(uint w0, uint w1, const uint* tab) {
  return (uint4)(gi_nibbles_to_s8(w0 & 0x0F0F0F0Fu, tab), gi_nibbles_to_s8((w0 >> 4) & 0x0F0F0F0Fu, tab),
                 gi_nibbles_to_s8(w1 & 0x0F0F0F0Fu, tab), gi_nibbles_to_s8((w1 >> 4) & 0x0F0F0F0Fu, tab));
}

// codes: [rows, row_words] uint4 (matmul_lut.cl layout)   lut: [16] f32 (read with LUT_INT8)
// scales / absmax2 / dq_lut / dq_offset / blocks_per_row / block_shift: as matmul_lut.cl (block_shift >= 5)
// qx: [tok_pad, ld] int8, dx: [tok_pad, ld / 32] f32 from gemm_quantize_x, ld = the rows' K extent
// (row_words * 32 or * 16)   y: [n_tok, rows] f32.
// NDRange: global (ceil(rows / BN) * GI_THREADS, ceil(n_tok / BM)), local (GI_THREADS, 1).
__kernel __attribute__((reqd_work_group_size(GI_THREADS, 1, 1)))
void gemm_int8_blocks(__global const uint4* codes, int row_words, __global const float* lut,
                      __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                      float dq_offset, int blocks_per_row, int block_shift, __global const uint4* qx,
                      __global const float* dx, int ld, __global float* y, int rows, int cols, int n_tok,
                      int accumulate) {
  __local uint4 sA4[2 * A_STAGE / 16];  // 2 stages of [BM tokens, BK] int8 x codes
  __local uint4 sB4[2 * B_STAGE / 16];  // 2 stages of [BN rows, BK] int8 weight codes
  __local float sDX[2 * 2 * BM];        // [stage][block 0 / 1][BM] x scales
  __local float sDW[2 * 2 * BN] __attribute__((aligned(16)));  // [stage][block 0 / 1][BN] weight scales (0 past cols)
  const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int g = lane >> 2, t4 = lane & 3;
  const int r0 = get_group_id(0) * BN;  // first weight row
  const int m0 = get_group_id(1) * BM;  // first token
  const int ktiles = ld / BK, xwords = ld / 16, nblk = ld / QX_BLOCK;

  // This work-item's staging duties: A chunks (token, 16-byte chunk), B units (row, unit), one x scale
  // and one weight scale (row / token sc_r of block sc_b of the stage).
  const int sc_r = tid & 127, sc_b = tid >> 7;
  const int w_row = min(r0 + sc_r, rows - 1);  // clamped: rows past the end are not stored
  __global const uint4* wrow = codes + (size_t)w_row * row_words;
  const size_t sbase = (size_t)w_row * blocks_per_row;

  uint4 ra[A_LOADS], rb[B_UNITS];
  float rdx, rdw;
#if LUT_INT8  // (WFMT 4 only)
  uint tab[4];
  int8_table(lut, tab);
#else
  const uint* tab = 0;
#endif
#define GI_LOAD(kt)                                                                                   \
  {                                                                                                   \
    _Pragma("unroll") for (int l = 0; l < A_LOADS; ++l) {                                             \
      const int idx = tid + l * GI_THREADS;                                                           \
      ra[l] = load_stream4(qx + ((size_t)(m0 + idx / VPR) * xwords + (kt) * VPR + idx % VPR));        \
    }                                                                                                 \
    _Pragma("unroll") for (int l = 0; l < B_UNITS; ++l) {                                             \
      const int unit = (WFMT == 4 ? 2 : 4) * (kt) + (B_UNITS == 1 ? sc_b : l + 2 * sc_b);             \
      rb[l] = unit < row_words ? load_stream4(wrow + unit) : (uint4)(0u);                             \
    }                                                                                                 \
    const int blk = 2 * (kt) + sc_b, c = blk * QX_BLOCK;                                              \
    rdx = dx[(size_t)(m0 + sc_r) * nblk + blk];                                                       \
    rdw = 0.0f;                                                                                       \
    if (c < cols) rdw = INT8_CODE_UNIT * block_scale(scales, absmax2, dq_lut, dq_offset, sbase + (c >> block_shift)); \
  }
  // Registers -> local stage st. B: WFMT 4 unit = 32 nibbles of row sc_r, block sc_b -> 2 chunks of
  // int8 (words 0, 1 -> chunk 2 sc_b; 2, 3 -> chunk 2 sc_b + 1); WFMT 8 units l = chunks 2 sc_b + l.
#define GI_STORE(st)                                                                                  \
  {                                                                                                   \
    _Pragma("unroll") for (int l = 0; l < A_LOADS; ++l) {                                             \
      const int idx = tid + l * GI_THREADS;                                                           \
      sA4[(st) * (A_STAGE / 16) + tile_chunk(idx / VPR, idx % VPR)] = ra[l];                            \
    }                                                                                                 \
    if (WFMT == 4) {                                                                                  \
      const uint4 u = rb[0];                                                                          \
      const uint4 lo = gi_unpack(u.x, u.y, tab), hi = gi_unpack(u.z, u.w, tab);                     \
      sB4[(st) * (B_STAGE / 16) + tile_chunk(sc_r, 2 * sc_b)] = lo;                                     \
      sB4[(st) * (B_STAGE / 16) + tile_chunk(sc_r, 2 * sc_b + 1)] = hi;                                 \
    } else {                                                                                          \
      _Pragma("unroll") for (int l = 0; l < B_UNITS; ++l)                                             \
        sB4[(st) * (B_STAGE / 16) + tile_chunk(sc_r, 2 * sc_b + l)] = rb[l];                            \
    }                                                                                                 \
    sDX[(st) * 2 * BM + sc_b * BM + sc_r] = rdx;                                                      \
    sDW[(st) * 2 * BN + sc_b * BN + sc_r] = rdw;                                                      \
  }

  float acc[MT][NT][4];
#pragma unroll
  for (int a = 0; a < MT; ++a)
#pragma unroll
    for (int b = 0; b < NT; ++b)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[a][b][c] = 0.0f;

  const int lane_w0 = fragment_word(lane, 0), lane_w1 = fragment_word(lane, 1);
  GI_LOAD(0);
  GI_STORE(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    if (kt + 1 < ktiles) GI_LOAD(kt + 1);
    __local const uint* cA = (__local const uint*)(sA4 + cur * (A_STAGE / 16));
    __local const uint* cB = (__local const uint*)(sB4 + cur * (B_STAGE / 16));
#pragma unroll
    for (int s = 0; s < 2; ++s) {  // the stage's two blocks, one k32 step each
      uint af[MT][4], bf[NT][2];
      load_fragments(cA, cB, wm * MT * 16, wn * NT * 8, s == 0 ? lane_w0 : lane_w1, af, bf);
      float sx[MT][2];  // x scales of this lane's tokens g, g + 8 of each m16 tile
#pragma unroll
      for (int a = 0; a < MT; ++a) {
        sx[a][0] = sDX[cur * 2 * BM + s * BM + wm * MT * 16 + a * 16 + g];
        sx[a][1] = sDX[cur * 2 * BM + s * BM + wm * MT * 16 + a * 16 + g + 8];
      }
#pragma unroll
      for (int b = 0; b < NT; ++b) {
        const float2 sw = *(__local const float2*)(sDW + cur * 2 * BN + s * BN + wn * NT * 8 + b * 8 + 2 * t4);
#pragma unroll
        for (int a = 0; a < MT; ++a) {
          int c[4] = {0, 0, 0, 0};  // the block's exact sum: tokens g (c0, c1), g + 8 (c2, c3); rows 2 t4, + 1
          mma_s8(c, af[a], bf[b]);
          acc[a][b][0] = fma((float)c[0], sx[a][0] * sw.x, acc[a][b][0]);
          acc[a][b][1] = fma((float)c[1], sx[a][0] * sw.y, acc[a][b][1]);
          acc[a][b][2] = fma((float)c[2], sx[a][1] * sw.x, acc[a][b][2]);
          acc[a][b][3] = fma((float)c[3], sx[a][1] * sw.y, acc[a][b][3]);
        }
      }
    }
    if (kt + 1 < ktiles) GI_STORE(cur ^ 1);
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  // Fragment element c of (a, b): token wm*32 + 16 a + g (+ 8 for c >= 2), rows 2 t4, 2 t4 + 1.
#pragma unroll
  for (int a = 0; a < MT; ++a)
#pragma unroll
    for (int b = 0; b < NT; ++b)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        store_row_pair(y, m0 + wm * MT * 16 + a * 16 + g + 8 * h, r0 + wn * NT * 8 + b * 8 + 2 * t4, n_tok, rows,
                       (float2)(acc[a][b][2 * h], acc[a][b][2 * h + 1]), accumulate);
}
#endif  // QUILL_PTX
