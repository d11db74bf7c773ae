// make_linear: uploads a quantized matrix through its family's Linear (linear_factories.hpp).
#include "engine/linear.hpp"

#include <type_traits>

#include "engine/linear_factories.hpp"

namespace quill {

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
