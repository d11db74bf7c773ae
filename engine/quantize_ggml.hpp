// GGUF block formats quill writes: Q4_0 ("int4") and Q8_0, bit-exact with ggml's reference
// quantize_row_q4_0_ref / quantize_row_q8_0_ref, in two layouts:
//  - GGUF blocks (to write or read a GGUF file): Q4_0 = {half d; uint8 qs[16]} with element j in the
//    LOW nibble of qs[j] and element j+16 in the HIGH nibble; Q8_0 = {half d; int8 qs[32]};
//  - structure of arrays (what the GPU reads): fp16 d apart from the codes, and the Q4_0 codes
//    re-packed in quill's 4-bit order (element 2i in the HIGH nibble, as NF4/FP4/k-means).
// Spec: QUANT_SPEC.md 5. Quantizer (ggml): Q4_0 takes the signed value of largest magnitude `max`
// (the first one on a tie), d = max / -8, q = min(15, (int8)(x * (1/d) + 8.5)) truncating, so the
// largest-magnitude element gets code 0; Q8_0: d = amax / 127, q = roundf(x * (1/d)) (half away
// from zero). Codes are computed with the fp32 d, and d is stored as fp16 (round to nearest even).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/ggml_types.hpp"
#include "engine/llama_weights.hpp"
#include "engine/quant_scheme.hpp"

namespace quill {

struct GgmlBlockMatrix {
  QuantScheme scheme = QuantScheme::Int4;  // Int4 (Q4_0) or Q8_0
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t padded_cols = 0;  // cols rounded up to a multiple of 32; the padding is quantized as zeros
  std::vector<uint16_t> d;  // [rows, padded_cols / 32] fp16 bits (IEEE binary16)
  // int4: [rows, padded_cols / 2], q in 0..15, value (q - 8) * d, element 2i in the HIGH nibble
  // q8_0: [rows, padded_cols], int8 codes stored as two's-complement bytes, value q * d
  std::vector<uint8_t> codes;

  static constexpr int kBlock = 32;
  int64_t blocks_per_row() const { return padded_cols / kBlock; }
  int64_t code_bytes_per_row() const { return scheme == QuantScheme::Int4 ? padded_cols / 2 : padded_cols; }
};

// GgmlType::Q4_0 for Int4, GgmlType::Q8_0 for Q8_0; throws for any other scheme.
GgmlType ggml_type_of(QuantScheme scheme);

// scheme Int4 or Q8_0; rows of any length (zero-padded to a multiple of 32).
GgmlBlockMatrix quantize_ggml_blocks(const MatrixF32& w, QuantScheme scheme);
// GGUF bytes, [rows, padded_cols / 32] blocks of 18 (Q4_0) or 34 (Q8_0) bytes, row-major.
std::vector<uint8_t> to_gguf_blocks(const GgmlBlockMatrix& q);
// From GGUF bytes of a Q4_0 or Q8_0 tensor [rows, cols], cols a multiple of 32.
GgmlBlockMatrix from_gguf_blocks(GgmlType type, std::span<const uint8_t> bytes, int64_t rows, int64_t cols);
// dst = the GGUF blocks of src[0..n); type Q4_0 or Q8_0, n a multiple of 32.
void quantize_ggml_row(GgmlType type, const float* src, void* dst, int64_t n);
// fp32 [rows, cols], through dequantize_ggml_row (so the SoA and GGUF forms cannot disagree).
MatrixF32 dequantize(const GgmlBlockMatrix& q);
// Storage bits per real weight (4.5 or 8.5 when cols is a multiple of 32).
double bits_per_weight(const GgmlBlockMatrix& q);

}  // namespace quill
