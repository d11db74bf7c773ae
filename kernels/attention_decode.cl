// attention_decode.cl: one decode step of causal grouped-query attention, with RoPE and the
// KV-cache write fused in (one launch per layer). Work-group (head h, split s) covers positions
// [s * SPLIT, min((s + 1) * SPLIT, pos + 1)) with an online softmax; when a head has several splits
// their partial (max, sum, acc) go to scratch and the last split to finish merges them
// (flash-decoding), so long contexts use many work-groups.
// Two schedules (KEYS_BY_WARP, attention_common.cl):
//  - KEYS_BY_WARP (NVIDIA default): flash-decoding inside the work-group as well. Each 32-lane group
//    (warp) keeps its own online softmax in registers over batches of KEY_BATCH consecutive keys
//    (batch i of the split goes to warp i % WARPS); lane l holds the query, key and value dims
//    ACC_DIM(l, 0 .. 1). A batch's K and V loads are all issued together, one step ahead (before the
//    previous batch's arithmetic), then KEY_BATCH warp sums and one rescale; no work-group barrier
//    inside the key loop on NVIDIA. The warps' states are merged once through local memory at the end
//    (one barrier).
//  - otherwise (CPUs): attn_chunk over chunks of WG keys (one key per work-item for the scores).
#ifndef KEY_BATCH
#define KEY_BATCH 8  // keys per warp step (their K and V loads in flight together)
#endif
#include "attention_common.cl"

#ifndef SPLIT
#define SPLIT 256
#endif
#if KEY_BATCH < 1
#error "KEY_BATCH must be positive"
#endif

#if KEYS_BY_WARP
// s[b] = the sum of s[b] over the lanes of the 32-lane group, b < KEY_BATCH, in every lane. On NVIDIA
// each butterfly step's KEY_BATCH shuffles are independent and issue back to back. scratch:
// __local float[WG] (portable path). All work-items call.
inline void batch_lane_sums(float* s, __local float* scratch) {
#if QUILL_PTX
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) s[b] += shfl_xor(s[b], offset);  // the batch's chains interleaved
  }
#else
#pragma unroll
  for (int b = 0; b < KEY_BATCH; ++b) s[b] = lane_group_sum(s[b], scratch);
#endif
}

// A pair of cache elements (i, i + 1; i even) as raw bits: the batch's loads stay in flight until the
// bits are converted, after the last of them is issued (vload_half2 converts right at the load).
#if KV_F32
#define KV_RAW2 float2
#define KV_LOAD_RAW2(i, p) (*(__global const float2*)((p) + (i)))
#define KV_RAW2_TO_FLOAT2(r) (r)
#else
#define KV_RAW2 uint
#define KV_LOAD_RAW2(i, p) (*(__global const uint*)((p) + (i)))
#define KV_RAW2_TO_FLOAT2(r) half2_bits_to_float2(r)
#endif

// One warp step's K and V bits: keys p0 .. p0 + KEY_BATCH - 1, this lane's dim pairs ACC_DIM(lane, a).
typedef struct {
  KV_RAW2 k[KEY_BATCH][2], v[KEY_BATCH][2];
} KvBatch;

// Issues the loads of a batch; positions at or past p_end, the fresh position and dims past head_dim
// load nothing (their bits are 0).
inline void kv_batch_load(KvBatch* kv, __global const KV_T* k_head, __global const KV_T* v_head, int kv_dim,
                          int head_dim, int lane, int p0, int p_end, int fresh_p) {
#pragma unroll
  for (int b = 0; b < KEY_BATCH; ++b) {
    const int p = p0 + b;
#pragma unroll
    for (int a = 0; a < 2; ++a) {
      const int d = ACC_DIM(lane, a);
      kv->k[b][a] = kv->v[b][a] = 0;
      if (p < p_end && p != fresh_p && d < head_dim) {
        const size_t at = (size_t)p * kv_dim + d;
        kv->k[b][a] = KV_LOAD_RAW2(at, k_head);
        kv->v[b][a] = KV_LOAD_RAW2(at, v_head);
      }
    }
  }
}
#endif

