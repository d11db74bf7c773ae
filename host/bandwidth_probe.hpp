// The device's streaming read bandwidth (kernels/stream.cl): the floor that matmul and decode
// timings are reported against, measured in the same run.
#pragma once

#include <cstddef>

namespace quill::host {

class Device;

// Bytes per second reading `bytes` (capped at the maximum allocation and 1 GiB) with coalesced 16-byte loads;
// the median of `reps` timed runs after two warm-ups. Needs a profiling queue.
double measure_read_bandwidth(Device& device, size_t bytes, int reps);

}  // namespace quill::host
