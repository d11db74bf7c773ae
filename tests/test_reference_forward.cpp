// The CPU reference forward: golden logits and greedy tokens of stories260K (from the llama2.c .bin
// through a test-only reader, and from the GGUF through the loader), the published perplexity of
// its first TinyStories chunk, and GQA + partial RoPE against an independent full-sequence
// re-computation on a synthetic model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <tuple>
#include <vector>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/llama_loader.hpp"
#include "engine/reference_forward.hpp"
#include "engine/synthetic_model.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

// ---- test-only llama2.c checkpoint reader (legacy version-0 .bin) ----

MatrixF32 read_matrix(std::ifstream& in, int64_t rows, int64_t cols) {
  MatrixF32 m{rows, cols, std::vector<float>(size_t(rows * cols))};
  in.read(reinterpret_cast<char*>(m.data.data()), std::streamsize(m.data.size() * sizeof(float)));
  return m;
}

LlamaWeightsF32 read_llama2c_bin(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  int32_t h[7];  // dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (< 0: untied), seq_len
  in.read(reinterpret_cast<char*>(h), sizeof h);
  LlamaWeightsF32 w;
  LlamaConfig& c = w.config;
  c.name = "stories260K";
  c.dim = h[0];
  c.ffn_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = std::abs(h[5]);
  c.tied_output = h[5] > 0;
  c.context_length = h[6];
  c.rope_dim = c.head_dim();
  const int64_t dim = c.dim, kv_dim = c.kv_dim(), ffn = c.ffn_dim, L = c.n_layers;
  w.token_embd = read_matrix(in, c.vocab_size, dim);
  w.layers.resize(L);
  // llama2.c stores each kind for all layers together: rms_att[L], wq[L], wk[L], ...
  for (auto& l : w.layers) l.attn_norm = read_matrix(in, 1, dim).data;
  for (auto& l : w.layers) l.wq = read_matrix(in, dim, dim);
  for (auto& l : w.layers) l.wk = read_matrix(in, kv_dim, dim);
  for (auto& l : w.layers) l.wv = read_matrix(in, kv_dim, dim);
  for (auto& l : w.layers) l.wo = read_matrix(in, dim, dim);
  for (auto& l : w.layers) l.ffn_norm = read_matrix(in, 1, dim).data;
  for (auto& l : w.layers) l.w_gate = read_matrix(in, ffn, dim);  // w1
  for (auto& l : w.layers) l.w_down = read_matrix(in, dim, ffn);  // w2
  for (auto& l : w.layers) l.w_up = read_matrix(in, ffn, dim);    // w3
  w.output_norm = read_matrix(in, 1, dim).data;
  read_matrix(in, c.context_length, c.head_dim());  // freq_cis_real and _imag (legacy, unused)
  w.output = c.tied_output ? w.token_embd : read_matrix(in, c.vocab_size, dim);
  EXPECT_TRUE(in.good()) << path << " is shorter than its header says";
  return w;
}

struct Golden {
  std::vector<int> sequence;               // greedy_tokens_positions_0_to_63 (65 tokens)
  int n_prompt = 0;                        // the first n_prompt tokens are the prompt
  std::vector<std::vector<float>> logits;  // [8][512] after feeding sequence[p] at p
};

Golden read_golden(const std::filesystem::path& path) {
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in);
  Golden g;
  g.sequence = j.at("greedy_tokens_positions_0_to_63").get<std::vector<int>>();
  g.n_prompt = int(j.at("prompt_tokens").size());
  g.logits = j.at("logits").get<std::vector<std::vector<float>>>();
  return g;
}

int argmax(const std::vector<float>& v) { return int(std::max_element(v.begin(), v.end()) - v.begin()); }

