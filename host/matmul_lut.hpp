// Launcher for the code-format matmul kernels kernels/matmul_lut.cl and, for one token on NVIDIA,
// kernels/gemv_stream.cl (4-bit codes: nf4, fp4, int4, k-means; 8-bit codes: dyn8, q8_0).
// y[n_tok, rows] (+)= x[n_tok, cols] . W^T with W decoded in the kernel, optionally with the input
// transform (RMSNorm / SwiGLU) fused into the input load. Programs per (tokens per pass, input
// transform) are built on first use: one token per pass for n_tok = 1, kLutGemmTile otherwise (the
// register-tiled fallback GEMM).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>

#include "host/buffer.hpp"
#include "host/kernel.hpp"

namespace quill::host {

class Device;

// An input transform fused into a weight-only matmul's input load (INPUT_KIND in lut_common.cl):
// kRmsNorm: x [n_tok, cols] -> x * rsqrt(mean(x^2) + eps) * norm_w;  kSwiGlu: x [n_tok, 2 cols] =
// gate | up -> silu(gate) * up.
struct FusedInput {
  enum Kind : int { kNone = 0, kRmsNorm = 1, kSwiGlu = 2 };
  Kind kind = kNone;
  const Buffer* norm_w = nullptr;  // [cols] f32 (kRmsNorm)
  float eps = 0.0f;
};

// Tunables of the GEMV kernels (lut4, lut8, f16): weight rows per 32-lane group and work-group size.
// Defaults measured on the H100 (docs/PERFORMANCE.md); $QUILL_GEMV_ROWS / $QUILL_GEMV_WG override
// (for benchmarking).
struct GemvTuning {
  int rows_per_warp = 8;
  bool rows_overridden = false;  // $QUILL_GEMV_ROWS given
  int work_group = 128;
  // int4 / q8_0 / nf4 / fp4: x quantized to int8 per 32 (16) columns and dp4a (LUT_DP4A in
  // matmul_lut.cl), as llama.cpp does; nf4 / fp4 with their table values rounded to int8 (LUT_INT8 in
  // lut_common.cl). Default on NVIDIA (inline PTX) only; $QUILL_GEMV_DP4A=0|1 forces it (tests, sweeps).
  bool dp4a = false;
  // One-token GEMV on NVIDIA: kernels/gemv_stream.cl (a persistent grid of stream_groups_per_cu
  // work-groups of stream_work_group per compute unit; each warp streams row sets of stream_rows rows
  // with stream_pipe uint4 per lane and row in flight) instead of matmul_lut.cl, for every format but
  // per-row k-means tables and rows wider than its x staging. 0 = the default of the format, measured
  // on the H100 (docs/PERFORMANCE.md; int4: 1 work-group of 512 per SM, q8_0: 2 of 256, both 1 row;
  // tables: 2 of 256, 4 rows; the pipe depths: stream_pipe()). $QUILL_GEMV_STREAM=0|1,
  // $QUILL_GEMV_STREAM_WG / _WGS / _ROWS / _PIPE / _PAIR_PIPE override.
  bool stream = false;
  int stream_work_group = 0;
  int stream_groups_per_cu = 0;
  int stream_rows = 0;
  int stream_pipe = 0;
  int stream_pair_pipe = 0;  // the SwiGLU-output GEMV's (run_swiglu_output); 0: half of stream_pipe's
  static GemvTuning current(bool inline_ptx = false);
};

// How the per-block scale is stored (SCALE_KIND in kernels/lut_common.cl).
enum class LutScale : int {
  kNone = 0,         // no scale (k-means: the table holds the values)
  kF32 = 1,          // fp32 per block (bitsandbytes absmax)
  kF16 = 2,          // fp16 per block (GGUF d)
  kDoubleQuant = 3,  // uint8 dyn8 code per block + fp32 absmax2 per 256 blocks + offset
};

// A lookup-table weight matrix as it lies on the device (buffers owned by the caller).
struct LutWeights {
  int rows = 0, cols = 0;
  // [rows, row_words] uint4: uint4 u of a row holds columns 32 u .. 32 u + 31 (4-bit) or 16 u .. 16 u + 15
  // (8-bit) in order, column i of a 32-bit word in its bits 4 i (4-bit) / byte i (layout: matmul_lut.cl)
  const Buffer* codes = nullptr;
  int row_words = 0;            // uint4 per row: a multiple of 32 (whole warp tiles), >= ceil(cols / codes per uint4)
  const Buffer* lut = nullptr;  // 4-bit: [16] or [rows, 16] f32; 8-bit: [256] f32 (unused when linear)
  int lut_stride = 0;           // 4-bit only: 0 (one table) or 16 (a table per row)
  LutScale scale = LutScale::kNone;
  int block = 32;                   // columns per scale block: a power of two >= 32 (one block per uint4)
  int blocks_per_row = 0;           // row stride of the scale array
  const Buffer* scales = nullptr;   // [rows, blocks_per_row] f32 | f16 | uint8 codes (kDoubleQuant)
  const Buffer* absmax2 = nullptr;  // kDoubleQuant: [ceil(rows * blocks_per_row / 256)] f32
  const Buffer* dq_lut = nullptr;   // kDoubleQuant: [256] f32 signed dynamic map
  float dq_offset = 0.0f;           // kDoubleQuant: the mean added back
};

inline constexpr int kLutGemmTile = 8;     // tokens per pass of the register-tiled GEMM program
inline constexpr int kMaxFusedTokens = 8;  // the GEMV kernels fuse input transforms up to this n_tok

// Whether a GEMV fuses RMSNorm (the norm weight multiplied in as x is loaded; the token's sum of
// squares taken from the same loads, one pass). $QUILL_FUSE_RMSNORM=0|1 decides for every kernel;
// unset: fused on NVIDIA except for table-lookup codes (nf4, fp4, k-means, dyn8), whose GEMV is bound
// by its local/L1 loads and measured slower with the extra norm-weight loads than with the separate
// norm launch (docs/PERFORMANCE.md). Not fused by default on other devices: under PoCL 3.1 the fused
// one-pass kernels made the ASan concurrency test crash intermittently (inside a PoCL kernel; cause
// not found yet; the single-threaded fused tests pass). SwiGLU fusion is always on.
bool fuse_rmsnorm(bool table_lookup, bool inline_ptx);

class MatmulLut {
 public:
  // bits: 4 or 8. arith: the value is the code itself, decoded arithmetically, no table — 4-bit:
  // code - 8 (int4 / Q4_0); 8-bit: the signed byte (q8_0). Otherwise the code indexes w.lut.
  MatmulLut(Device& device, int bits, LutScale scale, bool arith = false);
  // prefetch: requested into L2 as the streaming GEMV finishes (decode: the next weights; the other
  // kernels of this class ignore it).
  void run(const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate, Event* event = nullptr,
           const FusedInput& input = {}, const L2Prefetch& prefetch = {});
  // The streaming GEMV with a SwiGLU output: w's rows are gate (first half) then up, and
  // y [rows / 2] = silu(x . gate^T) * (x . up^T), each warp computing a (gate, up) row pair. One token;
  // only where streams_swiglu_output(w) holds.
  void run_swiglu_output(const LutWeights& w, const Buffer& x, Buffer& y, const FusedInput& input = {},
                         const L2Prefetch& prefetch = {});
  // The one-row-per-warp streaming GEMVs (dp4a formats) pair gate and up rows for run_swiglu_output.
  bool streams_swiglu_output(const LutWeights& w) const {
    return streams(w, 1) && w.rows % 2 == 0 && stream_rows() == 1;
  }
  int bits() const { return bits_; }
  // Whether run() takes the streaming GEMV (gemv_stream.cl) for these weights and n_tok. It fuses
  // RMSNorm at no cost (every work-group stages the whole of x), so callers fuse it when this holds.
  bool streams(const LutWeights& w, int n_tok) const;

