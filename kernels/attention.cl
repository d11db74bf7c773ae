// attention.cl: causal grouped-query attention over the KV cache, one work-group per (query head,
// token). Keys are visited in chunks of WG positions with an online softmax (running max and sum),
// so local memory stays O(WG + head_dim) whatever the context length.
#include "common.cl"
#include "kv_common.cl"

#ifndef WG
#define WG 128
#endif
// q: [n_tok, n_heads * head_dim] f32 (rotated)   k_cache, v_cache: [ctx, n_kv_heads * head_dim] (KV_T)
// out: [n_tok, n_heads * head_dim] f32. Token t (position pos0 + t) attends to positions 0..pos0+t.
// NDRange: (n_heads * WG, n_tok), local (WG, 1). Requires head_dim <= WG.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attention(__global const float* q, __global const KV_T* k_cache, __global const KV_T* v_cache,
               __global float* out, int n_heads, int n_kv_heads, int head_dim, int pos0, float scale) {
  __local float q_local[WG];
  __local float scores[WG];
  __local float scratch[WG];
  const int h = get_group_id(0);
  const int t = get_group_id(1);
  const int lid = get_local_id(0);
  const int kv_h = h / (n_heads / n_kv_heads);
  const int kv_dim = n_kv_heads * head_dim;
  const int q_dim = n_heads * head_dim;
  const int n_pos = pos0 + t + 1;

  if (lid < head_dim) q_local[lid] = q[(size_t)t * q_dim + h * head_dim + lid] * scale;
  barrier(CLK_LOCAL_MEM_FENCE);

  float running_max = -INFINITY;
  float running_sum = 0.0f;
  float acc = 0.0f;  // output dimension lid (when lid < head_dim)
  for (int p0 = 0; p0 < n_pos; p0 += WG) {
    const int p = p0 + lid;
    float s = -INFINITY;
    if (p < n_pos) {
      __global const KV_T* k = k_cache + (size_t)p * kv_dim + kv_h * head_dim;
      s = 0.0f;
      for (int d = 0; d < head_dim; ++d) s += q_local[d] * KV_LOAD(d, k);
    }
    scores[lid] = s;
    // chunk max
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int off = WG / 2; off > 0; off >>= 1) {
      if (lid < off) scratch[lid] = fmax(scratch[lid], scratch[lid + off]);
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float new_max = fmax(running_max, scratch[0]);
    barrier(CLK_LOCAL_MEM_FENCE);
    const float correction = exp(running_max - new_max);
    const float e = p < n_pos ? exp(s - new_max) : 0.0f;
    scores[lid] = e;
    const float chunk_sum = work_group_sum(e, scratch);  // has barriers: scores[] visible after it
    running_sum = running_sum * correction + chunk_sum;
    acc *= correction;
    if (lid < head_dim) {
      const int n_here = min(WG, n_pos - p0);
      __global const KV_T* v = v_cache + (size_t)p0 * kv_dim + kv_h * head_dim + lid;
      for (int j = 0; j < n_here; ++j) acc += scores[j] * KV_LOAD((size_t)j * kv_dim, v);
    }
    running_max = new_max;
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid < head_dim) out[(size_t)t * q_dim + h * head_dim + lid] = acc / running_sum;
}