// qkv: [q_dim + 2 kv_dim] f32 of the new token (unrotated q | k | v), at position pos.
// k_cache, v_cache: [ctx, kv_dim] (KV_T); this token's k, v are written at row pos.
// out: [q_dim] f32.  partial: [n_heads, n_splits, head_dim + 2] f32 scratch.
// done: [n_heads] int, zero between calls (the merging work-group resets it).
// pf / pf_bytes: what the work-groups prefetch into L2 as they finish (common.cl prefetch_l2).
// NDRange: (n_heads * n_splits * WG), local (WG). Requires head_dim <= 128 (= WG), head_dim even.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attention_decode(__global const float* qkv, __global KV_T* k_cache, __global KV_T* v_cache,
                      __global float* out, __global float* partial, __global volatile int* done, int n_heads,
                      int n_kv_heads, int head_dim, int rope_dim, float theta, int pos, int n_splits, float scale,
                      __global const uchar* pf, int pf_bytes) {
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
  const int p_begin = split * SPLIT;
  const int p_end = min(p_begin + SPLIT, pos + 1);
  __global const KV_T* k_head = k_cache + kv_h * head_dim;  // the kv head's column: position p at p * kv_dim
  __global const KV_T* v_head = v_cache + kv_h * head_dim;
  float acc, running_max, running_sum;  // this work-group's state: dim lid's accumulator, max, sum

#if KEYS_BY_WARP
  __local float wstat[2 * WARPS];  // each warp's (max, sum): max at [warp], sum at [WARPS + warp]
  const int lane = lid % QUILL_LANES, warp = lid / QUILL_LANES;
  // This warp's batches: batch i of the split is keys p_begin + KEY_BATCH i .., taken by warp i % WARPS
  // at step i / WARPS. The trip count is the same in every warp (the portable lane sums use
  // barriers): positions at or past p_end take weight 0 and load nothing. The next step's loads are
  // issued before this step's arithmetic (the first step's before the RoPE).
  const int n_steps = (p_end - p_begin + WARPS * KEY_BATCH - 1) / (WARPS * KEY_BATCH);
  KvBatch cur, next;
  kv_batch_load(&next, k_head, v_head, kv_dim, head_dim, lane, p_begin + warp * KEY_BATCH, p_end, pos);

  // This lane's dims ACC_DIM(lane, a): the query (rotated, times the softmax scale) and the new
  // token's key (rotated) and value, in registers (zero past head_dim).
  float2 q[2], k_fresh[2], v_fresh[2];
#pragma unroll
  for (int a = 0; a < 2; ++a) {
    const int d = ACC_DIM(lane, a);
    q[a] = k_fresh[a] = v_fresh[a] = (float2)(0.0f, 0.0f);
    if (d < head_dim) {
      float qa = qkv[h * head_dim + d], qb = qkv[h * head_dim + d + 1];
      float ka = qkv[q_dim + kv_h * head_dim + d], kb = qkv[q_dim + kv_h * head_dim + d + 1];
      if (d < rope_dim) {  // rope_pair's rotation, its angle computed once for q and k
        const float angle = pos * pow(theta, -(float)d / (float)rope_dim);
        const float c = cos(angle), s = sin(angle);
        const float rqa = qa * c - qb * s, rqb = qa * s + qb * c;
        const float rka = ka * c - kb * s, rkb = ka * s + kb * c;
        qa = rqa;
        qb = rqb;
        ka = rka;
        kb = rkb;
      }
      q[a] = (float2)(qa, qb) * scale;
      k_fresh[a] = (float2)(ka, kb);
      v_fresh[a] = vload2(0, qkv + q_dim + kv_dim + kv_h * head_dim + d);
    }
  }
  // One work-group per kv head (warp 0 of it) stores the new key and value; nobody reads row pos
  // from the cache.
  if (h % group == 0 && split == n_splits - 1 && warp == 0) {
#pragma unroll
    for (int a = 0; a < 2; ++a) {
      const int d = ACC_DIM(lane, a);
      if (d < head_dim) {
        const size_t at = (size_t)pos * kv_dim + kv_h * head_dim + d;
        KV_STORE(k_fresh[a].x, at, k_cache);
        KV_STORE(k_fresh[a].y, at + 1, k_cache);
        KV_STORE(v_fresh[a].x, at, v_cache);
        KV_STORE(v_fresh[a].y, at + 1, v_cache);
      }
    }
  }

  // This warp's online softmax (running max, sum, and the lane's dims of the output).
  float warp_max = -INFINITY, warp_sum = 0.0f;
  float2 o[2] = {(float2)(0.0f, 0.0f), (float2)(0.0f, 0.0f)};
  for (int step = 0; step < n_steps; ++step) {
    const int p0 = p_begin + (step * WARPS + warp) * KEY_BATCH;
    cur = next;
    kv_batch_load(&next, k_head, v_head, kv_dim, head_dim, lane, p0 + WARPS * KEY_BATCH, p_end, pos);
    float s[KEY_BATCH];
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {
      const int fresh = p0 + b == pos;
      const float2 k0 = fresh ? k_fresh[0] : KV_RAW2_TO_FLOAT2(cur.k[b][0]);
      const float2 k1 = fresh ? k_fresh[1] : KV_RAW2_TO_FLOAT2(cur.k[b][1]);
      s[b] = dot(q[0], k0) + dot(q[1], k1);
    }
    batch_lane_sums(s, scratch);
    float batch_max = -INFINITY;
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) batch_max = p0 + b < p_end ? fmax(batch_max, s[b]) : batch_max;
    const float new_max = fmax(warp_max, batch_max);
    // No valid key yet (new_max -INFINITY): the state is zero and stays so (no -inf - -inf = NaN).
    const float correction = new_max == -INFINITY ? 1.0f : exp(warp_max - new_max);
    warp_sum *= correction;
    o[0] *= correction;
    o[1] *= correction;
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {
      const int fresh = p0 + b == pos;
      const float w = p0 + b < p_end ? exp(s[b] - new_max) : 0.0f;
      warp_sum += w;
      o[0] += w * (fresh ? v_fresh[0] : KV_RAW2_TO_FLOAT2(cur.v[b][0]));
      o[1] += w * (fresh ? v_fresh[1] : KV_RAW2_TO_FLOAT2(cur.v[b][1]));
    }
    warp_max = new_max;
  }

  // The warps' states merged through local memory: each warp's accumulator rescaled to the common
  // max (every split has a valid key, so that max is finite; a warp without one adds exp(-inf) = 0).
  if (lane == 0) {
    wstat[warp] = warp_max;
    wstat[WARPS + warp] = warp_sum;
  }
#pragma unroll
  for (int a = 0; a < 2; ++a) {
    const int d = ACC_DIM(lane, a);
    if (d < head_dim) vstore2(o[a], 0, wacc + warp * 128 + d);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  running_max = -INFINITY;
  for (int w = 0; w < WARPS; ++w) running_max = fmax(running_max, wstat[w]);
  running_sum = 0.0f;
  acc = 0.0f;
  for (int w = 0; w < WARPS; ++w) {
    const float f = exp(wstat[w] - running_max);
    running_sum += wstat[WARPS + w] * f;
    if (lid < head_dim) acc += wacc[w * 128 + lid] * f;
  }
#else
  __local float q_local[WG];
  __local float k_new[WG];
  __local float scores[WG];
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

  AttnState st;
  attn_init(&st);
  for (int p0 = p_begin; p0 < p_end; p0 += WG)
    attn_chunk(&st, q_local, k_head, v_head, kv_dim, head_dim, p0, p_end, pos, k_new,
               qkv + q_dim + kv_dim + kv_h * head_dim, scores, scratch);
  acc = attn_output(&st, head_dim, wacc);
  running_max = st.max;
  running_sum = st.sum;
#endif

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
  prefetch_l2(pf, pf_bytes);
}
