// attention_mma.cl: causal grouped-query prefill attention on the fp16 tensor cores (NVIDIA: QUILL_PTX,
// sm_80+, fp16 KV cache, head_dim a multiple of 16 up to 128). Flash attention: a work-group of
// AM_WARPS warps takes one query head and 16 * AM_WARPS consecutive tokens, each warp 16 of them; key
// tiles of AM_KEYS cache positions are staged in local memory (K as stored, V transposed) and each warp
// computes S = Q K^T and O += P V with mma.sync m16n8k16 (fp32 accumulation), folding each tile into
// its rows' online softmax in registers. K and V are fp16 already; Q and P are split into fp16 hi + lo
// (two mma each), so the result keeps fp32 accuracy. Same contract as attention.cl.
#include "common.cl"

#define AM_WARPS 4
#define AM_THREADS (AM_WARPS * QUILL_LANES)
#define AM_QUERIES (16 * AM_WARPS)  // tokens per work-group
#define AM_KEYS 64                  // cache positions per staged tile
#define AM_HD 128                   // largest head_dim
#define K_STRIDE (AM_HD / 2 + 4)    // words per staged K row: conflict-free B fragment loads
#define VT_STRIDE (AM_KEYS / 2 + 4) // words per staged V^T row (one head dim, AM_KEYS positions)

// x rounded to fp16 (nearest even), back in fp32.
inline float f16_round(float x) {
  float r;
  asm("{ .reg .b16 h; cvt.rn.f16.f32 h, %1; cvt.f32.f16 %0, h; }" : "=f"(r) : "f"(x));
  return r;
}

// The hi and lo fp16x2 words of the pair (x0, x1): x = hi + lo to about 22 bits.
inline void split_pair(float x0, float x1, uint* hi, uint* lo) {
  const float h0 = f16_round(x0), h1 = f16_round(x1);
  *hi = pack_half2(h0, h1);
  *lo = pack_half2(x0 - h0, x1 - h1);
}

