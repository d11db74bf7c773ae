// attention_common.cl: what prefill (attention.cl) and decode (attention_decode.cl) attention share:
// one chunk of WG key positions for ATTN_QUERIES query rows of one head, folded into each row's online
// softmax (running max, running sum, output accumulator), and the final combination of an accumulator.
// Every K and V row of the chunk is read once for all the work-group's query rows: prefill gives a
// work-group TOK_TILE consecutive tokens, decode its one token (ATTN_QUERIES 1; decode uses the chunks
// only without KEYS_BY_WARP: its by-warp schedule is warp-private, in attention_decode.cl).
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
#ifndef ATTN_QUERIES
#define ATTN_QUERIES 1  // query rows per work-group (the includer sets it: attention.cl, TOK_TILE)
#endif
#if ATTN_QUERIES < 1 || ATTN_QUERIES > 16
#error "ATTN_QUERIES must be 1..16 (local memory: 3 x ATTN_QUERIES x WG floats)"
#endif
#ifndef KEYS_BY_WARP
#define KEYS_BY_WARP QUILL_PTX
#endif
#define WARPS (WG / QUILL_LANES)  // KEYS_BY_WARP: a chunk of WG keys is 32 per group
#if KEYS_BY_WARP
#define ACC_N 4  // lane l holds dims 2 l, 2 l + 1, 2 l + 64, 2 l + 65 (head_dim <= 128, even)
#define ACC_DIM(lane, a) (2 * (lane) + 2 * QUILL_LANES * (a))  // first dim of the lane's pair a
#ifndef KEY_BATCH
// Keys whose loads a lane has in flight together (divides 32). One query: 16 (prefill -16% vs 8).
// Several: 8, as each key's partial scores take ATTN_QUERIES registers.
#define KEY_BATCH (ATTN_QUERIES == 1 ? 16 : 8)
#endif
#else
#define ACC_N 1
#endif

// Online-softmax state of one query row in one work-item (max and sum are the same in all of them).
typedef struct {
  float max, sum;
  float acc[ACC_N];  // KEYS_BY_WARP: this group's share of dims ACC_DIM(lane, i / 2) + i % 2; else dim lid
} AttnState;

inline void attn_init(AttnState* st) {
  st->max = -INFINITY;
  st->sum = 0.0f;
  for (int i = 0; i < ACC_N; ++i) st->acc[i] = 0.0f;
}

// Per-row max (is_max) or sum over the work-group: v[u] is this work-item's value for row u; on
// return v[u] is row u's total, in every work-item. scratch: __local float[ATTN_QUERIES * WG].
// All work-items call.
inline void attn_rows_reduce(float* v, int is_max, __local float* scratch) {
  const int lid = get_local_id(0);
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) scratch[u * WG + lid] = v[u];
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int off = WG / 2; off > 0; off >>= 1) {
    if (lid < off) {
#pragma unroll
      for (int u = 0; u < ATTN_QUERIES; ++u) {
        const float a = scratch[u * WG + lid], b = scratch[u * WG + lid + off];
        scratch[u * WG + lid] = is_max ? fmax(a, b) : a + b;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) v[u] = scratch[u * WG];
  barrier(CLK_LOCAL_MEM_FENCE);
}

// Folds key positions p0 .. p0 + WG - 1 into the states of ATTN_QUERIES query rows: row u takes the
// positions below p_end + min(u, n_q - 1) (causal: row u is the token after row u - 1; rows n_q and
// up, past the last token of a prefill, repeat row n_q - 1 and are not stored by the caller).
// st: [ATTN_QUERIES] states. q_local: [ATTN_QUERIES][WG] the rows' queries times the softmax scale.
// k_head / v_head: the kv head's column in the cache (position p at p * kv_dim). Position `fresh_p`
// (decode: the token being written, -1 for none) is read from k_fresh (local) and v_fresh (global)
// instead of the cache. scores, scratch: __local float[ATTN_QUERIES * WG]. All work-items call.
inline void attn_chunk_rows(AttnState* st, __local const float* q_local, __global const KV_T* k_head,
                            __global const KV_T* v_head, int kv_dim, int head_dim, int p0, int p_end, int n_q,
                            int fresh_p, __local const float* k_fresh, __global const float* v_fresh,
                            __local float* scores, __local float* scratch) {
  const int lid = get_local_id(0);
  int row_end[ATTN_QUERIES];  // row u takes the positions below row_end[u]
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) row_end[u] = p_end + min(u, n_q - 1);
  const int p_last = row_end[ATTN_QUERIES - 1];  // no key at or past it is read
  float s[ATTN_QUERIES];  // this work-item's score of key p0 + lid for each row
#if KEYS_BY_WARP
  // Group `warp` takes the chunk's keys 32 warp .. 32 warp + 31, KEY_BATCH at a time: each lane loads
  // its dims' pairs of all KEY_BATCH keys first (independent loads in flight together) and dots each
  // with every row's query; then the batch's dot products are reduced across the lanes.
  const int lane = lid % QUILL_LANES, warp = lid / QUILL_LANES;
  for (int r = 0; r < QUILL_LANES / KEY_BATCH; ++r) {
    float part[ATTN_QUERIES][KEY_BATCH];
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {
      const int p = p0 + QUILL_LANES * warp + KEY_BATCH * r + b;
#pragma unroll
      for (int u = 0; u < ATTN_QUERIES; ++u) part[u][b] = 0.0f;
#pragma unroll
      for (int a = 0; a < ACC_N / 2; ++a) {
        const int d = ACC_DIM(lane, a);
        if (p < p_last && d < head_dim) {
          const float2 k = p == fresh_p ? (float2)(k_fresh[d], k_fresh[d + 1]) : KV_LOAD2((size_t)p * kv_dim + d, k_head);
#pragma unroll
          for (int u = 0; u < ATTN_QUERIES; ++u)
            part[u][b] += dot((float2)(q_local[u * WG + d], q_local[u * WG + d + 1]), k);
        }
      }
    }
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {
      const int j = QUILL_LANES * warp + KEY_BATCH * r + b;
#pragma unroll
      for (int u = 0; u < ATTN_QUERIES; ++u) {
        const float sum = lane_group_sum(part[u][b], scratch);
        if (lane == 0) scores[u * WG + j] = sum;
      }
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) s[u] = scores[u * WG + lid];
#else
  const int p = p0 + lid;
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) s[u] = 0.0f;
  if (p < p_last) {
    if (p == fresh_p) {
      for (int d = 0; d < head_dim; ++d) {
#pragma unroll
        for (int u = 0; u < ATTN_QUERIES; ++u) s[u] += q_local[u * WG + d] * k_fresh[d];
      }
    } else {  // its own loop: no select between the two sources per element (vectorizes on CPUs)
      __global const KV_T* k = k_head + (size_t)p * kv_dim;
      for (int d = 0; d < head_dim; ++d) {
        const float kd = KV_LOAD(d, k);
#pragma unroll
        for (int u = 0; u < ATTN_QUERIES; ++u) s[u] += q_local[u * WG + d] * kd;
      }
    }
  }
#endif
  // Causal mask, then each row's online-softmax step: new max, rescale, weights e into scores.
  float m[ATTN_QUERIES], e[ATTN_QUERIES], correction[ATTN_QUERIES];
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) m[u] = p0 + lid < row_end[u] ? s[u] : -INFINITY;
  attn_rows_reduce(m, 1, scratch);
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) {
    const float new_max = fmax(st[u].max, m[u]);
    correction[u] = exp(st[u].max - new_max);
    e[u] = p0 + lid < row_end[u] ? exp(s[u] - new_max) : 0.0f;
    scores[u * WG + lid] = e[u];
    st[u].max = new_max;
  }
  attn_rows_reduce(e, 0, scratch);  // its barriers make scores visible
