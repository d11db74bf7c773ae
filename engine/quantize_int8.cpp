// Vector-wise int8 / LLM.int8(): weights, activations and the reference matmul (see quantize_int8.hpp).
#include "engine/quantize_int8.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/quantize_common.hpp"

namespace quill {
namespace {

constexpr float kInt8Max = 127.0f;
constexpr float kScaleSquare = 16129.0f;  // 127 * 127, exact

// clamp(round_half_even(x * 127 / scale), -127, 127) over n values (all zeros when scale == 0); the clamp
// only acts for a static scale (|x| <= scale otherwise). nearbyint rounds to nearest even in the default
// rounding mode.
void quantize_vector(const float* x, int64_t n, float scale, int8_t* out) {
  for (int64_t j = 0; j < n; ++j)
    out[j] =
        scale != 0.0f ? int8_t(std::clamp(std::nearbyint(x[j] * kInt8Max / scale), -kInt8Max, kInt8Max)) : int8_t{0};
}

// Position of column j in the sorted outlier_dims, or -1.
int64_t outlier_slot(const std::vector<int32_t>& dims, int64_t j) {
  const auto it = std::lower_bound(dims.begin(), dims.end(), int32_t(j));
  return it != dims.end() && *it == j ? it - dims.begin() : -1;
}

// W16[k, j]: the kept fp16 column when there is one, else the int8 fallback.
float weight_value(const Int8Matrix& w, int64_t k, int64_t j) {
  const int64_t slot = outlier_slot(w.outlier_dims, j);
  if (slot >= 0) return half_to_float(w.w16[size_t(k * int64_t(w.outlier_dims.size()) + slot)]);
  return float(w.cb[size_t(k * w.cols + j)]) * w.scb[size_t(k)] / kInt8Max;
}

}  // namespace

Int8Matrix quantize_llm_int8(const MatrixF32& w, std::span<const int32_t> outlier_dims) {
  check_matrix(w, "quantize_llm_int8");
  Int8Matrix q;
  q.rows = w.rows;
  q.cols = w.cols;
  q.outlier_dims.assign(outlier_dims.begin(), outlier_dims.end());
  std::sort(q.outlier_dims.begin(), q.outlier_dims.end());
  q.outlier_dims.erase(std::unique(q.outlier_dims.begin(), q.outlier_dims.end()), q.outlier_dims.end());
  for (int32_t j : q.outlier_dims) {
    if (j < 0 || j >= w.cols)
      fail(ErrorKind::kInvalidArgument, "quantize_llm_int8: outlier dim {} outside [0, {})", j, w.cols);
  }
  q.cb.resize(size_t(w.rows * w.cols));
  q.scb.resize(size_t(w.rows));
  const int64_t n_out = int64_t(q.outlier_dims.size());
  q.w16.resize(size_t(w.rows * n_out));
  for (int64_t k = 0; k < w.rows; ++k) {
    float amax = 0.0f;
    for (int64_t j = 0; j < w.cols; ++j) amax = std::max(amax, std::fabs(w.row(k)[j]));
    q.scb[size_t(k)] = amax;
    quantize_vector(w.row(k), w.cols, amax, q.cb.data() + k * w.cols);
    for (int64_t o = 0; o < n_out; ++o) q.w16[size_t(k * n_out + o)] = float_to_half(w.row(k)[q.outlier_dims[o]]);
  }
  return q;
}

Int8Activations quantize_activations_int8(const MatrixF32& a, float threshold) {
  check_matrix(a, "quantize_activations_int8");
  Int8Activations q;
  q.tokens = a.rows;
  q.cols = a.cols;
  std::vector<bool> is_outlier(size_t(a.cols), false);
  if (threshold > 0.0f) {
    for (int64_t i = 0; i < a.rows; ++i) {
      for (int64_t j = 0; j < a.cols; ++j) {
        if (std::fabs(a.row(i)[j]) >= threshold) is_outlier[size_t(j)] = true;
      }
    }
  }
  for (int64_t j = 0; j < a.cols; ++j) {
    if (is_outlier[size_t(j)]) q.outliers.push_back(int32_t(j));
  }
  q.ca.resize(size_t(a.rows * a.cols));
  q.sca.resize(size_t(a.rows));
  std::vector<float> row(size_t(a.cols));
  for (int64_t i = 0; i < a.rows; ++i) {
    float amax = 0.0f;
    for (int64_t j = 0; j < a.cols; ++j) {
      row[size_t(j)] = is_outlier[size_t(j)] ? 0.0f : a.row(i)[j];  // outlier columns zeroed before quantizing
      amax = std::max(amax, std::fabs(row[size_t(j)]));
    }
    q.sca[size_t(i)] = amax;
    quantize_vector(row.data(), a.cols, amax, q.ca.data() + i * a.cols);
  }
  return q;
}

Int8Activations quantize_activations_int8_static(const MatrixF32& a, float amax) {
  check_matrix(a, "quantize_activations_int8_static");
  if (!(amax > 0.0f) || !std::isfinite(amax))
    fail(ErrorKind::kInvalidArgument, "static int8 activation scale: amax {} is not finite and > 0", amax);
  Int8Activations q;
  q.tokens = a.rows;
  q.cols = a.cols;
  q.ca.resize(size_t(a.rows * a.cols));
  q.sca.assign(size_t(a.rows), amax);
  for (int64_t i = 0; i < a.rows; ++i) quantize_vector(a.row(i), a.cols, amax, q.ca.data() + i * a.cols);
  return q;
}

MatrixF32 matmul_llm_int8_reference(const MatrixF32& a, const Int8Matrix& w, float threshold,
                                    std::span<const float> bias) {
  return matmul_int8_reference(a, quantize_activations_int8(a, threshold), w, bias);
}

MatrixF32 matmul_int8_reference(const MatrixF32& a, const Int8Activations& x, const Int8Matrix& w,
                                std::span<const float> bias) {
  if (a.cols != w.cols)
    fail(ErrorKind::kInvalidArgument, "llm-int8 matmul: A has {} columns, W has {}", a.cols, w.cols);
  if (x.tokens != a.rows || x.cols != a.cols)
    fail(ErrorKind::kInvalidArgument, "llm-int8 matmul: activations quantized as {}x{} for A {}x{}", x.tokens, x.cols,
         a.rows, a.cols);
  if (!bias.empty() && int64_t(bias.size()) != w.rows) {
    fail(ErrorKind::kInvalidArgument, "llm-int8 matmul: bias has {} values for {} outputs", bias.size(), w.rows);
  }
  MatrixF32 out{a.rows, w.rows, std::vector<float>(size_t(a.rows * w.rows))};
  for (int64_t i = 0; i < a.rows; ++i) {
    const int8_t* ca = x.ca.data() + i * a.cols;
    for (int64_t k = 0; k < w.rows; ++k) {
      const int8_t* cb = w.cb.data() + k * w.cols;
      int32_t c32 = 0;
      for (int64_t j = 0; j < w.cols; ++j) c32 += int32_t(ca[j]) * int32_t(cb[j]);
      float y = float(c32) * x.sca[size_t(i)] * w.scb[size_t(k)] / kScaleSquare;
      if (!bias.empty()) y += bias[size_t(k)];
      for (int32_t j : x.outliers) y += a.row(i)[j] * weight_value(w, k, j);
      out.row(i)[k] = y;
    }
  }
  return out;
}

MatrixF32 dequantize(const Int8Matrix& q) {
  MatrixF32 out{q.rows, q.cols, std::vector<float>(size_t(q.rows * q.cols))};
  for (int64_t k = 0; k < q.rows; ++k) {
    for (int64_t j = 0; j < q.cols; ++j) out.row(k)[j] = weight_value(q, k, j);
  }
  return out;
}

double bits_per_weight(const Int8Matrix& q) {
  if (q.rows * q.cols == 0) return 0.0;
  return (8.0 * double(q.cb.size()) + 32.0 * double(q.scb.size()) + 16.0 * double(q.w16.size()) +
          32.0 * double(q.outlier_dims.size())) /
         double(q.rows * q.cols);
}

}  // namespace quill
