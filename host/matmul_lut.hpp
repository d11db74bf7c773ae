// Launchers for the table-lookup matmuls: kernels/matmul_lut4.cl (4-bit codes: nf4, fp4, int4,
// k-means) and kernels/matmul_lut8.cl (8-bit codes: dyn8, q8_0). y[n_tok, rows] (+)= x[n_tok, cols]
// . W^T with W decoded in the kernel. Each launcher builds a GEMV program (one token per pass) and a
// GEMM program (LutGemmTile tokens per pass, weights decoded once per tile) and picks by n_tok.
#pragma once

#include <cstdint>

#include "host/buffer.hpp"
#include "host/kernel.hpp"

namespace quill::host {

class Device;

// How the per-block scale is stored (SCALE_KIND in kernels/lut_common.cl).
enum class LutScale : int {
  kNone = 0,         // no scale (k-means: the table holds the values)
  kF32 = 1,          // fp32 per block (bitsandbytes absmax)
  kF16 = 2,          // fp16 per block (GGUF d)
  kDoubleQuant = 3,  // uint8 dyn8 code per block + fp32 absmax2 per 256 blocks + offset
};

// A lookup-table weight matrix as it lies on the device (buffers owned by the caller).
struct LutWeights {
  int rows = 0, cols = 0;
  // [rows, row_words] uint4 in tiles of 32 uint4 = 1024 (4-bit) or 512 (8-bit) columns; uint4 l of a
  // tile holds the 4-column groups at tile columns 128 g + 4 l (layout: kernels/matmul_lut4.cl, lut8.cl)
  const Buffer* codes = nullptr;
  int row_words = 0;              // uint4 per row: a multiple of 32, >= 32 * ceil(cols / tile columns)
  const Buffer* lut = nullptr;    // 4-bit: [16] or [rows, 16] f32; 8-bit: [256] f32 (unused when linear)
  int lut_stride = 0;             // 4-bit only: 0 (one table) or 16 (a table per row)
  LutScale scale = LutScale::kNone;
  int block = 32;                 // columns per scale block: a power of two >= 16
  int blocks_per_row = 0;         // row stride of the scale array
  const Buffer* scales = nullptr;  // [rows, blocks_per_row] f32 | f16 | uint8 codes (kDoubleQuant)
  const Buffer* absmax2 = nullptr; // kDoubleQuant: [ceil(rows * blocks_per_row / 256)] f32
  const Buffer* dq_lut = nullptr;  // kDoubleQuant: [256] f32 signed dynamic map
  float dq_offset = 0.0f;          // kDoubleQuant: the mean added back
};

inline constexpr int kLutGemmTile = 8;  // tokens per pass of the GEMM program

class MatmulLut4 {
 public:
  MatmulLut4(Device& device, LutScale scale);
  void run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate, Event* event = nullptr);

 private:
  Device& device_;
  LutScale scale_;
  Kernel gemv_, gemm_;
  Buffer dummy_;  // bound to the arguments a scale kind does not use
};

class MatmulLut8 {
 public:
  // linear: the code is the int8 value itself (q8_0); otherwise it indexes w.lut (dyn8).
  MatmulLut8(Device& device, LutScale scale, bool linear);
  void run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate, Event* event = nullptr);

 private:
  Device& device_;
  LutScale scale_;
  bool linear_;
  Kernel gemv_, gemm_;
  Buffer dummy_;
};

}  // namespace quill::host
