// matmul_int8_fused.cl: the whole decode int8 / LLM.int8() Linear (QUANT_SPEC.md 1) in ONE launch, for
// n_tok <= FMAX_TOK. Every work-group redoes the cheap part on the tiny activation x (it sits in L2):
//   1. the input transform (none, rmsnorm with weight: x * inv * w, or silu(gate) * up), as norm.cl /
//      elementwise.cl compute it;
//   2. the outlier columns O = { j : any token |xt[i,j]| >= threshold } (threshold <= 0: none), as a
//      bitmask and an ascending list in local memory;
//   3. SCA[i] = max_{j not in O} |xt[i,j]| and CA[i,j] = round_half_even(xt[i,j] * 127 / SCA[i])
//      (correctly rounded division; 0 for j in O, padding, SCA == 0), into local memory, bit-exact with
//      quantize.cl / engine quantize_activations_int8 on the same xt; with a static calibrated scale
//      (static_amax > 0, threshold 0: QUANT_SPEC.md 6) SCA[i] = static_amax for every token and the codes
//      saturate at +-127 (quantize_activations_int8_static on xt: the range applies after the transform);
// then streams its share of the weight rows: dp4a GEMV (several rows per warp sharing each activation
// load), y[i,k] (+)= C32 * SCA[i] * SCB[k] / 16129 + sum_{j in O} xt[i,j] * W16[k,j].
// Work split: one work-group per compute unit (persistent); work-group g owns a contiguous, balanced
// range of row tasks (RPW rows each), its warps take them in turn; the loop trip count is uniform over
// the work-group (the portable path's reductions use barriers); the one-token variant on the NVIDIA path
// streams them instead (FZ_STREAM, below) and adds the outlier part after. When n_tok * kpad exceeds LCODE_BYTES the
// tokens are processed in passes of tp tokens (weights re-read per pass).
// Layouts: as matmul_int8.cl (CB [rows_pad, kpad] int8, rows_pad a multiple of RPW; SCB; slot; W16).
#include "common.cl"

#ifndef FWG
#define FWG 512
#endif
#define FWARPS (FWG / QUILL_LANES)
#ifndef RPW
#define RPW 2
#endif
#ifndef FMAX_TOK
#define FMAX_TOK 8
#endif
#ifndef LCODE_BYTES
#define LCODE_BYTES 32768
#endif
#ifndef MAX_FLAG_WORDS
#define MAX_FLAG_WORDS 1024
#endif
#ifndef OCAP
#define OCAP 128
#endif
// FZ_ONE: the one-token variant (host: n_tok == 1, cols % 4 == 0, cols <= 4 * FZ_XR * FWG): x is read
// once as float4 into registers (transform, flags, absmax and codes from registers), and the first weight
// chunk of each warp is requested before the prologue so that its latency overlaps it.
#ifndef FZ_ONE
#define FZ_ONE 0
#endif
#ifndef FZ_XR
#define FZ_XR 8
#endif
// FZ_STREAM (the one-token variant on the NVIDIA path, where the warp reductions need no barrier): each
// warp streams its tasks' rows in (task, chunk) order, a chunk being one uint4 per lane and row, with
// FZ_PIPE chunks in flight while as many are computed (gemv_stream.cl's schedule); the first block is
// requested before the prologue.
#define FZ_STREAM (FZ_ONE && QUILL_PTX)
#ifndef FZ_PIPE
#define FZ_PIPE 8  // measured best of 2 / 4 / 8 / 12 with 512 work-items (docs/PERFORMANCE.md, session 7)
#endif

inline int fz_dot16(uint4 a, uint4 b, int c) {
  return dot_s8x4(a.w, b.w, dot_s8x4(a.z, b.z, dot_s8x4(a.y, b.y, dot_s8x4(a.x, b.x, c))));
}

