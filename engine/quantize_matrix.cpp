// Scheme dispatch over the quantizer families (see quantize_matrix.hpp).
#include "engine/quantize_matrix.hpp"

#include <type_traits>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/quantize_common.hpp"

namespace quill {

HalfMatrix quantize_f16(const MatrixF32& w) {
  check_matrix(w, "quantize_f16");
  HalfMatrix q{w.rows, w.cols, std::vector<uint16_t>(w.data.size())};
  for (size_t i = 0; i < w.data.size(); ++i) q.data[i] = float_to_half(w.data[i]);
  return q;
}

MatrixF32 dequantize(const HalfMatrix& q) {
  MatrixF32 out{q.rows, q.cols, std::vector<float>(q.data.size())};
  for (size_t i = 0; i < q.data.size(); ++i) out.data[i] = half_to_float(q.data[i]);
  return out;
}

QuantizedMatrix quantize(const MatrixF32& w, QuantScheme scheme, const QuantParams& params,
                         std::span<const int32_t> llm_int8_outlier_dims) {
  validate_quant_params(scheme, params);
  switch (scheme) {
    case QuantScheme::F32:
      check_matrix(w, "quantize f32");
      return w;
    case QuantScheme::F16:
      return quantize_f16(w);
    case QuantScheme::Q8_0:
    case QuantScheme::Int4:
      return quantize_ggml_blocks(w, scheme);
    case QuantScheme::Int8:
      return quantize_llm_int8(w);
    case QuantScheme::LlmInt8:
      return quantize_llm_int8(w, llm_int8_outlier_dims);
    case QuantScheme::Dyn8:
    case QuantScheme::NF4:
    case QuantScheme::FP4:
      return quantize_blockwise(w, scheme, params);
    case QuantScheme::KMeans4:
      return quantize_kmeans(w, params.kmeans_per_row);
  }
  fail(ErrorKind::kInternal, "quantize: unknown QuantScheme value {}", static_cast<int>(scheme));
}

MatrixF32 dequantize(const QuantizedMatrix& q) {
  return std::visit(
      [](const auto& m) -> MatrixF32 {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, MatrixF32>) {
          return m;
        } else {
          return dequantize(m);
        }
      },
      q);
}

double bits_per_weight(const QuantizedMatrix& q) {
  return std::visit(
      [](const auto& m) -> double {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, MatrixF32>) {
          return 32.0;
        } else if constexpr (std::is_same_v<T, HalfMatrix>) {
          return 16.0;
        } else {
          return bits_per_weight(m);
        }
      },
      q);
}

}  // namespace quill
