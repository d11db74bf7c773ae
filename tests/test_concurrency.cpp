// Concurrency: sessions on one shared Model driven from several threads at once (each its own Session, as the
// C API allows) produce bit-identical logits and greedy tokens to the same work run serially, for a float, a
// 4-bit table and an int8 scheme. Bounded in time: a fixed number of rounds, stopping early past a deadline.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/model.hpp"
#include "engine/session.hpp"

namespace quill {
namespace {

using Clock = std::chrono::steady_clock;

struct Trace {
  std::vector<int32_t> tokens;             // greedy continuation
  std::vector<std::vector<float>> logits;  // after the prompt and after each token
};

// A greedy continuation of a prompt that depends on `which` (so threads do different work).
Trace run_one(const std::shared_ptr<Model>& model, int which, int n_tokens) {
  Session session(model, {.n_ctx = 64, .max_batch = 4});
  std::vector<int32_t> prompt = {1};
  for (int i = 0; i < 3 + which % 5; ++i) prompt.push_back(int32_t(3 + (which * 37 + i * 11) % 250));
  Trace t;
  session.eval(prompt);
  for (int step = 0; step < n_tokens; ++step) {
    t.logits.push_back(session.logits());
    const auto& l = session.logits();
    const int32_t next = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    t.tokens.push_back(next);
    session.eval(std::span(&next, 1));
  }
  t.logits.push_back(session.logits());
  return t;
}

class Concurrency : public ::testing::TestWithParam<QuantScheme> {};

// Prompts longer than max_batch take several device passes; this is the test that caught a token upload
// reading a host staging buffer the next pass had already overwritten.
TEST_P(Concurrency, ThreadsMatchSerialRuns) {
  ModelOptions o;
  if (const char* env = std::getenv("QUILL_TEST_DEVICE"); env && *env) o.device = env;
  else o.device = "cpu";
  o.scheme = GetParam();
  const auto model = Model::synthetic("tiny", o);
  constexpr int kThreads = 4, kWork = 8, kTokens = 6, kRounds = 3;
  std::vector<Trace> serial;
  for (int w = 0; w < kWork; ++w) serial.push_back(run_one(model, w, kTokens));

  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (int round = 0; round < kRounds && Clock::now() < deadline; ++round) {
    std::vector<Trace> results(kWork);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          for (int w = t; w < kWork; w += kThreads) results[size_t(w)] = run_one(model, w + 0, kTokens);
        } catch (const std::exception& e) {
          errors[size_t(t)] = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) ASSERT_EQ(errors[size_t(t)], "") << "thread " << t;
    for (int w = 0; w < kWork; ++w) {
      ASSERT_EQ(results[size_t(w)].tokens, serial[size_t(w)].tokens) << "round " << round << " work " << w;
      ASSERT_EQ(results[size_t(w)].logits.size(), serial[size_t(w)].logits.size());
      for (size_t s = 0; s < serial[size_t(w)].logits.size(); ++s) {
        const auto& a = results[size_t(w)].logits[s];
        const auto& b = serial[size_t(w)].logits[s];
        ASSERT_EQ(a.size(), b.size());
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
            << "round " << round << " work " << w << " step " << s << ": logits differ from the serial run";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Schemes, Concurrency,
                         ::testing::Values(QuantScheme::F16, QuantScheme::NF4, QuantScheme::LlmInt8),
                         [](const auto& info) {
                           std::string s(scheme_name(info.param));
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace quill
