// attention_common.cl: what prefill (attention.cl) and decode (attention_decode.cl) attention share:
// one chunk of WG key positions for one query head, folded into an online softmax (running max,
// running sum, output accumulator), and the final combination of the accumulator.
// Two schedules, chosen at build time:
//  - KEYS_BY_WARP (NVIDIA default): each 32-lane group takes a quarter of the chunk's keys and its
//    lanes split the head dimensions in pairs, so K and V rows are read coalesced, KEY_BATCH keys'
//    loads in flight at once; scores through warp sums; the groups' output accumulators are added
//    at the end.
//  - otherwise (CPUs): one key per work-item for the scores, one output dim per work-item for V.
#ifndef QUILL_ATTENTION_COMMON_CL
#define QUILL_ATTENTION_COMMON_CL

#include "common.cl"
#include "kv_common.cl"

#ifndef WG
#define WG 128
#endif
#ifndef KEYS_BY_WARP
#define KEYS_BY_WARP QUILL_PTX
#endif
#define WARPS (WG / QUILL_LANES)  // KEYS_BY_WARP: a chunk of WG keys is 32 per group
#if KEYS_BY_WARP
#define ACC_N 4  // lane l holds dims 2 l, 2 l + 1, 2 l + 64, 2 l + 65 (head_dim <= 128, even)
#define ACC_DIM(lane, a) (2 * (lane) + 2 * QUILL_LANES * (a))  // first dim of the lane's pair a
#ifndef KEY_BATCH
#define KEY_BATCH 16  // keys whose loads a lane has in flight together (divides 32; 16: prefill -16% vs 8)
#endif
#else
#define ACC_N 1
#endif

// Max of v over the work-group; scratch: __local float[WG]. All work-items must call.
inline float work_group_max(float v, __local float* scratch) {
  const int lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int off = WG / 2; off > 0; off >>= 1) {
    if (lid < off) scratch[lid] = fmax(scratch[lid], scratch[lid + off]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float m = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return m;
}

// Online-softmax state of one work-item.
typedef struct {
  float max, sum;
  float acc[ACC_N];  // KEYS_BY_WARP: this group's share of dims lane + 32 i; else dim lid
} AttnState;

inline void attn_init(AttnState* st) {
  st->max = -INFINITY;
  st->sum = 0.0f;
  for (int i = 0; i < ACC_N; ++i) st->acc[i] = 0.0f;
}

// Folds key positions [p0, min(p0 + WG, p_end)) into st. q_local: [head_dim] query times the
// softmax scale. k_head / v_head: the head's column in the cache (position p at p * kv_dim).
// Position `fresh_p` (decode: the token being written, -1 for none) is read from k_fresh (local) and
// v_fresh (global) instead of the cache. scores, scratch: __local float[WG]. All work-items call.
inline void attn_chunk(AttnState* st, __local const float* q_local, __global const KV_T* k_head,
                       __global const KV_T* v_head, int kv_dim, int head_dim, int p0, int p_end, int fresh_p,
                       __local const float* k_fresh, __global const float* v_fresh, __local float* scores,
                       __local float* scratch) {
  const int lid = get_local_id(0);
#if KEYS_BY_WARP
  // Group `warp` takes the chunk's keys 32 warp .. 32 warp + 31, KEY_BATCH at a time: each lane loads
  // its dims' pairs of all KEY_BATCH keys first (independent loads in flight together), then the
  // batch's dot products are reduced across the lanes.
  const int lane = lid % QUILL_LANES, warp = lid / QUILL_LANES;
  for (int r = 0; r < QUILL_LANES / KEY_BATCH; ++r) {
    float part[KEY_BATCH];
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {
      const int p = p0 + QUILL_LANES * warp + KEY_BATCH * r + b;
      part[b] = 0.0f;
#pragma unroll
      for (int a = 0; a < ACC_N / 2; ++a) {
        const int d = ACC_DIM(lane, a);
        if (p < p_end && d < head_dim) {
          const float2 k = p == fresh_p ? (float2)(k_fresh[d], k_fresh[d + 1]) : KV_LOAD2((size_t)p * kv_dim + d, k_head);
          part[b] += dot((float2)(q_local[d], q_local[d + 1]), k);
        }
      }
    }
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {
      const float s = lane_group_sum(part[b], scratch);
      const int j = QUILL_LANES * warp + KEY_BATCH * r + b;
      if (lane == 0) scores[j] = p0 + j < p_end ? s : -INFINITY;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const float s = scores[lid];
#else
  const int p = p0 + lid;
  float s = -INFINITY;
  if (p < p_end) {
    s = 0.0f;
    if (p == fresh_p) {
      for (int d = 0; d < head_dim; ++d) s += q_local[d] * k_fresh[d];
    } else {
      __global const KV_T* k = k_head + (size_t)p * kv_dim;
      for (int d = 0; d < head_dim; ++d) s += q_local[d] * KV_LOAD(d, k);
    }
  }
#endif
  const float new_max = fmax(st->max, work_group_max(s, scratch));
  const float correction = exp(st->max - new_max);
  const float e = p0 + lid < p_end ? exp(s - new_max) : 0.0f;
  scores[lid] = e;
  st->sum = st->sum * correction + work_group_sum(e, scratch);  // its barriers make scores visible
  for (int i = 0; i < ACC_N; ++i) st->acc[i] *= correction;
  const int n_here = min(WG, p_end - p0);
#if KEYS_BY_WARP
  for (int r = 0; r < QUILL_LANES / KEY_BATCH; ++r) {
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {  // fixed trip count: the batch's predicated loads issue together
      const int j = QUILL_LANES * warp + KEY_BATCH * r + b, pj = p0 + j;
      const float w = j < n_here ? scores[j] : 0.0f;
#pragma unroll
      for (int a = 0; a < ACC_N / 2; ++a) {
        const int d = ACC_DIM(lane, a);
        if (j < n_here && d < head_dim) {
          const float2 v = pj == fresh_p ? (float2)(v_fresh[d], v_fresh[d + 1]) : KV_LOAD2((size_t)pj * kv_dim + d, v_head);
          st->acc[2 * a] += w * v.x;
          st->acc[2 * a + 1] += w * v.y;
        }
      }
    }
  }
#else
  if (lid < head_dim) {
    for (int j = 0; j < n_here; ++j) {
      const int pj = p0 + j;
      st->acc[0] += scores[j] * (pj == fresh_p ? v_fresh[lid] : KV_LOAD((size_t)pj * kv_dim + lid, v_head));
    }
  }
#endif
  st->max = new_max;
  barrier(CLK_LOCAL_MEM_FENCE);
}

// The unnormalised output of dim lid (lid < head_dim; 0 elsewhere) from every work-item's state.
// wacc: __local float[WARPS * 128]. All work-items call.
inline float attn_output(const AttnState* st, int head_dim, __local float* wacc) {
  const int lid = get_local_id(0);
#if KEYS_BY_WARP
  const int lane = lid % QUILL_LANES, warp = lid / QUILL_LANES;
  for (int a = 0; a < ACC_N / 2; ++a) {
    const int d = ACC_DIM(lane, a);
    if (d < head_dim) {
      wacc[warp * 128 + d] = st->acc[2 * a];
      wacc[warp * 128 + d + 1] = st->acc[2 * a + 1];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  float v = 0.0f;
  if (lid < head_dim)
    for (int w = 0; w < WARPS; ++w) v += wacc[w * 128 + lid];
  barrier(CLK_LOCAL_MEM_FENCE);
  return v;
#else
  return st->acc[0];
#endif
}

#endif  // QUILL_ATTENTION_COMMON_CL
