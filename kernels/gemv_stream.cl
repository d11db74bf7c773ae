// gemv_stream.cl: one-token y (+)= x W^T for the weight-only code formats of matmul_lut.cl (int4 /
// q8_0 / nf4 / fp4 through dp4a, and the table formats: dyn8, per-tensor k-means), NVIDIA path only
// (warp shuffles). Same weight layout, arguments and numerics as matmul_lut.cl; a different schedule:
// - a persistent grid (a few work-groups per SM); warp w of the grid owns the row sets w, w + W, ..
//   (W = warps in the grid; a row set = GS_ROWS consecutive rows) and streams them in (row set, chunk)
//   order, a chunk being one uint4 per lane and row;
// - GS_PIPE chunks per lane and row in flight while as many are computed, so each warp keeps loading
//   as it computes (matmul_lut's work-groups load one burst each, compute, and exit);
// - x is transformed (RMSNorm / SwiGLU) once per work-group into local memory, while the first chunks
//   are on their way: as int8 groups (dp4a_x.cl) for the dp4a formats, else as fp32. RMSNorm's sum of
//   squares comes from the same pass, so table formats fuse it too;
// - GS_SWIGLU_OUT (decode's gate/up): each warp takes the row pair (gate s, up s) and writes
//   silu(gate) * up, so that the down GEMV stages plain x.
#include "lut_common.cl"

#if !QUILL_PTX
#error "gemv_stream.cl needs the NVIDIA path (warp shuffles); other devices run matmul_lut.cl"
#endif
#ifndef LUT_BITS
#define LUT_BITS 4
#endif
#ifndef LUT_DP4A
#define LUT_DP4A 0
#endif
#define CODES_PER_WORD (32 / LUT_BITS)
#define CODES_PER_UINT4 (4 * CODES_PER_WORD)
#define DP4A_NIBBLE_ORDER 1  // nf4 / fp4: their codes in order through table_s8x4_nibbles (dp4a_x.cl)
#include "dp4a_x.cl"

#ifndef GS_PIPE
#define GS_PIPE 4  // chunks per lane and row in flight while as many are computed
#endif
#ifndef GS_ROWS
#define GS_ROWS 1  // rows per row set: the x of a chunk is read from local memory once for all of them
#endif
#ifndef GS_MAX_COLS
#define GS_MAX_COLS 16384  // x columns the local staging holds (the host falls back beyond)
#endif
#define GS_GROUPS (GS_MAX_COLS / CODES_PER_UINT4)  // uint4 chunks of one row at most
#define X4_PER_GROUP (CODES_PER_UINT4 / 4)          // float4 of x per uint4 of codes: 8 or 4

#ifndef GS_SWIGLU_OUT
#define GS_SWIGLU_OUT 0
#endif
#if GS_SWIGLU_OUT && GS_ROWS != 2
#error "GS_SWIGLU_OUT pairs the rows: GS_ROWS must be 2"
#endif

#if GS_SWIGLU_OUT
// SwiGLU output (rows = 2 ffn: gate rows, then up rows): row set s is the pair (gate s, up s), and the
// kernel writes y[s] = silu(gate s) * up s, y: [ffn].
#define GS_ROW(set, j) ((set) + (j) * (rows >> 1))
#define GS_SETS (rows >> 1)
#else
// Row j of row set `set`, clamped to the last row (rows past the end are loaded and computed again,
// not stored).
#define GS_ROW(set, j) ((set) * GS_ROWS + (j) < rows ? (set) * GS_ROWS + (j) : rows - 1)
#define GS_SETS ((rows + GS_ROWS - 1) / GS_ROWS)
#endif

// The block index of chunk u of row r.
#define GS_BLOCK(r, u) ((size_t)(r) * blocks_per_row + (((u) * CODES_PER_UINT4) >> block_shift))

