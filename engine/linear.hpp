// Linear: one weight matrix on the device in one scheme's layout (repacked at upload into what its
// kernel reads best), computing y = x W^T. Immutable after upload and shared by sessions; per-call
// scratch comes from the caller's Workspace. Dequantization is always fused into the matmul.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "engine/quant_scheme.hpp"
#include "engine/quantize_matrix.hpp"
#include "engine/workspace.hpp"
#include "host/buffer.hpp"
#include "host/device.hpp"

namespace quill {

// An optional transform of the matmul input, fused into the kernel where the Linear supports it
// (fuses() says), otherwise applied by a separate kernel into session scratch first:
//   kRmsNorm: x [n_tok, cols] -> rmsnorm(x) * norm_weight (eps)
//   kSwiGlu:  x [n_tok, 2 * cols] = gate | up per token -> silu(gate) * up
struct InputTransform {
  enum class Kind { kNone, kRmsNorm, kSwiGlu };
  Kind kind = Kind::kNone;
  const host::Buffer* norm_weight = nullptr;  // [cols] f32, for kRmsNorm
  float eps = 0.0f;
};

class Linear {
 public:
  Linear(int64_t rows, int64_t cols, QuantScheme scheme) : rows_(rows), cols_(cols), scheme_(scheme) {}
  virtual ~Linear() = default;
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  int64_t rows() const { return rows_; }  // out features
  int64_t cols() const { return cols_; }  // in features
  QuantScheme scheme() const { return scheme_; }

  // x: [n_tok, cols] f32 ([n_tok, 2 cols] for kSwiGlu)   y: [n_tok, rows] f32. accumulate: y += x W^T
  // (the residual-add epilogue); otherwise y = x W^T. Enqueues work on the device's queue; does not
  // wait for it.
  void forward(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace& ws,
               const InputTransform& transform = {});

  // Whether run() applies `transform` itself for this many tokens (no extra launch).
  virtual bool fuses(const InputTransform& transform, int n_tok) const { return false; }

  // The gate / up matmul with SwiGLU applied to its output: this matrix's rows are gate (the first
  // rows / 2) then up, and h: [n_tok, rows / 2] = silu(x W_gate^T) * (x W_up^T). x, transform: as
  // forward. Where fuses_swiglu_output(n_tok) holds, the kernel writes h itself (no extra launch);
  // otherwise the matmul goes to workspace scratch and the SwiGLU kernel follows.
  void forward_swiglu(const host::Buffer& x, host::Buffer& h, int n_tok, Workspace& ws,
                      const InputTransform& transform = {});
  virtual bool fuses_swiglu_output(int n_tok) const { return false; }

  // Device bytes of the weights (what one GEMV reads), and kernel launches per forward.
  virtual uint64_t weight_bytes() const = 0;
  virtual int launches_per_forward(int n_tok) const { return 1; }

  // Decode: the one-token kernel requests `next` into L2 as it finishes, normally the next matmul's
  // l2_head (the model links them once: Model::link_l2_prefetch), so the memory keeps streaming through
  // its tail and the launch gap. Empty: nothing.
  void set_l2_prefetch(const host::L2Prefetch& next) { l2_prefetch_ = next; }
  // The first `bytes` (at most) of what this matmul's one-token kernel reads first; empty if unknown.
  virtual host::L2Prefetch l2_head(size_t bytes) const { return {}; }

 protected:
  // The matmul itself; `transform` is kNone unless fuses() returned true for it.
  virtual void run(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace& ws,
                   const InputTransform& transform) = 0;

  // forward_swiglu's fused form (only called where fuses_swiglu_output(n_tok) and, for a transform,
  // fuses(transform, n_tok) hold).
  virtual void run_swiglu_output(const host::Buffer& x, host::Buffer& h, int n_tok, Workspace& ws,
                                 const InputTransform& transform);

  std::mutex launch_mutex_;       // kernel-argument state is shared: one launch sequence at a time
  host::L2Prefetch l2_prefetch_;  // set_l2_prefetch; run() passes it to one-token kernels

 private:
  int64_t rows_, cols_;  // protected accessors above; cols_ also sizes unfused transforms
  QuantScheme scheme_;
};

// Uploads a quantized matrix (from quantize(): the scheme is the variant's) to the device.
// params: the scheme's parameters (llm-int8 threshold, ...).
std::unique_ptr<Linear> make_linear(host::Device& device, const QuantizedMatrix& q, QuantScheme scheme,
                                    const QuantParams& params);

}  // namespace quill
