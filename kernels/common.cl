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
inline float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    float other;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(other) : "f"(v), "r"(offset));
    v += other;
  }
  return v;
}
inline float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    float other;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(other) : "f"(v), "r"(offset));
    v = fmax(v, other);
  }
  return v;
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

inline float dot8(float8 a, float8 b) { return dot(a.lo, b.lo) + dot(a.hi, b.hi); }

#endif  // QUILL_COMMON_CL
