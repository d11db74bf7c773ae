// bitsandbytes-style blockwise absmax quantization of a weight matrix: NF4, FP4 (4-bit codes) and
// the dynamic-exponent 8-bit map (8-bit codes), with optional QLoRA double quantization of the
// absmax array. One code path; the format is a parameter. Spec: QUANT_SPEC.md 2 and 3.
//
// Blocks run along each row; a row is zero-padded to padded_cols = round_up(cols, block), and the
// padding is quantized like any zero (code of 0.0: NF4 7, FP4 0, DYN8 127), so it dequantizes to 0.
// code = nearest table entry to x * (1 / absmax) (bitsandbytes multiplies by the reciprocal);
// value = TABLE[code] * absmax. An all-zero block has absmax 0 and dequantizes to zeros.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/llama_weights.hpp"
#include "engine/quant_scheme.hpp"

namespace quill {

// The absmax array compressed with the signed dynamic map (QLoRA double quantization).
struct DoubleQuantAbsmax {
  float offset = 0.0f;         // mean of the original absmax values (computed in double, rounded once)
  std::vector<uint8_t> codes;  // [n] DYN8 signed codes of (absmax - offset), same order as the absmax array
  std::vector<float> absmax2;  // [ceil(n / 256)] fp32 absmax of each group of 256 (the tail group has its own)
};
// absmax[i] = DYN8[codes[i]] * absmax2[i / 256] + offset (float arithmetic in that order).
DoubleQuantAbsmax double_quantize_absmax(std::span<const float> absmax);
std::vector<float> dequantize_absmax(const DoubleQuantAbsmax& dq);

struct BlockwiseMatrix {
  QuantScheme scheme = QuantScheme::NF4;  // NF4, FP4 or Dyn8
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t padded_cols = 0;  // cols rounded up to a multiple of block
  int block = 0;
  // nf4/fp4: [rows, padded_cols / 2], element 2i in the HIGH nibble: byte = (q[2i] << 4) | q[2i+1]
  // dyn8:    [rows, padded_cols], one code per element
  std::vector<uint8_t> codes;
  std::vector<float> absmax;  // [rows, padded_cols / block] fp32; EMPTY when double_quant
  bool double_quant = false;
  DoubleQuantAbsmax dq;  // over the [rows, padded_cols / block] absmax array, when double_quant

  int64_t blocks_per_row() const { return padded_cols / block; }
  int64_t code_bytes_per_row() const { return scheme == QuantScheme::Dyn8 ? padded_cols : padded_cols / 2; }
};

// scheme must be NF4, FP4 or Dyn8; params.block (0 = default 64 / 64 / 256) and params.double_quant.
BlockwiseMatrix quantize_blockwise(const MatrixF32& w, QuantScheme scheme, const QuantParams& params = {});
// The fp32 absmax of every block, [rows, padded_cols / block]: absmax itself, or double-dequantized.
std::vector<float> block_absmax(const BlockwiseMatrix& q);
// The 16 (nf4/fp4) or 256 (dyn8) values a code stands for, by code.
std::span<const float> blockwise_table(QuantScheme scheme);
// fp32 [rows, cols] (padding dropped).
MatrixF32 dequantize(const BlockwiseMatrix& q);
// Storage bits per real weight: codes + absmax (or dq codes + absmax2 + offset), padding included.
double bits_per_weight(const BlockwiseMatrix& q);

}  // namespace quill
