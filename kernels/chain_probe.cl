// chain_probe.cl: what a kernel boundary costs on the NVIDIA path, next to the two ways around one:
// a grid-wide barrier inside one persistent kernel, and a launch on a second queue that waits for its
// predecessor through a counter in device memory (benchmarks/chain/bench_chain.cpp). NVIDIA only.
#include "common.cl"

#if !QUILL_PTX
#error "chain_probe.cl needs the NVIDIA path (inline PTX)"
#endif

inline uint load_acquire(__global const uint* p) {
  uint v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}
inline void add_release(__global uint* p, uint v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;" : : "l"(p), "r"(v));
}
inline ulong global_ns(void) {
  ulong t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// The work-group waits until *count has reached `target` (wrap-safe): work-item 0 polls, the rest wait
// at the barrier. After 50 ms it gives up and sets *failed: a missing predecessor is an error, not a hang.
inline void wait_count(__global uint* count, uint target, __global uint* failed) {
  if (get_local_id(0) == 0) {
    const ulong start = global_ns();
    while ((int)(load_acquire(count) - target) < 0)
      if (global_ns() - start > 50000000ul) {
        atomic_or(failed, 1u);
        break;
      }
  }
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
}

// The work-group's stores are done and released: *count += 1.
inline void signal_count(__global uint* count) {
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
  if (get_local_id(0) == 0) add_release(count, 1u);
}

#ifndef PF_DEPTH
#define PF_DEPTH 1  // uint4 per work-item loaded before a wait (they do not depend on the predecessor)
#endif

// Streams n_vec uint4 from src + offset_vec. chained: the first loads go out, then the work-group waits
// for count >= wait_target, and at its end adds 1 to count.
__kernel void chain_stream(__global const uint4* src, ulong offset_vec, ulong n_vec, __global uint* sink, uint never,
                           __global uint* count, uint wait_target, int chained, __global uint* failed) {
  const size_t stride = get_global_size(0);
  uint4 first[PF_DEPTH];
#pragma unroll
  for (int d = 0; d < PF_DEPTH; ++d) {
    const size_t i = get_global_id(0) + d * stride;
    first[d] = i < n_vec ? src[offset_vec + i] : (uint4)(0);
  }
  if (chained) wait_count(count, wait_target, failed);
  uint4 acc = (uint4)(0);
#pragma unroll
  for (int d = 0; d < PF_DEPTH; ++d) acc ^= first[d];
  for (size_t i = get_global_id(0) + PF_DEPTH * stride; i < n_vec; i += stride) acc ^= src[offset_vec + i];
  const uint folded = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (folded == never) sink[0] = folded;
  if (chained) signal_count(count);
}

// Streams `segments` consecutive segments of n_vec uint4 with a grid-wide barrier between them; the
// first load of the next segment goes out before the barrier. count starts at `base`; the grid must be
// resident at once (the host launches a few work-groups per SM).
__kernel void chain_persistent(__global const uint4* src, ulong n_vec, int segments, __global uint* sink, uint never,
                               __global uint* count, uint base, __global uint* failed) {
  const size_t stride = get_global_size(0), gid = get_global_id(0);
  uint4 acc = (uint4)(0);
  uint4 next[PF_DEPTH];
#pragma unroll
  for (int d = 0; d < PF_DEPTH; ++d) next[d] = gid + d * stride < n_vec ? src[gid + d * stride] : (uint4)(0);
  uint target = base;
  for (int s = 0; s < segments; ++s) {
    const size_t off = (size_t)s * n_vec;
    uint4 cur = (uint4)(0);
#pragma unroll
    for (int d = 0; d < PF_DEPTH; ++d) cur ^= next[d];
    for (size_t i = gid + PF_DEPTH * stride; i < n_vec; i += stride) cur ^= src[off + i];
    acc ^= cur;
    if (s + 1 < segments) {
#pragma unroll
      for (int d = 0; d < PF_DEPTH; ++d)
        next[d] = gid + d * stride < n_vec ? src[off + n_vec + gid + d * stride] : (uint4)(0);
      target += get_num_groups(0);
      signal_count(count);
      wait_count(count, target, failed);
    }
  }
  const uint folded = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (folded == never) sink[0] = folded;
}
