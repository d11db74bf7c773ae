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
// h = silu(gate) * up. NDRange: (ffn, n_tok).
__kernel void swiglu(__global const float* gate_up, __global float* h, int ffn) {
  const int i = get_global_id(0), t = get_global_id(1);
  if (i >= ffn) return;
  const float g = gate_up[(size_t)t * 2 * ffn + i];
  const float u = gate_up[(size_t)t * 2 * ffn + ffn + i];
  h[(size_t)t * ffn + i] = g / (1.0f + exp(-g)) * u;
}