// Loads the next GS_PIPE chunks of this warp's (row set, chunk) sequence into q / sb and advances the
// load cursor (load_set, load_chunk); nothing is loaded past the last row set (warp-uniform).
#define GS_LOAD_BLOCK(q, sb)                                                                        \
  _Pragma("unroll") for (int p_ = 0; p_ < GS_PIPE; ++p_) {                                          \
    if (load_set < sets) {                                                                          \
      const int u_ = load_chunk * QUILL_LANES + lane;                                               \
      _Pragma("unroll") for (int j_ = 0; j_ < GS_ROWS; ++j_) {                                      \
        const int r_ = GS_ROW(load_set, j_);                                                        \
        q[p_][j_] = load_stream4(codes + ((size_t)r_ * row_words + u_));                            \
        if (u_ * CODES_PER_UINT4 < cols) sb[p_][j_] = scale_bits(scales, GS_BLOCK(r_, u_));         \
      }                                                                                             \
      STREAM_CURSOR_NEXT(load_set, load_chunk, chunks, grid_warps)                                  \
    }                                                                                               \
  }

// Adds chunk u's products for the row set's GS_ROWS rows (codes q[j], raw scale bits sb[j]; first
// row set * GS_ROWS) to acc[j]. x as staged: int8 groups (dp4a) or fp32 planes xf.
#if LUT_DP4A
__attribute__((always_inline)) inline void gs_chunk(
    const uint4* q, const uint* sb, float* acc, int u, int set, int rows, int blocks_per_row, int block_shift,
    __global const float* absmax2, __global const float* dq_lut, float dq_offset,
    __local const uint4* xlo, __local const uint4* xhi, __local const float2* xscale, const uint* tab) {
  uint xq[X_WORDS];
  const uint4 lo = xlo[u];
  xq[0] = lo.x, xq[1] = lo.y, xq[2] = lo.z, xq[3] = lo.w;
#if LUT_BITS == 4
  const uint4 hi = xhi[u];
  xq[4] = hi.x, xq[5] = hi.y, xq[6] = hi.z, xq[7] = hi.w;
#endif
  const float2 xs = xscale[u];  // (dx, xsum)
#pragma unroll
  for (int j = 0; j < GS_ROWS; ++j) {
    const float s = INT8_CODE_UNIT * scale_value(sb[j], absmax2, dq_lut, dq_offset, GS_BLOCK(GS_ROW(set, j), u));
    uint cb[X_WORDS];
    code_bytes(q[j], cb, tab);
    acc[j] = fma(s * xs.x, (float)dot_codes_x(cb, xq, (int)xs.y), acc[j]);
  }
}
#if LUT_BITS == 4
#define GS_XHI xhi
#else
#define GS_XHI xlo  // (unused)
#endif
#define GS_CHUNK(q, sb, u) \
  gs_chunk(q, sb, acc, u, set, rows, blocks_per_row, block_shift, absmax2, dq_lut, dq_offset, xlo, GS_XHI, xscale, tab)
#else
__attribute__((always_inline)) inline void gs_chunk(
    const uint4* q, const uint* sb, float* acc, int u, int set, int rows, int blocks_per_row, int block_shift,
    __global const float* absmax2, __global const float* dq_lut, float dq_offset,
    __local const float4* xf, __local const float* table) {
  float s[GS_ROWS];
#pragma unroll
  for (int j = 0; j < GS_ROWS; ++j)
    s[j] = scale_value(sb[j], absmax2, dq_lut, dq_offset, GS_BLOCK(GS_ROW(set, j), u));
#pragma unroll
  for (int k = 0; k < 4; ++k) {
#if LUT_BITS == 4
    const float4 xa = xf[(2 * k) * GS_GROUPS + u], xb = xf[(2 * k + 1) * GS_GROUPS + u];
#pragma unroll
    for (int j = 0; j < GS_ROWS; ++j) {
      float4 lo, hi;
      decode8_nibbles(word_of(q[j], k), table, &lo, &hi);
      acc[j] = fma(s[j], dot(lo, xa) + dot(hi, xb), acc[j]);
    }
#else
    const float4 xa = xf[k * GS_GROUPS + u];
#pragma unroll
    for (int j = 0; j < GS_ROWS; ++j) acc[j] = fma(s[j], dot(decode4_bytes(word_of(q[j], k), table), xa), acc[j]);
#endif
  }
}
#define GS_CHUNK(q, sb, u) \
  gs_chunk(q, sb, acc, u, set, rows, blocks_per_row, block_shift, absmax2, dq_lut, dq_offset, xf, table)
