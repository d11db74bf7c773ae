// End-to-end: the device forward (Model + Session on PoCL) against the reference logits of
// stories260K and the CPU reference forward of a synthetic model.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/llama_loader.hpp"
#include "engine/reference_forward.hpp"
#include "engine/session.hpp"
#include "engine/synthetic_model.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

ModelOptions cpu_options(QuantScheme scheme) {
  ModelOptions o;
  o.device = "cpu";
  if (const char* env = std::getenv("QUILL_TEST_DEVICE"); env && *env) o.device = env;
  o.scheme = scheme;
  return o;
}

int argmax(const float* v, int n) { return int(std::max_element(v, v + n) - v); }

TEST(Session, Stories260kF32MatchesReferenceLogitsAndGreedyTokens) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  QUILL_REQUIRE_SHARED_FILE(ref_path, "stories260K/reference_logits.json");
  const auto ref = nlohmann::json::parse(std::ifstream(ref_path));
  const std::vector<int32_t> greedy = ref["greedy_tokens_positions_0_to_63"].get<std::vector<int32_t>>();
  const auto ref_logits = ref["logits"].get<std::vector<std::vector<float>>>();

  auto model = Model::load_gguf(gguf.string(), cpu_options(QuantScheme::F32));
  EXPECT_EQ(model->tokenizer().encode("Once upon a time"), ref["prompt_tokens"].get<std::vector<int32_t>>());
  Session session(model);
  const int vocab = model->config().vocab_size;
  std::vector<int32_t> generated;
  for (size_t p = 0; p + 1 < greedy.size(); ++p) {
    session.eval(std::span<const int32_t>(&greedy[p], 1));
    const float* logits = session.logits().data();
    if (p < ref_logits.size()) {
      float max_abs = 0;
      for (float v : ref_logits[p]) max_abs = std::max(max_abs, std::fabs(v));
      for (int i = 0; i < vocab; ++i)
        ASSERT_NEAR(logits[i], ref_logits[p][size_t(i)], 1e-4 * max_abs) << "position " << p << " logit " << i;
    }
    if (p + 1 >= 5) generated.push_back(argmax(logits, vocab));  // after the prompt: greedy continuation
  }
  const std::vector<int32_t> expected(greedy.begin() + 5, greedy.end());
  EXPECT_EQ(generated, expected);
}

TEST(Session, Stories260kGreedyContinuationsEqualTheCpuReference) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  auto model = Model::load_gguf(gguf.string(), cpu_options(QuantScheme::F32));
  const LlamaWeightsF32 weights = load_llama_weights_f32(GgufFile::open(gguf));
  const int vocab = model->config().vocab_size;
  for (const char* prompt : {"Tom and his dog", "The sun was hot. Sara", "One day, a little bird"}) {
    const std::vector<int32_t> tokens = model->tokenizer().encode(prompt, true);
    Session session(model);
    session.eval(tokens);
    ReferenceLlama reference(weights);
    std::vector<float> ref_logits;
    for (size_t i = 0; i < tokens.size(); ++i) ref_logits = reference.forward(tokens[i], int(i));
    std::vector<int32_t> got, want;
    for (int step = 0; step < 24; ++step) {
      got.push_back(argmax(session.logits().data(), vocab));
      want.push_back(argmax(ref_logits.data(), vocab));
      ASSERT_EQ(got, want) << "prompt '" << prompt << "' diverged at step " << step;
      session.eval(std::span<const int32_t>(&got.back(), 1));
      ref_logits = reference.forward(want.back(), int(tokens.size()) + step);
    }
  }
}

TEST(Session, PromptBatchEqualsTokenByToken) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  auto model = Model::load_gguf(gguf.string(), cpu_options(QuantScheme::F32));
  const std::vector<int32_t> prompt = model->tokenizer().encode("Lily went to the park with her dog.");
  Session batch(model, {.max_batch = 4});  // several batches
  batch.eval(prompt, /*all_logits=*/true);
  Session single(model);
  const int vocab = model->config().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i) {
    single.eval(std::span<const int32_t>(&prompt[i], 1));
    for (int v = 0; v < vocab; ++v)
      ASSERT_NEAR(batch.logits()[i * size_t(vocab) + size_t(v)], single.logits()[size_t(v)], 2e-4) << i << " " << v;
  }
}

