// Synthetic Llama-shaped models: deterministic fp32 weights from a seed, with the shapes of real
// families (named presets) and planted outlier feature dimensions like real LLMs have (LLM.int8(),
// Dettmers et al. 2022): a few fixed hidden dimensions that are large (|x| ~ 20) in every token's
// normalized matmul inputs while the other dimensions stay ~N(0, 0.8). Each matrix is generated
// on its own by a counter-based hash, so large presets (7B, 8B) can be produced one matrix at a
// time without holding the whole model in host memory. The recipe is at the top of the .cpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/llama_weights.hpp"

namespace quill {

enum class MatmulWeight { kTokenEmbd, kQ, kK, kV, kO, kGate, kUp, kDown, kOutput };
enum class NormWeight { kAttn, kFfn, kOutput };

struct SyntheticSpec {
  std::string preset = "custom";  // name, for messages
  LlamaConfig config;
  uint64_t seed = 1;
  int n_outliers = 0;              // planted outlier hidden dimensions (0 = none)
  float outlier_residual = 6.0f;   // |token_embd[:, d]| on an outlier dim d (other dims have std 1)
  float outlier_norm_gain = 5.0f;  // attn/ffn/output norm weight on an outlier dim (others ~1 +- 0.1)
};

// "tiny", "stories260k-shape", "llama-2-7b", "llama-3-8b".
std::span<const std::string_view> synthetic_preset_names();
// Throws kInvalidArgument naming the valid presets when `name` is not one of them.
SyntheticSpec synthetic_preset(std::string_view name, uint64_t seed = 1);

// The planted outlier dimensions, ascending (in [0, dim)); empty when n_outliers is 0.
std::vector<int> synthetic_outlier_dims(const SyntheticSpec& spec);

// [rows, cols] of a matrix of this config (nn.Linear layout [out, in]).
std::pair<int64_t, int64_t> synthetic_matrix_shape(const LlamaConfig& config, MatmulWeight which);

// Fills `out` (resized) with one matrix, deterministically from (spec.seed, layer, which) alone.
// `layer` is ignored for kTokenEmbd and kOutput (kOutput is a copy of kTokenEmbd when tied).
// Uses up to hardware_concurrency threads for large matrices; the result does not depend on it.
void synthetic_matrix(const SyntheticSpec& spec, int layer, MatmulWeight which, MatrixF32& out);
// One norm weight vector. [dim]
std::vector<float> synthetic_norm(const SyntheticSpec& spec, int layer, NormWeight which);

// The whole model (built from synthetic_matrix / synthetic_norm). Mind the size: 27 GB for 7B.
LlamaWeightsF32 make_synthetic_llama(const SyntheticSpec& spec);

}  // namespace quill
