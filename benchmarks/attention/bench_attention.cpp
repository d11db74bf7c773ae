// bench_attention: the attention kernels alone at Llama-2-7B head shapes (32 heads x 128, fp16 KV
// cache): decode (attention_decode.cl) at several context lengths and prefill (attention_mma.cl where
// the device has tensor cores, and attention.cl) of 128 and 512
// tokens; median device time per launch, and the KV bytes read over it.
// Usage: quill_bench_attention [device]   (not a test: figures go to docs/PERFORMANCE.md)
#include <algorithm>
#include <cstdio>
#include <vector>

#include "host/buffer.hpp"
#include "host/device.hpp"
#include "host/transformer_kernels.hpp"

using namespace quill::host;

namespace {

constexpr int kHeads = 32, kHeadDim = 128, kDim = kHeads * kHeadDim, kMaxCtx = 4096;

// Device time of one launch of `kernel_name` run by f: the median over reps single-launch profiles.
template <typename F>
double median_us(Device& device, const char* kernel_name, int reps, F&& f) {
  f();  // warm-up (program build, first touch)
  device.profile_report();
  std::vector<double> us;
  for (int i = 0; i < reps; ++i) {
    device.set_profile_recording(true);
    f();
    device.set_profile_recording(false);
    for (const auto& k : device.profile_report())
      if (k.name == kernel_name) us.push_back(double(k.total_ns) / 1e3 / double(k.launches));
  }
  std::sort(us.begin(), us.end());
  return us.empty() ? 0.0 : us[us.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  DeviceOptions options;
  options.spec = argc > 1 ? argv[1] : "";
  options.profiling = true;
  Device device(options);
  std::printf("device: %s\n", device.info().name.c_str());
  TransformerKernels kernels(device, {});
  std::vector<float> qkv(3 * kDim, 0.01f);
  std::vector<uint16_t> cache(size_t(kMaxCtx) * kDim, 0x2000);  // small fp16 values
  Buffer qkv_b = upload(device, qkv), k_b = upload(device, cache), v_b = upload(device, cache);
  Buffer out(device, size_t(512) * kDim * 4);
  Buffer partial(device, TransformerKernels::decode_partial_bytes(kMaxCtx, kHeads, kHeadDim));
  Buffer done(device, kHeads * 4);
  done.fill_bytes(0);
  for (int ctx : {16, 128, 512, 1024, 2048, 4095}) {
    const double us = median_us(device, "attention_decode", 20, [&] {
      kernels.attention_decode(qkv_b, k_b, v_b, out, partial, done, kHeads, kHeads, kHeadDim, kHeadDim, 10000.0f,
                               ctx - 1);
    });
    const double bytes = 2.0 * ctx * kDim * 2;  // K and V rows read
    std::printf("decode   ctx %5d: %8.2f us  %7.1f GB/s of KV\n", ctx, us, bytes / (us * 1e3));
  }
  std::vector<float> q(size_t(512) * kDim, 0.01f);
  Buffer q_b = upload(device, q);
  TransformerKernels no_mma(device, {.prefill_mma = 0});
  for (TransformerKernels* k : {&kernels, &no_mma}) {
    const bool mma = k->prefill_on_tensor_cores(kHeadDim);
    for (int n_tok : {128, 512}) {
      const double us = median_us(device, mma ? "attention_mma" : "attention", 5, [&] {
        k->attention(q_b, k_b, v_b, out, n_tok, kHeads, kHeads, kHeadDim, 0);
      });
      const double flops = 4.0 * kHeads * kHeadDim * (double(n_tok) * (n_tok + 1) / 2);  // QK^T and PV, causal
      std::printf("prefill  %3d tokens from 0 (%s): %8.2f us  %6.1f TFLOP/s\n", n_tok,
                  mma ? "tensor cores" : "attention.cl", us, flops / (us * 1e6));
    }
    if (!mma) break;
  }
  return 0;
}
