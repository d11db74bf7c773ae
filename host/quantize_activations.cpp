// Launcher for kernels/quantize.cl (see quantize_activations.hpp).
#include "host/quantize_activations.hpp"

#include <fmt/format.h>

#include <cmath>

#include "engine/error.hpp"
#include "host/device.hpp"

namespace quill::host {
namespace {
constexpr int kWorkGroup = 256;
constexpr int kFindOutliersWg = 256, kFindOutliersCols = 32;  // quantize.cl FO_WG, FO_COLS

std::shared_ptr<const Program> build(Device& device, int input_kind) {
  // Correctly rounded division: the codes must match the CPU's round_half_even(a * 127 / s) bit for bit.
  return device.program("quantize.cl",
                        fmt::format("-DQWG_SIZE={} -DINLINE_TOK={} -DFO_WG={} -DINPUT_KIND={} "
                                    "-cl-fp32-correctly-rounded-divide-sqrt",
                                    kWorkGroup, QuantizeActivations::kInlineTokens, kFindOutliersWg, input_kind));
}
}  // namespace

void check_act_scale(const Int8ActScale& scale) {
  if (!(scale.static_amax >= 0.0f) || !std::isfinite(scale.static_amax) ||
      (scale.is_static() && scale.threshold > 0.0f))
    fail(ErrorKind::kInternal, "int8 activations: static amax {} (must be finite, >= 0, and without a threshold {})",
         scale.static_amax, scale.threshold);
}

QuantizeActivations::QuantizeActivations(Device& device) : device_(device) {
  auto program = build(device, 0);
  find_outliers_ = Kernel(program, "quantize_find_outliers");
  rows_[0] = Kernel(program, "quantize_rows");
}

Kernel& QuantizeActivations::rows_kernel(int input_kind) {
  if (input_kind < 0 || input_kind > 2) fail(ErrorKind::kInternal, "quantize_activations: input kind {}", input_kind);
  Kernel& k = rows_[input_kind];
  if (!k.valid()) k = Kernel(build(device_, input_kind), "quantize_rows");
  return k;
}

void QuantizeActivations::run(const Buffer& x, int n_tok, int cols, int kpad, const Int8ActScale& scale,
                              const Int8ActivationBuffers& out, Event* event, const QuantizeInput& input) {
  check_act_scale(scale);
  if (n_tok <= 0 || cols <= 0 || kpad < cols || kpad % 16 != 0)
    fail(ErrorKind::kInternal, "quantize_activations: bad shape n_tok={} cols={} kpad={}", n_tok, cols, kpad);
  if (input.kind != 0 && scale.splits_outliers())
    fail(ErrorKind::kInternal, "quantize_activations: an input transform with an outlier split (threshold {})",
         scale.threshold);
  if (input.kind == 1 && (!input.norm_w || input.norm_w->bytes() < size_t(cols) * 4))
    fail(ErrorKind::kInternal, "quantize_activations: RMSNorm weight missing or too small");
  const size_t x_cols = size_t(cols) * (input.kind == 2 ? 2 : 1);
  if (x.bytes() < size_t(n_tok) * x_cols * 4 || out.codes->bytes() < size_t(n_tok) * kpad ||
      out.sca->bytes() < size_t(n_tok) * 4 || out.flags->bytes() < size_t(cols) * 4 ||
      out.olist->bytes() < size_t(cols) * 4 || out.ocount->bytes() < 4)
    fail(ErrorKind::kInternal, "quantize_activations: buffers too small for n_tok={} cols={} kpad={}", n_tok, cols,
         kpad);
  const int use_flags = launches(n_tok, scale) == 2 ? 1 : 0;
  if (use_flags) {
    find_outliers_.args(x, int32_t(n_tok), int32_t(cols), scale.threshold, *out.flags);
    const size_t groups = (size_t(cols) + kFindOutliersCols - 1) / kFindOutliersCols;
    find_outliers_.launch(device_, Range(groups * kFindOutliersWg), Range(kFindOutliersWg));
  }
  Kernel& rows = rows_kernel(input.kind);
  rows.args(x, int32_t(n_tok), int32_t(cols), int32_t(kpad), scale.threshold, scale.static_amax, *out.flags,
            int32_t(use_flags), *out.codes, *out.sca, *out.olist, *out.ocount,
            input.norm_w && !input.norm_w->empty() ? *input.norm_w : *out.sca, input.eps);
  rows.launch(device_, Range(size_t(n_tok) * kWorkGroup), Range(kWorkGroup), event);
}

}  // namespace quill::host
