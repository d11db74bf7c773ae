// Launcher for kernels/gemm_dequant.cl (see gemm_dequant.hpp).
#include "host/gemm_dequant.hpp"

#include <bit>
#include <cstdlib>
#include <string_view>

#include "engine/error.hpp"
#include "host/device.hpp"

namespace quill::host {
namespace {

constexpr int kBlockRows = 128;  // BN in the kernel

const Buffer& or_dummy(const Buffer* b, const Buffer& dummy) { return b && !b->empty() ? *b : dummy; }

// Work-group shape of kernels/gemm_dequant.cl: 256 work-items x 128 tokens on the tensor-core path,
// 128 x 64 on the portable one.
void launch(Device& device, Kernel& k, int rows, int n_tok, Event* event) {
  const bool mma = device.info().inline_ptx;
  const size_t threads = mma ? 256 : 128, block_tokens = mma ? 128 : 64;
  const size_t groups = (size_t(rows) + kBlockRows - 1) / kBlockRows;
  const size_t tok_groups = (size_t(n_tok) + block_tokens - 1) / block_tokens;
  k.launch(device, Range(groups * threads, tok_groups), Range(threads, 1), event);
}

}  // namespace

bool GemmDequant::used_on(const DeviceInfo& info) {
  const char* opt_in = std::getenv("QUILL_GEMM_DEQUANT");
  return supported_on(info) && !(opt_in && std::string_view(opt_in) == "0");
}

int GemmDequant::min_tokens() {
  const char* v = std::getenv("QUILL_GEMM_MIN_TOKENS");
  return v && *v ? std::max(1, std::atoi(v)) : kLutGemmTile + 1;
}

GemmDequant::GemmDequant(Device& device, Format format, LutScale scale, bool arith)
    : device_(device),
      format_(format),
      scale_(scale),
      kernel_(device.program("gemm_dequant.cl",
                             fmt::format("-DWFMT={} -DSCALE_KIND={} -DLUT_ARITH={} -DLUT_LINEAR={}", int(format),
                                         int(scale), format == Format::kLut4 && arith ? 1 : 0,
                                         format == Format::kLut8 && arith ? 1 : 0)),
              "gemm_dequant"),
      dummy_(device, 1024) {}

void GemmDequant::run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate, Event* event) {
  if (format_ == Format::kF16) fail(ErrorKind::kInternal, "gemm_dequant: fp16 weights go through run_f16");
  const int tile_cols = format_ == Format::kLut4 ? 1024 : 512;
  if (w.rows <= 0 || w.cols <= 0 || n_tok <= 0 || w.scale != scale_ || !w.codes || w.row_words % 32 != 0 ||
      w.row_words < (w.cols + tile_cols - 1) / tile_cols * 32 || w.codes->bytes() < size_t(w.rows) * w.row_words * 16)
    fail(ErrorKind::kInternal, "gemm_dequant: inconsistent weights rows={} cols={} n_tok={}", w.rows, w.cols, n_tok);
  if (x.bytes() < size_t(n_tok) * w.cols * 4 || y.bytes() < size_t(n_tok) * w.rows * 4)
    fail(ErrorKind::kInternal, "gemm_dequant: x or y too small for rows={} cols={} n_tok={}", w.rows, w.cols, n_tok);
  const int block_shift = scale_ == LutScale::kNone ? 0 : std::countr_zero(unsigned(w.block));
  kernel_.args(*w.codes, int32_t(w.row_words), or_dummy(w.lut, dummy_), int32_t(w.lut_stride),
               or_dummy(w.scales, dummy_), or_dummy(w.absmax2, dummy_), or_dummy(w.dq_lut, dummy_), w.dq_offset,
               int32_t(w.blocks_per_row), int32_t(block_shift), x, y, int32_t(w.rows), int32_t(w.cols),
               int32_t(n_tok), int32_t(accumulate ? 1 : 0));
  launch(device_, kernel_, w.rows, n_tok, event);
}

void GemmDequant::run_f16(const Buffer& w, int w_stride, const Buffer& x, Buffer& y, int rows, int cols, int n_tok,
                          bool accumulate, Event* event) {
  if (format_ != Format::kF16 || rows <= 0 || cols <= 0 || n_tok <= 0 || w_stride < cols || w_stride % 8 != 0 ||
      w.bytes() < size_t(rows) * w_stride * 2 || x.bytes() < size_t(n_tok) * cols * 4 ||
      y.bytes() < size_t(n_tok) * rows * 4)
    fail(ErrorKind::kInternal, "gemm_dequant: bad fp16 GEMM rows={} cols={} stride={} n_tok={}", rows, cols, w_stride,
         n_tok);
  kernel_.args(w, int32_t(w_stride / 8), dummy_, int32_t(0), dummy_, dummy_, dummy_, 0.0f, int32_t(0), int32_t(0), x,
               y, int32_t(rows), int32_t(cols), int32_t(n_tok), int32_t(accumulate ? 1 : 0));
  launch(device_, kernel_, rows, n_tok, event);
}

}  // namespace quill::host
