// Launchers for the non-matmul kernels of a Llama layer (norm.cl, rope.cl, attention.cl,
// attention_mma.cl, attention_decode.cl, elementwise.cl). One object per session: kernel-argument state is per object. Shapes checked.
#pragma once

#include "host/buffer.hpp"
#include "host/kernel.hpp"

namespace quill::host {

class Device;

struct TransformerKernelOptions {
  bool kv_f32 = false;    // KV cache stored as f32 (else fp16)
  bool embd_f32 = false;  // token embedding table stored as f32 (else fp16)
  // Attention schedule (KEYS_BY_WARP in attention_common.cl): -1 = the device's (by warp on NVIDIA,
  // by work-item elsewhere); 0 / 1 force one (tests run both on every device).
  int keys_by_warp = -1;
  // Prefill attention on the fp16 tensor cores (attention_mma.cl): -1 = where the device has them
  // (NVIDIA sm_80+, fp16 cache, head_dim % 16 == 0, <= 128; $QUILL_ATTENTION_MMA=0 turns it off), 0 = never.
  int prefill_mma = -1;
};

class TransformerKernels {
 public:
  TransformerKernels(Device& device, const TransformerKernelOptions& options);

  // tokens: [n_tok] int32   table: [vocab, dim]   x: [n_tok, dim] f32
  void embed(const Buffer& tokens, const Buffer& table, Buffer& x, int n_tok, int dim);
  // x: [n_tok, dim]   w: [dim]   out: [n_tok, dim]
  void rmsnorm(const Buffer& x, const Buffer& w, Buffer& out, int n_tok, int dim, float eps);
  // qkv: [n_tok, q_dim + 2 kv_dim] -> q: [n_tok, q_dim]; k, v of each token written to the caches
  // ([ctx, kv_dim], this layer's slice starting at cache_offset elements) at position pos0 + t.
  void rope_kv(const Buffer& qkv, Buffer& q, Buffer& k_cache, Buffer& v_cache, int n_tok, int q_dim, int kv_dim,
               int head_dim, int rope_dim, float theta, int pos0);
  // q: [n_tok, n_heads*head_dim]; caches [ctx, kv_dim]; out: [n_tok, n_heads*head_dim]
  void attention(const Buffer& q, const Buffer& k_cache, const Buffer& v_cache, Buffer& out, int n_tok, int n_heads,
                 int n_kv_heads, int head_dim, int pos0);
  // One decode step: qkv [q_dim + 2 kv_dim] of the token at `pos` (unrotated) -> out [q_dim]; RoPE
  // and the cache write fused in. partial: >= decode_partial_bytes(n_ctx, ...); done: [n_heads] int32,
  // zero-filled once (the kernel leaves it zero).
  // prefetch: requested into L2 as the work-groups finish (the next matmul's weights).
  void attention_decode(const Buffer& qkv, Buffer& k_cache, Buffer& v_cache, Buffer& out, Buffer& partial,
                        Buffer& done, int n_heads, int n_kv_heads, int head_dim, int rope_dim, float theta, int pos,
                        const L2Prefetch& prefetch = {});
  static size_t decode_partial_bytes(int n_ctx, int n_heads, int head_dim);

  // gate_up: [n_tok, 2 ffn] -> h: [n_tok, ffn]
  void swiglu(const Buffer& gate_up, Buffer& h, int n_tok, int ffn);

  bool kv_f32() const { return options_.kv_f32; }
  // Whether attention() runs on the tensor cores for this head_dim.
  bool prefill_on_tensor_cores(int head_dim) const;

 private:
  Device& device_;
  TransformerKernelOptions options_;
  size_t norm_wg_;
  Kernel embed_, rmsnorm_, rope_kv_, attention_, attention_decode_, swiglu_;
  Kernel attention_mma_;  // built only where the tensor-core path can run
};

}  // namespace quill::host
