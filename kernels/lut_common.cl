// lut_common.cl: what the weight-only matmuls (matmul_lut.cl, matmul_f16.cl,
// gemm_dequant.cl) share: the per-block scale in its four storage kinds (SCALE_KIND), the input
// transforms fused into the input load (INPUT_KIND), the code decoders, and the tunables' defaults.
#ifndef QUILL_LUT_COMMON_CL
#define QUILL_LUT_COMMON_CL

#include "common.cl"

#ifndef WG_SIZE
#define WG_SIZE 128
#endif
#ifndef TOK_TILE
#define TOK_TILE 1  // tokens per work-group pass: 1 = GEMV; the weights are decoded once per tile
#endif
#ifndef ROWS_PER_WARP
#define ROWS_PER_WARP 8  // weight rows per 32-lane group: each x load is reused this many times
#endif
// GEMV work split: the warps of a work-group share its ROWS_PER_WARP rows and split the columns
// (warp w takes tiles w, w + WARPS_PER_WG, ..), their partial sums added through local memory:
// WARPS_PER_WG times more warps in flight than one-warp-per-rows (latency hiding at 4096 rows).
#define WARPS_PER_WG (WG_SIZE / QUILL_LANES)
#define ROWS_PER_WG ROWS_PER_WARP

// The epilogue of the GEMV kernels: sums acc[ROWS_PER_WARP][TOK_TILE] over each warp's lanes, then
// over the work-group's warps (part: __local float[WARPS_PER_WG * ROWS_PER_WARP * TOK_TILE]), and
// stores y[t0 + t, row0 + j] (+)= the sum times the token's output factor (RMSNorm: the rsqrt of
// its mean square, from ss[TOK_TILE] summed the same way into ss_part: __local float[WARPS_PER_WG *
// TOK_TILE]; else 1). All work-items must reach it.
#define GEMV_REDUCE_STORE(acc, ss, scratch, part, ss_part, y, row0, rows, t0, n_here, accumulate, cols, eps)  \
  {                                                                                                      \
    const int lid_ = get_local_id(0);                                                                    \
    for (int j_ = 0; j_ < ROWS_PER_WARP; ++j_) for (int t_ = 0; t_ < TOK_TILE; ++t_) {                   \
      const float s_ = lane_group_sum(acc[j_][t_], scratch);                                             \
      if (lid_ % QUILL_LANES == 0) part[(lid_ / QUILL_LANES) * ROWS_PER_WARP * TOK_TILE + j_ * TOK_TILE + t_] = s_; \
    }                                                                                                    \
    reduce_sum_of_squares(ss, scratch, ss_part);                                                         \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                        \
    for (int i_ = lid_; i_ < ROWS_PER_WARP * TOK_TILE; i_ += WG_SIZE) {                                  \
      const int j_ = i_ / TOK_TILE, t_ = i_ % TOK_TILE;                                                  \
      float s_ = 0.0f;                                                                                   \
      for (int w_ = 0; w_ < WARPS_PER_WG; ++w_) s_ += part[w_ * ROWS_PER_WARP * TOK_TILE + i_];          \
      if ((row0) + j_ < (rows) && t_ < (n_here)) {                                                       \
        __global float* out_ = (y) + (size_t)((t0) + t_) * (rows) + (row0) + j_;                         \
        const float v_ = s_ * output_factor(ss_part, t_, cols, eps);                                     \
        *out_ = (accumulate) ? *out_ + v_ : v_;                                                          \
      }                                                                                                  \
    }                                                                                                    \
  }

// INPUT_KIND 0: x as is
//            1: RMSNorm fused: x * norm_w on load, times rsqrt(mean(x^2) + eps) of the token at the
//               output. One pass: every column of a token is loaded by exactly one work-item of the
//               work-group, which adds its square to its ss[t]; the epilogue sums them.
//            2: SwiGLU fused: x is [n_tok, 2 cols] gate | up; silu(gate) * up on load
#ifndef INPUT_KIND
#define INPUT_KIND 0
#endif