// Reduces v[t] (sum when is_max == 0, else max) over the work-group for t < n; dest[t] gets the result.
// scratch: __local float[FWG] (>= FMAX_TOK * FWARPS). All call; dest is visible after the call.
inline void fz_wg_reduce_tok(float* v, int n, int is_max, __local float* scratch, __local float* dest) {
  const int lid = get_local_id(0);
#if QUILL_PTX
  const int lane = lid & 31, warp = lid >> 5;
#pragma unroll
  for (int t = 0; t < FMAX_TOK; ++t) {
    const float r = is_max ? warp_max(v[t]) : warp_sum(v[t]);
    if (lane == 0) scratch[t * FWARPS + warp] = r;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid < n) {
    float r = scratch[lid * FWARPS];
    for (int w = 1; w < FWARPS; ++w) r = is_max ? fmax(r, scratch[lid * FWARPS + w]) : r + scratch[lid * FWARPS + w];
    dest[lid] = r;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
#else
  for (int t = 0; t < n; ++t) {
    float mine = 0.0f;
#pragma unroll
    for (int u = 0; u < FMAX_TOK; ++u) mine = u == t ? v[u] : mine;
    scratch[lid] = mine;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int offset = FWG / 2; offset > 0; offset >>= 1) {
      if (lid < offset) scratch[lid] = is_max ? fmax(scratch[lid], scratch[lid + offset]) : scratch[lid] + scratch[lid + offset];
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) dest[t] = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#endif
}

// The transformed input xt[t, j]. transform: 0 none (X [n_tok, cols]), 1 rmsnorm (X [n_tok, cols], inv =
// 1/sqrt(mean(x^2) + eps) of token t, nw [cols]), 2 swiglu (X [n_tok, 2 cols] = gate | up).
inline float fz_xt(__global const float* X, __global const float* nw, int transform, float inv, int cols, int t, int j) {
  if (transform == 2) {
    const float g = X[(size_t)t * 2 * cols + j];
    const float u = X[(size_t)t * 2 * cols + cols + j];
    return silu_times(g, u);
  }
  const float x = X[(size_t)t * cols + j];
  return transform == 1 ? x * inv * nw[j] : x;
}

// W16[k, j] for an outlier column j: the kept fp16 column, or the int8 fallback CB * SCB / 127.
inline float fz_w16(int k, int j, __global const int* slot, __global const half* W16, int n16, __global const char* CB,
                    __global const float* SCB, int kpad) {
  const int s = slot[j];
  return s >= 0 ? vload_half((size_t)k * n16 + s, W16) : (float)CB[(size_t)k * kpad + j] * SCB[k] / 127.0f;
}

// This lane's share of step ch (columns 16 (ch * 128 + lane + 32 u), u < 4) of the RPW rows of task:
// dst[r][u]; zeros past the row end or for a task at or past task1 (no load).
inline void fz_load_chunk(uint4 dst[RPW][4], __global const char* CB, int task, int task1, int ch, int nv, int kpad,
                          int lane) {
  __global const uint4* w = (__global const uint4*)(CB + (size_t)task * RPW * kpad);
#pragma unroll
  for (int r = 0; r < RPW; ++r)
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int v = ch * 4 * QUILL_LANES + lane + QUILL_LANES * u;
      dst[r][u] = task < task1 && v < nv ? w[(size_t)r * nv + v] : (uint4)(0u);
    }
}

#if FZ_STREAM
// Loads the next FZ_PIPE chunks of this warp's (task, chunk) sequence into q[FZ_PIPE][RPW] and advances
// the load cursor (load_task, load_chunk); nothing past task_end or the row end (warp-uniform).
#define FZ_LOAD_BLOCK(q)                                                                            \
  _Pragma("unroll") for (int p_ = 0; p_ < FZ_PIPE; ++p_) {                                          \
    if (load_task < task_end) {                                                                     \
      const int u_ = load_chunk * QUILL_LANES + lane;                                               \
      __global const uint4* w_ = (__global const uint4*)(CB + (size_t)load_task * RPW * kpad);      \
      if (u_ < nv) {                                                                                \
        _Pragma("unroll") for (int r_ = 0; r_ < RPW; ++r_) q[p_][r_] = load_stream4(w_ + ((size_t)r_ * nv + u_)); \
      }                                                                                             \
      STREAM_CURSOR_NEXT(load_task, load_chunk, chunks, FWARPS)                                     \
    }                                                                                               \
  }

