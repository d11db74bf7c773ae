// attention.cl: causal grouped-query attention over the KV cache (prefill), one work-group per
// (query head, token). Keys are visited in chunks of WG positions with an online softmax
// (attention_common.cl), so local memory stays O(WG + head_dim) whatever the context length.
#include "attention_common.cl"

// q: [n_tok, n_heads * head_dim] f32 (rotated)   k_cache, v_cache: [ctx, n_kv_heads * head_dim] (KV_T)
// out: [n_tok, n_heads * head_dim] f32. Token t (position pos0 + t) attends to positions 0..pos0+t.
// NDRange: (n_heads * WG, n_tok), local (WG, 1). Requires head_dim <= 128 (= WG).
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attention(__global const float* q, __global const KV_T* k_cache, __global const KV_T* v_cache,
               __global float* out, int n_heads, int n_kv_heads, int head_dim, int pos0, float scale) {
  __local float q_local[WG];
  __local float scores[WG];
  __local float scratch[WG];
  __local float wacc[WARPS * 128];
  const int h = get_group_id(0);
  const int t = get_group_id(1);
  const int lid = get_local_id(0);
  const int kv_h = h / (n_heads / n_kv_heads);
  const int kv_dim = n_kv_heads * head_dim;
  const int q_dim = n_heads * head_dim;
  const int n_pos = pos0 + t + 1;

  if (lid < head_dim) q_local[lid] = q[(size_t)t * q_dim + h * head_dim + lid] * scale;
  barrier(CLK_LOCAL_MEM_FENCE);

  AttnState st;
  attn_init(&st);
  for (int p0 = 0; p0 < n_pos; p0 += WG)
    attn_chunk(&st, q_local, k_cache + kv_h * head_dim, v_cache + kv_h * head_dim, kv_dim, head_dim, p0, n_pos, -1,
               q_local, q, scores, scratch);
  const float v = attn_output(&st, head_dim, wacc);
  if (lid < head_dim) out[(size_t)t * q_dim + h * head_dim + lid] = v / st.sum;
}
