// Launcher for kernels/decode_layer.cl: one decode step of a Llama layer whose four matmuls are
// gemv_stream phases of one format (int4, q8_0, nf4, fp4), in ONE persistent launch with grid barriers
// between its five phases, instead of five launches. NVIDIA path only: a grid barrier needs every
// work-group resident at once, which the host ensures by launching one work-group per compute unit
// (each fits: <= 128 registers for 512 work-items, < 48 KiB of local memory) on an otherwise idle
// in-order queue. If that ever fails, the barriers give up after 50 ms and raise a flag, and
// check_barriers() turns it into an error instead of a hang.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/buffer.hpp"
#include "host/kernel.hpp"
#include "host/matmul_lut.hpp"
#include "host/transformer_kernels.hpp"

namespace quill::host {

class Device;

// One layer's decode step. Shapes: dim = the residual width, q_dim = n_heads * head_dim, kv_dim =
// n_kv_heads * head_dim, ffn = the FFN width.
struct DecodeLayerStep {
  const LutWeights *qkv, *wo, *gate_up, *down;  // [q_dim + 2 kv_dim, dim], [dim, q_dim], [2 ffn, dim], [dim, ffn]
  Buffer *x;                                    // [dim] f32 residual stream, updated in place
  Buffer *qkv_out, *att, *gate_up_out;          // [q_dim + 2 kv_dim], [q_dim], [2 ffn] f32 scratch
  const Buffer *attn_norm, *ffn_norm;           // [dim] f32
  float eps;
  Buffer *k_cache, *v_cache;                    // [n_ctx, kv_dim] (fp16, or f32 with kv_f32)
  Buffer *partial, *done;                       // attention_decode's scratch (TransformerKernels)
  int n_heads, n_kv_heads, head_dim, rope_dim;
  float theta;
  int pos;               // the token's position
  size_t prefetch_bytes; // how much of each next matrix to request into L2
  L2Prefetch next;       // what follows the layer (the next layer's qkv head, or the output head's)
};

class DecodeLayer {
 public:
  static constexpr int kWorkGroup = 512;
  // Whether this device runs it: the NVIDIA path (inline PTX), and $QUILL_DECODE_LAYER is not 0.
  static bool available(const Device& device);

  // format: the launcher of the four matrices (its gemv_stream flags); attention: the session's
  // attention launchers (their flags, for kWorkGroup work-items, and the cache's element type).
  DecodeLayer(Device& device, const MatmulLut& format, const TransformerKernels& attention);
  ~DecodeLayer();  // measurement builds (DL_STAMPS): logs the last launch's phase times
  DecodeLayer(const DecodeLayer&) = delete;
  DecodeLayer& operator=(const DecodeLayer&) = delete;

  // Runs layer `layer`'s step. Each layer has its own kernel object whose arguments are set once and
  // again only when one of them changes (a buffer reallocated); per token only the position and the
  // barrier count change (3 of its 80 arguments: clSetKernelArg costs the host as much as a launch).
  void run(int layer, const DecodeLayerStep& step);

  // Queues a non-blocking read of the barriers' failure flag; after the queue's next synchronization,
  // check_barriers() throws (kDevice) if any barrier since construction waited past 50 ms.
  void fetch_failure_flag();
  void check_barriers() const;

 private:
  struct LayerKernel {
    Kernel kernel;
    size_t signature = 0;  // of the arguments other than pos, n_splits, sync_base (0: none set)
  };
  size_t signature(const DecodeLayerStep& step) const;
  void set_all_args(Kernel& k, const DecodeLayerStep& step);

  Device& device_;
  std::shared_ptr<const Program> program_;
  bool stamps_;  // a DL_STAMPS build
  std::vector<LayerKernel> layers_;
  Buffer sync_count_;   // [1] uint: grid-barrier arrivals, never reset (wraps)
  Buffer sync_failed_;  // [1] uint: nonzero once a barrier timed out (DL_STAMPS: then the stamps at byte 256)
  uint32_t sync_base_ = 0;
  uint32_t failed_ = 0;  // filled by fetch_failure_flag
  size_t groups_;
  size_t kv_elem_;       // bytes per cache element
  Buffer dummy_;         // bound to the weight arguments a format does not use
};

}  // namespace quill::host