// q: [n_tok, n_heads * head_dim] f32 (rotated)   k_cache, v_cache: [ctx, n_kv_heads * head_dim] fp16
// out: [n_tok, n_heads * head_dim] f32. Token t (position pos0 + t) attends to positions 0..pos0+t.
// NDRange: (n_heads * AM_THREADS, ceil(n_tok / AM_QUERIES)), local (AM_THREADS, 1).
// Host guarantees: head_dim % 16 == 0, head_dim <= AM_HD, n_kv_heads * head_dim % 8 == 0.
__kernel __attribute__((reqd_work_group_size(AM_THREADS, 1, 1)))
void attention_mma(__global const float* q, __global const half* k_cache, __global const half* v_cache,
                   __global float* out, int n_tok, int n_heads, int n_kv_heads, int head_dim, int pos0, float scale) {
  __local uint sK[AM_KEYS * K_STRIDE];  // [AM_KEYS][K_STRIDE] words: the tile's K rows, fp16 pairs of dims
  __local uint sVt[AM_HD * VT_STRIDE];  // [AM_HD][VT_STRIDE] words: V transposed, fp16 pairs of positions
  __local ushort* sVt16 = (__local ushort*)sVt;
  const int h = get_group_id(0);
  const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t4 = lane & 3;
  const int kv_h = h / (n_heads / n_kv_heads);
  const int q_dim = n_heads * head_dim, kv_dim = n_kv_heads * head_dim;
  const int tile0 = get_group_id(1) * AM_QUERIES;  // the work-group's first token
  const int t_row = tile0 + warp * 16 + g;          // this lane's rows: tokens t_row and t_row + 8
  const int nk16 = head_dim / 16, nd8 = head_dim / 8;

  // Q fragments times scale, hi and lo, per k16 step of head dims (rows past n_tok read the last token).
  uint qh[AM_HD / 16][4], ql[AM_HD / 16][4];
  {
    __global const float* q0 = q + (size_t)min(t_row, n_tok - 1) * q_dim + h * head_dim;
    __global const float* q1 = q + (size_t)min(t_row + 8, n_tok - 1) * q_dim + h * head_dim;
#pragma unroll
    for (int kk = 0; kk < AM_HD / 16; ++kk) {
      if (kk < nk16) {
        const int d = kk * 16 + 2 * t4;
        const float2 x00 = vload2(0, q0 + d) * scale, x10 = vload2(0, q1 + d) * scale;
        const float2 x01 = vload2(0, q0 + d + 8) * scale, x11 = vload2(0, q1 + d + 8) * scale;
        split_pair(x00.x, x00.y, &qh[kk][0], &ql[kk][0]);
        split_pair(x10.x, x10.y, &qh[kk][1], &ql[kk][1]);
        split_pair(x01.x, x01.y, &qh[kk][2], &ql[kk][2]);
        split_pair(x11.x, x11.y, &qh[kk][3], &ql[kk][3]);
      }
    }
  }

  float o[AM_HD / 8][4];
#pragma unroll
  for (int n = 0; n < AM_HD / 8; ++n)
#pragma unroll
    for (int c = 0; c < 4; ++c) o[n][c] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};  // rows g, g + 8 (l: this lane's share)
  const int qpos[2] = {pos0 + t_row, pos0 + t_row + 8};
  const int p_end = pos0 + min(tile0 + AM_QUERIES, n_tok);  // positions the work-group's last token sees
  const int warp_last_pos = pos0 + tile0 + warp * 16 + 15;  // this warp's last row's position

  for (int kb = 0; kb < p_end; kb += AM_KEYS) {
    barrier(CLK_LOCAL_MEM_FENCE);  // the previous tile is consumed
    // Stage K rows kb.. (coalesced 16-byte loads) and V transposed (consecutive lanes: consecutive positions).
    const int v8 = head_dim / 8;
    for (int e = tid; e < AM_KEYS * v8; e += AM_THREADS) {
      const int key = e / v8, c = e % v8, p = kb + key;
      const uint4 kv = p < p_end ? *(__global const uint4*)(k_cache + (size_t)p * kv_dim + kv_h * head_dim + c * 8)
                                 : (uint4)(0u);
      __local uint* dst = sK + key * K_STRIDE + c * 4;
      dst[0] = kv.x;
      dst[1] = kv.y;
      dst[2] = kv.z;
      dst[3] = kv.w;
    }
    for (int e = tid; e < AM_KEYS * v8; e += AM_THREADS) {
      const int key = e % AM_KEYS, c = e / AM_KEYS, p = kb + key;
      const uint4 vv = p < p_end ? *(__global const uint4*)(v_cache + (size_t)p * kv_dim + kv_h * head_dim + c * 8)
                                 : (uint4)(0u);
      const uint w[4] = {vv.x, vv.y, vv.z, vv.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        sVt16[(c * 8 + 2 * i) * (2 * VT_STRIDE) + key] = (ushort)(w[i] & 0xffffu);
        sVt16[(c * 8 + 2 * i + 1) * (2 * VT_STRIDE) + key] = (ushort)(w[i] >> 16);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (kb > warp_last_pos) continue;  // every row of this warp is before the tile (warp-uniform)

    // S = (Q scale) K^T: 16 rows x AM_KEYS positions, s[n] the n-th 8-position slice.
    float s[AM_KEYS / 8][4];
#pragma unroll
    for (int n = 0; n < AM_KEYS / 8; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) s[n][c] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < AM_HD / 16; ++kk) {
      if (kk < nk16) {
#pragma unroll
        for (int n = 0; n < AM_KEYS / 8; ++n) {
          const int base = (n * 8 + g) * K_STRIDE + kk * 8 + t4;
          const uint b0 = sK[base], b1 = sK[base + 4];
          mma_f16(s[n], qh[kk], b0, b1);
          mma_f16(s[n], ql[kk], b0, b1);
        }
      }
    }
    // Causal mask, the running max and the rescale of what is already summed.
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < AM_KEYS / 8; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int p = kb + n * 8 + 2 * t4 + c;
          if (p > qpos[r]) s[n][2 * r + c] = -INFINITY;
          mx = fmax(mx, s[n][2 * r + c]);
        }
      const float m_new = fmax(m_run[r], lanes_max(mx, 4));  // finite: position 0 is in every row's first tile
      corr[r] = exp(m_run[r] - m_new);
      m_run[r] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < AM_KEYS / 8; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const float pr = exp(s[n][2 * r + c] - m_new);
          s[n][2 * r + c] = pr;
          sum += pr;
        }
      l_run[r] = l_run[r] * corr[r] + sum;
    }
#pragma unroll
    for (int n = 0; n < AM_HD / 8; ++n) {
      o[n][0] *= corr[0];
      o[n][1] *= corr[0];
      o[n][2] *= corr[1];
      o[n][3] *= corr[1];
    }
    // O += P V: P's accumulator layout is the A fragment of the k16 step over positions 16 j.. (two slices).
#pragma unroll
    for (int j = 0; j < AM_KEYS / 16; ++j) {
      uint ph[4], pl[4];
      split_pair(s[2 * j][0], s[2 * j][1], &ph[0], &pl[0]);
      split_pair(s[2 * j][2], s[2 * j][3], &ph[1], &pl[1]);
      split_pair(s[2 * j + 1][0], s[2 * j + 1][1], &ph[2], &pl[2]);
      split_pair(s[2 * j + 1][2], s[2 * j + 1][3], &ph[3], &pl[3]);
#pragma unroll
      for (int n = 0; n < AM_HD / 8; ++n) {
        if (n < nd8) {
          const int base = (n * 8 + g) * VT_STRIDE + j * 8 + t4;
          const uint b0 = sVt[base], b1 = sVt[base + 4];
          mma_f16(o[n], ph, b0, b1);
          mma_f16(o[n], pl, b0, b1);
        }
      }
    }
  }

  // Normalize and store rows t_row, t_row + 8 (dims 8 n + 2 t4, + 1).
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = t_row + 8 * r;
    const float inv = 1.0f / lanes_sum(l_run[r], 4);
    if (t < n_tok) {
      __global float* dst = out + (size_t)t * q_dim + h * head_dim + 2 * t4;
#pragma unroll
      for (int n = 0; n < AM_HD / 8; ++n)
        if (n < nd8) vstore2((float2)(o[n][2 * r] * inv, o[n][2 * r + 1] * inv), 0, dst + n * 8);
    }
  }
}
