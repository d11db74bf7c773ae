// grid_barrier.cl: counters in device memory that let the work-groups of one launch (or of chained
// launches) wait for each other, NVIDIA path only (inline PTX: release / acquire at GPU scope). Used by
// decode_layer.cl (a barrier between the phases of a persistent kernel) and chain_probe.cl. A
// grid-wide barrier needs every work-group of the grid resident at once: the host launches at most one
// work-group per compute unit that fits, on a queue with nothing else running.
#ifndef QUILL_GRID_BARRIER_CL
#define QUILL_GRID_BARRIER_CL

#include "common.cl"

#if !QUILL_PTX
#error "grid_barrier.cl needs the NVIDIA path (inline PTX)"
#endif

inline uint load_acquire(__global const uint* p) {
  uint v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
inline void add_release(__global uint* p, uint v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;" : : "l"(p), "r"(v) : "memory");
}
inline ulong global_ns(void) {
  ulong t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Work-item 0's wait: polls until *count has reached `target` (wrap-safe). After 50 ms it gives up and
// sets *failed: a missing predecessor is an error, not a hang.
inline void poll_count(__global uint* count, uint target, __global uint* failed) {
  const ulong start = global_ns();
  while ((int)(load_acquire(count) - target) < 0)
    if (global_ns() - start > 50000000ul) {
      atomic_or(failed, 1u);
      break;
    }
}

// The work-group waits until *count has reached `target`: work-item 0 polls, the rest wait at the barrier.
inline void wait_count(__global uint* count, uint target, __global uint* failed) {
  if (get_local_id(0) == 0) poll_count(count, target, failed);
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
}

// The work-group's stores are done and released: *count += 1.
inline void signal_count(__global uint* count) {
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
  if (get_local_id(0) == 0) add_release(count, 1u);
}

// A barrier over the whole grid: every work-group's global stores before it are visible to every
// work-group after it (as CUDA's grid.sync(): work-item 0 releases and acquires at GPU scope, with a
// fence after the wait, and the work-group barriers carry that to the other work-items). *target: the
// count this barrier waits for, advanced by the number of work-groups (every work-group of the grid
// calls it the same number of times).
// GRID_SYNC_LOCAL_FENCE (measurement builds): the arrival's work-group barrier orders local memory only,
// and work-item 0 fences at GPU scope before releasing (CUDA's pattern), instead of every work-item's
// global fence.
inline void grid_sync(__global uint* count, uint* target, __global uint* failed) {
  *target += get_num_groups(0);
#if GRID_SYNC_LOCAL_FENCE
  barrier(CLK_LOCAL_MEM_FENCE);
  if (get_local_id(0) == 0) {
    asm volatile("fence.acq_rel.gpu;" : : : "memory");
    add_release(count, 1u);
  }
#else
  signal_count(count);
#endif
  if (get_local_id(0) == 0) {
    poll_count(count, *target, failed);
    asm volatile("fence.acq_rel.gpu;" : : : "memory");
  }
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
}

#endif  // QUILL_GRID_BARRIER_CL
