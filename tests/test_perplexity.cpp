// Perplexity: the window protocol and scoring against an independent computation on the CPU
// reference forward, the stories260K reference numbers, KL divergence, and the fake-quant
// simulation against the device kernels of each weight-only scheme.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include "engine/error.hpp"
#include "engine/perplexity.hpp"
#include "engine/reference_forward.hpp"
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

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// -log softmax(logits)[target] the slow way: long double, no max trick needed at these magnitudes.
long double slow_nll(const float* logits, int n, int target) {
  long double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp((long double)logits[i] - (long double)logits[target]);
  return std::log(sum);
}

TEST(Perplexity, WindowsCoverTheTextOnceInChunksOfCtxMinusOne) {
  const auto w = perplexity_windows(1000, 512);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].begin, 0);
  EXPECT_EQ(w[0].size, 511);
  EXPECT_EQ(w[1].begin, 511);
  EXPECT_EQ(w[1].size, 489);
  EXPECT_EQ(perplexity_windows(1022, 512).size(), 2u);
  EXPECT_EQ(perplexity_windows(1023, 512).size(), 3u);
  EXPECT_TRUE(perplexity_windows(0, 512).empty());
  EXPECT_EQ(perplexity_windows(5, 2).size(), 5u);
  EXPECT_THROW(perplexity_windows(10, 1), Error);
}

TEST(Perplexity, ScoringIsStableInDouble) {
  const std::vector<float> logits = {1e4f, 1e4f - 1.0f, 1e4f - 50.0f, -1e4f};
  const double lse = 1e4 + std::log(1 + std::exp(-1.0) + std::exp(-50.0));
  EXPECT_NEAR(token_nll(logits.data(), 4, 0), lse - 1e4, 1e-12);
  EXPECT_NEAR(token_nll(logits.data(), 4, 3), lse + 1e4, 1e-9);
  EXPECT_EQ(kl_divergence(logits.data(), logits.data(), 4), 0.0);
  // Two outcomes: p = (0.5, 0.5), q = softmax(0, log 3) = (0.25, 0.75).
  const std::vector<float> p = {0, 0}, q = {0, float(std::log(3.0))};
  EXPECT_NEAR(kl_divergence(p.data(), q.data(), 2), 0.5 * std::log(2.0) + 0.5 * std::log(0.5 / 0.75), 1e-7);
}

// The protocol on the synthetic tiny model against the CPU reference forward, window by window,
// with a last window shorter than the others and --max-tokens.
TEST(Perplexity, SyntheticTinyMatchesIndependentReferenceComputation) {
  const uint64_t seed = test::test_seed();
  std::mt19937_64 rng(seed);
  auto model = Model::synthetic("tiny", cpu_options(QuantScheme::F32), 3);
  const int vocab = model->config().vocab_size;
  const int32_t bos = model->tokenizer().bos_id();
  std::uniform_int_distribution<int32_t> token(3, vocab - 1);
  std::vector<int32_t> text(45);
  for (auto& t : text) t = token(rng);
  const int ctx = 17;
  const int64_t max_tokens = 42;  // windows of 16, 16, 10; the last 3 tokens dropped

  const PerplexityResult r = compute_perplexity(model, text, {.ctx = ctx, .max_tokens = max_tokens, .max_batch = 5});
  ASSERT_EQ(r.tokens, max_tokens);
  ASSERT_EQ(r.windows, 3);

  const LlamaWeightsF32 weights = make_synthetic_llama(synthetic_preset("tiny", 3));
  long double total = 0;
  for (int w = 0; w < 3; ++w) {
    const int begin = w * (ctx - 1), size = std::min<int>(ctx - 1, int(max_tokens) - begin);
    std::vector<int> window = {bos};  // [BOS] + the whole chunk (its last position is computed, not scored)
    window.insert(window.end(), text.begin() + begin, text.begin() + begin + size);
    ReferenceLlama reference(weights);  // fresh KV cache per window
    const std::vector<float> logits = reference.forward_batch(window, 0);
    long double window_sum = 0;
    for (int i = 0; i < size; ++i) window_sum += slow_nll(&logits[size_t(i) * vocab], vocab, window[size_t(i) + 1]);
    EXPECT_NEAR(r.window_nll[size_t(w)], double(window_sum / size), 2e-4) << "window " << w << " seed " << seed;
    total += window_sum;
  }
  EXPECT_NEAR(r.nll(), double(total / max_tokens), 1e-4) << "seed " << seed;
  EXPECT_NEAR(r.ppl(), std::exp(r.nll()), 1e-12);
}

