// Timing of the int8 kernels (kernels/quantize.cl + kernels/matmul_int8.cl): GEMV (decode, weight
// read bandwidth) and the tensor-core GEMM (prefill, TOPS), best of N event timings.
// Usage: quill_bench_int8 [device spec]   (default: $QUILL_DEVICE or the default device)
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <cstdio>
#include <random>
#include <vector>

#include "host/buffer.hpp"
#include "host/device.hpp"
#include "host/kernel.hpp"
#include "host/matmul_int8.hpp"
#include "host/quantize_activations.hpp"

using namespace quill::host;

namespace {

struct Timing {
  double quant_us, matmul_us, fused_us = 0, fused_wall_us = 0, split_wall_us = 0;
};

Timing time_shape(Device& device, int rows, int cols, int n_tok, float threshold, int reps) {
  const int rows_pad = (rows + MatmulInt8::kRowAlign - 1) / MatmulInt8::kRowAlign * MatmulInt8::kRowAlign;
  const int kpad = (cols + MatmulInt8::kColAlign - 1) / MatmulInt8::kColAlign * MatmulInt8::kColAlign;
  std::mt19937 rng(1);
  std::vector<int8_t> cb(size_t(rows_pad) * kpad);
  for (auto& v : cb) v = int8_t(int(rng() % 255) - 127);
  std::vector<float> scb(size_t(rows_pad), 0.01f), x(size_t(n_tok) * cols);
  for (auto& v : x) v = float(int(rng() % 2001) - 1000) / 500.0f;
  std::vector<int32_t> slot(size_t(cols), -1);
  std::vector<uint16_t> w16(size_t(rows_pad), 0);
  Buffer cbb = upload(device, cb), scbb = upload(device, scb), slotb = upload(device, slot), w16b = upload(device, w16);
  Buffer xb = upload(device, x), yb(device, size_t(n_tok) * rows * 4);
  Buffer codes(device, size_t(n_tok) * kpad), sca(device, size_t(n_tok) * 4), flags(device, size_t(cols) * 4),
      olist(device, size_t(cols) * 4), ocount(device, 4);
  const Int8ActivationBuffers a{&codes, &sca, &flags, &olist, &ocount};
  const Int8WeightBuffers w{&cbb, &scbb, &slotb, &w16b, rows, cols, rows_pad, kpad, 0};
  QuantizeActivations quant(device);
  MatmulInt8 matmul(device);
  Timing best{1e30, 1e30, 1e30};
  const bool fused = MatmulInt8::fused_ok(n_tok, cols, kpad);
  for (int r = 0; r < reps; ++r) {
    Event eq, em, ef;
    quant.run(xb, n_tok, cols, kpad, threshold, a, &eq);
    matmul.run(w, xb, a, yb, n_tok, false, &em);
    if (fused) matmul.run_fused(w, xb, FusedTransform::kNone, nullptr, 0.0f, threshold, yb, n_tok, false, nullptr, &ef);
    (fused ? ef : em).wait();
    if (r == 0) continue;  // warm-up
    best.quant_us = std::min(best.quant_us, eq.elapsed_ns() * 1e-3);
    best.matmul_us = std::min(best.matmul_us, em.elapsed_ns() * 1e-3);
    if (fused) best.fused_us = std::min(best.fused_us, ef.elapsed_ns() * 1e-3);
  }
  if (fused) {  // wall clock of 200 back-to-back forwards (launch cost included, as decode sees it)
    const int batch = 200;
    for (int pass = 0; pass < 2; ++pass) {
      device.finish();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < batch; ++i) {
        if (pass == 0) {
          matmul.run_fused(w, xb, FusedTransform::kNone, nullptr, 0.0f, threshold, yb, n_tok, false);
        } else {
          quant.run(xb, n_tok, cols, kpad, threshold, a);
          matmul.run(w, xb, a, yb, n_tok, false);
        }
      }
      device.finish();
      const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / batch;
      (pass == 0 ? best.fused_wall_us : best.split_wall_us) = us;
    }
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  DeviceOptions options;
  options.spec = argc > 1 ? argv[1] : "";
  options.profiling = true;
  Device device(options);
  std::printf("device: %s\n", device.info().name.c_str());
  struct Case {
    int rows, cols, n_tok;
    float threshold;
  };
  for (const Case c : {Case{4096, 14336, 1, 0.0f}, Case{14336, 4096, 1, 0.0f}, Case{4096, 4096, 1, 0.0f},
                       Case{4096, 14336, 1, 6.0f}, Case{14336, 4096, 1, 6.0f}, Case{4096, 4096, 4, 0.0f},
                       Case{4096, 14336, 8, 0.0f}}) {
    const Timing t = time_shape(device, c.rows, c.cols, c.n_tok, c.threshold, 20);
    const double bytes = double(c.rows) * c.cols + 4.0 * c.rows;
    std::printf("gemv  rows %5d cols %5d tok %d thr %.0f: split: matmul %7.2f us %7.1f GB/s + quantize %6.2f us, "
                "wall %6.2f us | fused: %7.2f us %7.1f GB/s, wall %6.2f us\n",
                c.rows, c.cols, c.n_tok, c.threshold, t.matmul_us, bytes / (t.matmul_us * 1e3), t.quant_us,
                t.split_wall_us, t.fused_us, bytes / (t.fused_us * 1e3), t.fused_wall_us);
  }
  const char* configs_env = std::getenv("QUILL_INT8_MMA_SWEEP");
  std::vector<std::string> configs{""};
  if (configs_env && *configs_env) {  // e.g. "2,4,2,4;2,4,4,4": GEMM tile configurations to compare
    configs.clear();
    std::string all = configs_env;
    for (size_t at = 0; at <= all.size();) {
      const size_t end = std::min(all.find(';', at), all.size());
      configs.push_back(all.substr(at, end - at));
      at = end + 1;
    }
  }
  for (const std::string& cfg : configs) {
    if (!cfg.empty()) {  // this tiling for every grid
      setenv("QUILL_INT8_MMA", cfg.c_str(), 1);
      setenv("QUILL_INT8_MMA_SMALL", cfg.c_str(), 1);
    }
    for (const Case c : {Case{4096, 4096, 512, 0.0f}, Case{14336, 4096, 512, 0.0f}, Case{4096, 14336, 512, 0.0f},
                         Case{4096, 4096, 2048, 0.0f}, Case{4096, 4096, 512, 6.0f}}) {
      const Timing t = time_shape(device, c.rows, c.cols, c.n_tok, c.threshold, 10);
      const double ops = 2.0 * c.rows * c.cols * c.n_tok;
      std::printf("gemm [%s] rows %5d cols %5d tok %4d thr %.0f: matmul %8.2f us %6.1f TOPS | quantize %6.2f us (%s)\n",
                  cfg.empty() ? "default" : cfg.c_str(), c.rows, c.cols, c.n_tok, c.threshold, t.matmul_us,
                  ops / (t.matmul_us * 1e6), t.quant_us, MatmulInt8(device).uses_mma(c.n_tok) ? "mma.sync" : "rows kernel");
    }
  }
  return 0;
}
