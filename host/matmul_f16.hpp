// Launcher for kernels/matmul_f16.cl: y[n_tok, rows] (+)= x[n_tok, cols] . W[rows, cols]^T, W fp16
// (or f32 with weight_f32).
#pragma once

#include "host/buffer.hpp"
#include "host/kernel.hpp"

namespace quill::host {

class Device;

class MatmulF16 {
 public:
  explicit MatmulF16(Device& device, bool weight_f32 = false);
  // w: [rows, w_stride] fp16 (f32)   x: [n_tok, cols] f32   y: [n_tok, rows] f32. Shapes checked against sizes.
  void run(const Buffer& w, const Buffer& x, Buffer& y, int rows, int cols, int w_stride, int n_tok,
           bool accumulate = false, Event* event = nullptr);

 private:
  Device& device_;
  size_t weight_bytes_;
  Kernel kernel_;
};

}  // namespace quill::host
