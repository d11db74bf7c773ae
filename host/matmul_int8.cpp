// Launcher for kernels/matmul_int8.cl (see matmul_int8.hpp).
#include "host/matmul_int8.hpp"

#include <fmt/format.h>

#include "engine/error.hpp"
#include "host/device.hpp"

namespace quill::host {
namespace {
constexpr int kWorkGroup = 128;  // matmul_int8_rows: 4 rows x 32 lanes
constexpr int kLanes = 32;
constexpr int kTokTile = 4;
// matmul_int8_mma: 2 x 4 warps, each 2 m16 tiles (tokens) x 4 n8 tiles (rows): BM 64, BN 128.
constexpr int kWarpsM = 2, kWarpsN = 4, kMt = 2, kNt = 4;
constexpr int kBm = kWarpsM * kMt * 16, kBn = kWarpsN * kNt * 8, kMmaThreads = kWarpsM * kWarpsN * 32;
static_assert(MatmulInt8::kRowAlign % kBn == 0);
}  // namespace

MatmulInt8::MatmulInt8(Device& device) : device_(device) {
  has_mma_ = device.info().inline_ptx && device.info().sm_version >= 80;
  auto program = device.program(
      "matmul_int8.cl", fmt::format("-DWG_SIZE={} -DTOK_TILE={} -DWARPS_M={} -DWARPS_N={} -DMT={} -DNT={} -DBK={}",
                                    kWorkGroup, kTokTile, kWarpsM, kWarpsN, kMt, kNt, kColAlign));
  rows_ = Kernel(program, "matmul_int8_rows");
  if (has_mma_) mma_ = Kernel(program, "matmul_int8_mma");
}

void MatmulInt8::run(const Int8WeightBuffers& w, const Buffer& x, const Int8ActivationBuffers& a, Buffer& y, int n_tok,
                     bool accumulate, Event* event) {
  if (w.rows <= 0 || w.cols <= 0 || n_tok <= 0 || w.rows_pad < w.rows || w.rows_pad % kRowAlign != 0 ||
      w.kpad < w.cols || w.kpad % kColAlign != 0 || w.n16 < 0)
    fail(ErrorKind::kInternal, "matmul_int8: bad shape rows={} cols={} rows_pad={} kpad={} n_tok={}", w.rows, w.cols,
         w.rows_pad, w.kpad, n_tok);
  if (w.cb->bytes() < size_t(w.rows_pad) * w.kpad || w.scb->bytes() < size_t(w.rows_pad) * 4 ||
      w.slot->bytes() < size_t(w.cols) * 4 || w.w16->bytes() < size_t(w.rows_pad) * w.n16 * 2 ||
      x.bytes() < size_t(n_tok) * w.cols * 4 || a.codes->bytes() < size_t(n_tok) * w.kpad ||
      a.sca->bytes() < size_t(n_tok) * 4 || a.olist->bytes() < size_t(w.cols) * 4 || a.ocount->bytes() < 4 ||
      y.bytes() < size_t(n_tok) * w.rows * 4)
    fail(ErrorKind::kInternal, "matmul_int8: buffers too small for rows={} cols={} n_tok={}", w.rows, w.cols, n_tok);
  Kernel& k = uses_mma(n_tok) ? mma_ : rows_;
  k.args(*w.cb, *w.scb, *w.slot, *w.w16, int32_t(w.n16), *a.codes, *a.sca, x, *a.olist, *a.ocount, y, int32_t(w.rows),
         int32_t(w.cols), int32_t(w.kpad), int32_t(n_tok), int32_t(accumulate ? 1 : 0));
  if (uses_mma(n_tok)) {
    k.launch(device_, Range(size_t(w.rows_pad / kBn) * kMmaThreads, size_t((n_tok + kBm - 1) / kBm)),
             Range(kMmaThreads, 1), event);
  } else {
    const size_t groups = (size_t(w.rows) + kWorkGroup / kLanes - 1) / (kWorkGroup / kLanes);
    k.launch(device_, Range(groups * kWorkGroup, size_t((n_tok + kTokTile - 1) / kTokTile)), Range(kWorkGroup, 1),
             event);
  }
}

}  // namespace quill::host
