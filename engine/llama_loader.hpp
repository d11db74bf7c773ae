// GGUF -> Llama: reads LlamaConfig from a GgufFile with general.architecture = llama, checks every tensor's shape
// against it, and dequantizes the weights to LlamaWeightsF32 (or hands out the raw tensors for native formats).
//
// Q/K weights and RoPE: llama.cpp's converters store attn_q/attn_k permuted so that llama.cpp's "normal" RoPE,
// which rotates interleaved pairs (2i, 2i+1) of each head, is the model's rotation. quill's forward uses that same
// interleaved-pair RoPE, so the loader does NOT un-permute anything: rows come out exactly as stored. For a
// llama2.c-converted model (stories260K) this is exactly llama2.c's rotation (its .bin and the .gguf hold
// bit-identical Q/K). A forward that rotates halves (NeoX style, HF layout) would need the inverse permutation.
#pragma once

#include <string>
#include <vector>

#include "engine/gguf.hpp"
#include "engine/llama_config.hpp"
#include "engine/llama_weights.hpp"

namespace quill {

// Name of a per-layer tensor: llama_layer_tensor_name(3, "attn_q") == "blk.3.attn_q.weight".
std::string llama_layer_tensor_name(int layer, const char* what);

// Reads and sanity-checks the hyper-parameters (kFormat for an unsupported architecture, a missing key, values that
// do not fit together). vocab_size comes from token_embd's rows; tied_output is set when output.weight is absent.
LlamaConfig read_llama_config(const GgufFile& file);

// The file's tensors for one Llama model, views into the mapping (valid while the GgufFile lives), each with its
// stored type and bytes, shape-checked against the config. output == token_embd when the head is tied.
struct LlamaLayerTensors {
  const GgufTensor* attn_norm;  // [dim]
  const GgufTensor* wq;         // ne = [dim, n_heads*head_dim]
  const GgufTensor* wk;         // ne = [dim, n_kv_heads*head_dim]
  const GgufTensor* wv;         // ne = [dim, n_kv_heads*head_dim]
  const GgufTensor* wo;         // ne = [n_heads*head_dim, dim]
  const GgufTensor* ffn_norm;   // [dim]
  const GgufTensor* w_gate;     // ne = [dim, ffn_dim]
  const GgufTensor* w_up;       // ne = [dim, ffn_dim]
  const GgufTensor* w_down;     // ne = [ffn_dim, dim]
};
struct LlamaTensors {
  LlamaConfig config;
  const GgufTensor* token_embd;  // ne = [dim, vocab]
  std::vector<LlamaLayerTensors> layers;
  const GgufTensor* output_norm;  // [dim]
  const GgufTensor* output;       // ne = [dim, vocab]; == token_embd when config.tied_output
};

// Config + every tensor located and shape-checked (kFormat "missing tensor" / "shape mismatch" naming the tensor).
LlamaTensors find_llama_tensors(const GgufFile& file);

// Dequantizes one tensor (any type of engine/ggml_types.hpp) into nn.Linear layout [rows = ne[1..], cols = ne[0]].
MatrixF32 dequantize_matrix(const GgufTensor& tensor);
std::vector<float> dequantize_vector(const GgufTensor& tensor);

// The whole model in fp32; output is a copy of token_embd when tied.
LlamaWeightsF32 load_llama_weights_f32(const GgufFile& file);

}  // namespace quill