// Runs the golden sequence and checks logits of positions 0..7 (abs `tol`) and greedy tokens 0..63.
void expect_golden(const LlamaWeightsF32& w, const Golden& g, ReferenceOptions options, float tol) {
  ReferenceLlama ref(w, options);
  for (int p = 0; p + 1 < int(g.sequence.size()); ++p) {
    const std::vector<float> logits = ref.forward(g.sequence[p], p);
    if (p < int(g.logits.size())) {
      ASSERT_EQ(logits.size(), g.logits[p].size());
      float max_err = 0;
      for (size_t i = 0; i < logits.size(); ++i) max_err = std::max(max_err, std::fabs(logits[i] - g.logits[p][i]));
      EXPECT_LT(max_err, tol) << "position " << p;
    }
    if (p + 1 >= g.n_prompt) {
      EXPECT_EQ(argmax(logits), g.sequence[p + 1]) << "greedy token after position " << p;
    }
  }
}

TEST(ReferenceForward, Stories260kBinMatchesGoldenLogitsAndGreedyTokens) {
  QUILL_REQUIRE_SHARED_FILE(bin, "stories260K/stories260K.bin");
  QUILL_REQUIRE_SHARED_FILE(json, "stories260K/reference_logits.json");
  const LlamaWeightsF32 w = read_llama2c_bin(bin);
  ASSERT_EQ(w.config.n_kv_heads, 4);               // GQA: 8 heads on 4 kv heads
  expect_golden(w, read_golden(json), {}, 3e-5f);  // measured 6.7e-6
}

TEST(ReferenceForward, Stories260kGgufMatchesGoldenLogitsAndGreedyTokens) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  QUILL_REQUIRE_SHARED_FILE(json, "stories260K/reference_logits.json");
  const LlamaWeightsF32 w = load_llama_weights_f32(GgufFile::open(gguf));
  expect_golden(w, read_golden(json), {}, 3e-5f);  // measured 6.7e-6
}

TEST(ReferenceForward, Fp16KvCacheStaysCloseToGolden) {
  QUILL_REQUIRE_SHARED_FILE(bin, "stories260K/stories260K.bin");
  QUILL_REQUIRE_SHARED_FILE(json, "stories260K/reference_logits.json");
  expect_golden(read_llama2c_bin(bin), read_golden(json), {.fp16_kv_cache = true}, 2e-2f);
}

// ../shared/README.md: [BOS] + the first 511 tokens of the TinyStories sample, every position scored:
// mean NLL 1.311214 nats/token.
TEST(ReferenceForward, Stories260kFirstChunkPerplexity) {
  QUILL_REQUIRE_SHARED_FILE(bin, "stories260K/stories260K.bin");
  QUILL_REQUIRE_SHARED_FILE(text, "tinystories/tinystories_valid_sample.tok512.txt");
  std::ifstream in(text);
  std::vector<int> tokens = {1};  // BOS
  for (int t; tokens.size() < 512 && in >> t;) tokens.push_back(t);
  ASSERT_EQ(tokens.size(), 512u);
  const LlamaWeightsF32 w = read_llama2c_bin(bin);
  ReferenceLlama ref(w);
  const std::vector<float> logits = ref.forward_batch(std::span(tokens).first(511), 0);  // [511, vocab]
  const size_t vocab = size_t(w.config.vocab_size);
  double nll = 0;
  for (size_t p = 0; p < 511; ++p) {
    const float* l = logits.data() + p * vocab;
    const double mx = *std::max_element(l, l + vocab);
    double z = 0;
    for (size_t i = 0; i < vocab; ++i) z += std::exp(l[i] - mx);
    nll += mx + std::log(z) - l[tokens[p + 1]];
  }
  EXPECT_NEAR(nll / 511, 1.311214, 2e-5);
}

// ---- an independent full-sequence re-computation (no KV cache, complex-number RoPE) ----

std::vector<double> matvec(const MatrixF32& m, const std::vector<double>& x) {
  std::vector<double> y(m.rows, 0.0);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) y[r] += m.data[r * m.cols + c] * x[c];
  }
  return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ms = 0;
  for (double v : x) ms += v * v / x.size();
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] / std::sqrt(ms + eps) * w[i];
  return y;
}