// LUT_ARITH (4-bit): the value is code - 8 (GGUF Q4_0), decoded arithmetically, no table.
#ifndef LUT_ARITH
#define LUT_ARITH 0
#endif
// LUT_LINEAR (8-bit): the value is the signed code itself (GGUF Q8_0), no table.
#ifndef LUT_LINEAR
#define LUT_LINEAR 0
#endif

// LUT_INT8 (4-bit tables with a block scale: nf4, fp4): the int8 kernels (the dp4a GEMVs, the int8
// tensor-core GEMM) take each table value rounded to int8, round(T[c] * 127), and the block scale times
// 1/127 (INT8_CODE_UNIT): at most absmax / 254 per weight.
#ifndef LUT_INT8
#define LUT_INT8 0
#endif
#if LUT_INT8
#define INT8_CODE_UNIT (1.0f / 127.0f)
#else
#define INT8_CODE_UNIT 1.0f
#endif

// The 16 table values rounded to int8 as 4 words: code c in byte c % 4 of word c / 4.
inline void int8_table(__global const float* lut, uint* tab) {
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    uint v = 0u;
#pragma unroll
    for (int i = 0; i < 4; ++i) v |= ((uint)(int)rint(lut[4 * w + i] * 127.0f) & 255u) << (8 * i);
    tab[w] = v;
  }
}

#if QUILL_PTX
// prmt.b32 (default mode): byte i of the result is byte (sel nibble i & 7) of the 8 bytes {a, b} (a: 0..3),
// or that byte's sign replicated when the nibble's bit 3 is set.
inline uint byte_perm(uint a, uint b, uint sel) {
  uint r;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
  return r;
}
#endif

// 4 codes in bytes (0..15 each) -> their int8 table values (int8_table), byte for byte. NVIDIA: byte
// permutes over the table's low and high halves (selector nibbles = the codes' low 3 bits), then a
// bytewise pick by the codes' bit 3.
inline uint table_s8x4(uint b, const uint* tab) {
#if QUILL_PTX
  const uint m = b & 0x07070707u, s = m | (m >> 4);
  const uint sel = (s & 0xFFu) | ((s >> 8) & 0xFF00u);
  const uint lo = byte_perm(tab[0], tab[1], sel), hi = byte_perm(tab[2], tab[3], sel);
  const uint high = ((b >> 3) & 0x01010101u) * 255u;  // 0xFF in the bytes whose code is >= 8
  return (lo & ~high) | (hi & high);
#else
  uint r = 0u;
  for (int i = 0; i < 4; ++i) {
    const uint c = (b >> (8 * i)) & 15u;
    r |= ((tab[c >> 2] >> (8 * (c & 3u))) & 255u) << (8 * i);
  }
  return r;
#endif
}

// 4 codes in the low 16 bits of w (nibble i = code i, 0..15) -> their int8 table values (int8_table), byte i
// from nibble i. NVIDIA: byte permutes over the table's low and high halves (the selector is the codes' low 3
// bits as they lie), then a third that takes byte i of the one or the other (selector nibble i or i + 4, from
// the codes' bit 3): 6 operations for 4 codes, about half of table_s8x4's (gemv_stream, dp4a_x.cl).
inline uint table_s8x4_nibbles(uint w, const uint* tab) {
#if QUILL_PTX
  const uint sel = w & 0x7777u, pick = 0x3210u | ((w & 0x8888u) >> 1);
  const uint lo = byte_perm(tab[0], tab[1], sel), hi = byte_perm(tab[2], tab[3], sel);
  return byte_perm(lo, hi, pick);
#else
  // The nibbles spread into bytes, then table_s8x4.
  return table_s8x4((w & 0xFu) | ((w & 0xF0u) << 4) | ((w & 0xF00u) << 8) | ((w & 0xF000u) << 12), tab);
#endif
}

// SCALE_KIND 0: no scale (k-means: the table holds the values)
//            1: fp32 per block (bitsandbytes absmax)
//            2: fp16 per block (GGUF d)
//            3: double quant: DYN8[code] * absmax2[b / 256] + offset (QLoRA), decoded here
#ifndef SCALE_KIND
#define SCALE_KIND 1
#endif

