// Synthetic models: presets and their shapes, determinism, weight statistics, and — through the
// reference forward — planted outlier dims (|x| >= 6 in exactly those dims of every normalized
// matmul input, the rest below ~3) and logits that are finite and not degenerate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/reference_forward.hpp"
#include "engine/synthetic_model.hpp"

namespace quill {
namespace {

TEST(SyntheticModel, PresetsAndTheirShapes) {
  const auto names = synthetic_preset_names();
  ASSERT_EQ(names.size(), 4u);
  for (std::string_view n : names) EXPECT_EQ(synthetic_preset(n).preset, n);

  const LlamaConfig l2 = synthetic_preset("llama-2-7b").config;
  EXPECT_EQ(l2.dim, 4096);
  EXPECT_EQ(l2.n_layers, 32);
  EXPECT_EQ(l2.n_heads, 32);
  EXPECT_EQ(l2.n_kv_heads, 32);
  EXPECT_EQ(l2.ffn_dim, 11008);
  EXPECT_EQ(l2.vocab_size, 32000);
  EXPECT_EQ(l2.context_length, 4096);
  EXPECT_EQ(l2.rope_dim, 128);
  EXPECT_FALSE(l2.tied_output);

  const LlamaConfig l3 = synthetic_preset("llama-3-8b").config;
  EXPECT_EQ(l3.n_kv_heads, 8);
  EXPECT_EQ(l3.ffn_dim, 14336);
  EXPECT_EQ(l3.vocab_size, 128256);
  EXPECT_EQ(l3.rope_theta, 500000.0f);
  EXPECT_EQ(l3.context_length, 8192);

  const LlamaConfig tiny = synthetic_preset("tiny").config;
  EXPECT_LT(tiny.n_kv_heads, tiny.n_heads);  // GQA
  EXPECT_NE(tiny.ffn_dim % 64, 0);
  EXPECT_EQ(synthetic_preset("stories260k-shape").config.dim, 64);

  try {
    synthetic_preset("llama-4");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    for (std::string_view n : names) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(SyntheticModel, DeterministicAcrossCallsAndSeedDependent) {
  const SyntheticSpec spec = synthetic_preset("tiny", 3);
  const LlamaWeightsF32 a = make_synthetic_llama(spec), b = make_synthetic_llama(spec);
  EXPECT_EQ(a.token_embd.data, b.token_embd.data);
  for (int l = 0; l < spec.config.n_layers; ++l) {
    EXPECT_EQ(a.layers[l].wq.data, b.layers[l].wq.data);
    EXPECT_EQ(a.layers[l].w_down.data, b.layers[l].w_down.data);
    EXPECT_EQ(a.layers[l].ffn_norm, b.layers[l].ffn_norm);
  }
  EXPECT_EQ(a.output.data, b.output.data);
  EXPECT_NE(a.layers[0].wq.data, a.layers[1].wq.data);
  EXPECT_NE(a.layers[0].w_gate.data, a.layers[0].w_up.data);

  const LlamaWeightsF32 other = make_synthetic_llama(synthetic_preset("tiny", 4));
  EXPECT_NE(a.layers[0].wq.data, other.layers[0].wq.data);

  // Matrix by matrix == whole model (what the GPU engine does for 7B shapes).
  MatrixF32 m;
  synthetic_matrix(spec, 2, MatmulWeight::kV, m);
  EXPECT_EQ(m.data, a.layers[2].wv.data);
  EXPECT_EQ(synthetic_norm(spec, 1, NormWeight::kAttn), a.layers[1].attn_norm);
  EXPECT_EQ(synthetic_outlier_dims(spec), synthetic_outlier_dims(spec));
}

TEST(SyntheticModel, LargeMatrixStatistics) {
  // One 7B-shaped matrix (45M values, threaded): N(0, 1/fan_in)-ish, outlier columns scaled down.
  const SyntheticSpec spec = synthetic_preset("llama-2-7b");
  MatrixF32 m;
  synthetic_matrix(spec, 31, MatmulWeight::kGate, m);
  ASSERT_EQ(m.rows, 11008);
  ASSERT_EQ(m.cols, 4096);
  const std::vector<int> outliers = synthetic_outlier_dims(spec);
  ASSERT_EQ(outliers.size(), 6u);
  const std::set<int> out(outliers.begin(), outliers.end());
  double sum = 0, sq = 0, out_sq = 0;
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) {
      const double v = m.data[r * m.cols + c];
      if (out.count(int(c))) {
        out_sq += v * v;
      } else {
        sum += v;
        sq += v * v;
      }
    }
  }
  const double n = double(m.rows) * (m.cols - 6);
  EXPECT_NEAR(sum / n * 64, 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(sq / n) * 64, 1.0, 1e-3);  // std * sqrt(fan_in 4096)
  EXPECT_LT(std::sqrt(out_sq / (m.rows * 6.0)) * 64, 0.1);
  // Different layers differ; the same call gives the same bits.
  MatrixF32 again;
  synthetic_matrix(spec, 31, MatmulWeight::kGate, again);
  EXPECT_EQ(again.data, m.data);
}

struct OutlierStats {
  std::map<MatmulSite, double> min_outlier, max_other;
  std::map<MatmulSite, std::set<int>> int8_outlier_columns;  // LLM.int8(): any |x| >= 6
  std::map<MatmulSite, int64_t> above3, others;
};

// Runs `n` pseudo-random tokens and records the normalized inputs' statistics.
OutlierStats run_and_measure(const LlamaWeightsF32& w, const std::vector<int>& outliers, int n,
                             std::set<int>* argmaxes) {
  OutlierStats s;
  const std::set<int> out(outliers.begin(), outliers.end());
  ReferenceLlama ref(w);
  ref.set_activation_hook([&](int, MatmulSite site, const float* x, int dim) {
    if (site == MatmulSite::kWo || site == MatmulSite::kDown) return;  // not hidden-dim inputs
    if (!s.min_outlier.count(site)) s.min_outlier[site] = INFINITY;
    for (int i = 0; i < dim; ++i) {
      const double a = std::fabs(x[i]);
      if (a >= 6.0) s.int8_outlier_columns[site].insert(i);
      if (out.count(i)) {
        s.min_outlier[site] = std::min(s.min_outlier[site], a);
      } else {
        s.max_other[site] = std::max(s.max_other[site], a);
        s.above3[site] += a > 3.0;
        ++s.others[site];
      }
    }
  });
  uint64_t t = 1;
  for (int p = 0; p < n; ++p) {
    t = (t * 6364136223846793005ull + 1442695040888963407ull);
    const std::vector<float> logits = ref.forward(int((t >> 33) % uint64_t(w.config.vocab_size)), p);
    for (float l : logits) EXPECT_TRUE(std::isfinite(l));
    argmaxes->insert(int(std::max_element(logits.begin(), logits.end()) - logits.begin()));
  }
  return s;
}

TEST(SyntheticModel, TinyHasPlantedOutliersAndSaneLogits) {
  const SyntheticSpec spec = synthetic_preset("tiny");
  const std::vector<int> outliers = synthetic_outlier_dims(spec);
  ASSERT_EQ(int(outliers.size()), spec.n_outliers);
  const LlamaWeightsF32 w = make_synthetic_llama(spec);
  std::set<int> argmaxes;
  const int n = 48;
  OutlierStats s = run_and_measure(w, outliers, n, &argmaxes);
  const std::set<int> want(outliers.begin(), outliers.end());
  for (MatmulSite site : {MatmulSite::kQkv, MatmulSite::kGateUp, MatmulSite::kOutput}) {
    SCOPED_TRACE(matmul_site_name(site));
    EXPECT_GE(s.min_outlier[site], 12.0);  // measured ~17..26
    EXPECT_LT(s.max_other[site], 4.5);     // measured ~3.2
    EXPECT_LT(double(s.above3[site]) / s.others[site], 1e-3);
    EXPECT_EQ(s.int8_outlier_columns[site], want);  // threshold 6 finds exactly the planted dims
  }
  EXPECT_GE(int(argmaxes.size()), n / 2);  // not degenerate
}

TEST(SyntheticModel, TiedStoriesShapeHasPlantedOutliersAndSaneLogits) {
  const SyntheticSpec spec = synthetic_preset("stories260k-shape");
  const LlamaWeightsF32 w = make_synthetic_llama(spec);
  EXPECT_TRUE(w.config.tied_output);
  EXPECT_EQ(w.output.data, w.token_embd.data);
  const std::vector<int> outliers = synthetic_outlier_dims(spec);
  std::set<int> argmaxes;
  OutlierStats s = run_and_measure(w, outliers, 48, &argmaxes);
  const std::set<int> want(outliers.begin(), outliers.end());
  for (MatmulSite site : {MatmulSite::kQkv, MatmulSite::kGateUp}) {  // tied: no gain on output_norm
    SCOPED_TRACE(matmul_site_name(site));
    EXPECT_GE(s.min_outlier[site], 12.0);
    EXPECT_LT(s.max_other[site], 4.5);
    EXPECT_EQ(s.int8_outlier_columns[site], want);
  }
  EXPECT_GE(int(argmaxes.size()), 24);
}

TEST(SyntheticModel, NoOutliersWhenAskedAndBadSpecsThrow) {
  SyntheticSpec spec = synthetic_preset("tiny");
  spec.n_outliers = 0;
  EXPECT_TRUE(synthetic_outlier_dims(spec).empty());
  const LlamaWeightsF32 w = make_synthetic_llama(spec);
  std::set<int> argmaxes;
  OutlierStats s = run_and_measure(w, {}, 8, &argmaxes);
  EXPECT_LT(s.max_other[MatmulSite::kQkv], 6.0);

  MatrixF32 m;
  EXPECT_THROW(synthetic_matrix(spec, spec.config.n_layers, MatmulWeight::kQ, m), Error);
  EXPECT_THROW(synthetic_norm(spec, -1, NormWeight::kFfn), Error);
  spec.config.n_kv_heads = 3;  // 8 heads do not split into 3 groups
  EXPECT_THROW(make_synthetic_llama(spec), Error);
}

}  // namespace
}  // namespace quill