TEST(Session, SyntheticTinyMatchesCpuReference) {
  const SyntheticSpec spec = synthetic_preset("tiny", 7);
  auto model = Model::synthetic("tiny", cpu_options(QuantScheme::F32), 7);
  const LlamaWeightsF32 weights = make_synthetic_llama(spec);
  ReferenceLlama reference(weights);
  const std::vector<int32_t> tokens = {1, 300, 17, 42, 511, 260, 3, 99};
  Session session(model);
  session.eval(tokens, /*all_logits=*/true);
  const auto want = reference.forward_batch(tokens, 0);
  const int vocab = model->config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i) {
    float max_abs = 0;
    for (int v = 0; v < vocab; ++v) max_abs = std::max(max_abs, std::fabs(want[i * size_t(vocab) + size_t(v)]));
    for (int v = 0; v < vocab; ++v)
      ASSERT_NEAR(session.logits()[i * size_t(vocab) + size_t(v)], want[i * size_t(vocab) + size_t(v)], 2e-4 * max_abs)
          << "token " << i << " logit " << v;
  }
}

TEST(Session, LongDecodeMatchesPrefill) {
  // 300 tokens: decode attention splits past position 256; prefill uses the batched kernels.
  auto model = Model::synthetic("tiny", cpu_options(QuantScheme::F32), 3);
  std::vector<int32_t> tokens(300);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 37 + 11) % 500);
  Session prefill(model, {.n_ctx = 320});
  prefill.eval(tokens);
  Session decode(model, {.n_ctx = 320});
  for (int32_t t : tokens) decode.eval(std::span<const int32_t>(&t, 1));
  const int vocab = model->config().vocab_size;
  float max_abs = 0;
  for (float v : prefill.logits()) max_abs = std::max(max_abs, std::fabs(v));
  for (int v = 0; v < vocab; ++v)
    ASSERT_NEAR(decode.logits()[size_t(v)], prefill.logits()[size_t(v)], 1e-4 * max_abs) << "logit " << v;
}

// Decode's L2 prefetch chain (Model::link_l2_prefetch): attention requests wo's first bytes, at most
// $QUILL_L2_PREFETCH_MIB; a bad value is refused when the model loads. The prefetch itself changes no
// result (the decode tests above run with it).
TEST(Session, L2PrefetchChainAndItsSetting) {
  ::setenv("QUILL_L2_PREFETCH_MIB", "0.001", 1);  // 1048 bytes
  auto model = Model::synthetic("tiny", cpu_options(QuantScheme::F16));
  for (const ModelLayer& layer : model->layers()) {
    EXPECT_EQ(layer.attention_prefetch.bytes, 1048u);
    EXPECT_EQ(layer.attention_prefetch.buffer, layer.wo->l2_head(1048).buffer);
    ASSERT_NE(layer.attention_prefetch.buffer, nullptr);
  }
  ::setenv("QUILL_L2_PREFETCH_MIB", "lots", 1);
  try {
    Model::synthetic("tiny", cpu_options(QuantScheme::F16));
    ::unsetenv("QUILL_L2_PREFETCH_MIB");
    FAIL() << "a bad QUILL_L2_PREFETCH_MIB must be refused";
  } catch (const Error& e) {
    ::unsetenv("QUILL_L2_PREFETCH_MIB");
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("QUILL_L2_PREFETCH_MIB"), std::string::npos);
  }
}

TEST(Session, RejectsBadTokensAndContextOverflow) {
  auto model = Model::synthetic("tiny", cpu_options(QuantScheme::F16));
  Session session(model, {.n_ctx = 4});
  const std::vector<int32_t> bad = {1, model->config().vocab_size};
  try {
    session.eval(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
  EXPECT_EQ(session.position(), 0);  // nothing evaluated
  const std::vector<int32_t> three = {1, 2, 3};
  session.eval(three);
  try {
    session.eval(three);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kContextFull);
  }
  EXPECT_EQ(session.position(), 3);
  const std::vector<int32_t> one = {5};
  session.eval(one);  // still usable
  EXPECT_EQ(session.position(), 4);
}

}  // namespace
}  // namespace quill
