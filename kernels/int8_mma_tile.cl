// int8_mma_tile.cl: what the int8 tensor-core GEMMs (matmul_int8.cl, gemm_int8_blocks.cl) share: local
// tiles of rows of BK = 64 int8 K values in 16-byte chunks, XOR-swizzled by row, and the mma.sync
// m16n8k32 fragment loads and product on them. The includer defines BK (64), MT and NT (the m16 and n8
// tiles of a warp). NVIDIA only (QUILL_PTX).
#ifndef QUILL_INT8_MMA_TILE_CL
#define QUILL_INT8_MMA_TILE_CL

#include "common.cl"

#if BK != 64
#error "tile_chunk's swizzle is laid out for 64-byte rows (4 chunks)"
#endif

// uint4 index, within a stage, of 16-byte chunk v of staged row r. The chunk is XOR-swizzled by row so
// that both the uint4 stores (2 rows x 4 chunks per quarter-warp) and the 64-bit fragment loads (4 rows x
// 8 words per half-warp) hit 32 distinct banks.
inline int tile_chunk(int r, int v) { return r * (BK / 16) + (v ^ (((r >> 1) & 1) << 1)); }

// This lane's word offset in a stage for fragment row g = lane / 4 of k32 step s (0, 1): chunk (t4 >> 1)
// (+ 2 for step 1), swizzled as tile_chunk does for rows whose (r >> 1) & 1 is (g >> 1) & 1, word
// (2 t4) & 3. The mma sums over k, so any K order that A and B share is exact: lane t4's two fragment words
// are the adjacent words 2 t4, 2 t4 + 1 of the step (one 64-bit load) instead of t4, t4 + 4. Every
// fragment row is (a multiple of 8) + g, so each load is a row base + this offset.
inline int fragment_word(int lane, int s) {
  const int g = lane >> 2, t4 = lane & 3, swz = ((g >> 1) & 1) << 1;
  return g * (BK / 4) + 4 * ((2 * s + (t4 >> 1)) ^ swz) + ((2 * t4) & 3);
}

// The fragments of one k32 step (lw = fragment_word): A rows a0 + 16 a (m16 tile a, rows + g and + g + 8),
// B rows b0 + 8 b (n8 tile b), from stages cA [.., BK] and cB [.., BK] (bytes, as words).
__attribute__((always_inline)) inline void load_fragments(__local const uint* cA, __local const uint* cB, int a0,
                                                          int b0, int lw, uint af[MT][4], uint bf[NT][2]) {
#pragma unroll
  for (int a = 0; a < MT; ++a) {
    const int r = a0 + a * 16;
    const uint2 lo = *(__local const uint2*)(cA + r * (BK / 4) + lw);
    const uint2 hi = *(__local const uint2*)(cA + (r + 8) * (BK / 4) + lw);
    af[a][0] = lo.x;
    af[a][1] = hi.x;
    af[a][2] = lo.y;
    af[a][3] = hi.y;
  }
#pragma unroll
  for (int b = 0; b < NT; ++b) {
    const uint2 p = *(__local const uint2*)(cB + (b0 + b * 8) * (BK / 4) + lw);
    bf[b][0] = p.x;
    bf[b][1] = p.y;
  }
}

// c += a b: m16n8k32, int8 x int8 -> int32 (c0, c1: row g, columns 2 t4, 2 t4 + 1; c2, c3: row g + 8).
__attribute__((always_inline)) inline void mma_s8(int* c, const uint* a, const uint* b) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
               : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#endif  // QUILL_INT8_MMA_TILE_CL
