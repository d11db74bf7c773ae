// make_linear: uploads a quantized matrix through its family's Linear (linear_factories.hpp).
#include "engine/linear.hpp"

#include <type_traits>

#include "engine/error.hpp"
#include "engine/linear_factories.hpp"

namespace quill {

void Linear::forward(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace& ws,
                     const InputTransform& transform) {
  if (transform.kind == InputTransform::Kind::kNone || fuses(transform, n_tok)) {
    run(x, y, n_tok, accumulate, ws, transform);
    return;
  }
  // Unfused: transform into session scratch ([n_tok, cols]) with its own kernel, then multiply.
  host::Buffer& transformed = ws.get(nullptr, Workspace::kTransformedInputSlot, size_t(n_tok) * cols_ * sizeof(float));
  if (transform.kind == InputTransform::Kind::kRmsNorm) {
    ws.kernels().rmsnorm(x, *transform.norm_weight, transformed, n_tok, int(cols_), transform.eps);
  } else {
    ws.kernels().swiglu(x, transformed, n_tok, int(cols_));
  }
  run(transformed, y, n_tok, accumulate, ws, {});
}

void Linear::forward_swiglu(const host::Buffer& x, host::Buffer& h, int n_tok, Workspace& ws,
                            const InputTransform& transform) {
  if (rows_ % 2 != 0) fail(ErrorKind::kInternal, "SwiGLU output needs gate and up rows: {} rows", rows_);
  if (fuses_swiglu_output(n_tok) && (transform.kind == InputTransform::Kind::kNone || fuses(transform, n_tok))) {
    run_swiglu_output(x, h, n_tok, ws, transform);
    return;
  }
  host::Buffer& gate_up = ws.get(nullptr, Workspace::kSwigluOutputSlot, size_t(n_tok) * rows_ * sizeof(float));
  forward(x, gate_up, n_tok, false, ws, transform);  // [n_tok, rows]
  ws.kernels().swiglu(gate_up, h, n_tok, int(rows_ / 2));
}

void Linear::run_swiglu_output(const host::Buffer&, host::Buffer&, int, Workspace&, const InputTransform&) {
  fail(ErrorKind::kInternal, "{} linear: no fused SwiGLU output", scheme_name(scheme_));
}

std::unique_ptr<Linear> make_linear(host::Device& device, const QuantizedMatrix& q, QuantScheme scheme,
                                    const QuantParams& params) {
  return std::visit(
      [&](const auto& m) -> std::unique_ptr<Linear> {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, MatrixF32> || std::is_same_v<M, HalfMatrix>) {
          return make_linear_float(device, m);
        } else if constexpr (std::is_same_v<M, BlockwiseMatrix>) {
          return make_linear_blockwise(device, m);
        } else if constexpr (std::is_same_v<M, GgmlBlockMatrix>) {
          return make_linear_ggml(device, m);
        } else if constexpr (std::is_same_v<M, KMeansMatrix>) {
          return make_linear_kmeans(device, m);
        } else {
          static_assert(std::is_same_v<M, Int8Matrix>);
          return make_linear_int8(device, m, scheme, params);
        }
      },
      q);
}

}  // namespace quill
