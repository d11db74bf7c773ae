// rope.cl: rotary position embedding (GGUF llama convention: interleaved pairs (2i, 2i+1) of each
// head, freq = theta^(-2i / rope_dim), dims past rope_dim untouched) fused with the KV-cache write.
#include "common.cl"

#ifndef KV_F32
#define KV_F32 0
#endif

#if KV_F32
#define KV_T float
#define KV_STORE(v, i, p) ((p)[i] = (v))
#else
#define KV_T half
#define KV_STORE(v, i, p) vstore_half_rte((v), (i), (p))
#endif

// qkv: [n_tok, q_dim + 2 * kv_dim] f32 (q | k | v per token, straight from the fused QKV matmul)
// q: [n_tok, q_dim] f32 out (rotated)   k_cache, v_cache: [ctx, kv_dim] of this layer (KV_T)
// Token t sits at position pos0 + t. NDRange: (q_dim / 2 + kv_dim / 2, n_tok); one work-item per pair.
__kernel void rope_kv(__global const float* qkv, __global float* q, __global KV_T* k_cache, __global KV_T* v_cache,
                      int q_dim, int kv_dim, int head_dim, int rope_dim, float theta, int pos0) {
  const int pair = get_global_id(0);
  const int t = get_global_id(1);
  const int n_q_pairs = q_dim / 2;
  if (pair >= n_q_pairs + kv_dim / 2) return;
  const int pos = pos0 + t;
  __global const float* row = qkv + (size_t)t * (q_dim + 2 * kv_dim);
  const int is_k = pair >= n_q_pairs;
  const int idx = 2 * (is_k ? pair - n_q_pairs : pair);  // element index within q or k
  const int i = idx % head_dim;                           // index within the head (even)
  float a = row[(is_k ? q_dim : 0) + idx];
  float b = row[(is_k ? q_dim : 0) + idx + 1];
  if (i < rope_dim) {
    const float freq = pow(theta, -(float)i / (float)rope_dim);
    const float angle = pos * freq;
    const float c = cos(angle), s = sin(angle);
    const float ra = a * c - b * s;
    const float rb = a * s + b * c;
    a = ra;
    b = rb;
  }
  if (!is_k) {
    q[(size_t)t * q_dim + idx] = a;
    q[(size_t)t * q_dim + idx + 1] = b;
  } else {
    const size_t base = (size_t)pos * kv_dim;
    KV_STORE(a, base + idx, k_cache);
    KV_STORE(b, base + idx + 1, k_cache);
    KV_STORE(row[q_dim + kv_dim + idx], base + idx, v_cache);
    KV_STORE(row[q_dim + kv_dim + idx + 1], base + idx + 1, v_cache);
  }
}
