// SmoothQuant: the scale formula (with its clamps), the folded model computing the same function in
// f32, and the smoothed activations losing their outlier channels on the planted-outlier model.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/calibration.hpp"
#include "engine/error.hpp"
#include "engine/smoothquant.hpp"

namespace quill {
namespace {

TEST(SmoothQuant, ScalesFollowTheFormula) {
  MatrixF32 a{2, 3, {1.0f, -4.0f, 0.0f, -2.0f, 1.0f, 0.0f}};
  MatrixF32 b{1, 3, {0.5f, 8.0f, 0.0f}};
  const std::vector<float> act = {9.0f, 16.0f, 0.0f};
  const std::vector<float> s = smoothquant_scales(act, {&a, &b}, 0.5f);
  EXPECT_FLOAT_EQ(s[0], 3.0f / std::sqrt(2.0f));  // sqrt(9) / sqrt(max(1, 2, 0.5))
  EXPECT_FLOAT_EQ(s[1], 4.0f / std::sqrt(8.0f));
  // Both maxima clamp at 1e-5: s = 1e-5^0.5 / 1e-5^0.5 = 1.
  EXPECT_NEAR(s[2], 1.0f, 1e-6);
  const std::vector<float> s1 = smoothquant_scales(act, {&a, &b}, 1.0f);  // alpha 1: s = max|X|
  EXPECT_FLOAT_EQ(s1[0], 9.0f);
  EXPECT_NEAR(s1[2], 1e-5f, 1e-9);  // clamped at 1e-5
  EXPECT_THROW(smoothquant_scales(act, {&a}, 1.5f), Error);
  MatrixF32 bad{1, 2, {1.0f, 1.0f}};
  EXPECT_THROW(smoothquant_scales(act, {&bad}, 0.5f), Error);
}

TEST(SmoothQuant, FoldedModelIsTheSameFunctionWithoutOutlierChannels) {
  std::shared_ptr<const WeightSource> plain = synthetic_weight_source("tiny");
  std::vector<int32_t> text;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 40; ++i) text.push_back(int32_t(3 + rng() % 400));
  const CalibrationStats stats = calibrate(*plain, text, {.ctx = 41});
  ASSERT_FALSE(stats.outlier_dims().empty());
  auto smooth = smoothquant_weight_source(plain, stats, 0.8f);
  EXPECT_TRUE(smooth->known_outlier_dims().empty());

  // Same logits in f32 (the fold is exact up to rounding).
  const LlamaWeightsF32 wp = load_weights_f32(*plain), ws = load_weights_f32(*smooth);
  ReferenceLlama rp(wp), rs(ws);
  for (int pos = 0; pos < 6; ++pos) {
    const std::vector<float> lp = rp.forward(text[size_t(pos)], pos), ls = rs.forward(text[size_t(pos)], pos);
    double max_diff = 0, max_abs = 0;
    for (size_t i = 0; i < lp.size(); ++i) {
      max_diff = std::max(max_diff, double(std::fabs(lp[i] - ls[i])));
      max_abs = std::max(max_abs, double(std::fabs(lp[i])));
    }
    EXPECT_LT(max_diff, 1e-4 * std::max(1.0, max_abs)) << "pos " << pos;
  }

  // The smoothed qkv / gate_up inputs: channel absmax divided by s, and no channel reaches 6 any more.
  const CalibrationStats after = calibrate(*smooth, text, {.ctx = 41});
  EXPECT_TRUE(after.outlier_dims().empty());
  for (int l = 0; l < stats.n_layers; ++l) {
    const double before_max = stats.at(l, MatmulSite::kQkv).range(RangeMethod::kAbsmax);
    const double after_max = after.at(l, MatmulSite::kQkv).range(RangeMethod::kAbsmax);
    EXPECT_LT(after_max, before_max / 2) << "layer " << l;
    // wo / down inputs are untouched.
    EXPECT_NEAR(after.at(l, MatmulSite::kDown).range(RangeMethod::kAbsmax),
                stats.at(l, MatmulSite::kDown).range(RangeMethod::kAbsmax),
                1e-3 * stats.at(l, MatmulSite::kDown).range(RangeMethod::kAbsmax));
  }
}

}  // namespace
}  // namespace quill
