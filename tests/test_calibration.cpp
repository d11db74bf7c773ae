// Calibration: the |x| histogram (exact growth), the four range methods on known distributions, the
// JSON round trip, stats of the planted-outlier synthetic model (its outlier dims found exactly), and
// the I8/I16/I32 ggml types quill's quantized GGUF files use.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/calibration.hpp"
#include "engine/error.hpp"
#include "engine/ggml_types.hpp"
#include "engine/synthetic_model.hpp"

namespace quill {
namespace {

TEST(CalibrationHistogram, GrowsByDoublingWithExactCounts) {
  AbsHistogram h(8);
  const float a[] = {0.3f, -0.1f, 0.0f};
  h.add(a, 3);
  EXPECT_DOUBLE_EQ(h.range(), 0.5);  // first nonzero 0.3 -> next power of two above it
  EXPECT_EQ(h.total(), 3u);
  EXPECT_EQ(h.counts()[0], 1u);  // 0.0
  EXPECT_EQ(h.counts()[1], 1u);  // 0.1 in [0.0625, 0.125)
  EXPECT_EQ(h.counts()[4], 1u);  // 0.3 in [0.25, 0.3125)
  const float b[] = {1.7f};
  h.add(b, 1);  // 0.5 -> 1 -> 2
  EXPECT_DOUBLE_EQ(h.range(), 2.0);
  EXPECT_EQ(h.total(), 4u);
  EXPECT_EQ(h.counts()[0], 2u);  // 0.0 and 0.1 merged into [0, 0.25)
  EXPECT_EQ(h.counts()[1], 1u);  // 0.3
  EXPECT_EQ(h.counts()[6], 1u);  // 1.7 in [1.5, 1.75)
}

TEST(CalibrationRanges, PercentileMseEntropyOnKnownDistributions) {
  // Uniform |x| over [0, 1): every method keeps (nearly) the whole range.
  AbsHistogram u(2048);
  std::vector<float> xs;
  for (int i = 0; i < 200000; ++i) xs.push_back((float(i) + 0.5f) / 200000.0f);
  u.add(xs.data(), int64_t(xs.size()));
  EXPECT_NEAR(histogram_percentile_amax(u, 99.99), 1.0, 1e-3);
  EXPECT_NEAR(histogram_percentile_amax(u, 50.0), 0.5, 1e-3);
  EXPECT_GT(histogram_mse_amax(u), 0.95);
  EXPECT_GT(histogram_entropy_amax(u), 0.9);

  // Gaussian plus one huge outlier: absmax is the outlier, the others clip far below it.
  std::mt19937_64 rng(7);
  std::normal_distribution<float> n(0.0f, 1.0f);
  AbsHistogram g(2048);
  std::vector<float> gs(1000000);
  for (float& v : gs) v = n(rng);
  gs[0] = 100.0f;
  g.add(gs.data(), int64_t(gs.size()));
  const double p = histogram_percentile_amax(g, 99.99), mse = histogram_mse_amax(g), ent = histogram_entropy_amax(g);
  EXPECT_GT(p, 3.0);
  EXPECT_LT(p, 6.0);
  EXPECT_LT(mse, 30.0);   // a single outlier in 1e6 is not worth its rounding cost
  EXPECT_LT(ent, 100.0);
  EXPECT_GT(mse, 2.0);
  EXPECT_GT(ent, 2.0);
  // Clip candidates start at bin 128 of 2048 (range 128 here: 8.0).
  EXPECT_GE(mse, 128 * g.bin_width() - 1e-9);
  EXPECT_GE(ent, 128 * g.bin_width() - 1e-9);
}

TEST(CalibrationRanges, MethodNames) {
  for (RangeMethod m : kRangeMethods) EXPECT_EQ(parse_range_method(range_method_name(m)), m);
  EXPECT_THROW(parse_range_method("max"), Error);
}

class CalibrationSynthetic : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = synthetic_weight_source("tiny").release();
    std::vector<int32_t> text;
    std::mt19937_64 rng(3);
    for (int i = 0; i < 96; ++i) text.push_back(int32_t(3 + rng() % 400));
    stats_ = new CalibrationStats(calibrate(*source_, text, {.ctx = 48}));
  }
  static void TearDownTestSuite() {
    delete stats_;
    delete source_;
  }
  static WeightSource* source_;
  static CalibrationStats* stats_;
};
WeightSource* CalibrationSynthetic::source_ = nullptr;
CalibrationStats* CalibrationSynthetic::stats_ = nullptr;

