// lut_common.cl: what the table-lookup matmuls (matmul_lut4.cl, matmul_lut8.cl) share: the per-block
// scale in its four storage kinds (a build flag, SCALE_KIND) and the tunables' defaults.
#ifndef QUILL_LUT_COMMON_CL
#define QUILL_LUT_COMMON_CL

#include "common.cl"

#ifndef WG_SIZE
#define WG_SIZE 128
#endif
#ifndef TOK_TILE
#define TOK_TILE 1  // tokens per work-group pass: 1 = GEMV; the weights are decoded once per tile
#endif
#define ROWS_PER_WG (WG_SIZE / QUILL_LANES)

// SCALE_KIND 0: no scale (k-means: the table holds the values)
//            1: fp32 per block (bitsandbytes absmax)
//            2: fp16 per block (GGUF d)
//            3: double quant: DYN8[code] * absmax2[b / 256] + offset (QLoRA), decoded here
#ifndef SCALE_KIND
#define SCALE_KIND 1
#endif

// The scale of block b of the flat [rows, blocks_per_row] scale array.
// scales: float[] (1) | half[] (2) | uchar codes[] (3); absmax2: [ceil(n / 256)] f32 (3);
// dq_lut: [256] f32 signed dynamic map (3).
inline float block_scale(__global const uchar* scales, __global const float* absmax2, __global const float* dq_lut,
                         float dq_offset, size_t b) {
#if SCALE_KIND == 0
  return 1.0f;
#elif SCALE_KIND == 1
  return ((__global const float*)scales)[b];
#elif SCALE_KIND == 2
  return vload_half(b, (__global const half*)scales);
#else
  return dq_lut[scales[b]] * absmax2[b >> 8] + dq_offset;
#endif
}

#endif  // QUILL_LUT_COMMON_CL