#pragma unroll
  for (int u = 0; u < ATTN_QUERIES; ++u) {
    st[u].sum = st[u].sum * correction[u] + e[u];
    for (int i = 0; i < ACC_N; ++i) st[u].acc[i] *= correction[u];
  }
  // V: each key's row is read once and weighted into every row's accumulator (weight 0 past a row's end).
  const int n_here = min(WG, p_last - p0);
#if KEYS_BY_WARP
  for (int r = 0; r < QUILL_LANES / KEY_BATCH; ++r) {
#pragma unroll
    for (int b = 0; b < KEY_BATCH; ++b) {  // fixed trip count: the batch's predicated loads issue together
      const int j = QUILL_LANES * warp + KEY_BATCH * r + b, pj = p0 + j;
      float w[ATTN_QUERIES];
#pragma unroll
      for (int u = 0; u < ATTN_QUERIES; ++u) w[u] = j < n_here ? scores[u * WG + j] : 0.0f;
#pragma unroll
      for (int a = 0; a < ACC_N / 2; ++a) {
        const int d = ACC_DIM(lane, a);
        if (j < n_here && d < head_dim) {
          const float2 v = pj == fresh_p ? (float2)(v_fresh[d], v_fresh[d + 1]) : KV_LOAD2((size_t)pj * kv_dim + d, v_head);
#pragma unroll
          for (int u = 0; u < ATTN_QUERIES; ++u) {
            st[u].acc[2 * a] += w[u] * v.x;
            st[u].acc[2 * a + 1] += w[u] * v.y;
          }
        }
      }
    }
  }
#else
  if (lid < head_dim) {
    for (int j = 0; j < n_here; ++j) {
      const int pj = p0 + j;
      const float v = pj == fresh_p ? v_fresh[lid] : KV_LOAD((size_t)pj * kv_dim + lid, v_head);
#pragma unroll
      for (int u = 0; u < ATTN_QUERIES; ++u) st[u].acc[0] += scores[u * WG + j] * v;
    }
  }
#endif
  barrier(CLK_LOCAL_MEM_FENCE);
}

#if ATTN_QUERIES == 1
// One query row (decode): attn_chunk_rows over positions [p0, min(p0 + WG, p_end)).
// scores, scratch: __local float[WG].
inline void attn_chunk(AttnState* st, __local const float* q_local, __global const KV_T* k_head,
                       __global const KV_T* v_head, int kv_dim, int head_dim, int p0, int p_end, int fresh_p,
                       __local const float* k_fresh, __global const float* v_fresh, __local float* scores,
                       __local float* scratch) {
  attn_chunk_rows(st, q_local, k_head, v_head, kv_dim, head_dim, p0, p_end, 1, fresh_p, k_fresh, v_fresh, scores,
                  scratch);
}
#endif

// The unnormalised output of dim lid (lid < head_dim; 0 elsewhere) of one row's state in every
// work-item. wacc: __local float[WARPS * 128]. All work-items call.
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
