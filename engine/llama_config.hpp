// Hyper-parameters of a Llama-family transformer, as read from GGUF metadata or chosen for a
// synthetic model.
#pragma once

#include <cstdint>
#include <string>

namespace quill {

struct LlamaConfig {
  std::string name = "llama";
  int32_t dim = 0;             // hidden size (llama.embedding_length)
  int32_t n_layers = 0;        // llama.block_count
  int32_t n_heads = 0;         // llama.attention.head_count
  int32_t n_kv_heads = 0;      // llama.attention.head_count_kv (GQA when < n_heads)
  int32_t ffn_dim = 0;         // llama.feed_forward_length
  int32_t vocab_size = 0;      // rows of token_embd
  int32_t context_length = 0;  // llama.context_length
  int32_t rope_dim = 0;        // llama.rope.dimension_count (defaults to head_dim)
  float rope_theta = 10000.0f;     // llama.rope.freq_base
  float norm_eps = 1e-5f;          // llama.attention.layer_norm_rms_epsilon
  bool tied_output = false;        // output head shares token_embd

  int32_t head_dim() const { return n_heads ? dim / n_heads : 0; }
  int32_t kv_dim() const { return n_kv_heads * head_dim(); }
};

}  // namespace quill
