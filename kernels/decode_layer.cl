// decode_layer.cl: one decode step of a Llama layer in ONE launch, NVIDIA path only. Its phases are the
// bodies of the kernels that otherwise run it in five launches, separated by grid barriers
// (grid_barrier.cl, ~1.5 us) instead of kernel boundaries (~3.5 us each, plus the host's enqueue):
//   1. qkv = RMSNorm(x) Wqkv^T                     gemv_stream_run, input transform 1
//   2. att = attention(qkv) (RoPE, cache write)    attention_decode_run, one task per work-group in turn
//   3. x += att Wo^T                               gemv_stream_run, no transform
//   4. gate_up = RMSNorm(x) Wgu^T                  gemv_stream_run, input transform 1
//   5. x += SwiGLU(gate_up) Wdown^T                gemv_stream_run, input transform 2
// The four matrices are gemv_stream weights of one format: the program is built with gemv_stream.cl's
// flags for it (host: MatmulLut::stream_program_options) and attention's, with WG = WG_SIZE (an
// attention task takes the whole work-group). The grid must be resident at once: the host launches one
// work-group per compute unit (host/decode_layer.cpp).
#include "grid_barrier.cl"
#include "gemv_stream.cl"
#include "attention_decode.cl"

#if WG != WG_SIZE
#error "decode_layer.cl: the attention tasks take the whole work-group (WG == WG_SIZE)"
#endif

// One matrix's arguments (gemv_stream's, named p_*; lut_stride is 0: one table per tensor), and the
// part of them that gemv_stream_run takes.
#define DL_WEIGHT_PARAMS(p)                                                                               \
  __global const uint4 *p##_codes, int p##_row_words, __global const float *p##_lut,                     \
      __global const uchar *p##_scales, __global const float *p##_absmax2, __global const float *p##_dq_lut, \
      float p##_dq_offset, int p##_blocks_per_row, int p##_block_shift, int p##_rows, int p##_cols
#define DL_WEIGHT_ARGS(p) \
  p##_codes, p##_row_words, p##_lut, p##_scales, p##_absmax2, p##_dq_lut, p##_dq_offset, p##_blocks_per_row, p##_block_shift

// Measurement builds ($QUILL_DECODE_LAYER_DEFS=-DDL_STAMPS=1): work-item 0 of work-group g writes the
// global timer at the 10 phase edges i to stamps[g * 16 + i], stamps = sync_failed + 64 as ulong.
#if DL_STAMPS
#define DL_STAMP(i) \
  if (get_local_id(0) == 0) ((__global ulong*)(sync_failed + 64))[get_group_id(0) * 16 + (i)] = global_ns()
#else
#define DL_STAMP(i)
#endif

// Measurement builds only, wrong outputs: DL_DIAG_NO_SYNC drops the grid barriers (a work-group barrier
// stays), DL_DIAG_NO_ATTENTION the attention phase.
#if DL_DIAG_NO_SYNC
#define DL_SYNC() barrier(CLK_LOCAL_MEM_FENCE)
#else
#define DL_SYNC() grid_sync(sync_count, &target, sync_failed)
#endif

// The first pf_bytes (at most) of a matrix's codes: what the phase before it requests into L2.
#define DL_HEAD_BYTES(p) min(pf_bytes, p##_rows * p##_row_words * 16)

// qkv / wo / gu / dn: the four matrices ([q_dim + 2 kv_dim, dim], [dim, q_dim], [2 ffn, dim], [dim, ffn]).
// x: [dim] f32 residual stream (read and updated). qkv_out: [q_dim + 2 kv_dim], att: [q_dim],
// gate_up: [2 ffn] f32 scratch. attn_norm, ffn_norm: [dim]. k_cache .. scale: attention_decode's.
// sync_count: the grid barriers' counter; sync_base: its value at this launch (the host adds 4 x the
// work-groups per launch); sync_failed: set when a barrier waited past 50 ms (the grid was not resident).
// pf_bytes: how much of each next matrix to request into L2; next / next_bytes: what follows the layer.
// NDRange: (G * WG_SIZE), local (WG_SIZE), G = the compute units (one resident work-group each).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void decode_layer(DL_WEIGHT_PARAMS(qkv), DL_WEIGHT_PARAMS(wo), DL_WEIGHT_PARAMS(gu), DL_WEIGHT_PARAMS(dn),
                  __global float* x, __global float* qkv_out, __global float* att, __global float* gate_up,
                  __global const float* attn_norm, __global const float* ffn_norm, float eps, __global KV_T* k_cache,
                  __global KV_T* v_cache, __global float* partial, __global volatile int* done, int n_heads,
                  int n_kv_heads, int head_dim, int rope_dim, float theta, int pos, int n_splits, float scale,
                  __global uint* sync_count, uint sync_base, __global uint* sync_failed, int pf_bytes,
                  __global const uchar* next, int next_bytes) {
  GS_LOCAL_DECLS
  ATT_LOCAL_DECLS
  uint target = sync_base;
  DL_STAMP(0);

  gemv_stream_run(1, DL_WEIGHT_ARGS(qkv), x, qkv_out, qkv_rows, qkv_cols, 0, attn_norm, eps,
                  (__global const uchar*)wo_codes, DL_HEAD_BYTES(wo), GS_LOCAL_ARGS);
  DL_STAMP(1);
  DL_SYNC();
  DL_STAMP(2);

#if !DL_DIAG_NO_ATTENTION
  const int tasks = n_heads * n_splits;
  for (int task = get_group_id(0); task < tasks; task += get_num_groups(0)) {  // uniform per work-group
    attention_decode_run(task, qkv_out, k_cache, v_cache, att, partial, done, n_heads, n_kv_heads, head_dim,
                         rope_dim, theta, pos, n_splits, scale, ATT_LOCAL_ARGS);
    barrier(CLK_LOCAL_MEM_FENCE);  // the next task reuses the local arrays
  }
#endif
  DL_STAMP(3);
  DL_SYNC();
  DL_STAMP(4);

  gemv_stream_run(0, DL_WEIGHT_ARGS(wo), att, x, wo_rows, wo_cols, 1, attn_norm, eps, (__global const uchar*)gu_codes,
                  DL_HEAD_BYTES(gu), GS_LOCAL_ARGS);
  DL_STAMP(5);
  DL_SYNC();
  DL_STAMP(6);

  gemv_stream_run(1, DL_WEIGHT_ARGS(gu), x, gate_up, gu_rows, gu_cols, 0, ffn_norm, eps,
                  (__global const uchar*)dn_codes, DL_HEAD_BYTES(dn), GS_LOCAL_ARGS);
  DL_STAMP(7);
  DL_SYNC();
  DL_STAMP(8);

  gemv_stream_run(2, DL_WEIGHT_ARGS(dn), gate_up, x, dn_rows, dn_cols, 1, ffn_norm, eps, next, next_bytes,
                  GS_LOCAL_ARGS);
  DL_STAMP(9);
}
