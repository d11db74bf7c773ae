// quill_bench_kernels: matmul kernel timings per shape, with the achieved bandwidth of weight bytes
// as a share of the device's read bandwidth measured by a streaming kernel in the same run.
// Benchmarks, not tests: nothing here asserts a speed.
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/half.hpp"
#include "host/bandwidth_probe.hpp"
#include "host/device.hpp"
#include "host/kernel.hpp"
#include "host/matmul_f16.hpp"

namespace {

using namespace quill;

struct Options {
  std::string device;
  int reps = 20;
  bool json = false;
  std::vector<std::string> shapes = {"4096x4096", "11008x4096", "4096x11008", "14336x4096", "4096x14336"};
  std::vector<int> tokens = {1};
  double stream_mib = 1024;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Result {
  std::string kernel;
  int rows, cols, n_tok;
  double seconds, weight_bytes;
};

Result bench_f16(host::Device& device, int rows, int cols, int n_tok, int reps) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<uint16_t> w(size_t(rows) * cols);
  for (auto& v : w) v = float_to_half(dist(rng));
  std::vector<float> x(size_t(n_tok) * cols);
  for (auto& v : x) v = dist(rng);
  host::Buffer wb = host::upload(device, w), xb = host::upload(device, x);
  host::Buffer yb(device, size_t(n_tok) * rows * 4);
  host::MatmulF16 matmul(device);
  std::vector<double> seconds;
  for (int r = 0; r < reps + 3; ++r) {
    host::Event event;
    matmul.run(wb, xb, yb, rows, cols, cols, n_tok, false, &event);
    if (r >= 3) seconds.push_back(event.elapsed_ns() * 1e-9);
  }
  return {"f16", rows, cols, n_tok, median(seconds), double(w.size()) * 2};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"quill_bench_kernels: matmul kernel bandwidth per shape vs the device's streaming read bandwidth"};
  app.add_option("-d,--device", o.device, "Device: index, gpu, cpu, or part of a name (env QUILL_DEVICE)");
  app.add_option("-r,--reps", o.reps, "Timed repetitions per case (median reported)");
  app.add_option("--shapes", o.shapes, "Weight shapes ROWSxCOLS (rows = output features)");
  app.add_option("--tokens", o.tokens, "Token counts (1 = GEMV)");
  app.add_option("--stream-mib", o.stream_mib, "Bytes read by the bandwidth probe, MiB");
  app.add_flag("--json", o.json, "One JSON object per line on stdout");
  CLI11_PARSE(app, argc, argv);
  try {
    host::Device device({.spec = o.device, .profiling = true});
    const double bandwidth = host::measure_read_bandwidth(device, size_t(o.stream_mib * 1024 * 1024), o.reps);
    if (o.json) {
      std::printf("%s\n", nlohmann::json{{"probe", "stream_read"}, {"device", device.info().name},
                                         {"read_gbps", bandwidth * 1e-9}}.dump().c_str());
    } else {
      std::printf("device: %s\nstreaming read bandwidth: %.1f GB/s\n\n", device.info().name.c_str(), bandwidth * 1e-9);
      std::printf("%-8s %-12s %6s %10s %10s %8s\n", "kernel", "shape", "tokens", "time_us", "GB/s", "%floor");
    }
    for (const auto& shape : o.shapes) {
      int rows = 0, cols = 0;
      if (std::sscanf(shape.c_str(), "%dx%d", &rows, &cols) != 2 || rows <= 0 || cols <= 0) {
        std::fprintf(stderr, "quill_bench_kernels: error: bad shape '%s' (expected ROWSxCOLS)\n", shape.c_str());
        return 1;
      }
      for (int n_tok : o.tokens) {
        const Result r = bench_f16(device, rows, cols, n_tok, o.reps);
        const double gbps = r.weight_bytes / r.seconds * 1e-9;
        const double pct = 100.0 * (r.weight_bytes / bandwidth) / r.seconds;
        if (o.json) {
          std::printf("%s\n", nlohmann::json{{"kernel", r.kernel}, {"rows", rows}, {"cols", cols}, {"tokens", n_tok},
                                             {"time_us", r.seconds * 1e6}, {"weight_gbps", gbps},
                                             {"floor_pct", pct}, {"device", device.info().name}}.dump().c_str());
        } else {
          std::printf("%-8s %-12s %6d %10.1f %10.1f %7.1f%%\n", r.kernel.c_str(), shape.c_str(), n_tok,
                      r.seconds * 1e6, gbps, pct);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quill_bench_kernels: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
