// Launcher for kernels/quantize.cl: per-token int8 activation codes with the LLM.int8() outlier split
// (bit-exact with engine/quantize_int8.hpp quantize_activations_int8).
#pragma once

#include "host/buffer.hpp"
#include "host/kernel.hpp"

namespace quill::host {

class Device;

// The device-side result of one quantization (buffers owned by the caller, e.g. a Workspace).
struct Int8ActivationBuffers {
  Buffer* codes;   // [n_tok, kpad] int8, columns cols..kpad-1 zero
  Buffer* sca;     // [n_tok] f32 row scales
  Buffer* flags;   // [cols] int scratch (outlier-column flags; used when n_tok > kInlineTokens)
  Buffer* olist;   // [cols] int: the outlier columns, ascending (first *ocount entries)
  Buffer* ocount;  // [1] int
};

class QuantizeActivations {
 public:
  static constexpr int kInlineTokens = 8;  // up to this many tokens: one launch (flags computed inline)

  explicit QuantizeActivations(Device& device);
  // x: [n_tok, cols] f32. threshold <= 0: no outlier split. kpad >= cols, a multiple of 16.
  void run(const Buffer& x, int n_tok, int cols, int kpad, float threshold, const Int8ActivationBuffers& out,
           Event* event = nullptr);
  static int launches(int n_tok, float threshold) { return threshold > 0.0f && n_tok > kInlineTokens ? 2 : 1; }

 private:
  Device& device_;
  Kernel find_outliers_;
  Kernel rows_;
};

}  // namespace quill::host