// Rotates pairs (2i, 2i+1) of every head_dim-slice as a complex number times e^{i pos theta^(-2i/rope_dim)}.
void rope(std::vector<double>& v, int head_dim, int rope_dim, double theta, int pos) {
  for (size_t h = 0; h < v.size() / head_dim; ++h) {
    for (int i = 0; i < rope_dim / 2; ++i) {
      std::complex<double> z(v[h * head_dim + 2 * i], v[h * head_dim + 2 * i + 1]);
      z *= std::polar(1.0, pos * std::pow(theta, -2.0 * i / rope_dim));
      v[h * head_dim + 2 * i] = z.real();
      v[h * head_dim + 2 * i + 1] = z.imag();
    }
  }
}

// Logits of every position of `tokens` [n][vocab].
std::vector<std::vector<double>> naive_forward(const LlamaWeightsF32& w, const std::vector<int>& tokens) {
  const LlamaConfig& c = w.config;
  const int n = int(tokens.size()), hd = c.head_dim();
  std::vector<std::vector<double>> x(n);  // residual stream of every position
  for (int p = 0; p < n; ++p) x[p].assign(w.token_embd.row(tokens[p]), w.token_embd.row(tokens[p]) + c.dim);
  for (const LlamaLayerWeightsF32& L : w.layers) {
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int p = 0; p < n; ++p) {
      const std::vector<double> xn = rmsnorm(x[p], L.attn_norm, c.norm_eps);
      q[p] = matvec(L.wq, xn);
      k[p] = matvec(L.wk, xn);
      v[p] = matvec(L.wv, xn);
      rope(q[p], hd, c.rope_dim, c.rope_theta, p);
      rope(k[p], hd, c.rope_dim, c.rope_theta, p);
    }
    for (int p = 0; p < n; ++p) {
      std::vector<double> heads(size_t(c.n_heads) * hd, 0.0);
      for (int h = 0; h < c.n_heads; ++h) {
        const int kvh = h * c.n_kv_heads / c.n_heads;  // the same grouping, computed differently
        std::vector<double> s(p + 1);
        for (int t = 0; t <= p; ++t) {
          for (int i = 0; i < hd; ++i) s[t] += q[p][h * hd + i] * k[t][kvh * hd + i] / std::sqrt(double(hd));
        }
        double z = 0;
        for (double e : s) z += std::exp(e);  // small scores: no max subtraction needed here
        for (int t = 0; t <= p; ++t) {
          for (int i = 0; i < hd; ++i) heads[h * hd + i] += std::exp(s[t]) / z * v[t][kvh * hd + i];
        }
      }
      const std::vector<double> o = matvec(L.wo, heads);
      for (int i = 0; i < c.dim; ++i) x[p][i] += o[i];
      const std::vector<double> xn = rmsnorm(x[p], L.ffn_norm, c.norm_eps);
      std::vector<double> g = matvec(L.w_gate, xn), u = matvec(L.w_up, xn);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const std::vector<double> d = matvec(L.w_down, g);
      for (int i = 0; i < c.dim; ++i) x[p][i] += d[i];
    }
  }
  std::vector<std::vector<double>> logits(n);
  for (int p = 0; p < n; ++p) logits[p] = matvec(w.output, rmsnorm(x[p], w.output_norm, c.norm_eps));
  return logits;
}

SyntheticSpec small_gqa_spec() {
  SyntheticSpec spec;
  spec.preset = "test-gqa";
  spec.config.dim = 96;
  spec.config.n_layers = 2;
  spec.config.n_heads = 6;
  spec.config.n_kv_heads = 2;  // groups of 3
  spec.config.ffn_dim = 80;
  spec.config.vocab_size = 64;
  spec.config.context_length = 32;
  spec.config.rope_dim = 8;         // head_dim 16: dims 8..15 of each head are not rotated
  spec.config.rope_theta = 500.0f;  // fast rotation so that the positions matter
  spec.seed = 7;
  spec.n_outliers = 2;
  return spec;
}