TEST(Perplexity, RejectsBadOptions) {
  auto model = Model::synthetic("tiny", cpu_options(QuantScheme::F32));
  const std::vector<int32_t> text = {5, 6, 7};
  EXPECT_THROW(compute_perplexity(model, text, {.ctx = 1}), Error);
  EXPECT_THROW(compute_perplexity(model, text, {.ctx = model->config().context_length + 1}), Error);
  const std::vector<int32_t> bad = {5, model->config().vocab_size};
  EXPECT_THROW(compute_perplexity(model, bad, {.ctx = 8}), Error);
}

TEST(Perplexity, Stories260kTokenizesLikeTheReferenceIds) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  QUILL_REQUIRE_SHARED_FILE(text, "tinystories/tinystories_valid_sample.txt");
  QUILL_REQUIRE_SHARED_FILE(ids_path, "tinystories/tinystories_valid_sample.tok512.txt");
  std::ifstream ids_in(ids_path);
  const std::vector<int32_t> ids{std::istream_iterator<int32_t>(ids_in), std::istream_iterator<int32_t>()};
  auto model = Model::load_gguf(gguf.string(), cpu_options(QuantScheme::F32));
  const std::vector<int32_t> tokens = model->tokenizer().encode(read_file(text), false);
  ASSERT_EQ(tokens.size(), 31480u);
  EXPECT_EQ(tokens, ids);
}

// ../shared/README.md: window 0 alone 1.311214; windows 1-3 1.530058, 1.362200, 1.422128.
TEST(Perplexity, Stories260kFirstWindowsMatchReference) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  QUILL_REQUIRE_SHARED_FILE(text, "tinystories/tinystories_valid_sample.txt");
  auto model = Model::load_gguf(gguf.string(), cpu_options(QuantScheme::F32));
  const std::vector<int32_t> tokens = model->tokenizer().encode(read_file(text), false);
  const PerplexityResult r = compute_perplexity(model, tokens, {.ctx = 512, .max_tokens = 2 * 511});
  ASSERT_EQ(r.windows, 2);
  ASSERT_EQ(r.tokens, 2 * 511);
  const double want[4] = {1.311214, 1.530058, 1.362200, 1.422128};
  for (int w = 0; w < 2; ++w) EXPECT_NEAR(r.window_nll[size_t(w)], want[w], 2e-5) << "window " << w;
}

// The whole sample: mean NLL 1.444317, perplexity 4.2390 (62 windows, the last of 309 tokens).
// About a minute on PoCL with 2 cores, so disabled by default; run it with
//   quill_tests --gtest_also_run_disabled_tests --gtest_filter='Perplexity.*WholeSample*'
// or `quill perplexity -m stories260K.gguf -f tinystories_valid_sample.txt -d cpu` (docs/QUALITY.md).
TEST(Perplexity, DISABLED_Stories260kWholeSampleMatchesReference) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  QUILL_REQUIRE_SHARED_FILE(text, "tinystories/tinystories_valid_sample.txt");
  auto model = Model::load_gguf(gguf.string(), cpu_options(QuantScheme::F32));
  const std::vector<int32_t> tokens = model->tokenizer().encode(read_file(text), false);
  int calls = 0;
  const PerplexityResult r = compute_perplexity(model, tokens, {.ctx = 512}, nullptr, [&](int done, int total) {
    EXPECT_EQ(done, ++calls);
    EXPECT_EQ(total, 62);
  });
  EXPECT_EQ(calls, 62);
  EXPECT_EQ(r.tokens, 31480);
  EXPECT_EQ(r.windows, 62);
  EXPECT_NEAR(r.nll(), 1.444317, 2e-5);
  EXPECT_NEAR(r.ppl(), 4.2390, 1e-4);
}