 private:
  Kernel& kernel(int tok_tile, int input_kind);
  Kernel& stream_kernel(int input_kind, bool swiglu_output = false);
  void set_args(Kernel& k, const LutWeights& w, const Buffer& x, Buffer& y, int n_tok, bool accumulate,
                const FusedInput& input, int block_shift);
  // gemv_stream's prefetch arguments and its persistent grid for `sets` row sets.
  void launch_stream(Kernel& k, const L2Prefetch& prefetch, size_t sets, Event* event);
  // Codes that dp4a can take as int8: integer codes (int4, q8_0), or a 16-entry table with a block scale
  // (nf4, fp4; not k-means: no scale, possibly a table per row) rounded to int8.
  bool int8_codes() const { return arith_ || (bits_ == 4 && scale_ != LutScale::kNone); }
  bool uses_dp4a() const { return int8_codes() && tuning_.dp4a; }
  bool stream_dp4a() const { return uses_dp4a(); }
  int stream_rows() const { return tuning_.stream_rows > 0 ? tuning_.stream_rows : stream_dp4a() ? 1 : 4; }
  bool stream_one_wide_group() const { return stream_dp4a() && bits_ == 4; }  // 4-bit dp4a: 512 x 1 per SM
  int stream_wg() const {
    return tuning_.stream_work_group > 0 ? tuning_.stream_work_group : stream_one_wide_group() ? 512 : 256;
  }
  int stream_wgs() const {
    return tuning_.stream_groups_per_cu > 0 ? tuning_.stream_groups_per_cu : stream_one_wide_group() ? 1 : 2;
  }
  // Chunks in flight per lane and row (docs/PERFORMANCE.md, session 11 item 1): int4 6; q8_0, nf4, fp4 4;
  // tables 1.
  // The SwiGLU-output GEMV's row pairs: half the depth, the same bytes in flight per warp.
  int stream_pair_pipe() const {
    return tuning_.stream_pair_pipe > 0 ? tuning_.stream_pair_pipe : std::max(1, stream_pipe() / 2);
  }
  int stream_pipe() const {
    if (tuning_.stream_pipe > 0) return tuning_.stream_pipe;
    if (!stream_dp4a()) return 1;
    return arith_ && bits_ == 4 ? 6 : 4;
  }
  Device& device_;
  int bits_;
  LutScale scale_;
  bool arith_;
  GemvTuning tuning_;
  std::map<std::pair<int, int>, Kernel> kernels_;  // (tok_tile, input kind)
  std::map<int, Kernel> stream_kernels_;           // gemv_stream by input kind (+ 16: SwiGLU output)
  Buffer dummy_;                                   // bound to the arguments a scale kind does not use
};

}  // namespace quill::host
