// GEMV timing of the table-lookup Linears at Llama FFN shapes (4096x14336, 14336x4096), printed as
// us and TB/s of weight bytes. Skipped unless QUILL_LUT_BENCH=1 (it is a measurement for the GPU,
// not a check); benchmarks/ times every scheme through make_linear for the record.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "engine/linear_factories.hpp"
#include "engine/quantize_matrix.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

TEST(MatmulLutBench, GemvBandwidth) {
  const char* env = std::getenv("QUILL_LUT_BENCH");
  if (!env || std::string(env) != "1") GTEST_SKIP() << "set QUILL_LUT_BENCH=1 to time";
  host::Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed());
  const std::pair<int, int> shapes[] = {{4096, 14336}, {14336, 4096}};
  const QuantScheme schemes[] = {QuantScheme::NF4, QuantScheme::Int4, QuantScheme::FP4, QuantScheme::Q8_0,
                                 QuantScheme::Dyn8};
  for (auto [rows, cols] : shapes) {
    MatrixF32 w{rows, cols, test::random_floats(rng, size_t(rows) * cols)};
    const auto x = test::random_floats(rng, size_t(cols) * 8);
    host::Buffer xb = host::upload(device, x);
    host::Buffer yb(device, size_t(rows) * 8 * sizeof(float));
    Workspace ws(device);
    for (QuantScheme s : schemes)
      for (bool dq : {false, true}) {
        if (dq && s != QuantScheme::NF4) continue;
        QuantParams p;
        p.double_quant = dq;
        if (s == QuantScheme::Dyn8) p.block = 4096;
        const QuantizedMatrix q = quantize(w, s, p);
        std::unique_ptr<Linear> lin;
        if (auto* b = std::get_if<BlockwiseMatrix>(&q)) lin = make_linear_blockwise(device, *b);
        if (auto* g = std::get_if<GgmlBlockMatrix>(&q)) lin = make_linear_ggml(device, *g);
        for (int n_tok : {1, 8}) {
          for (int i = 0; i < 5; ++i) lin->forward(xb, yb, n_tok, false, ws);
          device.finish();
          const int iters = 200;
          const auto t0 = std::chrono::steady_clock::now();
          for (int i = 0; i < iters; ++i) lin->forward(xb, yb, n_tok, false, ws);
          device.finish();
          const double us =
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
          std::printf("LUTBENCH %-5s%s %5dx%-5d n_tok %d: %8.2f us  %6.3f TB/s of %llu weight bytes\n",
                      std::string(scheme_name(s)).c_str(), dq ? "+dq" : "   ", rows, cols, n_tok, us,
                      lin->weight_bytes() / us * 1e-6, (unsigned long long)lin->weight_bytes());
        }
      }
  }
}

}  // namespace
}  // namespace quill
