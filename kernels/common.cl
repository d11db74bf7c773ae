// common.cl: helpers shared by every kernel. Two paths chosen at build time: the NVIDIA path
// (QUILL_PTX=1: inline PTX warp shuffles) and the portable OpenCL C 1.2 path (local memory).
#ifndef QUILL_COMMON_CL
#define QUILL_COMMON_CL

#ifndef QUILL_PTX
#define QUILL_PTX 0
#endif

// Lanes in a reduction group: a warp on NVIDIA; the same grouping elsewhere.
#define QUILL_LANES 32

#if QUILL_PTX
// v of the lane whose index is this lane's XOR offset (shfl.sync.bfly, whole warp).
inline float shfl_xor(float v, int offset) {
  float other;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(other) : "f"(v), "r"(offset));
  return other;
}
inline int shfl_xor_int(int v, int offset) {
  int other;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(other) : "r"(v), "r"(offset));
  return other;
}

// Butterfly sum / max over groups of `lanes` consecutive lanes (a power of two <= 32): every lane of a
// group gets the group's result. warp_sum / warp_max are the whole-warp case.
inline float lanes_sum(float v, int lanes) {
  for (int offset = lanes >> 1; offset > 0; offset >>= 1) v += shfl_xor(v, offset);
  return v;
}
inline float lanes_max(float v, int lanes) {
  for (int offset = lanes >> 1; offset > 0; offset >>= 1) v = fmax(v, shfl_xor(v, offset));
  return v;
}
inline float warp_sum(float v) { return lanes_sum(v, 32); }
inline float warp_max(float v) { return lanes_max(v, 32); }

