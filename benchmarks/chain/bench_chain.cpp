// What a kernel boundary costs on this device, next to the two ways around one (kernels/chain_probe.cl):
// K segments of S MiB each streamed (a) by K kernels back to back on one queue, (b) the same with each
// kernel waiting for its predecessor's counter (no overlap: one queue), (c) by K kernels alternating
// two queues, each waiting for its predecessor's counter (its launch and first loads overlap the
// predecessor), (d) alternating two queues with no waiting (do two queues run at once at all?), and
// (e) by one persistent kernel with a grid-wide barrier between segments. Wall time per segment
// against the streaming floor. NVIDIA path only.
// Usage: quill_bench_chain [device spec]
#include <CL/cl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdio>
#include <string>
#include <vector>

#include "host/bandwidth_probe.hpp"
#include "host/buffer.hpp"
#include "host/device.hpp"
#include "host/kernel.hpp"

using namespace quill::host;

namespace {

struct Probe {
  Device& device;
  cl_command_queue second;
  Buffer& src;
  Buffer sink, count, failed;
  Kernel stream, persistent;
  size_t groups, local;  // work-groups in a grid, work-items in one

  double median_us(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
  void reset() {
    count.fill_bytes(0);
    device.finish();
  }
  void enqueue(cl_command_queue q, Kernel& k) {
    const size_t global = groups * local;
    const cl_int st = clEnqueueNDRangeKernel(q, k.handle(), 1, nullptr, &global, &local, 0, nullptr, nullptr);
    if (st != CL_SUCCESS) std::fprintf(stderr, "enqueue failed: %d\n", st);
    clFlush(q);
  }
  // mode: 0 one queue, 1 one queue chained, 2 two queues chained, 3 two queues unchained.
  double kernels_us(int mode, int segments, size_t n_vec) {
    std::vector<double> runs;
    for (int rep = 0; rep < 6; ++rep) {
      reset();
      const auto t0 = std::chrono::steady_clock::now();
      for (int s = 0; s < segments; ++s) {
        const bool chained = mode == 1 || mode == 2;
        stream.args(src, uint64_t(size_t(s) * n_vec), uint64_t(n_vec), sink, uint32_t(0xdeadbeef), count,
                    uint32_t(size_t(s) * groups), int32_t(chained), failed);
        enqueue(mode >= 2 && (s & 1) ? second : device.queue(), stream);
      }
      clFinish(second);
      device.finish();
      if (rep > 0) runs.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    return median_us(runs) / segments;
  }
  double persistent_us(int segments, size_t n_vec) {
    std::vector<double> runs;
    for (int rep = 0; rep < 6; ++rep) {
      reset();
      persistent.args(src, uint64_t(n_vec), int32_t(segments), sink, uint32_t(0xdeadbeef), count, uint32_t(0), failed);
      const auto t0 = std::chrono::steady_clock::now();
      enqueue(device.queue(), persistent);
      device.finish();
      if (rep > 0) runs.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    return median_us(runs) / segments;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  try {
    Device device({.spec = argc > 1 ? argv[1] : "", .profiling = true});  // the bandwidth probe times events
    if (!device.info().inline_ptx) {
      std::fprintf(stderr, "quill_bench_chain: needs the NVIDIA path (inline PTX); %s has none\n", device.info().name.c_str());
      return 1;
    }
    const double bw = measure_read_bandwidth(device, size_t(1) << 30, 5);
    std::printf("device %s, streaming read %.2f TB/s\n", device.info().name.c_str(), bw * 1e-12);
    cl_int st = CL_SUCCESS;
    // Released on every way out (a failed build or allocation below throws).
    const std::unique_ptr<_cl_command_queue, decltype(&clReleaseCommandQueue)> second_queue(
        clCreateCommandQueue(device.context(), device.info().device, 0, &st), &clReleaseCommandQueue);
    if (st != CL_SUCCESS) {
      std::fprintf(stderr, "second queue: %d\n", st);
      return 1;
    }
    cl_command_queue second = second_queue.get();
    const size_t total = size_t(1) << 30;
    Buffer src(device, total);
    src.fill_bytes(1);
    // (work-groups per SM, work-group size, uint4 per work-item loaded before a wait)
    struct Config {
      int per_sm, local, depth;
    };
    for (const Config cfg : {Config{1, 512, 4}, Config{2, 256, 4}, Config{4, 256, 4}, Config{1, 512, 8}}) {
      auto program = device.program("chain_probe.cl", "-DPF_DEPTH=" + std::to_string(cfg.depth));
      Probe p{device, second, src, Buffer(device, 16), Buffer(device, 4), Buffer(device, 4),
              Kernel(program, "chain_stream"), Kernel(program, "chain_persistent"),
              size_t(device.info().compute_units) * cfg.per_sm, size_t(cfg.local)};
      p.failed.fill_bytes(0);
      for (double mib : {4.0, 8.0, 32.0}) {
        const size_t n_vec = size_t(mib * 1048576) / 16;
        const int segments = int(std::min<size_t>(64, total / (n_vec * 16)));
        const double floor_us = mib * 1048576 / bw * 1e6;
        const double a = p.kernels_us(0, segments, n_vec), b = p.kernels_us(1, segments, n_vec),
                     e = p.persistent_us(segments, n_vec), d = p.kernels_us(3, segments, n_vec),
                     c = p.kernels_us(2, segments, n_vec);
        std::printf("depth %d, %d x %d per SM, %5.1f MiB x %2d: floor %6.2f us | one queue %6.2f (+%5.2f) | chained "
                    "%6.2f (+%5.2f) | two queues chained %6.2f (+%5.2f) | two queues free %6.2f | grid barrier %6.2f "
                    "(+%5.2f) us/segment\n",
                    cfg.depth, cfg.per_sm, cfg.local, mib, segments, floor_us, a, a - floor_us, b, b - floor_us, c,
                    c - floor_us, d, e, e - floor_us);
      }
      uint32_t failed = 0;
      p.failed.read(&failed, 4);
      if (failed) std::printf("  (a wait timed out in this configuration: its chained figures include 50 ms stalls)\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quill_bench_chain: %s\n", e.what());
    return 1;
  }
  return 0;
}
