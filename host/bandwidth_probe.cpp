// Streaming read-bandwidth probe (see bandwidth_probe.hpp).
#include "host/bandwidth_probe.hpp"

#include <algorithm>
#include <vector>

#include "host/buffer.hpp"
#include "host/device.hpp"
#include "host/kernel.hpp"

namespace quill::host {

double measure_read_bandwidth(Device& device, size_t bytes, int reps) {
  // At most 1 GiB: more adds nothing to the figure, and on NVIDIA's OpenCL (driver 580) the probe at 2 GiB
  // never returned (docs/PERFORMANCE.md, session 9).
  bytes = std::min<size_t>({bytes, device.info().max_alloc_bytes, size_t(1) << 30}) / 16 * 16;
  Buffer src(device, bytes), sink(device, 16);
  src.fill_bytes(1);
  Kernel kernel(device.program("stream.cl"), "stream_read");
  kernel.args(src, uint64_t(bytes / 16), sink, uint32_t(0xdeadbeef));
  const size_t work = size_t(device.info().compute_units) * 2048;
  std::vector<double> seconds;
  for (int r = 0; r < std::max(reps, 1) + 2; ++r) {
    Event event;
    kernel.launch(device, Range(work), Range(256), &event);
    if (r >= 2) seconds.push_back(double(event.elapsed_ns()) * 1e-9);
  }
  std::sort(seconds.begin(), seconds.end());
  return double(bytes) / seconds[seconds.size() / 2];
}

}  // namespace quill::host