// The scale of block b of the flat [rows, blocks_per_row] scale array, in two steps for the streaming
// GEMV, which loads the raw bits ahead (scale_bits) and turns them into the scale where it is used
// (scale_value), or in one (block_scale).
// scales: float[] (1) | half[] (2) | uchar codes[] (3); absmax2: [ceil(n / 256)] f32 (3);
// dq_lut: [256] f32 signed dynamic map (3).
inline uint scale_bits(__global const uchar* scales, size_t b) {
#if SCALE_KIND == 1
  return ((__global const uint*)scales)[b];
#elif SCALE_KIND == 2
  return ((__global const ushort*)scales)[b];
#elif SCALE_KIND == 3
  return scales[b];  // the block's dyn8 code; absmax2 is per 256 blocks
#else
  return 0u;
#endif
}
inline float scale_value(uint bits, __global const float* absmax2, __global const float* dq_lut, float dq_offset,
                         size_t b) {
#if SCALE_KIND == 1
  return as_float(bits);
#elif SCALE_KIND == 2
  return half2_bits_to_float2(bits).x;
#elif SCALE_KIND == 3
  return dq_lut[bits] * absmax2[b >> 8] + dq_offset;
#else
  return 1.0f;
#endif
}
inline float block_scale(__global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                         float dq_offset, size_t b) {
#if SCALE_KIND == 2
  return vload_half(b, (__global const half*)scales);  // the same value; as one load it keeps the GEMMs' code
#else
  return scale_value(scale_bits(scales, b), absmax2, dq_lut, dq_offset, b);
#endif
}

// 4-bit codes: the low 16 bits of v hold 4 codes (column i in bits 4 i) -> their 4 values.
// LUT_ARITH: code - 8 exactly, through the float 2^23 + code (no int-to-float conversion).
inline float4 decode4_nibbles(uint v, __local const float* T) {
#if LUT_ARITH
  return (float4)(as_float(0x4B000000u | (v & 15u)), as_float(0x4B000000u | ((v >> 4) & 15u)),
                  as_float(0x4B000000u | ((v >> 8) & 15u)), as_float(0x4B000000u | ((v >> 12) & 15u))) -
         8388616.0f;
#else
  return (float4)(T[v & 15], T[(v >> 4) & 15], T[(v >> 8) & 15], T[(v >> 12) & 15]);
#endif
}

// The 8 values of a word of 4-bit codes: lo = nibbles 0..3, hi = nibbles 4..7 (nibble n = bits 4n).
inline void decode8_nibbles(uint w, __local const float* T, float4* lo, float4* hi) {
#if LUT_ARITH && QUILL_PTX
  // Two codes per integer op: (w >> 4s) & 0x000F000F puts nibbles s and s + 4 in the two halves, and
  // | 0x6400 makes each the fp16 number 1024 + code; code - 8 is then exact in fp32.
  float2 v[4];
#pragma unroll
  for (int s = 0; s < 4; ++s) v[s] = half2_bits_to_float2(((w >> (4 * s)) & 0x000F000Fu) | 0x64006400u) - 1032.0f;
  *lo = (float4)(v[0].x, v[1].x, v[2].x, v[3].x);
  *hi = (float4)(v[0].y, v[1].y, v[2].y, v[3].y);
#else
  *lo = decode4_nibbles(w, T);
  *hi = decode4_nibbles(w >> 16, T);
#endif
}

// 8-bit codes: the 4 bytes of v (column i in byte i) -> their 4 values. LUT_LINEAR: the signed
// byte itself, exactly, through the float 2^23 + (byte ^ 0x80); otherwise the table T[256].
inline float4 decode4_bytes(uint v, __local const float* T) {
#if LUT_LINEAR
  const uint u = v ^ 0x80808080u;
  return (float4)(as_float(0x4B000000u | (u & 255u)), as_float(0x4B000000u | ((u >> 8) & 255u)),
                  as_float(0x4B000000u | ((u >> 16) & 255u)), as_float(0x4B000000u | (u >> 24))) -
         8388736.0f;
#else
  return (float4)(T[v & 255], T[(v >> 8) & 255], T[(v >> 16) & 255], T[v >> 24]);
#endif
}

