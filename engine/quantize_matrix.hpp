// One entry point over every scheme: quantize a weight matrix [rows, cols] by QuantScheme into the
// family's struct (held in a variant), dequantize any of them back to fp32 (the reference the GPU
// kernels are tested against), and report the storage bits per weight.
#pragma once

#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "engine/llama_weights.hpp"
#include "engine/quant_scheme.hpp"
#include "engine/quantize_blockwise.hpp"
#include "engine/quantize_ggml.hpp"
#include "engine/quantize_int8.hpp"
#include "engine/quantize_kmeans.hpp"

namespace quill {

struct HalfMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint16_t> data;  // [rows, cols] fp16 bits (round to nearest even)
};
HalfMatrix quantize_f16(const MatrixF32& w);
MatrixF32 dequantize(const HalfMatrix& q);

// F32 -> MatrixF32 (a checked copy); F16 -> HalfMatrix; Q8_0, Int4 -> GgmlBlockMatrix;
// Int8, LlmInt8 -> Int8Matrix; Dyn8, NF4, FP4 -> BlockwiseMatrix; KMeans4 -> KMeansMatrix.
using QuantizedMatrix = std::variant<MatrixF32, HalfMatrix, GgmlBlockMatrix, Int8Matrix, BlockwiseMatrix, KMeansMatrix>;

// Validates params for the scheme. llm_int8_outlier_dims: the calibrated outlier columns whose fp16
// copies LlmInt8 keeps (ignored by every other scheme; Int8 keeps none).
QuantizedMatrix quantize(const MatrixF32& w, QuantScheme scheme, const QuantParams& params = {},
                         std::span<const int32_t> llm_int8_outlier_dims = {});
MatrixF32 dequantize(const QuantizedMatrix& q);
// Storage bits per real weight, everything the scheme stores counted (32 for F32, 16 for F16).
double bits_per_weight(const QuantizedMatrix& q);

}  // namespace quill
