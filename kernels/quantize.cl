// quantize.cl: int8 activation quantization, per token with the LLM.int8() outlier split
// (QUANT_SPEC.md 1), bit-exact with engine/quantize_int8.cpp quantize_activations_int8:
//   O = { j : any token |A[i,j]| >= threshold }  (threshold <= 0: O is empty)
//   SCA[i] = max_{j not in O} |A[i,j]|, CA[i,j] = round_half_even(A[i,j] * 127 / SCA[i]) (0 for j in O,
//   and for every j when SCA[i] == 0);
// or with a static calibrated scale (QUANT_SPEC.md 6; static_amax > 0, the host passes threshold 0),
// bit-exact with quantize_activations_int8_static: SCA[i] = static_amax for every token and
//   CA[i,j] = clamp(round_half_even(A[i,j] * 127 / static_amax), -127, 127) (values beyond it saturate).
// The division must be correctly rounded (PTX div.rn.f32, or the -cl-fp32-correctly-rounded-divide-sqrt
// build option on the portable path).
// Two kernels: quantize_find_outliers (column flags over many tokens; only when n_tok > INLINE_TOK and
// threshold > 0) and quantize_rows (one work-group per token: absmax + codes; work-group 0 also writes
// the ascending outlier-column list). With n_tok <= INLINE_TOK the flags are computed inline, so
// decode is ONE launch.
// quantize_rows applies the input transform INPUT_KIND (lut_common.cl) as it loads A, without an outlier
// split only (threshold 0: the host refuses one): RMSNorm xt = (x * norm_w) * rsqrt(mean(x^2) + eps),
// its SCA = the absmax of x * norm_w times that factor; SwiGLU xt = silu(gate) * up (A: [n_tok, 2 cols]).
// The transformed input is never written (prefill int8: one launch fewer and no [n_tok, cols] round trip).
#include "lut_common.cl"

#ifndef QWG_SIZE
#define QWG_SIZE 256
#endif
#ifndef INLINE_TOK
#define INLINE_TOK 8
#endif
#define QR_BATCH 4   // quantize_rows: 16-byte loads in flight per work-item
#define OL_UNROLL 8  // quantize_rows' outlier-list scan: flag reads in flight per work-item

#ifndef FO_WG
#define FO_WG 256
#endif
#define FO_COLS 32                   // columns per work-group: one per work-item of a 32-wide group
#define FO_GROUPS (FO_WG / FO_COLS)  // groups of work-items, which take the tokens in turn
#define FO_CHUNK 16                  // tokens per step: their loads in flight together

// A: [n_tok, cols] f32   flags: [cols] int (1 = outlier column)
// Work-group g: columns FO_COLS g ..; its FO_GROUPS groups take chunks of FO_CHUNK tokens in turn (a row
// of the chunk is one coalesced FO_COLS-float load per group), each stopping at its first outlier; the
// groups' findings are OR-ed through local memory. (One work-item per column over all tokens left most
// SMs idle: 45 us per call at 512 x 4096 on the H100.)
// NDRange: global (ceil(cols / FO_COLS) * FO_WG), local (FO_WG).
__kernel __attribute__((reqd_work_group_size(FO_WG, 1, 1)))
void quantize_find_outliers(__global const float* A, int n_tok, int cols, float threshold, __global int* flags) {
  __local int found[FO_WG];
  const int lid = get_local_id(0), c = lid % FO_COLS, grp = lid / FO_COLS;
  const int j = get_group_id(0) * FO_COLS + c;
  int out = 0;
  if (j < cols) {
    for (int i0 = grp * FO_CHUNK; i0 < n_tok && !out; i0 += FO_GROUPS * FO_CHUNK) {
#pragma unroll
      for (int u = 0; u < FO_CHUNK; ++u)
        if (i0 + u < n_tok) out |= fabs(A[(size_t)(i0 + u) * cols + j]) >= threshold;
    }
  }
  found[lid] = out;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (grp == 0 && j < cols) {
    int any = 0;
    for (int g = 0; g < FO_GROUPS; ++g) any |= found[g * FO_COLS + c];
    flags[j] = any;
  }
}

inline int is_outlier_col(__global const float* A, int n_tok, int cols, float threshold,
                          __global const int* flags, int use_flags, int j) {
  if (threshold <= 0.0f) return 0;
  if (use_flags) return flags[j] != 0;
  int out = 0;
  for (int i = 0; i < n_tok; ++i) out |= fabs(A[(size_t)i * cols + j]) >= threshold;
  return out;
}

