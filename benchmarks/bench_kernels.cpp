// quill_bench_kernels: matmul timings per scheme and shape through Linear (make_linear: the same
// kernels and layouts the engine runs), with the achieved bandwidth of weight bytes as a share of
// the device's read bandwidth measured by a streaming kernel in the same run, and GEMM throughput.
// Benchmarks, not tests: nothing here asserts a speed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/linear.hpp"
#include "engine/quantize_matrix.hpp"
#include "host/bandwidth_probe.hpp"
#include "host/device.hpp"
#include "host/kernel.hpp"

namespace {

using namespace quill;

struct Options {
  std::string device;
  int reps = 20;
  bool json = false;
  std::vector<std::string> shapes = {"4096x4096", "11008x4096", "4096x11008", "14336x4096", "4096x14336"};
  std::vector<int> tokens = {1};
  std::vector<std::string> schemes = {"f16"};
  std::string input = "none";  // input transform: none, rmsnorm, swiglu
  double stream_mib = 1024;
  double cold_mib = 256;  // weight copies used in turn add up to at least this (0: one copy, cache-warm)
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Result {
  double seconds;         // median wall time of one forward in a back-to-back batch
  double kernel_seconds;  // device time of one forward's kernels (event timing, summed)
  double weight_bytes;    // device bytes of the weights
};

// copies: weight copies uploaded and used in turn, so that a forward finds its weights out of the
// device's cache as decode does (a 7B model's layers never fit in the H100's 50 MB L2); 1 = warm.
Result bench_linear(host::Device& device, const std::string& scheme_name_arg, int rows, int cols, int n_tok, int reps,
                    const std::string& input, int copies) {
  const QuantScheme scheme = parse_quant_scheme(scheme_name_arg);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  MatrixF32 w{rows, cols, std::vector<float>(size_t(rows) * cols)};
  for (auto& v : w.data) v = dist(rng) * 0.02f;
  QuantParams params;
  const QuantizedMatrix q = quantize(w, scheme, params);
  std::vector<std::unique_ptr<Linear>> linears;
  for (int c = 0; c < std::max(copies, 1); ++c) linears.push_back(make_linear(device, q, scheme, params));
  size_t next = 0;
  auto forward = [&](const host::Buffer& xb, host::Buffer& yb, Workspace& ws, const InputTransform& transform) {
    linears[next]->forward(xb, yb, n_tok, false, ws, transform);
    next = (next + 1) % linears.size();
  };
  const int x_cols = input == "swiglu" ? 2 * cols : cols;
  std::vector<float> x(size_t(n_tok) * x_cols), norm(size_t(cols), 1.0f);
  for (auto& v : x) v = dist(rng);
  host::Buffer xb = host::upload(device, x), yb(device, size_t(n_tok) * rows * 4), nb = host::upload(device, norm);
  InputTransform transform;
  if (input == "rmsnorm") transform = {InputTransform::Kind::kRmsNorm, &nb, 1e-5f};
  if (input == "swiglu") transform = {InputTransform::Kind::kSwiGlu};
  Workspace ws(device);
  for (int i = 0; i < 3; ++i) forward(xb, yb, ws, transform);
  device.finish();
  std::vector<double> seconds;
  for (int r = 0; r < reps; ++r) {
    // Wall time of a batch of back-to-back forwards (includes launch overhead, as decode sees it).
    constexpr int kBatch = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kBatch; ++i) forward(xb, yb, ws, transform);
    device.finish();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kBatch);
  }
  // Device time alone (no launch overhead, no gaps): the kernels' events of a batch, summed.
  constexpr int kEventBatch = 20;
  device.set_profile_recording(true);
  for (int i = 0; i < kEventBatch; ++i) forward(xb, yb, ws, transform);
  device.set_profile_recording(false);
  uint64_t kernel_ns = 0;
  for (const auto& p : device.profile_report()) kernel_ns += p.total_ns;
  return {median(seconds), double(kernel_ns) * 1e-9 / kEventBatch, double(linears[0]->weight_bytes())};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"quill_bench_kernels: matmul kernel bandwidth per shape vs the device's streaming read bandwidth"};
  app.add_option("-d,--device", o.device, "Device: index, gpu, cpu, or part of a name (env QUILL_DEVICE)");
  app.add_option("-r,--reps", o.reps, "Timed repetitions per case (median reported)");
  app.add_option("--shapes", o.shapes, "Weight shapes ROWSxCOLS (rows = output features)")->delimiter(',');
  app.add_option("--tokens", o.tokens, "Token counts (1 = GEMV)")->delimiter(',');
  app.add_option("-q,--quant", o.schemes, "Schemes (comma-separated): " + quant_scheme_names())->delimiter(',');
  app.add_option("--input", o.input, "Input transform fused or not: none, rmsnorm, swiglu");
  app.add_option("--stream-mib", o.stream_mib, "Bytes read by the bandwidth probe, MiB");
  app.add_option("--cold-mib", o.cold_mib,
                 "Use copies of the weights in turn, at least this many MiB in all, so each forward reads them from "
                 "memory as decode does (0: one copy, cache-warm)");
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
      std::printf("%-9s %-12s %6s %10s %10s %8s %10s %10s %9s\n", "scheme", "shape", "tokens", "time_us", "GB/s",
                  "%floor", "TFLOP/s", "kernel_us", "%kfloor");
    }
    for (const auto& scheme : o.schemes) {
      for (const auto& shape : o.shapes) {
        int rows = 0, cols = 0;
        if (std::sscanf(shape.c_str(), "%dx%d", &rows, &cols) != 2 || rows <= 0 || cols <= 0) {
          std::fprintf(stderr, "quill_bench_kernels: error: bad shape '%s' (expected ROWSxCOLS)\n", shape.c_str());
          return 1;
        }
        for (int n_tok : o.tokens) {
          const double bits = nominal_bits_per_weight(parse_quant_scheme(scheme), QuantParams{});
          const double one_copy_mib = double(rows) * cols * bits / 8 / (1 << 20);
          const int copies = o.cold_mib > 0 ? std::min(64, int(std::ceil(o.cold_mib / one_copy_mib))) : 1;
          const Result r = bench_linear(device, scheme, rows, cols, n_tok, o.reps, o.input, copies);
          const double gbps = r.weight_bytes / r.seconds * 1e-9;
          const double pct = 100.0 * (r.weight_bytes / bandwidth) / r.seconds;
          const double tflops = 2.0 * rows * cols * n_tok / r.seconds * 1e-12;
          const double kernel_pct = 100.0 * (r.weight_bytes / bandwidth) / r.kernel_seconds;
          if (o.json) {
            std::printf("%s\n", nlohmann::json{{"scheme", scheme}, {"rows", rows}, {"cols", cols}, {"tokens", n_tok},
                                               {"input", o.input}, {"time_us", r.seconds * 1e6},
                                               {"weight_gbps", gbps}, {"floor_pct", pct}, {"tflops", tflops},
                                               {"kernel_us", r.kernel_seconds * 1e6}, {"kernel_floor_pct", kernel_pct},
                                               {"device", device.info().name}}.dump().c_str());
          } else {
            std::printf("%-9s %-12s %6d %10.1f %10.1f %7.1f%% %10.2f %10.1f %8.1f%%\n", scheme.c_str(), shape.c_str(),
                        n_tok, r.seconds * 1e6, gbps, pct, tflops, r.kernel_seconds * 1e6, kernel_pct);
          }
          std::fflush(stdout);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quill_bench_kernels: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
