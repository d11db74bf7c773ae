// Token sampling (see sampler.hpp). The chain is llama.cpp's default order: penalties -> top-k ->
// top-p -> min-p -> temperature -> draw. Top-k, top-p and min-p each keep a prefix of the tokens
// sorted by (logit desc, id asc), so their result is the shortest of the three prefixes; min-p is
// therefore applied first as a cheap linear filter so that only its survivors get sorted, while
// top-p still normalizes over the whole top-k set exactly as llama.cpp does.
#include "engine/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"

namespace quill {

SamplerParams sampler_default_params() { return SamplerParams{}; }

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
  const SamplerParams& p = params_;
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    fail(ErrorKind::kInvalidArgument, "sampler: temperature {} must be finite and >= 0", p.temperature);
  }
  if (p.top_k < 0) fail(ErrorKind::kInvalidArgument, "sampler: top_k {} must be >= 0 (0 = off)", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    fail(ErrorKind::kInvalidArgument, "sampler: top_p {} must be in (0, 1] (1 = off)", p.top_p);
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    fail(ErrorKind::kInvalidArgument, "sampler: min_p {} must be in [0, 1] (0 = off)", p.min_p);
  }
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
    fail(ErrorKind::kInvalidArgument, "sampler: repeat_penalty {} must be finite and > 0 (1 = off)", p.repeat_penalty);
  }
  if (p.repeat_last_n < -1) {
    fail(ErrorKind::kInvalidArgument, "sampler: repeat_last_n {} must be >= -1 (0 = off, -1 = all)", p.repeat_last_n);
  }
}

int Sampler::sample(const float* logits, int n_vocab, std::span<const int> history) {
  if (logits == nullptr || n_vocab <= 0) fail(ErrorKind::kInvalidArgument, "sampler: no logits (n_vocab {})", n_vocab);
  penalized_.assign(logits, logits + n_vocab);
  for (int i = 0; i < n_vocab; ++i) {
    if (std::isnan(penalized_[i])) fail(ErrorKind::kInvalidArgument, "sampler: logit of token {} is NaN", i);
  }

  // 1. Repetition penalty, once per distinct token of the window.
  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n != 0) {
    const size_t n =
        params_.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(params_.repeat_last_n));
    std::vector<int> window(history.end() - n, history.end());
    for (int t : window) {
      if (t < 0 || t >= n_vocab) {
        fail(ErrorKind::kInvalidArgument, "sampler: history token {} outside the vocabulary [0, {})", t, n_vocab);
      }
    }
    std::sort(window.begin(), window.end());
    window.erase(std::unique(window.begin(), window.end()), window.end());
    for (int t : window) {
      float& l = penalized_[t];
      l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }

  const auto best = std::max_element(penalized_.begin(), penalized_.end());  // first maximum = lowest id
  const float max_logit = *best;
  if (max_logit == -INFINITY) fail(ErrorKind::kInvalidArgument, "sampler: every logit is -inf");
  if (params_.temperature == 0.0f || max_logit == INFINITY) return int(best - penalized_.begin());

  const auto before = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };

  // 2. Top-k (0 = off).
  candidates_.clear();
  for (int i = 0; i < n_vocab; ++i) {
    if (penalized_[i] != -INFINITY) candidates_.push_back({penalized_[i], i});
  }
  if (params_.top_k > 0 && size_t(params_.top_k) < candidates_.size()) {
    std::nth_element(candidates_.begin(), candidates_.begin() + (params_.top_k - 1), candidates_.end(), before);
    candidates_.resize(params_.top_k);
  }

  // Softmax normalizer (temperature 1) over the top-k set, for top-p.
  double z = 0;
  for (const Candidate& c : candidates_) z += std::exp(double(c.logit) - max_logit);

  // 4. (applied early, see the top of the file) Min-p: keep p >= min_p * p_max.
  if (params_.min_p > 0.0f) {
    const double floor = double(max_logit) + std::log(double(params_.min_p));
    std::erase_if(candidates_, [&](const Candidate& c) { return double(c.logit) < floor; });
  }
  std::sort(candidates_.begin(), candidates_.end(), before);

  // 3. Top-p: the shortest prefix whose probability reaches top_p.
  if (params_.top_p < 1.0f) {
    double cumulative = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cumulative += std::exp(double(candidates_[i].logit) - max_logit) / z;
      if (cumulative >= params_.top_p) {
        candidates_.resize(i + 1);
        break;
      }
    }
  }

  // 5. Temperature, then a draw from the renormalized distribution.
  probs_.resize(candidates_.size());
  double total = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    total += probs_[i] = std::exp((double(candidates_[i].logit) - max_logit) / params_.temperature);
  }
  const double target = rng_.uniform() * total;
  double cumulative = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += probs_[i];
    if (target < cumulative) return candidates_[i].id;
  }
  return candidates_.back().id;  // rounding at the very end of the cumulative sum
}

}  // namespace quill
