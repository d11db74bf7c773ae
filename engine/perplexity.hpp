// Perplexity (and KL divergence against a reference model) of a model on a text, by the protocol
// of QUALITY.md: the text is tokenized as a whole without BOS, cut into consecutive chunks of
// ctx-1 tokens, and each chunk is evaluated as [BOS] + chunk in a fresh session; every position
// that has a next chunk token is scored, so every text token is predicted exactly once. Log-softmax,
// NLL and KL are computed in double with the max subtracted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "engine/model.hpp"
#include "engine/weight_source.hpp"

namespace quill {

struct PerplexityOptions {
  int ctx = 512;           // window length including the BOS: chunks of ctx-1 text tokens (>= 2)
  int64_t max_tokens = 0;  // keep only the first N text tokens (0 = all)
  int max_batch = 256;     // tokens per device pass (SessionOptions::max_batch)
};

// One window: [BOS] + chunk. chunk = text tokens [begin, begin + size).
struct PerplexityWindow {
  int64_t begin = 0;
  int64_t size = 0;
};

// The chunks the protocol cuts n_tokens text tokens into (the last one may be shorter).
std::vector<PerplexityWindow> perplexity_windows(int64_t n_tokens, int ctx);

struct PerplexityResult {
  int64_t tokens = 0;      // text tokens scored (after max_tokens)
  int windows = 0;
  int ctx = 0;
  double nll_sum = 0;      // sum over scored tokens of -log p(token), nats
  double nll_sq_sum = 0;   // sum of squares (for the standard error)
  std::vector<double> window_nll;  // mean NLL of each window

  // With a reference model (KL(reference || model) per position, p = reference, q = model).
  bool has_reference = false;
  double reference_nll_sum = 0;
  double kl_sum = 0;
  double kl_max = 0;
  int64_t top1_agree_count = 0;

  double nll() const { return tokens ? nll_sum / double(tokens) : 0.0; }
  double ppl() const;
  double nll_stderr() const;  // standard error of the mean NLL (tokens treated as independent)
  double reference_nll() const { return tokens ? reference_nll_sum / double(tokens) : 0.0; }
  double reference_ppl() const;
  double kl_mean() const { return tokens ? kl_sum / double(tokens) : 0.0; }
  double top1_agree() const { return tokens ? double(top1_agree_count) / double(tokens) : 0.0; }
};

// Called after each window with (windows done, windows in all).
using PerplexityProgress = std::function<void(int done, int total)>;

// Scores `text_tokens` (tokenized without BOS) with `model`; with `reference` (same vocabulary,
// typically the same weights in f32), also KL(reference || model) and top-1 agreement over the
// same positions. Throws kInvalidArgument for ctx < 2, a ctx past the model's context, a model
// without BOS, or vocabularies that differ.
PerplexityResult compute_perplexity(const std::shared_ptr<Model>& model, std::span<const int32_t> text_tokens,
                                    const PerplexityOptions& options,
                                    const std::shared_ptr<Model>& reference = nullptr,
                                    const PerplexityProgress& progress = {});

// Scoring helpers (exposed for tests), all in double with the max subtracted.
// -log softmax(logits)[target]. [n]
double token_nll(const float* logits, int n, int target);
// KL(softmax(p_logits) || softmax(q_logits)) = sum p (log p - log q). [n]
double kl_divergence(const float* p_logits, const float* q_logits, int n);

// A "fake-quant" weight source: every per-layer matmul of `inner` quantized to `scheme` and
// dequantized again on the CPU (engine/quantize_matrix.hpp), the token embedding and output head
// rounded to fp16 as Model stores them for any scheme other than f32. Loaded as f32, it simulates
// the scheme's weight rounding without its GPU kernel: the independent check of round-to-nearest,
// weight-only schemes (int8 and llm-int8 also quantize activations, which this does not simulate).
std::unique_ptr<WeightSource> fake_quant_weight_source(std::unique_ptr<WeightSource> inner, QuantScheme scheme,
                                                       const QuantParams& params);

}  // namespace quill
