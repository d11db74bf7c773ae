// attention.cl: causal grouped-query attention over the KV cache (prefill), one work-group per
// (query head, tile of TOK_TILE consecutive tokens). Keys are visited in chunks of WG positions with an
// online softmax per token (attention_common.cl); each chunk's K and V rows are read once for the whole
// tile, and local memory stays O(TOK_TILE * WG) whatever the context length.
#ifndef TOK_TILE
#define TOK_TILE 4  // tokens per work-group (the host sets it, with the launch geometry to match)
#endif
#define ATTN_QUERIES TOK_TILE
#include "attention_common.cl"

// q: [n_tok, n_heads * head_dim] f32 (rotated)   k_cache, v_cache: [ctx, n_kv_heads * head_dim] (KV_T)
// out: [n_tok, n_heads * head_dim] f32. Token t (position pos0 + t) attends to positions 0..pos0+t.
// NDRange: (n_heads * WG, ceil(n_tok / TOK_TILE)), local (WG, 1). Requires head_dim <= 128 (= WG), even.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attention(__global const float* q, __global const KV_T* k_cache, __global const KV_T* v_cache,
               __global float* out, int n_tok, int n_heads, int n_kv_heads, int head_dim, int pos0, float scale) {
  __local float q_local[TOK_TILE * WG];  // [TOK_TILE][WG]: the tile's queries times scale (dims < head_dim)
  __local float scores[TOK_TILE * WG];   // [TOK_TILE][WG]: the chunk's scores, then softmax weights
  __local float scratch[TOK_TILE * WG];  // [TOK_TILE][WG]: reductions
  __local float wacc[WARPS * 128];       // [WARPS][128]: the groups' accumulators of one token
  const int h = get_group_id(0);
  const int t0 = get_group_id(1) * TOK_TILE;  // the tile's first token
  const int n_q = min(TOK_TILE, n_tok - t0);  // its real tokens; the rest repeat the last one
  const int lid = get_local_id(0);
  const int kv_h = h / (n_heads / n_kv_heads);
  const int kv_dim = n_kv_heads * head_dim;
  const int q_dim = n_heads * head_dim;

  if (lid < head_dim)
    for (int u = 0; u < TOK_TILE; ++u)
      q_local[u * WG + lid] = q[(size_t)(t0 + min(u, n_q - 1)) * q_dim + h * head_dim + lid] * scale;
  barrier(CLK_LOCAL_MEM_FENCE);

  AttnState st[TOK_TILE];
#pragma unroll
  for (int u = 0; u < TOK_TILE; ++u) attn_init(&st[u]);
  const int p_end = pos0 + t0 + 1;  // token t0 attends to the positions below p_end, token t0 + u below p_end + u
  for (int p0 = 0; p0 < p_end + n_q - 1; p0 += WG)  // up to the tile's last token
    attn_chunk_rows(st, q_local, k_cache + kv_h * head_dim, v_cache + kv_h * head_dim, kv_dim, head_dim, p0, p_end,
                    n_q, -1, q_local, q, scores, scratch);
#pragma unroll
  for (int u = 0; u < TOK_TILE; ++u) {
    const float v = attn_output(&st[u], head_dim, wacc);
    if (u < n_q && lid < head_dim) out[(size_t)(t0 + u) * q_dim + h * head_dim + lid] = v / st[u].sum;
  }
}
