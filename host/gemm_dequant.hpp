// Launcher for the prefill GEMM of the weight-only formats, y[n_tok, rows] (+)= x[n_tok, cols] . W^T,
// with W decoded tile by tile (the GEMV's decoders), never into a full copy. Three cores:
//  - int8 tensor cores (kernels/gemm_int8_blocks.cl), NVIDIA sm_80+, for the block-scaled formats whose
//    codes are int8 (int4 / Q4_0, q8_0) or a 16-entry table rounded to int8 (nf4, fp4): x quantized per
//    token and block of 32 (int8 codes + fp32 scale, as llama.cpp's MMQ does), exact int32 block sums,
//    fp32 scaling. Precision: x's int8 rounding (<= amax / 254 per value of its block) on top of the
//    format's, and for nf4 / fp4 each weight's (<= absmax / 254 of its block).
//    $QUILL_GEMM_INT8=0 takes the fp16 core instead.
//  - fp16 tensor cores (kernels/gemm_dequant.cl, NVIDIA): weights (after scale) and x rounded to fp16,
//    fp32 accumulation. Every other format (dyn8, k-means), and fp16 weights.
//  - portable (kernels/gemm_dequant.cl elsewhere): fp32 FMAs.
// The tensor-core paths first convert x (one launch) into scratch the caller lends (input_scratch_bytes).
#pragma once

#include "host/buffer.hpp"
#include "host/device_info.hpp"
#include "host/kernel.hpp"
#include "host/matmul_lut.hpp"

namespace quill::host {

class Device;

// Device scratch for the converted x: data (fp16 x, or int8 codes) and scales (int8 core: the block
// scales; unused otherwise). Sizes: GemmDequant::input_scratch_bytes.
struct GemmInputScratch {
  Buffer* data = nullptr;
  Buffer* scales = nullptr;
};

class GemmDequant {
 public:
  enum class Format : int { kLut4 = 4, kLut8 = 8, kF16 = 16 };
  // kLut4: arith = int4 (code - 8); kLut8: arith = q8_0 (linear int8 code); scale: the LutWeights' kind.
  GemmDequant(Device& device, Format format, LutScale scale = LutScale::kNone, bool arith = false);

  // The engine uses these kernels on the tensor-core (inline PTX) path only. The portable path of
  // gemm_dequant.cl is not faster than the GEMV tile kernel on PoCL. (Its intermittently unwritten
  // outputs there had a cause: no barrier between the local table fill and the first decode; with the
  // barrier, all 26 GemmDequant cases passed on PoCL 3.1 in 3 runs with the gate forced open, 2026-11-23.)
  static bool supported_on(const DeviceInfo& info) { return info.inline_ptx; }
  // Whether the engine uses it for prefill: wherever supported, unless $QUILL_GEMM_DEQUANT=0.
  // (It was opt-in until 2026-11-23: padded columns past the row end read other rows' scales, NaN
  // in fp16 for the last row; now stored as 0.)
  static bool used_on(const DeviceInfo& info);
  // Whether int4, q8_0, nf4 and fp4 take the int8 tensor-core core on this device: inline PTX, sm_80+,
  // unless $QUILL_GEMM_INT8=0.
  static bool int8_core_on(const DeviceInfo& info);

  // Table formats (w laid out as for MatmulLut4 / MatmulLut8).
  void run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate,
           const GemmInputScratch& scratch, Event* event = nullptr);
  // fp16 rows [rows, w_stride], w_stride % 8 == 0.
  void run_f16(const Buffer& w, int w_stride, const Buffer& x, Buffer& y, int rows, int cols, int n_tok,
               bool accumulate, const GemmInputScratch& scratch, Event* event = nullptr);
  // Bytes of scratch.data / scratch.scales that a call needs (0 on the portable path). cols: the weights'
  // columns; row_words: the LutWeights' (0 for fp16 rows).
  size_t input_scratch_bytes(int n_tok, int cols, int row_words = 0) const;
  size_t input_scale_bytes(int n_tok, int cols, int row_words = 0) const;
  // Kernel launches per call (the x conversion and the GEMM on the tensor-core paths).
  int launches() const { return tensor_cores_ ? 2 : 1; }

  // Token count from which the engine uses this GEMM instead of the GEMV kernels ($QUILL_GEMM_MIN_TOKENS).
  static int min_tokens();

 private:
  // The GEMM's K extent in columns: whole K steps over the packed rows (the converted x's row length).
  int k_columns(int cols, int row_words) const;
  // Converts x into the scratch (tensor-core paths), then sets the GEMM's x arguments and launches it;
  // arguments before x (the weights) are set by the caller through kernel_.args(), `next` is the index of
  // x's (kernel_.next_arg()).
  void launch(uint32_t next, const Buffer& x, Buffer& y, int rows, int cols, int row_words, int n_tok,
              bool accumulate, const GemmInputScratch& scratch, Event* event);

  Device& device_;
  Format format_;
  LutScale scale_;
  bool tensor_cores_;
  bool int8_core_;
  Kernel kernel_;   // gemm_dequant or gemm_int8_blocks
  Kernel convert_;  // gemm_x_to_f16 or gemm_quantize_x (tensor-core paths)
  Buffer dummy_;
};

}  // namespace quill::host
