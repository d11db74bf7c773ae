// Launcher for kernels/gemm_dequant.cl: the prefill GEMM of the weight-only formats,
// y[n_tok, rows] (+)= x[n_tok, cols] . W^T with W decoded tile by tile into local memory (the GEMV's
// decoders); tensor cores (mma.sync f16, fp32 accumulate) on NVIDIA, a local-memory tiled fp32 GEMM
// elsewhere. Precision on NVIDIA: weights (after scale) and x rounded to fp16, fp32 accumulation.
#pragma once

#include "host/buffer.hpp"
#include "host/device_info.hpp"
#include "host/kernel.hpp"
#include "host/matmul_lut.hpp"

namespace quill::host {

class Device;

class GemmDequant {
 public:
  enum class Format : int { kLut4 = 4, kLut8 = 8, kF16 = 16 };
  // kLut4: arith = int4 (code - 8); kLut8: arith = q8_0 (linear int8 code); scale: the LutWeights' kind.
  GemmDequant(Device& device, Format format, LutScale scale = LutScale::kNone, bool arith = false);

  // The engine uses the kernel on the tensor-core (inline PTX) path only. The portable path of
  // gemm_dequant.cl is not faster than the GEMV tile kernel on PoCL. (Its intermittently unwritten
  // outputs there had a cause: no barrier between the local table fill and the first decode; with the
  // barrier, all 26 GemmDequant cases passed on PoCL 3.1 in 3 runs with the gate forced open, 2026-11-23.)
  static bool supported_on(const DeviceInfo& info) { return info.inline_ptx; }
  // Whether the engine uses it for prefill: wherever supported, unless $QUILL_GEMM_DEQUANT=0.
  // (It was opt-in until 2026-11-23: padded columns past the row end read other rows' scales, NaN
  // in fp16 for the last row; now stored as 0.)
  static bool used_on(const DeviceInfo& info);

  // Table formats (w laid out as for MatmulLut4 / MatmulLut8).
  void run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate, Event* event = nullptr);
  // fp16 rows [rows, w_stride], w_stride % 8 == 0.
  void run_f16(const Buffer& w, int w_stride, const Buffer& x, Buffer& y, int rows, int cols, int n_tok,
               bool accumulate, Event* event = nullptr);

  // Token count from which the engine uses this GEMM instead of the GEMV kernels ($QUILL_GEMM_MIN_TOKENS).
  static int min_tokens();

 private:
  Device& device_;
  Format format_;
  LutScale scale_;
  Kernel kernel_;
  Buffer dummy_;
};

}  // namespace quill::host