// f[u] = whether column j + u (< j1) is an outlier column, u < OL_UNROLL: the reads issued together.
inline void outlier_flags(__global const float* A, int n_tok, int cols, float threshold, __global const int* flags,
                          int use_flags, int j, int j1, int* f) {
#pragma unroll
  for (int u = 0; u < OL_UNROLL; ++u)
    f[u] = j + u < j1 && is_outlier_col(A, n_tok, cols, threshold, flags, use_flags, j + u);
}

// Columns 4 q .. 4 q + 3 of row a (q < cols / 4), as one 16-byte load where rows are 16-byte aligned.
inline float4 load_cols4(__global const float* a, int q, int aligned) {
  return aligned ? ((__global const float4*)a)[q] : vload4(q, a);
}

// Whether columns 4 q .. 4 q + 3 are outlier columns (is_outlier_col), the flags as one 16-byte load.
inline int4 outlier_cols4(__global const float* A, int n_tok, int cols, float threshold, __global const int* flags,
                          int use_flags, int q) {
  if (threshold <= 0.0f) return (int4)(0);
  if (use_flags) return ((__global const int4*)flags)[q];
  const int j = 4 * q;
  return (int4)(is_outlier_col(A, n_tok, cols, threshold, flags, 0, j),
                is_outlier_col(A, n_tok, cols, threshold, flags, 0, j + 1),
                is_outlier_col(A, n_tok, cols, threshold, flags, 0, j + 2),
                is_outlier_col(A, n_tok, cols, threshold, flags, 0, j + 3));
}

// |v| with the outlier columns (o != 0) set to -1: they count neither for the absmax nor as codes.
inline float4 masked_abs4(float4 v, int4 o) {
  return (float4)(o.s0 ? -1.0f : fabs(v.s0), o.s1 ? -1.0f : fabs(v.s1), o.s2 ? -1.0f : fabs(v.s2),
                  o.s3 ? -1.0f : fabs(v.s3));
}

// The QR_BATCH groups of 4 columns q0, q0 + QWG_SIZE, .. of token i's row: their values v (after the
// input transform, before RMSNorm's factor; *ss += their raw squares) and masked |v| m (masked_abs4; -1
// past the last whole group), every load issued before any is used.
__attribute__((always_inline)) inline void load_batch(__global const float* A, __global const float* norm_w, int i,
                                                      int q0, int n4, int aligned, int n_tok, int cols,
                                                      float threshold, __global const int* flags, int use_flags,
                                                      float4* v, float4* m, float* ss) {
  int4 o[QR_BATCH];
#pragma unroll
  for (int u = 0; u < QR_BATCH; ++u) {
    const int q = q0 + u * QWG_SIZE;
#if INPUT_KIND == 0
    v[u] = q < n4 ? load_cols4(A + (size_t)i * cols, q, aligned) : (float4)(0.0f);
#else
    v[u] = q < n4 ? load_x4_ss(A, norm_w, i, 4 * q, cols, aligned, ss) : (float4)(0.0f);
#endif
    o[u] = q < n4 ? outlier_cols4(A, n_tok, cols, threshold, flags, use_flags, q) : (int4)(1);
  }
#pragma unroll
  for (int u = 0; u < QR_BATCH; ++u) m[u] = masked_abs4(v[u], o[u]);
}

inline char int8_code_masked(float x, float m, float s) { return (char)(m >= 0.0f && s != 0.0f ? int8_code(x, s) : 0); }