// Columns c .. c + 3 of token t's input after the transform; columns >= cols read as 0.
// aligned: cols % 4 == 0 (and c % 4 == 0), so the 4 columns are one 16-byte load.
// x: [n_tok, cols] f32 ([n_tok, 2 cols] for SwiGLU)   norm_w: [cols] (RMSNorm)
// RMSNorm: *ss += the squares of the 4 raw values (the caller loads each column once).
inline float4 load_x4_ss(__global const float* x, __global const float* norm_w, int t, int c, int cols, int aligned,
                         float* ss) {
#if INPUT_KIND == 2
  __global const float* g = x + (size_t)t * 2 * cols + c;
  float4 gv, uv;
  if (aligned) {
    gv = *(__global const float4*)g;
    uv = *(__global const float4*)(g + cols);
  } else {
    gv = (float4)(g[0], c + 1 < cols ? g[1] : 0.0f, c + 2 < cols ? g[2] : 0.0f, c + 3 < cols ? g[3] : 0.0f);
    uv = (float4)(g[cols], c + 1 < cols ? g[cols + 1] : 0.0f, c + 2 < cols ? g[cols + 2] : 0.0f,
                  c + 3 < cols ? g[cols + 3] : 0.0f);
  }
  return silu_times4(gv, uv);
#else
  __global const float* p = x + (size_t)t * cols + c;
  float4 v;
  if (aligned)
    v = *(__global const float4*)p;
  else
    v = (float4)(p[0], c + 1 < cols ? p[1] : 0.0f, c + 2 < cols ? p[2] : 0.0f, c + 3 < cols ? p[3] : 0.0f);
#if INPUT_KIND == 1
  *ss += dot(v, v);
  if (aligned)
    v *= *(__global const float4*)(norm_w + c);
  else
    v *= (float4)(norm_w[c], c + 1 < cols ? norm_w[c + 1] : 0.0f, c + 2 < cols ? norm_w[c + 2] : 0.0f,
                  c + 3 < cols ? norm_w[c + 3] : 0.0f);
#endif
  return v;
#endif
}

// load_x4_ss for callers without RMSNorm (the GEMM).
inline float4 load_x4(__global const float* x, __global const float* norm_w, int t, int c, int cols, int aligned) {
  float unused = 0.0f;
  return load_x4_ss(x, norm_w, t, c, cols, aligned, &unused);
}

// Column c (< cols) of token t's input after the transform; RMSNorm: *ss += its raw square.
inline float load_x1_ss(__global const float* x, __global const float* norm_w, int t, int c, int cols, float* ss) {
#if INPUT_KIND == 2
  const float g = x[(size_t)t * 2 * cols + c], u = x[(size_t)t * 2 * cols + cols + c];
  return silu_times(g, u);
#elif INPUT_KIND == 1
  const float v = x[(size_t)t * cols + c];
  *ss += v * v;
  return v * norm_w[c];
#else
  return x[(size_t)t * cols + c];
#endif
}

// RMSNorm: ss_part[warp * TOK_TILE + t] = the warp's sum of its work-items' ss[t] (all work-items
// call; the caller's barrier publishes it). Otherwise a no-op.
inline void reduce_sum_of_squares(const float* ss, __local float* scratch, __local float* ss_part) {
#if INPUT_KIND == 1
  for (int t = 0; t < TOK_TILE; ++t) {
    const float s = lane_group_sum(ss[t], scratch);
    if (get_local_id(0) % QUILL_LANES == 0) ss_part[get_local_id(0) / QUILL_LANES * TOK_TILE + t] = s;
  }
#endif
}

// The output factor of token t: RMSNorm's rsqrt(mean(x^2) + eps) from the warps' ss_part, else 1.
inline float output_factor(__local const float* ss_part, int t, int cols, float eps) {
#if INPUT_KIND == 1
  float total = 0.0f;
  for (int w = 0; w < WARPS_PER_WG; ++w) total += ss_part[w * TOK_TILE + t];
  return rsqrt(total / cols + eps);
#else
  return 1.0f;
#endif
}

// Word k (0..3) of a uint4; k is a constant after unrolling.
inline uint word_of(uint4 q, int k) { return k == 0 ? q.x : k == 1 ? q.y : k == 2 ? q.z : q.w; }

#endif  // QUILL_LUT_COMMON_CL
