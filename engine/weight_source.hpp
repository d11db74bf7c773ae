// WeightSource: where a model's fp32 weights come from, one matrix at a time (a GGUF file, or the
// synthetic generator), so a 7B model is quantized and uploaded without holding it all in fp32.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/gguf.hpp"
#include "engine/llama_config.hpp"
#include "engine/llama_weights.hpp"
#include "engine/quantize_ggml.hpp"
#include "engine/synthetic_model.hpp"
#include "engine/tokenizer.hpp"

namespace quill {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const LlamaConfig& config() const = 0;
  virtual std::string description() const = 0;
  // nn.Linear layout [out, in]; kTokenEmbd and kOutput are [vocab, dim] (kOutput = token_embd when tied).
  virtual MatrixF32 matrix(int layer, MatmulWeight which) const = 0;
  virtual std::vector<float> norm(int layer, NormWeight which) const = 0;
  virtual Tokenizer tokenizer() const = 0;
  // The matrix in its stored GGUF block format when that is exactly `scheme` (Q8_0 for q8_0, Q4_0 for
  // int4), so it is uploaded as stored instead of dequantized and quantized again; nullopt otherwise.
  virtual std::optional<GgmlBlockMatrix> native_blocks(int layer, MatmulWeight which, QuantScheme scheme) const {
    return std::nullopt;
  }
  // Outlier feature dimensions known up front (planted in synthetic models); empty otherwise.
  virtual std::vector<int32_t> known_outlier_dims() const { return {}; }
};

// A llama-architecture GGUF file (memory-mapped; tensors dequantized on demand).
std::unique_ptr<WeightSource> gguf_weight_source(const std::string& path);
// A synthetic model preset (synthetic_preset_names()), deterministic from the seed.
std::unique_ptr<WeightSource> synthetic_weight_source(const std::string& preset, uint64_t seed = 1);

// A small SentencePiece-style vocabulary for synthetic models: the special tokens, 256 byte-fallback
// tokens, then single characters and common English pieces up to vocab_size.
Tokenizer synthetic_tokenizer(int vocab_size);

}  // namespace quill
