// Launcher for kernels/matmul_lut.cl and kernels/gemv_stream.cl (see matmul_lut.hpp).
#include "host/matmul_lut.hpp"

#include <algorithm>
#include <bit>

#include "engine/error.hpp"
#include "host/device.hpp"
#include "host/env.hpp"

namespace quill::host {
namespace {

constexpr int kLanes = 32;

// dp4a: the LUT_DP4A path (the caller's MatmulLut::uses_dp4a); a 4-bit table there goes as int8 (LUT_INT8).
std::string build_options(const GemvTuning& tn, int bits, LutScale scale, int tok_tile, bool arith, int input_kind,
                          bool dp4a) {
  return fmt::format(
      "-DLUT_BITS={} -DWG_SIZE={} -DROWS_PER_WARP={} -DTOK_TILE={} -DSCALE_KIND={} -DLUT_LINEAR={} "
      "-DLUT_ARITH={} -DINPUT_KIND={} -DLUT_DP4A={} -DLUT_INT8={}",
      bits, tn.work_group, tn.rows_per_warp, tok_tile, int(scale), bits == 8 && arith ? 1 : 0,
      bits == 4 && arith ? 1 : 0, input_kind, dp4a ? 1 : 0, dp4a && !arith ? 1 : 0);
}

// Columns kernels/gemv_stream.cl's x staging holds (GS_MAX_COLS): int8 x for dp4a (16 KB + scales),
// fp32 x for the table formats (44 KB of the 48 KB of local memory); wider rows use matmul_lut.
constexpr int kStreamMaxColsDp4a = 16384;
constexpr int kStreamMaxColsF32 = 11264;

const Buffer& or_dummy(const Buffer* b, const Buffer& dummy) { return b && !b->empty() ? *b : dummy; }

// Checks shapes and buffer sizes; returns block_shift = log2(block). codes_per_uint4: 32 or 16.
// y_rows: y's row count per token (w.rows, or w.rows / 2 for a SwiGLU output).
int check(const char* name, const LutWeights& w, LutScale scale, const Buffer& x, const Buffer& y, int n_tok,
          int codes_per_uint4, bool needs_lut, int lut_entries, const FusedInput& input, int y_rows) {
  const int tile_cols = codes_per_uint4 * kLanes;  // columns per 32 uint4
  if (w.rows <= 0 || w.cols <= 0 || n_tok <= 0)
    fail(ErrorKind::kInternal, "{}: bad shape rows={} cols={} n_tok={}", name, w.rows, w.cols, n_tok);
  if (w.scale != scale) fail(ErrorKind::kInternal, "{}: weights' scale kind differs from the launcher's", name);
  if (!w.codes || w.row_words % kLanes != 0 || w.row_words < (w.cols + tile_cols - 1) / tile_cols * kLanes ||
      w.codes->bytes() < size_t(w.rows) * w.row_words * 16)
    fail(ErrorKind::kInternal, "{}: codes too small for rows={} cols={} row_words={}", name, w.rows, w.cols,
         w.row_words);
  if (needs_lut) {
    const size_t tables = w.lut_stride ? size_t(w.rows) : 1;
    if (!w.lut || (w.lut_stride != 0 && w.lut_stride != lut_entries) || w.lut->bytes() < tables * lut_entries * 4)
      fail(ErrorKind::kInternal, "{}: lookup table missing or too small", name);
  }
  int block_shift = 0;
  if (scale != LutScale::kNone) {
    if (w.block < codes_per_uint4 || !std::has_single_bit(unsigned(w.block)) ||
        int64_t(w.blocks_per_row) * w.block < w.cols)
      fail(ErrorKind::kInternal, "{}: bad block {} (blocks_per_row {})", name, w.block, w.blocks_per_row);
    block_shift = std::countr_zero(unsigned(w.block));
    const size_t n_blocks = size_t(w.rows) * w.blocks_per_row;
    const size_t scale_bytes = scale == LutScale::kF32 ? 4 : scale == LutScale::kF16 ? 2 : 1;
    if (!w.scales || w.scales->bytes() < n_blocks * scale_bytes)
      fail(ErrorKind::kInternal, "{}: scales too small for {} blocks", name, n_blocks);
    if (scale == LutScale::kDoubleQuant &&
        (!w.absmax2 || w.absmax2->bytes() < (n_blocks + 255) / 256 * 4 || !w.dq_lut || w.dq_lut->bytes() < 256 * 4))
      fail(ErrorKind::kInternal, "{}: double-quant statistics missing or too small", name);
  }
  const size_t x_cols = size_t(w.cols) * (input.kind == FusedInput::kSwiGlu ? 2 : 1);
  if (x.bytes() < size_t(n_tok) * x_cols * 4 || y.bytes() < size_t(n_tok) * y_rows * 4)
    fail(ErrorKind::kInternal, "{}: x or y too small for rows={} cols={} n_tok={}", name, w.rows, w.cols, n_tok);
  if (input.kind == FusedInput::kRmsNorm && (!input.norm_w || input.norm_w->bytes() < size_t(w.cols) * 4))
    fail(ErrorKind::kInternal, "{}: RMSNorm weight missing or too small", name);
  return block_shift;
}

int tok_tile_for(int n_tok) { return n_tok == 1 ? 1 : kLutGemmTile; }

void launch(Device& device, Kernel& kernel, const GemvTuning& tn, int tok_tile, const LutWeights& w, int n_tok,
            Event* event) {
  const int rows_per_wg = tn.rows_per_warp;  // the work-group's warps split the columns
  const size_t groups = (size_t(w.rows) + rows_per_wg - 1) / rows_per_wg;
  const size_t tok_groups = (size_t(n_tok) + tok_tile - 1) / tok_tile;
  kernel.launch(device, Range(groups * tn.work_group, tok_groups), Range(tn.work_group, 1), event);
}

}  // namespace

bool fuse_rmsnorm(bool table_lookup, bool inline_ptx) {
  return env_int("QUILL_FUSE_RMSNORM", inline_ptx && !table_lookup ? 1 : 0) != 0;
}

GemvTuning GemvTuning::current(bool inline_ptx) {
  GemvTuning t;
  t.dp4a = env_int("QUILL_GEMV_DP4A", inline_ptx ? 1 : 0) != 0;
  t.rows_overridden = env_int("QUILL_GEMV_ROWS", 0) > 0;
  t.rows_per_warp = std::max(1, env_int("QUILL_GEMV_ROWS", t.rows_per_warp));
  t.work_group = std::max(32, env_int("QUILL_GEMV_WG", t.work_group)) / 32 * 32;
  t.stream = env_int("QUILL_GEMV_STREAM", inline_ptx ? 1 : 0) != 0 && inline_ptx;
  t.stream_work_group = std::clamp(env_int("QUILL_GEMV_STREAM_WG", t.stream_work_group), 0, 1024) / 32 * 32;
  t.stream_groups_per_cu = std::max(0, env_int("QUILL_GEMV_STREAM_WGS", t.stream_groups_per_cu));
  t.stream_rows = std::clamp(env_int("QUILL_GEMV_STREAM_ROWS", t.stream_rows), 0, 8);
  t.stream_pipe = std::clamp(env_int("QUILL_GEMV_STREAM_PIPE", t.stream_pipe), 0, 16);
  t.stream_pair_pipe = std::clamp(env_int("QUILL_GEMV_STREAM_PAIR_PIPE", t.stream_pair_pipe), 0, 16);
  return t;
}

MatmulLut::MatmulLut(Device& device, int bits, LutScale scale, bool arith)
    : device_(device),
      bits_(bits),
      scale_(scale),
      arith_(arith),
      tuning_(GemvTuning::current(device.info().inline_ptx)),
      dummy_(device, 1024) {
  if (bits != 4 && bits != 8) fail(ErrorKind::kInternal, "matmul_lut: {}-bit codes (4 or 8 only)", bits);
  // dp4a: 16 rows per warp (measured 61.7 vs 51.0% of the floor at 4096x14336, docs/PERFORMANCE.md).
  // (int4 / q8_0 only: nf4 / fp4's table decode at 16 rows took 255 registers and spilled, run 46.)
  if (arith_ && uses_dp4a() && !tuning_.rows_overridden) tuning_.rows_per_warp = 16;
  kernel(1, 0);  // build the GEMV programs now (errors surface at upload, not mid-forward)
  if (streams(LutWeights{.cols = 1}, 1)) stream_kernel(0);
}

bool MatmulLut::streams(const LutWeights& w, int n_tok) const {
  const bool per_row_tables = bits_ == 4 && !arith_ && w.lut_stride != 0;
  return n_tok == 1 && tuning_.stream && !per_row_tables &&
         w.cols <= (stream_dp4a() ? kStreamMaxColsDp4a : kStreamMaxColsF32);
}

Kernel& MatmulLut::stream_kernel(int input_kind, bool swiglu_output) {
  const int key = input_kind + (swiglu_output ? 16 : 0);
  auto it = stream_kernels_.find(key);
  if (it == stream_kernels_.end()) {
    GemvTuning tn = tuning_;
    tn.work_group = stream_wg();
    const bool dp4a = stream_dp4a();
    const std::string options =
        build_options(tn, bits_, scale_, 1, arith_, input_kind, dp4a) +
        fmt::format(" -DGS_ROWS={} -DGS_SWIGLU_OUT={} -DGS_PIPE={} -DGS_MAX_COLS={} {}",
                    swiglu_output ? 2 : stream_rows(), swiglu_output ? 1 : 0,
                    swiglu_output ? stream_pair_pipe() : stream_pipe(), dp4a ? kStreamMaxColsDp4a : kStreamMaxColsF32,
                    env_string("QUILL_GEMV_STREAM_DEFS"));  // measurement builds, e.g. -DGS_DIAG_NO_STAGE=1
    it = stream_kernels_.emplace(key, Kernel(device_.program("gemv_stream.cl", options), "gemv_stream")).first;
  }
  return it->second;
}

Kernel& MatmulLut::kernel(int tok_tile, int input_kind) {
  const auto key = std::pair(tok_tile, input_kind);
  auto it = kernels_.find(key);
  if (it == kernels_.end())
    it = kernels_
             .emplace(key, Kernel(device_.program("matmul_lut.cl", build_options(tuning_, bits_, scale_, tok_tile,
                                                                                 arith_, input_kind, uses_dp4a())),
                                  "matmul_lut"))
             .first;
  return it->second;
}

void MatmulLut::set_args(Kernel& k, const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate,
                         const FusedInput& input, int block_shift) {
  k.args(*w.codes, int32_t(w.row_words), or_dummy(w.lut, dummy_), int32_t(bits_ == 4 ? w.lut_stride : 0),
         or_dummy(w.scales, dummy_), or_dummy(w.absmax2, dummy_), or_dummy(w.dq_lut, dummy_), w.dq_offset,
         int32_t(w.blocks_per_row), int32_t(block_shift), x, y, int32_t(w.rows), int32_t(w.cols), int32_t(n_tok),
         int32_t(accumulate ? 1 : 0), or_dummy(input.norm_w, dummy_), input.eps);
}

void MatmulLut::launch_stream(Kernel& k, const L2Prefetch& prefetch, size_t sets, Event* event) {
  k.set_arg(18, prefetch.arg_buffer(dummy_));  // gemv_stream's pf, pf_bytes (after matmul_lut's arguments)
  k.set_arg(19, prefetch.arg_bytes());
  // A persistent grid: every warp needs a row set; a few work-groups per compute unit keep the loads going.
  const int wg = stream_wg(), warps = wg / kLanes;
  const size_t groups =
      std::min<size_t>((sets + warps - 1) / warps, size_t(device_.info().compute_units) * stream_wgs());
  k.launch(device_, Range(groups * wg), Range(wg), event);
}

void MatmulLut::run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate, Event* event,
                    const FusedInput& input, const L2Prefetch& prefetch) {
  const bool table = !arith_;
  const int block_shift =
      check("matmul_lut", w, scale_, x, y, n_tok, bits_ == 4 ? 32 : 16, table, bits_ == 4 ? 16 : 256, input, w.rows);
  if (streams(w, n_tok)) {
    Kernel& k = stream_kernel(input.kind);
    set_args(k, w, x, y, n_tok, accumulate, input, block_shift);
    launch_stream(k, prefetch, (size_t(w.rows) + stream_rows() - 1) / stream_rows(), event);
    return;
  }
  const int tile = tok_tile_for(n_tok);
  Kernel& k = kernel(tile, input.kind);
  set_args(k, w, x, y, n_tok, accumulate, input, block_shift);
  launch(device_, k, tuning_, tile, w, n_tok, event);
}

void MatmulLut::run_swiglu_output(const LutWeights& w, const Buffer& x, Buffer& y, const FusedInput& input,
                                  const L2Prefetch& prefetch) {
  if (!streams_swiglu_output(w))
    fail(ErrorKind::kInternal, "matmul_lut: no SwiGLU-output GEMV for {}x{} here", w.rows, w.cols);
  const int block_shift =
      check("matmul_lut", w, scale_, x, y, 1, bits_ == 4 ? 32 : 16, !arith_, bits_ == 4 ? 16 : 256, input, w.rows / 2);
  Kernel& k = stream_kernel(input.kind, true);
  set_args(k, w, x, y, 1, false, input, block_shift);
  launch_stream(k, prefetch, size_t(w.rows) / 2, nullptr);
}

}  // namespace quill::host
