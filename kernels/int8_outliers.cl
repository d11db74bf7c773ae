// int8_outliers.cl: the LLM.int8() outlier columns of a prefill, prepared for the int8 tensor cores
// (matmul_int8.cl: matmul_int8_digits). Of the outlier columns O (quantize_rows' ascending list olist,
// n = ocount of them), the first n_dig = min(n, cap) are gathered densely in list order:
//   - x: each token's values as two int8 digits, x ~ h * sh + l * sl with sh = max_o |x| / 127 (over the
//     token's n_dig gathered values) and sl = sh / 254, |error| <= sl / 2 = amax / 64516; the scales are
//     written times 127, as SCA is, so that the int8 dequantization C32 * SCA * SCB / 16129 applies unchanged;
//   - W: CB's columns, zero for the columns kept in fp16 (slot >= 0: they stay on the fp32 side path,
//     whose weights are their real fp16 values);
//   - the side list: the columns the fp32 side path still takes (the kept ones among the first n_dig,
//     then every column past cap), ascending, and its count.
// Columns n_dig .. round_up(n_dig, 64) - 1 of both gathered operands are zero (whole k-tiles).
// Portable OpenCL C 1.2 (the GEMM that reads them is NVIDIA-only; the tests run this part on PoCL too).
#include "common.cl"

#ifndef OG_WG
#define OG_WG 256
#endif
#ifndef OG_CAP
#define OG_CAP 1024  // the largest cap (local memory: the gathered columns' indices)
#endif
#define OG_ROWS (OG_WG / 32)  // weight rows per work-group: one 32-wide group each
#define OG_K 64               // the GEMM's k-tile

// X: [n_tok, cols] f32   olist: [cols] int, ocount: [1] int (quantize_rows)   slot: [cols] int
// CB: [rows_pad, kpad] int8   cap: a multiple of OG_K, <= OG_CAP
// xd: [2, n_tok, cap] int8 digits (h plane, then l)   xds: [2, n_tok] f32 (127 sh, 127 sl)
// cbo: [rows_pad, cap] int8   slist: [cols] int   scount: [3] int: the side list's count, n, and the
// fallback columns among the first n_dig (n - the side count)
// NDRange: global ((n_tok + rows_pad / OG_ROWS + 1) * OG_WG), local (OG_WG): work-groups [0, n_tok) take
// a token's digits, the next rows_pad / OG_ROWS the weight rows, the last one the side list.
__kernel __attribute__((reqd_work_group_size(OG_WG, 1, 1)))
void int8_outlier_gather(__global const float* X, int n_tok, int cols, __global const int* olist,
                         __global const int* ocount, __global const int* slot, __global const char* CB, int kpad,
                         int rows_pad, int cap, __global char* xd, __global float* xds, __global char* cbo,
                         __global int* slist, __global int* scount) {
  __local float red[OG_WG];
  __local int counts[OG_WG];
  __local int gcol[OG_CAP];  // weight rows: the column gathered at each position, -1 for a zero byte
  const int lid = get_local_id(0), g = get_group_id(0);
  const int n = ocount[0], n_dig = min(n, cap), n_pad = (n_dig + OG_K - 1) / OG_K * OG_K;
  const int row_groups = rows_pad / OG_ROWS;
  const int is_token = g < n_tok, is_rows = !is_token && g < n_tok + row_groups, is_side = g == n_tok + row_groups;

  // The barriers are outside any branch (PoCL 3.1): every work-group runs both reductions (and the barrier
  // after staging gcol).
  // Token g: the largest |x| of its gathered columns.
  __global const float* x = X + (size_t)min(g, n_tok - 1) * cols;
  float amax = 0.0f;
  for (int o = lid; o < n_dig && is_token; o += OG_WG) amax = fmax(amax, fabs(x[olist[o]]));
  amax = work_group_max(amax, red);
  // The side list: each work-item a contiguous chunk of olist, its entries' positions by a prefix sum.
  const int chunk = (n + OG_WG - 1) / OG_WG;
  const int o0 = is_side ? min(n, lid * chunk) : 0, o1 = is_side ? min(n, o0 + chunk) : 0;
  int mine = 0;
  for (int o = o0; o < o1; ++o) mine += o >= cap || slot[olist[o]] >= 0;
  int total;
  const int at0 = work_group_exclusive_scan(mine, counts, &total, OG_WG);
  if (lid == 0 && is_side) {
    scount[0] = total;
    scount[1] = n;
    scount[2] = n - total;
  }
  // Weight rows: which column each position takes (the olist -> slot chain resolved once for all rows).
  for (int o = lid; o < n_pad && is_rows; o += OG_WG) {
    const int j = o < n_dig ? olist[o] : -1;
    gcol[o] = j >= 0 && slot[j] < 0 ? j : -1;
  }
  barrier(CLK_LOCAL_MEM_FENCE);

  if (is_token) {  // token g's digits
    const float sh = amax / 127.0f, sl = sh / 254.0f;
    __global char* h = xd + (size_t)g * cap;
    __global char* l = xd + ((size_t)n_tok + g) * cap;
    for (int o = lid; o < n_pad; o += OG_WG) {
      int dh = 0, dl = 0;
      if (o < n_dig && sh > 0.0f) {
        const float v = x[olist[o]];
        dh = (int)clamp(rint(v / sh), -127.0f, 127.0f);
        dl = (int)clamp(rint((v - (float)dh * sh) / sl), -127.0f, 127.0f);
      }
      h[o] = (char)dh;
      l[o] = (char)dl;
    }
    if (lid == 0) {
      xds[g] = 127.0f * sh;
      xds[n_tok + g] = 127.0f * sl;
    }
  }
  if (is_rows) {  // weight row k: lane c packs columns 4 c .. 4 c + 3 of each 128
    const int k = (g - n_tok) * OG_ROWS + lid / 32, c = lid % 32;
    __global const char* cb = CB + (size_t)k * kpad;
    for (int o4 = 4 * c; o4 < n_pad; o4 += 128) {
      uint word = 0;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int j = gcol[o4 + i];
        if (j >= 0) word |= (uint)(uchar)cb[j] << (8 * i);
      }
      *(__global uint*)(cbo + (size_t)k * cap + o4) = word;
    }
  }
  if (is_side) {
    int at = at0;
    for (int o = o0; o < o1; ++o)
      if (o >= cap || slot[olist[o]] >= 0) slist[at++] = olist[o];
  }
}