#endif

// Measurement builds only ($QUILL_GEMV_STREAM_DEFS, docs/PERFORMANCE.md): GS_DIAG_NO_COMPUTE folds each
// chunk's bits into the sum instead of computing it (the loads and schedule alone); GS_DIAG_NO_STAGE skips
// x's staging (the barrier stays). Both give wrong outputs.
#if GS_DIAG_NO_COMPUTE
#undef GS_CHUNK
#define GS_CHUNK(q, sb, u) acc[0] += (float)((q)[0].x ^ (q)[0].w ^ (sb)[0])
#endif

// A finished row set: each row summed over the warp, stored, and its accumulator cleared.
#if GS_SWIGLU_OUT
#define GS_STORE_SET()                                                                              \
  {                                                                                                 \
    const float g_ = warp_sum(acc[0]) * factor, u_ = warp_sum(acc[1]) * factor;                     \
    if (lane == 0) y[set] = silu_times(g_, u_);                                                     \
    acc[0] = acc[1] = 0.0f;                                                                         \
  }
#else
#define GS_STORE_SET()                                                                              \
  _Pragma("unroll") for (int j_ = 0; j_ < GS_ROWS; ++j_) {                                          \
    const float v_ = warp_sum(acc[j_]) * factor;                                                    \
    const int r_ = set * GS_ROWS + j_;                                                              \
    if (lane == 0 && r_ < rows) y[r_] = accumulate ? y[r_] + v_ : v_;                               \
    acc[j_] = 0.0f;                                                                                 \
  }
#endif

// Computes the GS_PIPE chunks in q / sb, advancing the compute cursor (set, chunk); at the end of a
// row set, sums each row over the warp and stores it.
#define GS_COMPUTE_BLOCK(q, sb)                                                                     \
  _Pragma("unroll") for (int p_ = 0; p_ < GS_PIPE; ++p_) {                                          \
    if (set < sets) { /* warp-uniform */                                                            \
      const int u_ = chunk * QUILL_LANES + lane;                                                    \
      if (u_ * CODES_PER_UINT4 < cols) GS_CHUNK(q[p_], sb[p_], u_); /* else padding */              \
      if (++chunk == chunks) {                                                                      \
        GS_STORE_SET();                                                                             \
        chunk = 0;                                                                                  \
        set += grid_warps;                                                                          \
      }                                                                                             \
    }                                                                                               \
  }

