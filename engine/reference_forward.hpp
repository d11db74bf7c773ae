// The CPU reference forward pass of a Llama model (llama2.c run.c semantics), in plain C++ over fp32
// weights with double accumulation: the oracle every GPU test compares against. Slow on purpose:
// one token at a time, no threads, no tricks.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/llama_weights.hpp"

namespace quill {

// Where a matmul reads its input activation. One site per distinct input: q, k and v share one
// (the attn-normed x), so do gate and up (the ffn-normed x). 7 matmuls per layer, 4 sites.
enum class MatmulSite {
  kQkv,     // input of wq, wk, wv: rmsnorm(x) * attn_norm              [dim]
  kWo,      // input of wo: the concatenated attention heads            [n_heads*head_dim]
  kGateUp,  // input of w_gate, w_up: rmsnorm(x) * ffn_norm             [dim]
  kDown,    // input of w_down: silu(gate x) * (up x)                   [ffn_dim]
  kOutput,  // input of the output head: rmsnorm(x) * output_norm       [dim]; layer = n_layers
};

const char* matmul_site_name(MatmulSite site);

// Called once per token per site with the activation the matmul is about to read (for calibration
// and for the planted-outlier tests). x is valid only during the call.
using ActivationHook = std::function<void(int layer, MatmulSite site, const float* x, int dim)>;

struct ReferenceOptions {
  bool fp16_kv_cache = false;  // round K and V to fp16 when cached, as the GPU's fp16 cache does
  int max_seq_len = 0;         // KV cache length; 0 = config.context_length
};

class ReferenceLlama {
 public:
  // Keeps a reference to `weights`: they must outlive this object. Throws kInvalidArgument on
  // inconsistent shapes.
  explicit ReferenceLlama(const LlamaWeightsF32& weights, ReferenceOptions options = {});

  // Runs `token` at position `pos` (positions 0..pos-1 must have been run before, in this cache),
  // returns the logits. [vocab]
  std::vector<float> forward(int token, int pos);

  // Runs tokens at positions start_pos, start_pos+1, ...; returns every position's logits.
  // [tokens.size(), vocab] row-major
  std::vector<float> forward_batch(std::span<const int> tokens, int start_pos);

  void set_activation_hook(ActivationHook hook) { hook_ = std::move(hook); }

  const LlamaConfig& config() const { return w_.config; }
  int max_seq_len() const { return max_seq_len_; }

 private:
  void attention(int layer, int pos);  // xb (normed x) -> xb2 (heads) -> x += wo xb2
  void feed_forward(int layer);        // x -> x += down(silu(gate xb) * up xb)
  void emit(int layer, MatmulSite site, const std::vector<float>& v);

  const LlamaWeightsF32& w_;
  ReferenceOptions options_;
  int max_seq_len_ = 0;
  ActivationHook hook_;

  // Activations of the current token.
  std::vector<float> x_;          // [dim] residual stream
  std::vector<float> xb_;         // [dim] normed x
  std::vector<float> q_;          // [n_heads*head_dim]
  std::vector<float> k_;          // [kv_dim]
  std::vector<float> v_;          // [kv_dim]
  std::vector<float> heads_;      // [n_heads*head_dim] attention output
  std::vector<float> hb_;         // [ffn_dim] gate, then silu(gate) * up
  std::vector<float> hb2_;        // [ffn_dim] up
  std::vector<float> delta_;      // [dim] wo / w_down output before the residual add
  std::vector<double> att_;       // [max_seq_len] scores of one head
  std::vector<float> logits_;     // [vocab]
  std::vector<double> inv_freq_;  // [rope_dim/2] theta^(-2i/rope_dim)

  // KV cache.
  std::vector<float> key_cache_;    // [n_layers, max_seq_len, kv_dim]
  std::vector<float> value_cache_;  // [n_layers, max_seq_len, kv_dim]
};

// y = W x with double accumulation. W [rows, cols], x [cols], y [rows].
void reference_matvec(const MatrixF32& w, const float* x, float* y);
// out = x / sqrt(mean(x^2) + eps) * weight, with the mean in double. [n]
void reference_rmsnorm(const float* x, const float* weight, int n, float eps, float* out);

}  // namespace quill
