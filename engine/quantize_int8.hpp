// Vector-wise int8 and LLM.int8() (QUANT_SPEC.md 1): the weight side (quantized once at load), the
// activation side (per call, with the outlier-column split; or with a static calibrated scale, §6), and
// the CPU reference of the whole mixed-precision matmul that the int8 kernels are tested against.
//
// Decision (the paper's form, and bitsandbytes'): weights are quantized WHOLE — SCB[k] is the absmax
// over every column of row k, outlier columns included — and only the activations are split. The
// fp16 copies of the calibrated outlier columns are extra, so an outlier column that calibration did
// not predict still has an int8 fallback (CB[k,j] * SCB[k] / 127) and no column needs two scales.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/llama_weights.hpp"

namespace quill {

struct Int8Matrix {
  int64_t rows = 0;                   // out features
  int64_t cols = 0;                   // in features (no padding)
  std::vector<int8_t> cb;             // [rows, cols] round_half_even(W * 127 / SCB[row]), in [-127, 127]
  std::vector<float> scb;             // [rows] max_j |W[row, j]| (fp32); 0 for an all-zero row (its codes are 0)
  std::vector<int32_t> outlier_dims;  // [n_outliers] sorted, distinct column indices kept in fp16
  std::vector<uint16_t> w16;          // [rows, n_outliers] fp16 bits: w16[k * n + o] = fp16(W[k, outlier_dims[o]])
};

// Vector-wise int8 of every row; outlier_dims (any order, duplicates removed, each in [0, cols))
// names the columns whose fp16 copies are kept (empty for plain int8).
Int8Matrix quantize_llm_int8(const MatrixF32& w, std::span<const int32_t> outlier_dims = {});

// Per-call activation quantization, A [tokens, cols], threshold t (<= 0 = no outlier split).
struct Int8Activations {
  int64_t tokens = 0;
  int64_t cols = 0;
  std::vector<int8_t> ca;         // [tokens, cols] round_half_even(A * 127 / SCA[row]); outlier columns are 0
  std::vector<float> sca;         // [tokens] max |A[i, j]| over the non-outlier columns j; 0 -> that row's CA is 0
  std::vector<int32_t> outliers;  // O = { j : any_i |A[i, j]| >= t }, ascending
};
Int8Activations quantize_activations_int8(const MatrixF32& a, float threshold);
// Static activation scale (calibration, QUANT_SPEC.md 6): one fixed per-tensor scale s = amax / 127 for
// every token, no outlier split: SCA[i] = amax and CA[i, j] = clamp(round_half_even(A[i, j] * 127 / amax),
// -127, 127) (the per-token expression with SCA fixed; = A / s), so values beyond +-amax saturate.
// amax: finite, > 0 (kInvalidArgument otherwise).
Int8Activations quantize_activations_int8_static(const MatrixF32& a, float amax);

// The matmul of A and its quantization x (either function above):
// out[i, k] = C32[i, k] * SCA[i] * SCB[k] / 16129 + bias[k] + sum_{j in x.outliers} A[i, j] * W16[k, j]
// with C32 = CA . CB^T in int32; W16[k, j] is the kept fp16 column when j is in w.outlier_dims, else
// CB[k, j] * SCB[k] / 127. Returns [tokens, w.rows]; bias empty or [w.rows].
MatrixF32 matmul_int8_reference(const MatrixF32& a, const Int8Activations& x, const Int8Matrix& w,
                                std::span<const float> bias = {});
// matmul_int8_reference(a, quantize_activations_int8(a, threshold), w, bias).
MatrixF32 matmul_llm_int8_reference(const MatrixF32& a, const Int8Matrix& w, float threshold,
                                    std::span<const float> bias = {});

// fp32 [rows, cols] = CB * SCB / 127, with the kept fp16 columns substituted.
MatrixF32 dequantize(const Int8Matrix& q);
// Storage bits per weight: 8 + 32 / cols for SCB, plus the fp16 columns.
double bits_per_weight(const Int8Matrix& q);

}  // namespace quill
