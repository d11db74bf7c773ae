// The sampler: greedy and its ties, top-k/top-p/min-p exclusions over many seeded draws, the
// repetition penalty's llama.cpp semantics, seeding, the temperature distribution, bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/error.hpp"
#include "engine/sampler.hpp"

namespace quill {
namespace {

SamplerParams no_filters(float temperature, uint64_t seed = 42) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

// Logits whose softmax (temperature 1) is exactly `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}

std::vector<int> histogram(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[s.sample(logits.data(), int(logits.size()), {})];
  return counts;
}

TEST(Sampler, GreedyPicksArgmaxAndLowestIdOnTies) {
  Sampler s(no_filters(0.0f));
  const std::vector<float> l = {0.5f, 3.0f, -2.0f, 2.9f};
  EXPECT_EQ(s.sample(l.data(), 4, {}), 1);
  const std::vector<float> tie = {1.0f, 7.0f, 7.0f, -INFINITY, 7.0f};
  EXPECT_EQ(s.sample(tie.data(), 5, {}), 1);
  const std::vector<float> first = {7.0f, 7.0f};
  EXPECT_EQ(s.sample(first.data(), 2, {}), 0);
}

TEST(Sampler, TopK1IsGreedy) {
  std::vector<float> l(1000);
  for (int i = 0; i < 1000; ++i) l[i] = float(std::sin(i * 0.37) * 3.0);
  Sampler greedy(no_filters(0.0f));
  const int want = greedy.sample(l.data(), 1000, {});
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SamplerParams p = no_filters(1.5f, seed);
    p.top_k = 1;
    Sampler s(p);
    EXPECT_EQ(s.sample(l.data(), 1000, {}), want);
  }
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferent) {
  std::vector<float> l(64);
  for (int i = 0; i < 64; ++i) l[i] = float(std::cos(i * 1.3));
  auto run = [&](uint64_t seed) {
    Sampler s(no_filters(1.0f, seed));
    std::vector<int> out;
    for (int i = 0; i < 100; ++i) out.push_back(s.sample(l.data(), 64, {}));
    return out;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
  // Pinned values (from an independent Python implementation): the same stream on every platform.
  uint64_t state = 0;
  EXPECT_EQ(splitmix64(state), 0xe220a8397b1dcdafull);
  Xoshiro256 r(12345);
  EXPECT_EQ(r.next(), 0xbe6a36374160d49bull);
  EXPECT_EQ(r.next(), 0x214aaa0637a688c6ull);
  EXPECT_EQ(r.next(), 0xf69d16de9954d388ull);
}

TEST(Sampler, TopKExcludesAllButK) {
  SamplerParams p = no_filters(1.0f);
  p.top_k = 2;
  Sampler s(p);
  const auto counts = histogram(s, logits_of({0.2, 0.3, 0.1, 0.25, 0.15}), 4000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[3], 0);
}

TEST(Sampler, TopPExcludesTheTail) {
  SamplerParams p = no_filters(1.0f);
  p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.5 + 0.3: keeps tokens 2 and 0
  Sampler s(p);
  const auto counts = histogram(s, logits_of({0.3, 0.05, 0.5, 0.15}), 4000);
  EXPECT_EQ(counts[1] + counts[3], 0);
  EXPECT_GT(counts[0], 1000);
  EXPECT_GT(counts[2], 1000);
}

TEST(Sampler, TopPUsesUntemperedProbabilitiesLikeLlamaCpp) {
  SamplerParams p = no_filters(5.0f);  // hot: without top-p all four would be drawn often
  p.top_p = 0.55f;                     // the first token alone has 0.6 at temperature 1
  Sampler s(p);
  const auto counts = histogram(s, logits_of({0.6, 0.2, 0.15, 0.05}), 1000);
  EXPECT_EQ(counts[0], 1000);
}

TEST(Sampler, MinPExcludesUnlikelyTokens) {
  SamplerParams p = no_filters(1.0f);
  p.min_p = 0.2f;  // p_max 0.5: keeps p >= 0.1
  Sampler s(p);
  const auto counts = histogram(s, logits_of({0.05, 0.5, 0.3, 0.09, 0.06}), 4000);
  EXPECT_EQ(counts[0] + counts[3] + counts[4], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(Sampler, CombinedFiltersKeepTheShortestPrefix) {
  SamplerParams p = no_filters(1.0f);
  p.top_k = 3;
  p.top_p = 0.99f;
  p.min_p = 0.5f;  // p_max 0.4: keeps p >= 0.2 -> tokens 0 (0.4) and 1 (0.25)
  Sampler s(p);
  const auto counts = histogram(s, logits_of({0.4, 0.25, 0.19, 0.16}), 4000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_GT(counts[1], 0);
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerParams p = no_filters(0.0f);
  p.repeat_penalty = 1.2f;
  p.repeat_last_n = 2;
  Sampler s(p);
  const std::vector<float> pos = {2.0f, 1.8f, -1.0f};  // 2.0 / 1.2 = 1.67 < 1.8
  EXPECT_EQ(s.sample(pos.data(), 3, std::vector<int>{0}), 1);
  EXPECT_EQ(s.sample(pos.data(), 3, std::vector<int>{2, 0, 0, 0}), 1);  // once per token, not per occurrence
  EXPECT_EQ(s.sample(pos.data(), 3, std::vector<int>{1}), 0);
  const std::vector<float> neg = {-1.0f, -1.1f};  // -1.0 * 1.2 = -1.2 < -1.1
  EXPECT_EQ(s.sample(neg.data(), 2, std::vector<int>{0}), 1);
  // Outside the window of the last 2 tokens: no penalty.
  EXPECT_EQ(s.sample(pos.data(), 3, std::vector<int>{0, 2, 2}), 0);

  p.repeat_last_n = -1;  // the whole history
  Sampler all(p);
  EXPECT_EQ(all.sample(pos.data(), 3, std::vector<int>{0, 2, 2, 2, 2}), 1);
  p.repeat_last_n = 0;  // off
  Sampler off(p);
  EXPECT_EQ(off.sample(pos.data(), 3, std::vector<int>{0}), 0);
}

TEST(Sampler, TemperatureDistributionMatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.5f, -1.0f, 0.7f};
  const float temperature = 0.7f;
  Sampler s(no_filters(temperature, 2024));
  const int draws = 40000;
  const auto counts = histogram(s, logits, draws);
  double z = 0;
  for (float l : logits) z += std::exp(l / temperature);
  double chi2 = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double expected = draws * std::exp(logits[i] / temperature) / z;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  EXPECT_LT(chi2, 26.1) << "7 degrees of freedom: p < 0.0005";  // fixed seed: deterministic
  // A wrong temperature would fail: compare against the temperature-1 softmax.
  double z1 = 0, chi2_wrong = 0;
  for (float l : logits) z1 += std::exp(l);
  for (size_t i = 0; i < logits.size(); ++i) {
    const double expected = draws * std::exp(logits[i]) / z1;
    chi2_wrong += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  EXPECT_GT(chi2_wrong, 100.0);
}

TEST(Sampler, BadInputsThrow) {
  auto kind_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::kInternal;
  };
  auto with = [](auto change) {
    SamplerParams p;
    change(p);
    return p;
  };
  EXPECT_EQ(kind_of([&] { Sampler(with([](SamplerParams& p) { p.temperature = -1; })); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Sampler(with([](SamplerParams& p) { p.temperature = NAN; })); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Sampler(with([](SamplerParams& p) { p.top_k = -3; })); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Sampler(with([](SamplerParams& p) { p.top_p = 0; })); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Sampler(with([](SamplerParams& p) { p.min_p = 1.5f; })); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Sampler(with([](SamplerParams& p) { p.repeat_penalty = 0; })); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Sampler(with([](SamplerParams& p) { p.repeat_last_n = -2; })); }),
            ErrorKind::kInvalidArgument);

  SamplerParams p = sampler_default_params();
  p.repeat_penalty = 1.1f;
  Sampler s(p);
  const std::vector<float> nan = {1.0f, NAN};
  EXPECT_EQ(kind_of([&] { s.sample(nan.data(), 2, {}); }), ErrorKind::kInvalidArgument);
  const std::vector<float> dead = {-INFINITY, -INFINITY};
  EXPECT_EQ(kind_of([&] { s.sample(dead.data(), 2, {}); }), ErrorKind::kInvalidArgument);
  const std::vector<float> ok = {1.0f, 2.0f};
  EXPECT_EQ(kind_of([&] { s.sample(ok.data(), 2, std::vector<int>{5}); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { s.sample(nullptr, 2, {}); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { s.sample(ok.data(), 0, {}); }), ErrorKind::kInvalidArgument);
}

TEST(Sampler, DefaultChainOnALargeVocabularyIsFastAndValid) {
  std::vector<float> l(128256);
  for (size_t i = 0; i < l.size(); ++i) l[i] = float(std::sin(double(i) * 0.001) * 4.0 + (i % 7) * 0.1);
  Sampler s(sampler_default_params());
  std::vector<int> history;
  for (int i = 0; i < 50; ++i) {
    const int t = s.sample(l.data(), int(l.size()), history);
    ASSERT_GE(t, 0);
    ASSERT_LT(t, int(l.size()));
    history.push_back(t);
  }
}

}  // namespace
}  // namespace quill