TEST_F(CalibrationSynthetic, FindsThePlantedOutlierDims) {
  const LlamaConfig& c = source_->config();
  ASSERT_EQ(stats_->sites.size(), size_t(4 * c.n_layers + 1));
  EXPECT_EQ(stats_->tokens, 96);
  const std::vector<int32_t> planted = source_->known_outlier_dims();
  ASSERT_FALSE(planted.empty());
  EXPECT_EQ(stats_->outlier_dims(), planted);
  const SiteStats& s = stats_->at(0, MatmulSite::kQkv);
  EXPECT_EQ(s.dim, c.dim);
  // 96 tokens in windows of [BOS] + 47: three windows (47, 47, 2), each position seen once.
  EXPECT_EQ(s.tokens, 96 + 3);
  for (int32_t d : planted) EXPECT_GE(s.channel_absmax[size_t(d)], 6.0f) << d;
  EXPECT_EQ(s.histogram.total(), uint64_t(s.tokens) * uint64_t(s.dim));
  // Ranges are ordered: clipping methods never exceed absmax.
  for (const SiteStats& st : stats_->sites) {
    EXPECT_GT(st.range(RangeMethod::kAbsmax), 0);
    for (RangeMethod m : kRangeMethods) EXPECT_LE(st.range(m), st.range(RangeMethod::kAbsmax));
  }
  EXPECT_EQ(stats_->at(0, MatmulSite::kDown).dim, c.ffn_dim);
  EXPECT_EQ(stats_->at(c.n_layers, MatmulSite::kOutput).layer, c.n_layers);
  EXPECT_EQ(stats_->site_amax(RangeMethod::kAbsmax).size(), size_t(4 * c.n_layers + 1));
}

TEST_F(CalibrationSynthetic, JsonRoundTrips) {
  const CalibrationStats back = calibration_from_json(calibration_to_json(*stats_));
  ASSERT_EQ(back.sites.size(), stats_->sites.size());
  EXPECT_EQ(back.tokens, stats_->tokens);
  EXPECT_EQ(back.outlier_dims(), stats_->outlier_dims());
  for (size_t i = 0; i < back.sites.size(); ++i) {
    const SiteStats &a = stats_->sites[i], &b = back.sites[i];
    EXPECT_EQ(a.layer, b.layer);
    EXPECT_EQ(a.site, b.site);
    EXPECT_EQ(a.channel_absmax, b.channel_absmax);
    EXPECT_EQ(a.outlier_count, b.outlier_count);
    EXPECT_EQ(a.histogram.counts(), b.histogram.counts());
    EXPECT_EQ(a.histogram.range(), b.histogram.range());
    for (RangeMethod m : kRangeMethods) EXPECT_DOUBLE_EQ(a.range(m), b.range(m));
  }
  EXPECT_THROW(calibration_from_json("{}"), Error);
  EXPECT_THROW(calibration_from_json("not json"), Error);
}

TEST(GgmlIntegerTypes, IdsGeometryAndValues) {
  EXPECT_EQ(ggml_type_from_id(24), GgmlType::I8);
  EXPECT_EQ(ggml_type_from_id(25), GgmlType::I16);
  EXPECT_EQ(ggml_type_from_id(26), GgmlType::I32);
  EXPECT_EQ(ggml_type_name(GgmlType::I8), "I8");
  EXPECT_EQ(ggml_type_name(GgmlType::I32), "I32");
  EXPECT_EQ(ggml_block_elements(GgmlType::I8), 1);
  EXPECT_EQ(ggml_block_bytes(GgmlType::I8), 1);
  EXPECT_EQ(ggml_block_bytes(GgmlType::I16), 2);
  EXPECT_EQ(ggml_block_bytes(GgmlType::I32), 4);
  const int8_t i8[] = {-128, -1, 0, 127};
  float out[4];
  dequantize_ggml_row(GgmlType::I8, i8, out, 4);
  EXPECT_EQ(out[0], -128.0f);
  EXPECT_EQ(out[1], -1.0f);
  EXPECT_EQ(out[3], 127.0f);
  const int16_t i16[] = {-300, 7};
  dequantize_ggml_row(GgmlType::I16, i16, out, 2);
  EXPECT_EQ(out[0], -300.0f);
  const int32_t i32[] = {-70000, 5};
  dequantize_ggml_row(GgmlType::I32, i32, out, 2);
  EXPECT_EQ(out[0], -70000.0f);
  EXPECT_EQ(out[1], 5.0f);
}

}  // namespace
}  // namespace quill
