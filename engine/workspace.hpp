// Workspace: scratch device buffers owned by one session and lent to the kernels it runs (e.g. the
// int8 activation codes of a Linear). Buffers are keyed by (owner, slot) and grow, never shrink, so
// steady-state decode allocates nothing.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <utility>

#include "host/buffer.hpp"
#include "host/device.hpp"
#include "host/transformer_kernels.hpp"

namespace quill {

class Workspace {
 public:
  explicit Workspace(host::Device& device) : device_(device) {}

  // Slots with owner nullptr shared by every Linear of the session.
  static constexpr int kTransformedInputSlot = 1;
  static constexpr int kGemmInputSlot = 2;       // the prefill GEMM's converted x (host::GemmDequant)
  static constexpr int kGemmInputScaleSlot = 3;  // and its block scales
  static constexpr int kInt8OutlierSlot = 4;     // 4 .. 8: host::Int8OutlierScratch (llm-int8 prefill)
  static constexpr int kSwigluOutputSlot = 9;    // Linear::forward_swiglu's gate | up when not fused

  // A buffer of at least `bytes` for (owner, slot); contents are unspecified.
  host::Buffer& get(const void* owner, int slot, size_t bytes) {
    host::Buffer& b = buffers_[{owner, slot}];
    if (b.empty() || b.bytes() < bytes) b = host::Buffer(device_, std::max<size_t>(bytes, 16));
    return b;
  }
  host::Device& device() { return device_; }
  // This session's launchers for norm / SwiGLU (unfused input transforms).
  host::TransformerKernels& kernels() {
    if (!kernels_) kernels_ = std::make_unique<host::TransformerKernels>(device_, host::TransformerKernelOptions{});
    return *kernels_;
  }

 private:
  host::Device& device_;
  std::map<std::pair<const void*, int>, host::Buffer> buffers_;
  std::unique_ptr<host::TransformerKernels> kernels_;
};

}  // namespace quill