TEST(ReferenceForward, GqaAndPartialRopeMatchIndependentRecomputation) {
  const LlamaWeightsF32 w = make_synthetic_llama(small_gqa_spec());
  const std::vector<int> tokens = {3, 17, 17, 60, 0, 42, 5, 33, 9, 63, 1, 2};
  const auto expected = naive_forward(w, tokens);
  ReferenceLlama ref(w);
  const std::vector<float> got = ref.forward_batch(tokens, 0);  // [n, vocab]
  double max_err = 0;
  for (size_t p = 0; p < tokens.size(); ++p) {
    for (int i = 0; i < w.config.vocab_size; ++i) {
      max_err = std::max(max_err, std::fabs(got[p * w.config.vocab_size + i] - expected[p][i]));
    }
  }
  EXPECT_LT(max_err, 1e-4);

  // The check has teeth: a model with full RoPE differs.
  LlamaWeightsF32 full = w;
  full.config.rope_dim = full.config.head_dim();
  ReferenceLlama ref_full(full);
  const std::vector<float> other = ref_full.forward_batch(tokens, 0);
  double diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, double(std::fabs(got[i] - other[i])));
  EXPECT_GT(diff, 1e-2);
}

TEST(ReferenceForward, ForwardBatchEqualsForwardAndHookSeesEverySite) {
  const LlamaWeightsF32 w = make_synthetic_llama(small_gqa_spec());
  const LlamaConfig& c = w.config;
  const std::vector<int> tokens = {5, 6, 7, 8};
  ReferenceLlama one(w), batch(w);
  std::vector<float> single;
  for (size_t p = 0; p < tokens.size(); ++p) {
    const std::vector<float> l = one.forward(tokens[p], int(p));
    single.insert(single.end(), l.begin(), l.end());
  }
  std::vector<std::tuple<int, MatmulSite, int>> calls;
  batch.set_activation_hook(
      [&](int layer, MatmulSite site, const float*, int dim) { calls.emplace_back(layer, site, dim); });
  EXPECT_EQ(batch.forward_batch(tokens, 0), single);  // bit-identical

  ASSERT_EQ(calls.size(), tokens.size() * (4 * c.n_layers + 1));
  const int q_dim = c.n_heads * c.head_dim();
  const std::vector<std::tuple<int, MatmulSite, int>> first_token = {
      {0, MatmulSite::kQkv, c.dim},      {0, MatmulSite::kWo, q_dim},       {0, MatmulSite::kGateUp, c.dim},
      {0, MatmulSite::kDown, c.ffn_dim}, {1, MatmulSite::kQkv, c.dim},      {1, MatmulSite::kWo, q_dim},
      {1, MatmulSite::kGateUp, c.dim},   {1, MatmulSite::kDown, c.ffn_dim}, {2, MatmulSite::kOutput, c.dim}};
  EXPECT_EQ(std::vector(calls.begin(), calls.begin() + first_token.size()), first_token);
}

TEST(ReferenceForward, Fp16CacheOptionRoundsTheCache) {
  const LlamaWeightsF32 w = make_synthetic_llama(small_gqa_spec());
  ReferenceLlama f32(w), f16(w, {.fp16_kv_cache = true});
  double diff = 0;
  for (int p = 0; p < 6; ++p) {
    const auto a = f32.forward(p + 1, p), b = f16.forward(p + 1, p);
    for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, double(std::fabs(a[i] - b[i])));
  }
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 1e-2);
}

TEST(ReferenceForward, BadInputsThrowErrors) {
  LlamaWeightsF32 w = make_synthetic_llama(small_gqa_spec());
  ReferenceLlama ref(w, {.max_seq_len = 4});
  auto kind_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::kInternal;
  };
  EXPECT_EQ(kind_of([&] { ref.forward(-1, 0); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { ref.forward(64, 0); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { ref.forward(1, 4); }), ErrorKind::kContextFull);
  EXPECT_EQ(kind_of([&] { ref.forward_batch(std::vector<int>{1, 2, 3}, 2); }), ErrorKind::kContextFull);
  w.layers[1].wk.rows -= 1;
  EXPECT_EQ(kind_of([&] { ReferenceLlama bad(w); }), ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace quill
