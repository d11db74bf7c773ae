// make_linear: uploads a quantized matrix through its family's Linear (linear_factories.hpp).
#include "engine/linear.hpp"

#include <type_traits>

#include "engine/error.hpp"
#include "engine/linear_factories.hpp"

namespace quill {

std::unique_ptr<Linear> make_linear(host::Device& device, const QuantizedMatrix& q, QuantScheme scheme,
                                    const QuantParams& params) {
  return std::visit(
      [&](const auto& m) -> std::unique_ptr<Linear> {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, MatrixF32> || std::is_same_v<M, HalfMatrix>) {
          return make_linear_float(device, m);
        } else {
          fail(ErrorKind::kInvalidArgument, "scheme {} has no GPU kernel yet", scheme_name(scheme));
        }
      },
      q);
}

}  // namespace quill
