// Launcher for kernels/matmul_int8.cl: y (+)= int8 matmul of quantized activations (quantize.cl, per-token
// or static scales) with vector-wise int8 weights, plus the LLM.int8() fp16 outlier side path, recombined
// in the epilogue; and for kernels/matmul_int8_fused.cl (decode in one launch).
#pragma once

#include <array>

#include "host/buffer.hpp"
#include "host/device_info.hpp"
#include "host/kernel.hpp"
#include "host/quantize_activations.hpp"

namespace quill::host {

class Device;

// The weights in the layout the kernels read (engine/linear_int8.cpp builds it).
struct Int8WeightBuffers {
  const Buffer* cb;   // [rows_pad, kpad] int8, zero padded
  const Buffer* scb;  // [rows_pad] f32 (0 in padding rows)
  const Buffer* slot; // [cols] int: position of column j among the kept fp16 columns, or -1
  const Buffer* w16;  // [rows_pad, max(n16, 1)] fp16: the kept outlier columns of each row
  int rows = 0, cols = 0, rows_pad = 0, kpad = 0, n16 = 0;
};

// Optional outputs of the fused decode kernel's work-group 0 (tests): the transformed input xt
// [n_tok, cols] f32, its codes [n_tok, kpad] int8, SCA [n_tok] f32, outlier list [cols] int, count [1].
struct FusedDebugBuffers {
  Buffer* xt;
  Buffer* codes;
  Buffer* sca;
  Buffer* olist;
  Buffer* ocount;
};

// Scratch for LLM.int8()'s outlier columns on the int8 tensor cores in a prefill (MatmulInt8::run; buffers
// owned by the caller, grown to outlier_bytes()): kernels/int8_outliers.cl's gathered operands.
struct Int8OutlierScratch {
  Buffer* xd;      // [2, n_tok, cap] int8: x's first outlier columns as two digits
  Buffer* xds;     // [2, n_tok] f32: their scales
  Buffer* cbo;     // [rows_pad, cap] int8: the fallback weight columns
  Buffer* slist;   // [cols] int: the columns left to the fp32 side GEMM
  Buffer* scount;  // [3] int: its count, the outlier columns, the fallback ones among the first kOutlierCap
};

// The input transform the fused kernel applies (engine InputTransform): 0 none, 1 rmsnorm, 2 swiglu.
enum class FusedTransform : int { kNone = 0, kRmsNorm = 1, kSwiGlu = 2 };

class MatmulInt8 {
 public:
  static constexpr int kRowAlign = 128;  // rows_pad multiple (the GEMM's BN)
  static constexpr int kColAlign = 64;   // kpad multiple (the GEMM's BK)
  static constexpr int kGemvMaxTokens = 8;  // above this, the tensor-core GEMM where available

  explicit MatmulInt8(Device& device);
  // x: [n_tok, cols] f32 (the unquantized activations, for the outlier columns); a: quantize.cl output
  // for x; y: [n_tok, rows] f32, y += when accumulate. outliers (used where uses_mma): the first
  // kOutlierCap outlier columns whose weight is the int8 fallback go through the int8 tensor cores (x as
  // two int8 digits: within amax / 64516 of each value, amax the token's largest outlier value) instead
  // of the fp32 side GEMM; two more launches (the gather, the digits' GEMM).
  void run(const Int8WeightBuffers& w, const Buffer& x, const Int8ActivationBuffers& a, Buffer& y, int n_tok,
           bool accumulate, Event* event = nullptr, const Int8OutlierScratch* outliers = nullptr);
  bool uses_mma(int n_tok) const { return has_mma_ && n_tok > kGemvMaxTokens; }
  static bool mma_available(const DeviceInfo& info) { return info.inline_ptx && info.sm_version >= 80; }
  static constexpr int kOutlierCap = 1024;  // outlier columns on the int8 tensor cores per call (a multiple of 64)
  // Bytes of each Int8OutlierScratch buffer, in its order, for these weights and n_tok.
  static std::array<size_t, 5> outlier_bytes(const Int8WeightBuffers& w, int n_tok);

  // Decode in ONE launch (kernels/matmul_int8_fused.cl): input transform + outlier split + activation
  // quantization (bit-exact with quantize.cl on the transformed input) + dp4a GEMV + outlier part.
  // x: [n_tok, cols] f32 ([n_tok, 2 cols] for kSwiGlu); norm_weight [cols] f32 for kRmsNorm. A static
  // scale applies to the transformed input (what calibration records for that matmul).
  static constexpr int kFusedMaxTokens = 8;
  static constexpr int kFusedMaxKpad = 32768;   // LCODE_BYTES: one token's codes must fit in local memory
  static constexpr int kFusedMaxCols = 32768;   // 32 * MAX_FLAG_WORDS
  static bool fused_ok(int n_tok, int cols, int kpad) {
    return n_tok >= 1 && n_tok <= kFusedMaxTokens && kpad <= kFusedMaxKpad && cols <= kFusedMaxCols;
  }
  // What the Linear uses: one token only (2..8 tokens measured faster through quantize + matmul_int8_rows).
  static bool fused_preferred(int n_tok, int cols, int kpad) { return n_tok == 1 && fused_ok(n_tok, cols, kpad); }
  void run_fused(const Int8WeightBuffers& w, const Buffer& x, FusedTransform transform, const Buffer* norm_weight,
                 float eps, const Int8ActScale& scale, Buffer& y, int n_tok, bool accumulate,
                 const FusedDebugBuffers* debug = nullptr, Event* event = nullptr, const L2Prefetch& prefetch = {});

 private:
  Device& device_;
  bool has_mma_ = false;
  // One matmul_int8_mma build: its tile (BM tokens x BN rows) and work-group size.
  struct MmaTiling {
    int bm = 128, bn = 128, threads = 256;
    Kernel kernel;
    Kernel digits;  // matmul_int8_digits of the same build
    static MmaTiling make(Device& device, const char* env_name, int wm, int wn, int mt, int nt, int dist);
  };
  static std::shared_ptr<const Program> mma_program(Device& device, int wm, int wn, int mt, int nt, int dist);

  Kernel rows_;
  MmaTiling mma_;        // the general tiling ($QUILL_INT8_MMA)
  MmaTiling mma_small_;  // grids that the general tiling would not fill ($QUILL_INT8_MMA_SMALL)
  Kernel outlier_gather_;  // int8_outliers.cl (with the tensor-core GEMM only)
  Kernel fused_;
  Kernel fused_one_;  // FZ_ONE variant: one token, x in registers, weight prefetch before the prologue
  int fused_groups_ = 1;
  int fused_rpw_ = 0;  // rows per warp task of matmul_int8_fused (RPW)
  int one_wg_ = 0, one_rpw_ = 0, one_groups_ = 1;  // the same for its one-token variant (fused_one_)
};

}  // namespace quill::host
