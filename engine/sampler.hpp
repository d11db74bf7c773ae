// Picks the next token from logits: repetition penalty, top-k, top-p, min-p, temperature and a
// seeded draw, in the order of llama.cpp's default chain. Deterministic for a given seed on every
// platform (own xoshiro256**, no std distributions).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/rng.hpp"

namespace quill {

struct SamplerParams {
  float temperature = 0.8f;     // 0 = greedy (argmax after the penalty; ties -> lowest token id)
  int top_k = 40;               // keep the k most likely; 0 = off
  float top_p = 0.95f;          // keep the smallest prefix whose probability reaches p; 1 = off
  float min_p = 0.05f;          // keep tokens with p >= min_p * p_max; 0 = off
  float repeat_penalty = 1.0f;  // logit > 0: divided, logit <= 0: multiplied; 1 = off
  int repeat_last_n = 64;       // penalty window over the end of the history; 0 = off, -1 = all of it
  uint64_t seed = 0;
};

SamplerParams sampler_default_params();

class Sampler {
 public:
  // Throws kInvalidArgument on out-of-range parameters (temperature < 0, top_p outside (0, 1], ...).
  explicit Sampler(const SamplerParams& params);

  // logits [n_vocab]; history = the tokens so far (prompt and generated), for the penalty.
  // Throws kInvalidArgument on a NaN logit, all logits -inf, or a history token outside [0, n_vocab).
  int sample(const float* logits, int n_vocab, std::span<const int> history);

  const SamplerParams& params() const { return params_; }
  void reseed(uint64_t seed) { rng_.reseed(seed); }

 private:
  struct Candidate {
    float logit;
    int id;
  };

  SamplerParams params_;
  Xoshiro256 rng_;
  std::vector<float> penalized_;       // [n_vocab]
  std::vector<Candidate> candidates_;  // [<= n_vocab]
  std::vector<double> probs_;          // [candidates]
};

}  // namespace quill