std::vector<int32_t> synthetic_text(const Model& model) {
  return model.tokenizer().encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day she saw "
      "a big red ball in the park and ran to get it. Her mom said: be careful!",
      false);
}

TEST(Perplexity, KlOfF32AgainstItselfIsZeroAndF16IsSmall) {
  auto f32 = Model::synthetic("tiny", cpu_options(QuantScheme::F32));
  auto f32_again = Model::synthetic("tiny", cpu_options(QuantScheme::F32));
  const std::vector<int32_t> text = synthetic_text(*f32);
  ASSERT_GT(text.size(), 60u);
  const PerplexityOptions options{.ctx = 64};
  const PerplexityResult same = compute_perplexity(f32_again, text, options, f32);
  ASSERT_TRUE(same.has_reference);
  EXPECT_LT(same.kl_mean(), 1e-9);
  EXPECT_EQ(same.top1_agree(), 1.0);
  EXPECT_NEAR(same.nll(), same.reference_nll(), 1e-9);

  auto f16 = Model::synthetic("tiny", cpu_options(QuantScheme::F16));
  const PerplexityResult half = compute_perplexity(f16, text, options, f32);
  EXPECT_NEAR(half.reference_nll(), same.nll(), 1e-9);
  EXPECT_GT(half.kl_mean(), 0.0);
  EXPECT_LT(half.kl_mean(), 1e-3);
  EXPECT_GT(half.top1_agree(), 0.95);
  EXPECT_NEAR(half.ppl() / half.reference_ppl(), 1.0, 0.01);
}

// The fake-quant source: weights as dequantize(quantize(w)), the embedding rounded to fp16.
TEST(Perplexity, FakeQuantSourceRoundsWeightsAsTheQuantizerDoes) {
  auto source = fake_quant_weight_source(synthetic_weight_source("tiny", 2), QuantScheme::NF4, {});
  auto plain = synthetic_weight_source("tiny", 2);
  const MatrixF32 w = plain->matrix(1, MatmulWeight::kDown);
  EXPECT_EQ(source->matrix(1, MatmulWeight::kDown).data, dequantize(quantize(w, QuantScheme::NF4)).data);
  const MatrixF32 e = plain->matrix(0, MatmulWeight::kTokenEmbd), fe = source->matrix(0, MatmulWeight::kTokenEmbd);
  for (size_t i = 0; i < e.data.size(); i += 97) EXPECT_NEAR(fe.data[i], e.data[i], 1e-3f * std::fabs(e.data[i]));
  EXPECT_EQ(source->norm(0, NormWeight::kAttn), plain->norm(0, NormWeight::kAttn));
  EXPECT_EQ(source->config().dim, plain->config().dim);
}

// Each weight-only round-to-nearest scheme's device kernels against its fake-quant simulation run
// through the f32 path: the same perplexity within 1% (a scheme without a kernel yet is skipped).
class PerplexityVsFakeQuant : public ::testing::TestWithParam<const char*> {};

TEST_P(PerplexityVsFakeQuant, DeviceSchemeMatchesSimulation) {
  const QuantScheme scheme = parse_quant_scheme(GetParam());
  std::shared_ptr<Model> model;
  try {
    model = Model::synthetic("tiny", cpu_options(scheme));
  } catch (const Error& e) {
    if (std::string(e.what()).find("no GPU kernel") != std::string::npos) GTEST_SKIP() << e.what();
    throw;
  }
  auto simulated = std::make_shared<Model>(*fake_quant_weight_source(synthetic_weight_source("tiny"), scheme, {}),
                                           cpu_options(QuantScheme::F32));
  const std::vector<int32_t> text = synthetic_text(*model);
  const PerplexityResult r = compute_perplexity(model, text, {.ctx = 64}, simulated);
  EXPECT_NEAR(r.ppl() / r.reference_ppl(), 1.0, 0.01) << GetParam();
  EXPECT_LT(r.kl_mean(), 0.01) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(WeightOnlySchemes, PerplexityVsFakeQuant,
                         ::testing::Values("f16", "q8_0", "dyn8", "nf4", "fp4", "int4", "kmeans4"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace quill
