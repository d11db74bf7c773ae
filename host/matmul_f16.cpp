// Launcher for kernels/matmul_f16.cl (see matmul_f16.hpp).
#include "host/matmul_f16.hpp"

#include "engine/error.hpp"
#include "host/device.hpp"

namespace quill::host {
MatmulF16::MatmulF16(Device& device, bool weight_f32)
    : device_(device),
      weight_f32_(weight_f32),
      weight_bytes_(weight_f32 ? 4 : 2),
      tuning_(GemvTuning::current()),
      dummy_(device, 1024) {
  kernel(1, 0);
}

Kernel& MatmulF16::kernel(int tok_tile, int input_kind) {
  auto it = kernels_.find({tok_tile, input_kind});
  if (it == kernels_.end())
    it = kernels_
             .emplace(std::pair(tok_tile, input_kind),
                      Kernel(device_.program("matmul_f16.cl",
                                             fmt::format("-DWG_SIZE={} -DROWS_PER_WARP={} -DTOK_TILE={} "
                                                         "-DWEIGHT_F32={} -DINPUT_KIND={}",
                                                         tuning_.work_group, tuning_.rows_per_warp, tok_tile,
                                                         weight_f32_ ? 1 : 0, input_kind)),
                             "matmul_f16"))
             .first;
  return it->second;
}

void MatmulF16::run(const Buffer& w, const Buffer& x, Buffer& y, int rows, int cols, int w_stride, int n_tok,
                    bool accumulate, Event* event, const FusedInput& input, const L2Prefetch& prefetch) {
  if (rows <= 0 || cols <= 0 || n_tok <= 0 || w_stride < cols)
    fail(ErrorKind::kInternal, "matmul_f16: bad shape rows={} cols={} stride={} n_tok={}", rows, cols, w_stride, n_tok);
  const size_t x_cols = size_t(cols) * (input.kind == FusedInput::kSwiGlu ? 2 : 1);
  if (w.bytes() < size_t(rows) * w_stride * weight_bytes_ || x.bytes() < size_t(n_tok) * x_cols * 4 ||
      y.bytes() < size_t(n_tok) * rows * 4)
    fail(ErrorKind::kInternal, "matmul_f16: buffers too small for rows={} cols={} n_tok={}", rows, cols, n_tok);
  if (input.kind == FusedInput::kRmsNorm && (!input.norm_w || input.norm_w->bytes() < size_t(cols) * 4))
    fail(ErrorKind::kInternal, "matmul_f16: RMSNorm weight missing or too small");
  const int tile = n_tok == 1 ? 1 : kLutGemmTile;
  Kernel& k = kernel(tile, input.kind);
  k.args(w, x, y, int32_t(rows), int32_t(cols), int32_t(w_stride), int32_t(n_tok), int32_t(accumulate),
         input.norm_w && !input.norm_w->empty() ? *input.norm_w : dummy_, input.eps, prefetch.arg_buffer(dummy_),
         prefetch.arg_bytes());
  const int rows_per_wg = tuning_.rows_per_warp;  // the work-group's warps split the columns
  const size_t groups = (size_t(rows) + rows_per_wg - 1) / rows_per_wg;
  const size_t tok_groups = (size_t(n_tok) + tile - 1) / tile;
  k.launch(device_, Range(groups * tuning_.work_group, tok_groups), Range(tuning_.work_group, 1), event);
}

}  // namespace quill::host