// Computes the FZ_PIPE chunks in q against the token's codes, advancing the compute cursor (task, chunk);
// at the end of a task, stores the int8 part of its RPW outputs and clears acc (the outlier part is added
// after the stream, kernel step 5; keeping it out of this unrolled block keeps the loop small).
#define FZ_COMPUTE_BLOCK(q)                                                                         \
  _Pragma("unroll") for (int p_ = 0; p_ < FZ_PIPE; ++p_) {                                          \
    if (task < task_end) {                                                                          \
      const int u_ = chunk * QUILL_LANES + lane;                                                    \
      if (u_ < nv) {                                                                                \
        const uint4 xv_ = lcodes4[u_];                                                              \
        _Pragma("unroll") for (int r_ = 0; r_ < RPW; ++r_) acc[r_] = fz_dot16(q[p_][r_], xv_, acc[r_]); \
      }                                                                                             \
      if (++chunk == chunks) {                                                                      \
        _Pragma("unroll") for (int r_ = 0; r_ < RPW; ++r_) {                                        \
          const int c32_ = lane_group_isum(acc[r_], iscr), row_ = task * RPW + r_;                  \
          if (lane == 0 && row_ < rows) {                                                           \
            const float v_ = int8_dequant(c32_, lsca[0], SCB[row_]);                              \
            Y[row_] = accumulate ? Y[row_] + v_ : v_;                                               \
          }                                                                                         \
          acc[r_] = 0;                                                                              \
        }                                                                                           \
        chunk = 0;                                                                                  \
        task += FWARPS;                                                                             \
      }                                                                                             \
    }                                                                                               \
  }
#endif

// Where the outlier side of the GEMV finds its inputs: the work-group's outlier columns (ocount of
// them: the list lolist with their x in lox when ocount <= OCAP, else the bitmask lflags of nwords
// words, x recomputed from X / nw / transform with the tokens' linv) and their weights (fz_w16; SCB is
// also the int8 part's row scale).
typedef struct {
  int ocount;
  __local const float* lox;
  __local const int* lolist;
  __local const uint* lflags;
  int nwords;
  __local const float* linv;
  __global const float* X;
  __global const float* nw;
  int transform, cols;
  __global const int* slot;
  __global const half* W16;
  int n16;
  __global const char* CB;
  __global const float* SCB;
  int kpad;
} FzOutliers;

// This lane's share of sum_{j in O} xt[t, j] * W16[row, j].
inline float fz_outlier_part(const FzOutliers* o, int t, int row, int lane) {
  float part = 0.0f;
  if (o->ocount <= OCAP) {
    for (int i = lane; i < o->ocount; i += QUILL_LANES)
      part += o->lox[t * OCAP + i] * fz_w16(row, o->lolist[i], o->slot, o->W16, o->n16, o->CB, o->SCB, o->kpad);
  } else {
    const float invt = o->linv[t];
    for (int wd = lane; wd < o->nwords; wd += QUILL_LANES) {
      uint bits = o->lflags[wd];
      while (bits != 0u) {
        const int j = wd * 32 + 31 - (int)clz(bits & (0u - bits));
        part += fz_xt(o->X, o->nw, o->transform, invt, o->cols, t, j) *
                fz_w16(row, j, o->slot, o->W16, o->n16, o->CB, o->SCB, o->kpad);
        bits &= bits - 1u;
      }
    }
  }
  return part;
}


// One output of the GEMV: sums this lane's int32 share c over the warp, adds the outlier part of token t,
// and lane 0 stores y[t, row] (+)= (Y [n_tok, rows]). All lanes call.
inline void fz_store_output(int c, int t, int row, int valid, const FzOutliers* o, __local const float* lsca,
                            __global float* Y, int rows, int accumulate, __local int* iscr, __local float* fscr,
                            int lane) {
  const int ocount = o->ocount;
  const int c32 = lane_group_isum(c, iscr);
  const float part = valid && row < rows && ocount > 0 ? fz_outlier_part(o, t, row, lane) : 0.0f;
  const float osum = ocount > 0 ? lane_group_sum(part, fscr) : 0.0f;
  if (lane == 0 && valid && row < rows) {
    const size_t at = (size_t)t * rows + row;
    const float y = int8_dequant(c32, lsca[t], o->SCB[row]) + osum;
    Y[at] = accumulate ? Y[at] + y : y;
  }
}

