// Launcher for kernels/matmul_f16.cl: y[n_tok, rows] = x[n_tok, cols] . W[rows, cols]^T, W fp16.
#pragma once

#include "host/buffer.hpp"
#include "host/kernel.hpp"

namespace quill::host {

class Device;

class MatmulF16 {
 public:
  explicit MatmulF16(Device& device);
  // w: [rows, w_stride] fp16   x: [n_tok, cols] f32   y: [n_tok, rows] f32. Shapes checked against sizes.
  void run(const Buffer& w, const Buffer& x, Buffer& y, int rows, int cols, int w_stride, int n_tok,
           Event* event = nullptr);

 private:
  Device& device_;
  Kernel kernel_;
};

}  // namespace quill::host
