// Launcher for kernels/quantize.cl: int8 activation codes, per token with the LLM.int8() outlier split
// (bit-exact with engine/quantize_int8.hpp quantize_activations_int8) or with one static calibrated
// scale (bit-exact with quantize_activations_int8_static).
#pragma once

#include "host/buffer.hpp"
#include "host/kernel.hpp"

namespace quill::host {

class Device;

// How a call scales its activations. Per token (static_amax == 0): SCA[i] = the row absmax over the
// non-outlier columns, outlier split when threshold > 0. Static (static_amax > 0, calibration): SCA[i] =
// static_amax for every token (scale static_amax / 127), no outlier split, codes saturate at +-127.
// A bare threshold converts implicitly to the per-token form; check_act_scale refuses static + threshold.
struct Int8ActScale {
  float threshold = 0.0f;
  float static_amax = 0.0f;
  Int8ActScale(float per_token_threshold = 0.0f) : threshold(per_token_threshold) {}  // NOLINT: implicit on purpose
  static Int8ActScale fixed(float amax) {
    Int8ActScale s;
    s.static_amax = amax;
    return s;
  }
  bool is_static() const { return static_amax > 0.0f; }
  bool splits_outliers() const { return threshold > 0.0f && !is_static(); }
};
// kInternal unless static_amax is finite and >= 0 and not combined with a threshold.
void check_act_scale(const Int8ActScale& scale);

// The device-side result of one quantization (buffers owned by the caller, e.g. a Workspace).
struct Int8ActivationBuffers {
  Buffer* codes;   // [n_tok, kpad] int8, columns cols..kpad-1 zero
  Buffer* sca;     // [n_tok] f32 row scales
  Buffer* flags;   // [cols] int scratch (outlier-column flags; used when n_tok > kInlineTokens)
  Buffer* olist;   // [cols] int: the outlier columns, ascending (first *ocount entries)
  Buffer* ocount;  // [1] int
};

// The input transform quantize_rows applies as it loads x (INPUT_KIND, lut_common.cl): kind 1 RMSNorm
// (x * rsqrt(mean(x^2) + eps) * norm_w), 2 SwiGLU (x [n_tok, 2 cols] = gate | up -> silu(gate) * up).
// Without an outlier split only (the outlier columns would need the transformed x in memory).
struct QuantizeInput {
  int kind = 0;                    // 0 none, 1 RMSNorm, 2 SwiGLU
  const Buffer* norm_w = nullptr;  // [cols] f32 (RMSNorm)
  float eps = 0.0f;
};

class QuantizeActivations {
 public:
  static constexpr int kInlineTokens = 8;  // up to this many tokens: one launch (flags computed inline)

  explicit QuantizeActivations(Device& device);
  // x: [n_tok, cols] f32 ([n_tok, 2 cols] for SwiGLU). kpad >= cols, a multiple of 16. A static scale
  // writes sca[i] = static_amax and ocount 0 (the matmul then dequantizes with it unchanged).
  void run(const Buffer& x, int n_tok, int cols, int kpad, const Int8ActScale& scale, const Int8ActivationBuffers& out,
           Event* event = nullptr, const QuantizeInput& input = {});
  static int launches(int n_tok, const Int8ActScale& scale) {
    return scale.splits_outliers() && n_tok > kInlineTokens ? 2 : 1;
  }

 private:
  Device& device_;
  Kernel& rows_kernel(int input_kind);

  Kernel find_outliers_;
  Kernel rows_[3];  // quantize_rows per input kind, built on first use
};

}  // namespace quill::host
