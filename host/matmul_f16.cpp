// Launcher for kernels/matmul_f16.cl (see matmul_f16.hpp).
#include "host/matmul_f16.hpp"

#include "engine/error.hpp"
#include "host/device.hpp"

namespace quill::host {
namespace {
constexpr int kWorkGroup = 128;
constexpr int kLanes = 32;
constexpr int kTokTile = 4;
}  // namespace

MatmulF16::MatmulF16(Device& device, bool weight_f32)
    : device_(device),
      weight_bytes_(weight_f32 ? 4 : 2),
      kernel_(device.program("matmul_f16.cl", fmt::format("-DWG_SIZE={} -DTOK_TILE={} -DWEIGHT_F32={}", kWorkGroup,
                                                          kTokTile, weight_f32 ? 1 : 0)),
              "matmul_f16") {}

void MatmulF16::run(const Buffer& w, const Buffer& x, Buffer& y, int rows, int cols, int w_stride, int n_tok,
                    bool accumulate, Event* event) {
  if (rows <= 0 || cols <= 0 || n_tok <= 0 || w_stride < cols)
    fail(ErrorKind::kInternal, "matmul_f16: bad shape rows={} cols={} stride={} n_tok={}", rows, cols, w_stride, n_tok);
  if (w.bytes() < size_t(rows) * w_stride * weight_bytes_ || x.bytes() < size_t(n_tok) * cols * 4 ||
      y.bytes() < size_t(n_tok) * rows * 4)
    fail(ErrorKind::kInternal, "matmul_f16: buffers too small for rows={} cols={} n_tok={}", rows, cols, n_tok);
  kernel_.args(w, x, y, int32_t(rows), int32_t(cols), int32_t(w_stride), int32_t(n_tok), int32_t(accumulate));
  const size_t groups = (size_t(rows) + kWorkGroup / kLanes - 1) / (kWorkGroup / kLanes);
  const size_t tok_groups = (size_t(n_tok) + kTokTile - 1) / kTokTile;
  kernel_.launch(device_, Range(groups * kWorkGroup, tok_groups), Range(kWorkGroup, 1), event);
}

}  // namespace quill::host