// CB [rows_pad, kpad] int8, SCB [rows_pad] f32, slot [cols] int, W16 [rows_pad, n16] fp16; X as fz_xt;
// nw: [cols] f32 norm weight (read for transform 1 only); Y [n_tok, rows] f32 (+= when accumulate).
// static_amax: 0 = per-token scales, > 0 = the static activation absmax (the host passes threshold 0).
// dbg != 0: work-group 0 also writes its xt [n_tok, cols], codes [n_tok, kpad], SCA [n_tok], the outlier
// list [cols] and count [1] to the dbg_* buffers (tests). pf / pf_bytes: common.cl prefetch_l2.
// Host guarantees: 1 <= n_tok <= FMAX_TOK, kpad <= LCODE_BYTES, cols <= 32 * MAX_FLAG_WORDS, kpad % 16 == 0.
// NDRange: global (G * FWG), local (FWG), any G >= 1.
__kernel __attribute__((reqd_work_group_size(FWG, 1, 1)))
void matmul_int8_fused(__global const char* CB, __global const float* SCB, __global const int* slot,
                       __global const half* W16, int n16, __global const float* X, __global const float* nw,
                       int transform, float eps, float threshold, float static_amax, __global float* Y, int rows,
                       int cols, int kpad, int n_tok, int accumulate, int dbg, __global float* dbg_xt,
                       __global char* dbg_codes, __global float* dbg_sca, __global int* dbg_olist,
                       __global int* dbg_ocount, __global const uchar* pf, int pf_bytes) {
  __local uint4 lcodes4[LCODE_BYTES / 16];  // [tp, kpad] int8 codes of the current token pass
  __local uint lflags[MAX_FLAG_WORDS];      // outlier-column bitmask
  __local int lolist[OCAP];                 // outlier columns, ascending (when count <= OCAP)
  __local float lox[FMAX_TOK * OCAP];       // xt of the listed outlier columns, [t][o]
  __local float fscr[FWG];
  __local int iscr[FWG];
  __local float linv[FMAX_TOK], lsca[FMAX_TOK];
  __local char* lcodes = (__local char*)lcodes4;
  const int lid = get_local_id(0), lane = lid & (QUILL_LANES - 1), warp = lid / QUILL_LANES;
  const int nwords = (cols + 31) / 32;
  const int dbg_here = dbg != 0 && get_group_id(0) == 0;

  // Row tasks of this work-group: [task0, task1), RPW rows each; iterations uniform over the work-group.
  const int ntasks = (rows + RPW - 1) / RPW;
  const int G = get_num_groups(0), g = get_group_id(0);
  const int task0 = (int)(((long)ntasks * g) / G), task1 = (int)(((long)ntasks * (g + 1)) / G);
#ifdef FZ_NO_STREAM  // measurement only ($QUILL_INT8_FUSED_DEFS=-DFZ_NO_STREAM): the prologue alone
  const int task_end = task0;
#else
  const int task_end = task1;
#endif
  const int iters = (task_end - task0 + FWARPS - 1) / FWARPS;
  const int nv = kpad / 16;
#if FZ_STREAM
  // The first block of this warp's chunks, requested before the prologue.
  const int chunks = (nv + QUILL_LANES - 1) / QUILL_LANES;  // uint4 per lane and row
  int load_task = task0 + warp, load_chunk = 0;
  uint4 q[FZ_PIPE][RPW];
  FZ_LOAD_BLOCK(q);
#elif FZ_ONE
  // Prefetch: the first weight chunk of this warp's first task, before the prologue.
  uint4 pre[RPW][4];
  fz_load_chunk(pre, CB, task0 + warp, task1, 0, nv, kpad, lane);
#endif
#if FZ_ONE
  // 1-2. x once into registers; transform; flags; absmax.
  for (int w = lid; w < nwords; w += FWG) lflags[w] = 0u;
  const int n4 = cols / 4;
  float4 xr[FZ_XR];
  float acc_t[FMAX_TOK];
#pragma unroll
  for (int t = 0; t < FMAX_TOK; ++t) acc_t[t] = 0.0f;
#pragma unroll
  for (int k = 0; k < FZ_XR; ++k) {
    const int e = lid + k * FWG;
    float4 v = (float4)(0.0f);
    if (e < n4) {
      if (transform == 2) {
        const float4 gt = vload4(e, X), up = vload4(e, X + cols);
        v = silu_times4(gt, up);
      } else {
        v = vload4(e, X);
      }
    }
    xr[k] = v;
    acc_t[0] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  // RMSNorm's sum of squares (NVIDIA: only for RMSNorm; the branch is work-group uniform).
#if FZ_STREAM
  if (transform == 1)
#endif
  {
    fz_wg_reduce_tok(acc_t, 1, 0, fscr, linv);
  }
  const float inv0 = transform == 1 ? rsqrt(linv[0] / cols + eps) : 1.0f;
  acc_t[0] = 0.0f;
  int om[FZ_XR];  // outlier bits of this work-item's 4 columns
#pragma unroll
  for (int k = 0; k < FZ_XR; ++k) {
    const int e = lid + k * FWG;
    float4 v = xr[k];
    if (transform == 1 && e < n4) v = v * inv0 * vload4(e, nw);
    xr[k] = v;
    const float4 av = fabs(v);
    int m = 0;
    if (threshold > 0.0f && e < n4)
      m = (av.x >= threshold ? 1 : 0) | (av.y >= threshold ? 2 : 0) | (av.z >= threshold ? 4 : 0) | (av.w >= threshold ? 8 : 0);
    om[k] = m;
    if (m != 0) atomic_or(&lflags[(4 * e) >> 5], (uint)m << ((4 * e) & 31));
    acc_t[0] = fmax(acc_t[0], fmax(fmax(m & 1 ? 0.0f : av.x, m & 2 ? 0.0f : av.y), fmax(m & 4 ? 0.0f : av.z, m & 8 ? 0.0f : av.w)));
    if (dbg_here && e < n4) vstore4(v, e, dbg_xt);
  }
  if (static_amax > 0.0f) acc_t[0] = static_amax;  // static scale: the max over the work-group is it
  fz_wg_reduce_tok(acc_t, 1, 1, fscr, lsca);  // also makes lflags visible
  if (lid == 0) linv[0] = inv0;  // read after the scan's barriers below
  {  // codes of the one token, from registers
    const float s0 = lsca[0];
    __local uint* lc = (__local uint*)lcodes4;
#pragma unroll
    for (int k = 0; k < FZ_XR; ++k) {
      const int e = lid + k * FWG;
      if (e < n4) {
        const float4 v = xr[k];
        int q0 = 0, q1 = 0, q2 = 0, q3 = 0;
        if (s0 != 0.0f) {
          q0 = om[k] & 1 ? 0 : int8_code(v.x, s0);
          q1 = om[k] & 2 ? 0 : int8_code(v.y, s0);
          q2 = om[k] & 4 ? 0 : int8_code(v.z, s0);
          q3 = om[k] & 8 ? 0 : int8_code(v.w, s0);
        }
        const uint word = (uint)(q0 & 255) | ((uint)(q1 & 255) << 8) | ((uint)(q2 & 255) << 16) | ((uint)(q3 & 255) << 24);
        lc[e] = word;
        if (dbg_here) ((__global uint*)dbg_codes)[e] = word;
      }
    }
    for (int e = n4 + lid; e < kpad / 4; e += FWG) {
      lc[e] = 0u;
      if (dbg_here) ((__global uint*)dbg_codes)[e] = 0u;
    }
  }
#else
  // 1. Clear the bitmask; rmsnorm factors.
  for (int w = lid; w < nwords; w += FWG) lflags[w] = 0u;
  float acc_t[FMAX_TOK];
#pragma unroll
  for (int t = 0; t < FMAX_TOK; ++t) acc_t[t] = 0.0f;
  if (transform == 1) {
    for (int j = lid; j < cols; j += FWG) {
#pragma unroll
      for (int t = 0; t < FMAX_TOK; ++t) {
        if (t < n_tok) {
          const float x = X[(size_t)t * cols + j];
          acc_t[t] += x * x;
        }
      }
    }
  }
  fz_wg_reduce_tok(acc_t, n_tok, 0, fscr, linv);
  if (lid < n_tok) linv[lid] = rsqrt(linv[lid] / cols + eps);
  barrier(CLK_LOCAL_MEM_FENCE);

  // 2. Outlier flags and the per-token absmax over non-outlier columns.
  float inv[FMAX_TOK];
#pragma unroll
  for (int t = 0; t < FMAX_TOK; ++t) {
    inv[t] = t < n_tok ? linv[t] : 1.0f;
    acc_t[t] = 0.0f;
  }
  for (int j = lid; j < cols; j += FWG) {
    float v[FMAX_TOK];
    int out = 0;
#pragma unroll
    for (int t = 0; t < FMAX_TOK; ++t) {
      v[t] = 0.0f;
      if (t < n_tok) {
        v[t] = fz_xt(X, nw, transform, inv[t], cols, t, j);
        out |= fabs(v[t]) >= threshold;
        if (dbg_here) dbg_xt[(size_t)t * cols + j] = v[t];
      }
    }
    if (threshold > 0.0f && out) {
      atomic_or(&lflags[j >> 5], 1u << (j & 31));
    } else {
#pragma unroll
      for (int t = 0; t < FMAX_TOK; ++t) acc_t[t] = fmax(acc_t[t], fabs(v[t]));
    }
  }
  if (static_amax > 0.0f) {  // static scale: the max over the work-group is it
#pragma unroll
    for (int t = 0; t < FMAX_TOK; ++t) acc_t[t] = static_amax;
  }
  fz_wg_reduce_tok(acc_t, n_tok, 1, fscr, lsca);  // also makes lflags visible

#endif
  // 3. The ascending outlier list (each work-item a contiguous chunk of bitmask words). NVIDIA: not
  // without a threshold (int8, static scales: no outlier columns; work-group-uniform branch).
  const int cw = (nwords + FWG - 1) / FWG;
  const int w0 = min(nwords, lid * cw), w1 = min(nwords, w0 + cw);
  int ocount = 0, pos0 = 0;
#if FZ_STREAM
  if (threshold > 0.0f)
#endif
  {
    int mine = 0;
    for (int w = w0; w < w1; ++w) mine += popcount(lflags[w]);
    pos0 = work_group_exclusive_scan(mine, iscr, &ocount, FWG);
    int pos = pos0;
    if (ocount <= OCAP) {
      for (int w = w0; w < w1; ++w) {
        uint bits = lflags[w];
        while (bits != 0u) {
          const int b = 31 - (int)clz(bits & (0u - bits));
          lolist[pos++] = w * 32 + b;
          bits &= bits - 1u;
        }
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (ocount <= OCAP) {
      for (int e = lid; e < ocount * n_tok; e += FWG) {
        const int t = e / ocount, o = e % ocount;
        lox[t * OCAP + o] = fz_xt(X, nw, transform, linv[t], cols, t, lolist[o]);
      }
    }
  }
  if (dbg_here) {
    if (lid == 0) dbg_ocount[0] = ocount;
    int p = pos0;
    for (int w = w0; w < w1; ++w) {  // the list from the bitmask (any count)
      uint bits = lflags[w];
      while (bits != 0u) {
        const int b = 31 - (int)clz(bits & (0u - bits));
        dbg_olist[p++] = w * 32 + b;
        bits &= bits - 1u;
      }
    }
    if (lid < n_tok) dbg_sca[lid] = lsca[lid];
  }
  // (lox is made visible by the barrier at the top of the first token pass.)

  const int tp = min(n_tok, LCODE_BYTES / kpad);
  const FzOutliers outliers = {ocount, lox, lolist, lflags, nwords, linv, X, nw, transform, cols,
                               slot, W16, n16, CB, SCB, kpad};

  for (int p0 = 0; p0 < n_tok; p0 += tp) {
    const int np = min(tp, n_tok - p0);
    // 4. Codes of tokens p0 .. p0+np-1 into local memory (FZ_ONE: done above).
    barrier(CLK_LOCAL_MEM_FENCE);
#if !FZ_ONE
    for (int e = lid; e < np * kpad; e += FWG) {
      const int tl = e / kpad, j = e - tl * kpad, t = p0 + tl;
      int q = 0;
      const float s = lsca[t];
      if (j < cols && s != 0.0f && !((lflags[j >> 5] >> (j & 31)) & 1u)) {
        q = int8_code(fz_xt(X, nw, transform, linv[t], cols, t, j), s);
      }
      lcodes[e] = (char)q;
      if (dbg_here) dbg_codes[(size_t)t * kpad + j] = (char)q;
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // 5. GEMV over this work-group's rows.
#if FZ_STREAM
    int task = task0 + warp, chunk = 0;
    int acc[RPW];
#pragma unroll
    for (int r = 0; r < RPW; ++r) acc[r] = 0;
    while (task < task_end) {  // (one pass: np == 1)
      uint4 qn[FZ_PIPE][RPW];
      FZ_LOAD_BLOCK(qn);
      FZ_COMPUTE_BLOCK(q);
#pragma unroll
      for (int p = 0; p < FZ_PIPE; ++p)
#pragma unroll
        for (int r = 0; r < RPW; ++r) q[p][r] = qn[p][r];
    }
    if (ocount > 0) {  // the outlier part of this warp's outputs (work-group-uniform branch)
      for (int t = task0 + warp; t < task_end; t += FWARPS) {
        for (int r = 0; r < RPW; ++r) {
          const int row = t * RPW + r;
          const float osum = lane_group_sum(row < rows ? fz_outlier_part(&outliers, 0, row, lane) : 0.0f, fscr);
          if (lane == 0 && row < rows) Y[row] += osum;
        }
      }
    }
#else
    // (Pipelining the steps across tasks of the 2-row, 4-uint4 chunks below, with the next chunk in
    // registers, measured 1.5x slower on the H100: docs/PERFORMANCE.md; FZ_STREAM is the one that works.)
    for (int it = 0; it < iters; ++it) {
      const int task = task0 + it * FWARPS + warp;
      const int valid = task < task1;
      int acc[RPW][FMAX_TOK];
#pragma unroll
      for (int r = 0; r < RPW; ++r)
#pragma unroll
        for (int t = 0; t < FMAX_TOK; ++t) acc[r][t] = 0;
      for (int ch = 0; ch * 4 * QUILL_LANES < nv; ++ch) {
        uint4 wv[RPW][4];
#if FZ_ONE
        if (it == 0 && ch == 0) {  // requested before the prologue
#pragma unroll
          for (int r = 0; r < RPW; ++r)
#pragma unroll
            for (int u = 0; u < 4; ++u) wv[r][u] = pre[r][u];
        } else
#endif
        {
          fz_load_chunk(wv, CB, task, task1, ch, nv, kpad, lane);
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int v = ch * 4 * QUILL_LANES + lane + QUILL_LANES * u;
          if (v < nv) {
#pragma unroll
            for (int t = 0; t < FMAX_TOK; ++t) {
              if (t < np) {
                const uint4 xv = lcodes4[t * nv + v];
#pragma unroll
                for (int r = 0; r < RPW; ++r) acc[r][t] = fz_dot16(wv[r][u], xv, acc[r][t]);
              }
            }
          }
        }
      }
      for (int t = 0; t < np; ++t) {
#pragma unroll
        for (int r = 0; r < RPW; ++r) {
          int mine_acc = 0;
#pragma unroll
          for (int u = 0; u < FMAX_TOK; ++u) mine_acc = u == t ? acc[r][u] : mine_acc;
          fz_store_output(mine_acc, p0 + t, task * RPW + r, valid, &outliers, lsca, Y, rows, accumulate, iscr, fscr,
                          lane);
        }
      }
    }
#endif
  }
  prefetch_l2(pf, pf_bytes);
}
