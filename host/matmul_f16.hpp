// Launcher for kernels/matmul_f16.cl: y[n_tok, rows] (+)= x[n_tok, cols] . W[rows, cols]^T, W fp16
// (or f32 with weight_f32), optionally with the input transform fused (FusedInput, matmul_lut.hpp).
#pragma once

#include <map>
#include <utility>

#include "host/buffer.hpp"
#include "host/kernel.hpp"
#include "host/matmul_lut.hpp"

namespace quill::host {

class Device;

class MatmulF16 {
 public:
  explicit MatmulF16(Device& device, bool weight_f32 = false);
  // w: [rows, w_stride] fp16 (f32)   x: [n_tok, cols] f32 ([n_tok, 2 cols] with SwiGLU)
  // y: [n_tok, rows] f32. Shapes checked against sizes.
  // prefetch: requested into L2 by the last work-groups as they finish (decode: the next weights).
  void run(const Buffer& w, const Buffer& x, Buffer& y, int rows, int cols, int w_stride, int n_tok,
           bool accumulate = false, Event* event = nullptr, const FusedInput& input = {},
           const L2Prefetch& prefetch = {});

 private:
  Kernel& kernel(int tok_tile, int input_kind);
  Device& device_;
  bool weight_f32_;
  size_t weight_bytes_;
  GemvTuning tuning_;
  std::map<std::pair<int, int>, Kernel> kernels_;  // (tok_tile, input kind)
  Buffer dummy_;
};

}  // namespace quill::host
