// attention_decode.cl: one decode step of causal grouped-query attention, with RoPE and the
// KV-cache write fused in (one launch per layer). Work-group (head h, split s) covers positions
// [s * SPLIT, min((s + 1) * SPLIT, pos + 1)) with an online softmax; when a head has several splits
// their partial (max, sum, acc) go to scratch and the last split to finish merges them
// (flash-decoding), so long contexts use many work-groups.
#include "attention_common.cl"

#ifndef SPLIT
#define SPLIT 256
#endif

// qkv: [q_dim + 2 kv_dim] f32 of the new token (unrotated q | k | v), at position pos.
// k_cache, v_cache: [ctx, kv_dim] (KV_T); this token's k, v are written at row pos.
// out: [q_dim] f32.  partial: [n_heads, n_splits, head_dim + 2] f32 scratch.
// done: [n_heads] int, zero between calls (the merging work-group resets it).
// NDRange: (n_heads * n_splits * WG), local (WG). Requires head_dim <= 128 (= WG), head_dim even.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attention_decode(__global const float* qkv, __global KV_T* k_cache, __global KV_T* v_cache,
                      __global float* out, __global float* partial, __global volatile int* done, int n_heads,
                      int n_kv_heads, int head_dim, int rope_dim, float theta, int pos, int n_splits, float scale) {
  __local float q_local[WG];
  __local float k_new[WG];
  __local float scores[WG];
  __local float scratch[WG];
  __local float wacc[WARPS * 128];
  __local int is_last;
  const int lid = get_local_id(0);
  const int h = get_group_id(0) / n_splits;
  const int split = get_group_id(0) % n_splits;
  const int group = n_heads / n_kv_heads;
  const int kv_h = h / group;
  const int q_dim = n_heads * head_dim;
  const int kv_dim = n_kv_heads * head_dim;

  // RoPE on this head's query and on its kv head's new key (pairs handled by even lanes).
  if (lid < head_dim && (lid & 1) == 0) {
    float a = qkv[h * head_dim + lid], b = qkv[h * head_dim + lid + 1];
    rope_pair(&a, &b, lid, rope_dim, theta, pos);
    q_local[lid] = a * scale;
    q_local[lid + 1] = b * scale;
    float ka = qkv[q_dim + kv_h * head_dim + lid], kb = qkv[q_dim + kv_h * head_dim + lid + 1];
    rope_pair(&ka, &kb, lid, rope_dim, theta, pos);
    k_new[lid] = ka;
    k_new[lid + 1] = kb;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  // One work-group per kv head stores the new key and value; nobody reads row pos from the cache.
  if (h % group == 0 && split == n_splits - 1 && lid < head_dim) {
    const size_t at = (size_t)pos * kv_dim + kv_h * head_dim + lid;
    KV_STORE(k_new[lid], at, k_cache);
    KV_STORE(qkv[q_dim + kv_dim + kv_h * head_dim + lid], at, v_cache);
  }

  const int p_begin = split * SPLIT;
  const int p_end = min(p_begin + SPLIT, pos + 1);
  AttnState st;
  attn_init(&st);
  for (int p0 = p_begin; p0 < p_end; p0 += WG)
    attn_chunk(&st, q_local, k_cache + kv_h * head_dim, v_cache + kv_h * head_dim, kv_dim, head_dim, p0, p_end, pos,
               k_new, qkv + q_dim + kv_dim + kv_h * head_dim, scores, scratch);
  const float acc = attn_output(&st, head_dim, wacc);
  const float running_max = st.max, running_sum = st.sum;

  // No early returns anywhere (PoCL mis-compiles a return that precedes a barrier on another path).
  // One split: write the result. Several: publish this split's partial (max, sum, acc); the last
  // split of the head to finish merges them all.
  const int several = n_splits > 1;
  __global float* mine = partial + ((size_t)h * n_splits + split) * (head_dim + 2);
  if (!several && lid < head_dim) out[h * head_dim + lid] = acc / running_sum;
  if (several && lid < head_dim) mine[2 + lid] = acc;
  if (several && lid == 0) {
    mine[0] = running_max;
    mine[1] = running_sum;
  }
  mem_fence(CLK_GLOBAL_MEM_FENCE);
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
  if (lid == 0) is_last = several && atomic_inc(&done[h]) == n_splits - 1;
  barrier(CLK_LOCAL_MEM_FENCE);
  // Only the last work-group needs the merge. Portable path: every work-group runs the loop and only
  // the last one stores it (PoCL 3.1 corrupts memory when this block sits under `if (is_last)`).
  const int last = is_last;
#if QUILL_PTX
  if (last)
#endif
  {
    mem_fence(CLK_GLOBAL_MEM_FENCE);
    __global volatile const float* all = partial + (size_t)h * n_splits * (head_dim + 2);  // other groups' writes
    float m = -INFINITY;
    for (int s = 0; s < n_splits; ++s) m = fmax(m, all[s * (head_dim + 2)]);
    float total = 0.0f, value = 0.0f;
    for (int s = 0; s < n_splits; ++s) {
      __global volatile const float* ps = all + s * (head_dim + 2);
      const float w = exp(ps[0] - m);
      total += ps[1] * w;
      if (lid < head_dim) value += ps[2 + lid] * w;
    }
    if (last && lid < head_dim) out[h * head_dim + lid] = value / total;
    if (last && lid == 0) done[h] = 0;
  }
}
