// A Llama model's weights in fp32 on the host: what a GGUF file or the synthetic generator yields
// before quantization and upload, and what the CPU reference forward reads.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/llama_config.hpp"

namespace quill {

// A weight matrix in nn.Linear layout: y = W x, W is [rows = out features, cols = in features],
// row-major (GGUF's ne[0] = cols is the contiguous dimension).
struct MatrixF32 {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;  // [rows, cols]

  const float* row(int64_t r) const { return data.data() + r * cols; }
  float* row(int64_t r) { return data.data() + r * cols; }
};

struct LlamaLayerWeightsF32 {
  std::vector<float> attn_norm;  // [dim]
  MatrixF32 wq;                  // [n_heads*head_dim, dim]
  MatrixF32 wk;                  // [n_kv_heads*head_dim, dim]
  MatrixF32 wv;                  // [n_kv_heads*head_dim, dim]
  MatrixF32 wo;                  // [dim, n_heads*head_dim]
  std::vector<float> ffn_norm;   // [dim]
  MatrixF32 w_gate;              // [ffn_dim, dim]   (ffn_gate)
  MatrixF32 w_up;                // [ffn_dim, dim]   (ffn_up)
  MatrixF32 w_down;              // [dim, ffn_dim]   (ffn_down)
};

struct LlamaWeightsF32 {
  LlamaConfig config;
  MatrixF32 token_embd;  // [vocab, dim]
  std::vector<LlamaLayerWeightsF32> layers;
  std::vector<float> output_norm;  // [dim]
  MatrixF32 output;                // [vocab, dim]; a copy of token_embd when tied
};

}  // namespace quill