// A: [n_tok, cols] f32 ([n_tok, 2 cols] for SwiGLU)   static_amax: 0 = per-token scales   flags: [cols] int
// (read when use_flags)   codes: [n_tok, kpad] int8 (columns cols..kpad-1 written 0)   sca: [n_tok] f32
// olist: [cols] int (first *ocount entries: O ascending)   ocount: [1] int.
// NDRange: global (n_tok * QWG_SIZE), local (QWG_SIZE): one work-group per token.
// Each pass over the row takes whole groups of 4 columns, QR_BATCH 16-byte loads in flight per work-item
// (one load at a time left the kernel waiting on memory: ~20 us per call at 512 x 4096 on the H100), then
// the last cols % 4 columns (and the padding) one by one.
// norm_w: [cols] f32, eps: RMSNorm (INPUT_KIND 1) only.
__kernel __attribute__((reqd_work_group_size(QWG_SIZE, 1, 1)))
void quantize_rows(__global const float* A, int n_tok, int cols, int kpad, float threshold_in, float static_amax,
                   __global const int* flags, int use_flags, __global char* codes, __global float* sca,
                   __global int* olist, __global int* ocount, __global const float* norm_w, float eps) {
  __local float red[QWG_SIZE];
  __local int counts[QWG_SIZE];
  const int lid = get_local_id(0);
  const int i = get_group_id(0);
  const int n4 = cols / 4, aligned = cols % 4 == 0;
  float threshold = threshold_in;
  if (INPUT_KIND != 0) threshold = 0.0f;  // transforms: no outlier split (the host refuses a threshold)

  // Row absmax over the non-outlier columns (RMSNorm: of x * norm_w, and the sum of squares of x).
  float amax = 0.0f, ss = 0.0f, unused = 0.0f;
  for (int q0 = lid; q0 < n4; q0 += QR_BATCH * QWG_SIZE) {
    float4 v[QR_BATCH], m[QR_BATCH];
    load_batch(A, norm_w, i, q0, n4, aligned, n_tok, cols, threshold, flags, use_flags, v, m, &ss);
#pragma unroll
    for (int u = 0; u < QR_BATCH; ++u) amax = fmax(amax, fmax(fmax(m[u].s0, m[u].s1), fmax(m[u].s2, m[u].s3)));
  }
  for (int j = 4 * n4 + lid; j < cols; j += QWG_SIZE)
    if (!is_outlier_col(A, n_tok, cols, threshold, flags, use_flags, j))
      amax = fmax(amax, fabs(load_x1_ss(A, norm_w, i, j, cols, &ss)));
  amax = work_group_max(amax, red);
#if INPUT_KIND == 1
  const float factor = rsqrt(work_group_sum(ss, red) / cols + eps);  // norm.cl's rsqrt(mean(x^2) + eps)
  amax *= factor;
#else
  const float factor = 1.0f;
#endif
  const float s = static_amax > 0.0f ? static_amax : amax;

  // Codes: round_half_even(xt * 127 / s); outlier columns, padding and s == 0 give 0.
  __global char* c = codes + (size_t)i * kpad;
  for (int q0 = lid; q0 < n4; q0 += QR_BATCH * QWG_SIZE) {
    float4 v[QR_BATCH], m[QR_BATCH];
    load_batch(A, norm_w, i, q0, n4, aligned, n_tok, cols, threshold, flags, use_flags, v, m, &unused);
#pragma unroll
    for (int u = 0; u < QR_BATCH; ++u) {
      const int q = q0 + u * QWG_SIZE;
#if INPUT_KIND == 1
      v[u] *= factor;
#endif
      if (q < n4)
        ((__global char4*)c)[q] = (char4)(int8_code_masked(v[u].s0, m[u].s0, s), int8_code_masked(v[u].s1, m[u].s1, s),
                                          int8_code_masked(v[u].s2, m[u].s2, s), int8_code_masked(v[u].s3, m[u].s3, s));
    }
  }
  for (int j = 4 * n4 + lid; j < kpad; j += QWG_SIZE) {
    int q = 0;
    if (j < cols && s != 0.0f && !is_outlier_col(A, n_tok, cols, threshold, flags, use_flags, j))
      q = int8_code(load_x1_ss(A, norm_w, i, j, cols, &unused) * factor, s);
    c[j] = (char)q;
  }
  if (lid == 0) sca[i] = s;

  // The outlier-column list, ascending: work-item t takes a contiguous chunk of the columns, counts its
  // outliers (OL_UNROLL flag reads in flight), and a prefix sum over the work-items (work_group_exclusive_scan)
  // places its entries. Only work-group 0 scans; every work-group runs the barriers
  // (none under a condition).
  const int chunk = (cols + QWG_SIZE - 1) / QWG_SIZE;
  const int j0 = min(cols, lid * chunk), j1 = i == 0 && threshold > 0.0f ? min(cols, j0 + chunk) : j0;
  int n = 0;
  for (int j = j0; j < j1; j += OL_UNROLL) {
    int f[OL_UNROLL];
    outlier_flags(A, n_tok, cols, threshold, flags, use_flags, j, j1, f);
#pragma unroll
    for (int u = 0; u < OL_UNROLL; ++u) n += f[u];
  }
  int total;
  int pos = work_group_exclusive_scan(n, counts, &total, QWG_SIZE);
  if (i == 0 && lid == 0) ocount[0] = total;
  for (int j = j0; j < j1 && n > 0; j += OL_UNROLL) {
    int f[OL_UNROLL];
    outlier_flags(A, n_tok, cols, threshold, flags, use_flags, j, j1, f);
#pragma unroll
    for (int u = 0; u < OL_UNROLL; ++u)
      if (f[u]) olist[pos++] = j + u;
  }
}
