// Launcher for kernels/matmul_int8.cl: y (+)= int8 matmul of quantized activations (quantize.cl) with
// vector-wise int8 weights, plus the LLM.int8() fp16 outlier side path, recombined in the epilogue.
#pragma once

#include "host/buffer.hpp"
#include "host/kernel.hpp"
#include "host/quantize_activations.hpp"

namespace quill::host {

class Device;

// The weights in the layout the kernels read (engine/linear_int8.cpp builds it).
struct Int8WeightBuffers {
  const Buffer* cb;   // [rows_pad, kpad] int8, zero padded
  const Buffer* scb;  // [rows_pad] f32 (0 in padding rows)
  const Buffer* slot; // [cols] int: position of column j among the kept fp16 columns, or -1
  const Buffer* w16;  // [rows_pad, max(n16, 1)] fp16: the kept outlier columns of each row
  int rows = 0, cols = 0, rows_pad = 0, kpad = 0, n16 = 0;
};

class MatmulInt8 {
 public:
  static constexpr int kRowAlign = 128;  // rows_pad multiple (the GEMM's BN)
  static constexpr int kColAlign = 64;   // kpad multiple (the GEMM's BK)
  static constexpr int kGemvMaxTokens = 8;  // above this, the tensor-core GEMM where available

  explicit MatmulInt8(Device& device);
  // x: [n_tok, cols] f32 (the unquantized activations, for the outlier columns); a: quantize.cl output
  // for x; y: [n_tok, rows] f32, y += when accumulate.
  void run(const Int8WeightBuffers& w, const Buffer& x, const Int8ActivationBuffers& a, Buffer& y, int n_tok,
           bool accumulate, Event* event = nullptr);
  bool uses_mma(int n_tok) const { return has_mma_ && n_tok > kGemvMaxTokens; }

 private:
  Device& device_;
  bool has_mma_ = false;
  Kernel rows_;
  Kernel mma_;
};

}  // namespace quill::host
