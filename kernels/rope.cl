// rope.cl: rotary position embedding (kv_common.cl) fused with the KV-cache write, for a batch of
// tokens (prompt processing; decode does this inside attention_decode.cl).
#include "kv_common.cl"

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
  rope_pair(&a, &b, i, rope_dim, theta, pos);
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
