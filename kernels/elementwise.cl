// elementwise.cl: token-embedding gather and the SwiGLU gate.
#include "common.cl"

#ifndef EMBD_F32
#define EMBD_F32 0
#endif

// tokens: [n_tok] int   table: [vocab, dim] (fp16, or f32 when EMBD_F32)   x: [n_tok, dim] f32.
// NDRange: (dim, n_tok).
#if EMBD_F32
__kernel void embed(__global const int* tokens, __global const float* table, __global float* x, int dim) {
  const int i = get_global_id(0), t = get_global_id(1);
  if (i < dim) x[(size_t)t * dim + i] = table[(size_t)tokens[t] * dim + i];
}
#else
__kernel void embed(__global const int* tokens, __global const half* table, __global float* x, int dim) {
  const int i = get_global_id(0), t = get_global_id(1);
  if (i < dim) x[(size_t)t * dim + i] = vload_half((size_t)tokens[t] * dim + i, table);
}
#endif

// gate_up: [n_tok, 2 * ffn] f32 (gate rows first, then up rows)   h: [n_tok, ffn] f32;
// h = silu(gate) * up, 4 columns per work-item (16-byte loads and stores where ffn % 4 == 0).
// NDRange: (ceil(ffn / 4), n_tok).
__kernel void swiglu(__global const float* gate_up, __global float* h, int ffn) {
  const int q = get_global_id(0), t = get_global_id(1), i0 = 4 * q;
  if (i0 >= ffn) return;
  __global const float* gate = gate_up + (size_t)t * 2 * ffn;
  __global const float* up = gate + ffn;
  __global float* out = h + (size_t)t * ffn;
  if (ffn % 4 == 0) {
    const float4 g = ((__global const float4*)gate)[q], u = ((__global const float4*)up)[q];
    ((__global float4*)out)[q] =
        (float4)(silu_times(g.s0, u.s0), silu_times(g.s1, u.s1), silu_times(g.s2, u.s2), silu_times(g.s3, u.s3));
  } else {
    for (int i = i0; i < min(ffn, i0 + 4); ++i) out[i] = silu_times(gate[i], up[i]);
  }
}