// d += a b: m16n8k16, fp16 inputs, fp32 accumulation. a: a0 (row g, k 2t4..+1), a1 (row g+8), a2 (row g,
// k 2t4+8..+9), a3 (row g+8, k 2t4+8..); b: b0 (k 2t4..+1, col g), b1 (k 2t4+8..+9, col g); d: d0,d1 (row
// g, cols 2t4, 2t4+1), d2,d3 (row g+8). Lower fp16 half = lower k. (g = lane / 4, t4 = lane % 4.)
__attribute__((always_inline)) inline void mma_f16(float* d, const uint* a, uint b0, uint b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// fp16x2 bits of (lo, hi), round to nearest even: lo in the lower 16 bits (the first element in memory).
inline uint pack_half2(float lo, float hi) {
  uint r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
#endif

// Sum of v over each group of 32 consecutive work-items of the work-group; every work-item of the
// work-group must call it (the portable path uses barriers). scratch: __local float[local size].
inline float lane_group_sum(float v, __local float* scratch) {
#if QUILL_PTX
  return warp_sum(v);
#else
  const int lid = get_local_id(0);
  const int lane = lid & (QUILL_LANES - 1);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int offset = QUILL_LANES / 2; offset > 0; offset >>= 1) {
    if (lane < offset) scratch[lid] += scratch[lid + offset];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = scratch[lid - lane];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
#endif
}

// Integer version of lane_group_sum (exact int32 sums for the int8 kernels). scratch: __local int[local size].
inline int lane_group_isum(int v, __local int* scratch) {
#if QUILL_PTX
  for (int offset = 16; offset > 0; offset >>= 1) v += shfl_xor_int(v, offset);
  return v;
#else
  const int lid = get_local_id(0);
  const int lane = lid & (QUILL_LANES - 1);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int offset = QUILL_LANES / 2; offset > 0; offset >>= 1) {
    if (lane < offset) scratch[lid] += scratch[lid + offset];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const int total = scratch[lid - lane];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
#endif
}

// c + the dot product of the four signed bytes of a and b (dp4a on NVIDIA, exact everywhere).
inline int dot_s8x4(uint a, uint b, int c) {
#if QUILL_PTX
  int d;
  asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
#else
  return c + ((int)(a << 24) >> 24) * ((int)(b << 24) >> 24) + ((int)(a << 16) >> 24) * ((int)(b << 16) >> 24) +
         ((int)(a << 8) >> 24) * ((int)(b << 8) >> 24) + ((int)a >> 24) * ((int)b >> 24);
#endif
}

// Sum of v over the whole (1-D) work-group; scratch: __local float[local size]. All must call.
inline float work_group_sum(float v, __local float* scratch) {
  const int lid = get_local_id(0);
  const int n = get_local_size(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int offset = n / 2; offset > 0; offset >>= 1) {
    if (lid < offset) scratch[lid] += scratch[lid + offset];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
}

// Maximum of v over the whole (1-D) work-group, local size a power of two; scratch: __local float[local
// size]. All must call.
inline float work_group_max(float v, __local float* scratch) {
  const int lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int offset = get_local_size(0) / 2; offset > 0; offset >>= 1) {
    if (lid < offset) scratch[lid] = fmax(scratch[lid], scratch[lid + offset]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float m = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return m;
}

// Exclusive prefix sum of v over the (1-D) work-group of wg work-items (the caller's compile-time size);
// *total gets the sum. NVIDIA: warp shuffles, then one pass over the warps' sums; elsewhere log steps in
// local memory. scratch: __local int[wg]. All must call.
inline int work_group_exclusive_scan(int v, __local int* scratch, int* total, int wg) {
  const int lid = get_local_id(0);
#if QUILL_PTX
  const int lane = lid & 31, warp = lid >> 5;
  int inc = v;
  for (int offset = 1; offset < 32; offset <<= 1) {
    int other;
    asm volatile("shfl.sync.up.b32 %0, %1, %2, 0x0, 0xffffffff;" : "=r"(other) : "r"(inc), "r"(offset));
    if (lane >= offset) inc += other;
  }
  if (lane == 31) scratch[warp] = inc;
  barrier(CLK_LOCAL_MEM_FENCE);
  int before = 0, all = 0;
  for (int w = 0; w < wg / 32; ++w) {
    const int s = scratch[w];
    before += w < warp ? s : 0;
    all += s;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  *total = all;
  return before + inc - v;
#else
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int offset = 1; offset < wg; offset <<= 1) {
    const int add = lid >= offset ? scratch[lid - offset] : 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    scratch[lid] += add;
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const int inc = scratch[lid];
  *total = scratch[wg - 1];
  barrier(CLK_LOCAL_MEM_FENCE);
  return inc - v;
#endif
}

// SwiGLU's gate, silu(g) * u = g / (1 + exp(-g)) * u, one expression for every kernel that applies it.
inline float silu_times(float g, float u) { return g / (1.0f + exp(-g)) * u; }
inline float4 silu_times4(float4 g, float4 u) { return g / (1.0f + exp(-g)) * u; }

// a / b correctly rounded: PTX div.rn.f32 on NVIDIA; elsewhere the program must be built with
// -cl-fp32-correctly-rounded-divide-sqrt.
inline float div_rn(float a, float b) {
#if QUILL_PTX
  float r;
  asm("div.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
#else
  return a / b;
#endif
}

// The LLM.int8() activation code clamp(round_half_even(x * 127 / s), -127, 127), clamped in float (a static
// s lets |x| exceed s): bit-exact with engine/quantize_int8.cpp where the division is correctly rounded.
inline int int8_code(float x, float s) { return (int)clamp(rint(div_rn(x * 127.0f, s)), -127.0f, 127.0f); }

inline float dot8(float8 a, float8 b) { return dot(a.lo, b.lo) + dot(a.hi, b.hi); }

// Two fp16 values packed in a uint (element 0 in the low 16 bits) to float2.
inline float2 half2_bits_to_float2(uint bits) {
#if QUILL_PTX
  float lo, hi;
  asm("{.reg .b16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h;}" : "=f"(lo), "=f"(hi) : "r"(bits));
  return (float2)(lo, hi);
#else
  __private uint tmp = bits;
  return vload_half2(0, (__private const half*)&tmp);
#endif
}

// Eight fp16 values packed in a uint4 (element 0 in the low half of .x) to float8.
inline float8 half8_bits_to_float8(uint4 b) {
  return (float8)(half2_bits_to_float2(b.x), half2_bits_to_float2(b.y), half2_bits_to_float2(b.z),
                  half2_bits_to_float2(b.w));
}

// Advances a streaming cursor (item, chunk) by one chunk: past the item's last chunk, to chunk 0 of the
// item `step` further on (the streaming GEMVs: gemv_stream.cl, matmul_int8_fused.cl).
#define STREAM_CURSOR_NEXT(item, chunk, chunks, step) \
  if (++(chunk) == (chunks)) {                         \
    (chunk) = 0;                                       \
    (item) += (step);                                  \
  }

// A uint4 of weights that a kernel reads once and never writes (the decode GEMVs' streams). NVIDIA path:
// the non-coherent path, without allocating in L1 (ld.global.nc.L1::no_allocate; decode +2-7% for every
// scheme, docs/PERFORMANCE.md session 10 item 1). Elsewhere a plain load.
inline uint4 load_stream4(__global const uint4* p) {
#if QUILL_PTX
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
#else
  return *p;
#endif
}

// Decode's L2 prefetch: the last PF_GROUPS work-groups of the grid (all of a persistent one) request the
// first `bytes` of p (the next kernel's weights) into L2 as they finish, 128-byte lines spread over their
// work-items, so the memory keeps streaming through this kernel's tail and the launch gap. Call at the
// end of the kernel; bytes 0 (or a device without inline PTX): nothing.
#ifndef PF_GROUPS
#define PF_GROUPS 264
#endif
inline void prefetch_l2(__global const uchar* p, int bytes) {
#if QUILL_PTX
  const int n_groups = get_num_groups(0) < PF_GROUPS ? (int)get_num_groups(0) : PF_GROUPS;
  const int g = (int)get_group_id(0) - ((int)get_num_groups(0) - n_groups);  // < 0: not one of them
  if (g >= 0 && get_group_id(1) == 0) {
    const size_t step = (size_t)n_groups * get_local_size(0) * 128;
    for (size_t i = ((size_t)g * get_local_size(0) + get_local_id(0)) * 128; i < (size_t)bytes; i += step)
      asm volatile("prefetch.global.L2 [%0];" : : "l"(p + i));
  }
#endif
}

// The tensor-core GEMMs' epilogue for one accumulator pair: y[tok, row] and y[tok, row + 1] (the latter
// only while row + 1 < rows) (+)= v, with y [n_tok, rows] f32 and row even; nothing past n_tok or rows.
// One aligned float2 when rows is even, else element by element.
inline void store_row_pair(__global float* y, int tok, int row, int n_tok, int rows, float2 v, int accumulate) {
  if (tok >= n_tok || row >= rows) return;
  __global float* out = y + (size_t)tok * rows + row;
  if ((rows & 1) == 0) {
    if (accumulate) v += *(__global float2*)out;
    *(__global float2*)out = v;
  } else {
    out[0] = accumulate ? out[0] + v.x : v.x;
    if (row + 1 < rows) out[1] = accumulate ? out[1] + v.y : v.y;
  }
}

// The int8 part of an int8 / LLM.int8() output (QUANT_SPEC.md 1): the exact int32 dot product c32 of the
// codes, with the token's scale sca and the weight row's scb: c32 * sca * scb / 127^2.
inline float int8_dequant(int c32, float sca, float scb) { return (float)c32 * sca * scb / 16129.0f; }

#endif  // QUILL_COMMON_CL