// codes / lut / scales / absmax2 / dq_lut / dq_offset / x / y / norm_w / eps: as matmul_lut (one
// token; 4-bit tables per tensor only, lut_stride 0). cols <= GS_MAX_COLS. pf / pf_bytes: prefetch_l2.
// GS_SWIGLU_OUT: rows even, y: [rows / 2] = silu(gate) * up, accumulate unused.
// NDRange: global (G * WG_SIZE), local (WG_SIZE), any G >= 1 (the host picks a few per SM).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gemv_stream(__global const uint4* codes, int row_words, __global const float* lut, int lut_stride,
                 __global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                 float dq_offset, int blocks_per_row, int block_shift, __global const float* x, __global float* y,
                 int rows, int cols, int n_tok, int accumulate, __global const float* norm_w, float eps,
                 __global const uchar* pf, int pf_bytes) {
#if LUT_DP4A
  DECLARE_INT8_TABLE(tab, lut);      // nf4 / fp4: the table as int8 (LUT_INT8)
  __local uint4 xlo[GS_GROUPS];      // [groups] int8 x words 0..3 of each group (dp4a_x.cl order)
#if LUT_BITS == 4
  __local uint4 xhi[GS_GROUPS];      // [groups] words 4..7
#endif
  __local float2 xscale[GS_GROUPS];  // [groups] (dx, xsum as float: |xsum| <= 32 * 127, exact)
#else
  __local float4 xf[X4_PER_GROUP * GS_GROUPS];  // [X4_PER_GROUP planes][groups]: plane i of group u = x4 i of it
#if LUT_BITS == 4 && !LUT_ARITH
  __local float table[16];
#elif LUT_BITS == 8 && !LUT_LINEAR
  __local float table[256];
#else
  __local float table[1];
#endif
#endif
  __local float ss_part[WARPS_PER_WG];
  const int lid = get_local_id(0), lane = lid % QUILL_LANES, warp = lid / QUILL_LANES;
  const int grid_warps = get_num_groups(0) * WARPS_PER_WG;
  const int chunks = row_words / QUILL_LANES;          // uint4 per lane per row
  const int sets = GS_SETS;                            // row sets

  // The first block of chunks goes out before x is staged: its latency hides the staging.
  int load_set = get_group_id(0) * WARPS_PER_WG + warp, load_chunk = 0;
  uint4 q[GS_PIPE][GS_ROWS];
  uint sb[GS_PIPE][GS_ROWS];
  GS_LOAD_BLOCK(q, sb);

  // Stage x: work-item i takes groups i, i + WG_SIZE, ..; RMSNorm: the sum of squares on the way.
  const int groups = (cols + CODES_PER_UINT4 - 1) / CODES_PER_UINT4;
  const int aligned = (cols & 3) == 0;
  float ss = 0.0f;
#if GS_DIAG_NO_STAGE
  if (groups < 0)
#endif
  for (int g = lid; g < groups; g += WG_SIZE) {  // (unrolled by 2: measured slower, PERFORMANCE.md)
    float4 xv[X4_PER_GROUP];
#pragma unroll
    for (int i = 0; i < X4_PER_GROUP; ++i) {
      const int c = g * CODES_PER_UINT4 + 4 * i;
      xv[i] = c < cols ? load_x4_ss(x, norm_w, 0, c, cols, aligned, &ss) : (float4)(0.0f);
    }
#if LUT_DP4A
    uint xq[X_WORDS];
    float dx;
    int xsum;
    quantize_x_group(xv, xq, &dx, &xsum);
    xlo[g] = (uint4)(xq[0], xq[1], xq[2], xq[3]);
#if LUT_BITS == 4
    xhi[g] = (uint4)(xq[4], xq[5], xq[6], xq[7]);
#endif
    xscale[g] = (float2)(dx, (float)xsum);
#else
#pragma unroll
    for (int i = 0; i < X4_PER_GROUP; ++i) xf[i * GS_GROUPS + g] = xv[i];
#endif
  }
#if !LUT_DP4A && LUT_BITS == 4 && !LUT_ARITH
  if (lid < 16) table[lid] = lut[lid];
#elif !LUT_DP4A && LUT_BITS == 8 && !LUT_LINEAR
  for (int i = lid; i < 256; i += WG_SIZE) table[i] = lut[i];
#endif
  ss = warp_sum(ss);
  if (lane == 0) ss_part[warp] = ss;
  barrier(CLK_LOCAL_MEM_FENCE);
  const float factor = output_factor(ss_part, 0, cols, eps);  // RMSNorm's rsqrt, else 1

  // Stream: the next block loads into qn while the block in q is computed. (Measured: faster than a
  // ping-pong of two buffers that refills each one right after computing it, docs/PERFORMANCE.md.)
  int set = get_group_id(0) * WARPS_PER_WG + warp, chunk = 0;
  float acc[GS_ROWS];
#pragma unroll
  for (int j = 0; j < GS_ROWS; ++j) acc[j] = 0.0f;
  while (set < sets) {
    uint4 qn[GS_PIPE][GS_ROWS];
    uint sn[GS_PIPE][GS_ROWS];
    GS_LOAD_BLOCK(qn, sn);
    GS_COMPUTE_BLOCK(q, sb);
#pragma unroll
    for (int p = 0; p < GS_PIPE; ++p)
#pragma unroll
      for (int j = 0; j < GS_ROWS; ++j) {
        q[p][j] = qn[p][j];
        sb[p][j] = sn[p][j];
      }
  }
  prefetch_l2(pf, pf_bytes);
}
