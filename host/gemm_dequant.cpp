// Launcher for kernels/gemm_dequant.cl and kernels/gemm_int8_blocks.cl (see gemm_dequant.hpp).
#include "host/gemm_dequant.hpp"

#include <algorithm>
#include <bit>

#include "engine/error.hpp"
#include "host/device.hpp"
#include "host/env.hpp"

namespace quill::host {
namespace {

constexpr int kBlockRows = 128;  // BN in the kernel
constexpr int kBlockTokens = 128;  // BM on the tensor-core path
constexpr int kStep = 32;        // KS: columns per K step

const Buffer& or_dummy(const Buffer* b, const Buffer& dummy) { return b && !b->empty() ? *b : dummy; }

// Rows of the converted x: whole token tiles, so that the tensor-core kernels load with no bounds checks.
size_t padded_tokens(int n_tok) { return (size_t(n_tok) + kBlockTokens - 1) / kBlockTokens * kBlockTokens; }

}  // namespace

bool GemmDequant::used_on(const DeviceInfo& info) {
  return supported_on(info) && !env_is("QUILL_GEMM_DEQUANT", "0");
}

bool GemmDequant::int8_core_on(const DeviceInfo& info) {
  return info.inline_ptx && info.sm_version >= 80 && !env_is("QUILL_GEMM_INT8", "0");
}

int GemmDequant::min_tokens() {
  return std::max(1, env_int("QUILL_GEMM_MIN_TOKENS", kLutGemmTile + 1));
}

GemmDequant::GemmDequant(Device& device, Format format, LutScale scale, bool arith)
    : device_(device),
      format_(format),
      scale_(scale),
      tensor_cores_(device.info().inline_ptx),
      // int4 / q8_0 (integer codes) and nf4 / fp4 (16-entry table, block scale); not k-means (no scale,
      // a table per row) nor dyn8 (its dynamic map needs more than 8 bits near zero).
      int8_core_(int8_core_on(device.info()) && scale != LutScale::kNone &&
                 ((arith && format != Format::kF16) || (!arith && format == Format::kLut4))),
      dummy_(device, 1024) {
  if (int8_core_) {
    auto program = device.program("gemm_int8_blocks.cl", fmt::format("-DWFMT={} -DSCALE_KIND={} -DLUT_INT8={}",
                                                                      int(format), int(scale), arith ? 0 : 1));
    kernel_ = Kernel(program, "gemm_int8_blocks");
    convert_ = Kernel(program, "gemm_quantize_x");
    return;
  }
  auto program = device.program("gemm_dequant.cl",
                                fmt::format("-DWFMT={} -DSCALE_KIND={} -DLUT_ARITH={} -DLUT_LINEAR={}", int(format),
                                            int(scale), format == Format::kLut4 && arith ? 1 : 0,
                                            format == Format::kLut8 && arith ? 1 : 0));
  kernel_ = Kernel(program, "gemm_dequant");
  if (tensor_cores_) convert_ = Kernel(program, "gemm_x_to_f16");
}

int GemmDequant::k_columns(int cols, int row_words) const {
  if (format_ == Format::kF16) return (cols + kStep - 1) / kStep * kStep;
  return row_words * (format_ == Format::kLut4 ? 32 : 16);  // whole uint4 of codes = whole K steps
}

size_t GemmDequant::input_scratch_bytes(int n_tok, int cols, int row_words) const {
  if (!tensor_cores_) return 0;
  return padded_tokens(n_tok) * size_t(k_columns(cols, row_words)) * (int8_core_ ? 1 : 2);
}

size_t GemmDequant::input_scale_bytes(int n_tok, int cols, int row_words) const {
  if (!int8_core_) return 0;
  return padded_tokens(n_tok) * size_t(k_columns(cols, row_words) / kStep) * 4;
}

void GemmDequant::launch(uint32_t next, const Buffer& x, Buffer& y, int rows, int cols, int row_words, int n_tok,
                         bool accumulate, const GemmInputScratch& scratch, Event* event) {
  if (tensor_cores_) {
    const int ld = k_columns(cols, row_words);
    const size_t tok_pad = padded_tokens(n_tok);
    if (!scratch.data || scratch.data->bytes() < input_scratch_bytes(n_tok, cols, row_words) ||
        (int8_core_ && (!scratch.scales || scratch.scales->bytes() < input_scale_bytes(n_tok, cols, row_words))))
      fail(ErrorKind::kInternal, "gemm_dequant: x scratch too small for n_tok={} cols={}", n_tok, cols);
    if (int8_core_) {
      if (ld % 64 != 0) fail(ErrorKind::kInternal, "gemm_int8_blocks: K extent {} is not whole stages of 64", ld);
      convert_.args(x, int32_t(n_tok), int32_t(cols), *scratch.data, *scratch.scales, int32_t(ld));
      convert_.launch(device_, Range(tok_pad * size_t(ld / kStep)), Range(64));
      kernel_.set_arg(next++, *scratch.data);
      kernel_.set_arg(next++, *scratch.scales);
    } else {
      convert_.args(x, int32_t(n_tok), int32_t(cols), *scratch.data, int32_t(ld));
      convert_.launch(device_, Range(tok_pad * size_t(ld / 4)), Range(256));
      kernel_.set_arg(next++, *scratch.data);
    }
    kernel_.set_arg(next++, int32_t(ld));
  } else {
    kernel_.set_arg(next++, x);
  }
  kernel_.set_arg(next++, y);
  kernel_.set_arg(next++, int32_t(rows));
  kernel_.set_arg(next++, int32_t(cols));
  kernel_.set_arg(next++, int32_t(n_tok));
  kernel_.set_arg(next++, int32_t(accumulate ? 1 : 0));
  // Work-groups: 256 work-items x 128 rows x 128 tokens on the tensor-core paths, 128 x 128 x 64 on the
  // portable one.
  const size_t threads = tensor_cores_ ? 256 : 128, block_tokens = tensor_cores_ ? kBlockTokens : 64;
  const size_t groups = (size_t(rows) + kBlockRows - 1) / kBlockRows;
  const size_t tok_groups = (size_t(n_tok) + block_tokens - 1) / block_tokens;
  kernel_.launch(device_, Range(groups * threads, tok_groups), Range(threads, 1), event);
}

void GemmDequant::run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate,
                      const GemmInputScratch& scratch, Event* event) {
  if (format_ == Format::kF16) fail(ErrorKind::kInternal, "gemm_dequant: fp16 weights go through run_f16");
  const int tile_cols = format_ == Format::kLut4 ? 1024 : 512;
  if (w.rows <= 0 || w.cols <= 0 || n_tok <= 0 || w.scale != scale_ || !w.codes || w.row_words % 32 != 0 ||
      w.row_words < (w.cols + tile_cols - 1) / tile_cols * 32 || w.codes->bytes() < size_t(w.rows) * w.row_words * 16)
    fail(ErrorKind::kInternal, "gemm_dequant: inconsistent weights rows={} cols={} n_tok={}", w.rows, w.cols, n_tok);
  if (x.bytes() < size_t(n_tok) * w.cols * 4 || y.bytes() < size_t(n_tok) * w.rows * 4)
    fail(ErrorKind::kInternal, "gemm_dequant: x or y too small for rows={} cols={} n_tok={}", w.rows, w.cols, n_tok);
  const int block_shift = scale_ == LutScale::kNone ? 0 : std::countr_zero(unsigned(w.block));
  if (int8_core_) {
    if (w.block < kStep || w.lut_stride != 0)
      fail(ErrorKind::kInternal, "gemm_int8_blocks: block {} (>= {}), table stride {} (0)", w.block, kStep,
           w.lut_stride);
    kernel_.args(*w.codes, int32_t(w.row_words), or_dummy(w.lut, dummy_), or_dummy(w.scales, dummy_),
                 or_dummy(w.absmax2, dummy_), or_dummy(w.dq_lut, dummy_), w.dq_offset, int32_t(w.blocks_per_row),
                 int32_t(block_shift));
    launch(kernel_.next_arg(), x, y, w.rows, w.cols, w.row_words, n_tok, accumulate, scratch, event);
    return;
  }
  kernel_.args(*w.codes, int32_t(w.row_words), or_dummy(w.lut, dummy_), int32_t(w.lut_stride),
               or_dummy(w.scales, dummy_), or_dummy(w.absmax2, dummy_), or_dummy(w.dq_lut, dummy_), w.dq_offset,
               int32_t(w.blocks_per_row), int32_t(block_shift));
  launch(kernel_.next_arg(), x, y, w.rows, w.cols, w.row_words, n_tok, accumulate, scratch, event);
}

void GemmDequant::run_f16(const Buffer& w, int w_stride, const Buffer& x, Buffer& y, int rows, int cols, int n_tok,
                          bool accumulate, const GemmInputScratch& scratch, Event* event) {
  if (format_ != Format::kF16 || rows <= 0 || cols <= 0 || n_tok <= 0 || w_stride < cols || w_stride % 8 != 0 ||
      w.bytes() < size_t(rows) * w_stride * 2 || x.bytes() < size_t(n_tok) * cols * 4 ||
      y.bytes() < size_t(n_tok) * rows * 4)
    fail(ErrorKind::kInternal, "gemm_dequant: bad fp16 GEMM rows={} cols={} stride={} n_tok={}", rows, cols, w_stride,
         n_tok);
  kernel_.args(w, int32_t(w_stride / 8), dummy_, int32_t(0), dummy_, dummy_, dummy_, 0.0f, int32_t(0), int32_t(0));
  launch(kernel_.next_arg(), x, y, rows, cols, 0, n_tok, accumulate, scratch, event);
}

}  // namespace quill::host
