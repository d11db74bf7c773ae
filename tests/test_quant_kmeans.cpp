// 4-bit k-means codebooks: Lloyd on hand-made data, determinism, packing and padding, constant
// rows, and the property that Lloyd never ends worse than its uniform-grid start.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/half.hpp"
#include "engine/quantize_kmeans.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

// Gaussian weights with a few large outliers per row, like real LLM weight matrices.
MatrixF32 gaussian_with_outliers(std::mt19937_64& rng, int64_t rows, int64_t cols) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  MatrixF32 m{rows, cols, std::vector<float>(size_t(rows * cols))};
  for (auto& v : m.data) v = normal(rng);
  for (int64_t r = 0; r < rows; ++r) {
    for (int k = 0; k < 2; ++k) m.row(r)[rng() % cols] = (rng() % 2 ? 1.0f : -1.0f) * (8.0f + float(rng() % 8));
  }
  return m;
}

double mse(const MatrixF32& a, const MatrixF32& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.data.size(); ++i) s += double(a.data[i] - b.data[i]) * double(a.data[i] - b.data[i]);
  return s / double(a.data.size());
}

TEST(QuantKMeans, LloydOnHandMadeData) {
  // At most 16 distinct values: the centroids are exactly those values, the largest repeated.
  const std::vector<float> v = {0.0f, 100.0f, 0.0f, 1.0f, 0.0f};
  const auto c = kmeans_1d(v);
  EXPECT_EQ(c[0], 0.0f);
  EXPECT_EQ(c[1], 1.0f);
  EXPECT_EQ(c[2], 100.0f);
  EXPECT_EQ(c[15], 100.0f);
  // Init over [0, 10] puts one centroid in the dense group [0, 1); the empty clusters are re-seeded
  // by splitting, so 15 centroids end up in the dense group, evenly (Lloyd on a uniform grid).
  // Two groups that the linear init splits badly: Lloyd moves centroids into the dense group.
  std::vector<float> w;
  for (int i = 0; i < 100; ++i) w.push_back(float(i) / 100.0f);  // dense in [0, 1)
  w.push_back(10.0f);
  const auto d = kmeans_1d(w);
  EXPECT_EQ(d[15], 10.0f);
  EXPECT_LT(d[14], 1.0f);  // initially 9.33
  EXPECT_TRUE(std::is_sorted(d.begin(), d.end()));
  for (int k = 0; k + 1 < 15; ++k) {
    EXPECT_GT(d[k + 1] - d[k], 0.04f) << k;  // spread ~1/15 apart, none wasted
    EXPECT_LT(d[k + 1] - d[k], 0.10f) << k;
  }
  // Lloyd proper: two far groups of distinct values, 8 centroids each side after convergence.
  std::vector<float> g;
  for (int i = 0; i < 64; ++i) g.push_back(float(i) / 64.0f - 100.0f);
  for (int i = 0; i < 64; ++i) g.push_back(float(i) / 64.0f + 100.0f);
  const auto e = kmeans_1d(g);
  EXPECT_LT(e[7], -98.0f);
  EXPECT_GT(e[8], 98.0f);
}

TEST(QuantKMeans, PacksHighNibbleFirstAndPads) {
  MatrixF32 w{1, 4, {0.0f, 1.0f, 3.0f, 2.0f}};  // 4 distinct values: centroids 0, 1, 2, 3, 3, ...
  const KMeansMatrix q = quantize_kmeans(w, true);
  EXPECT_EQ(q.padded_cols, 32);
  ASSERT_EQ(q.codes.size(), 16u);
  EXPECT_EQ(q.codes[0], 0x01);
  EXPECT_EQ(q.codes[1], 0x32);
  for (int i = 2; i < 16; ++i) EXPECT_EQ(q.codes[i], 0x00) << i;  // padding: the centroid nearest 0
  ASSERT_EQ(q.centroids.size(), 16u);
  EXPECT_EQ(half_to_float(q.centroids[1]), 1.0f);
  EXPECT_EQ(half_to_float(q.centroids[15]), 3.0f);
  EXPECT_EQ(dequantize(q).data, w.data);
  for (int64_t cols : {17, 1}) {
    MatrixF32 odd{2, cols, std::vector<float>(size_t(2 * cols), 0.5f)};
    odd.data[0] = -1.0f;
    const KMeansMatrix k = quantize_kmeans(odd, false);
    EXPECT_EQ(k.padded_cols, 32);
    EXPECT_EQ(k.codes.size(), 32u);
    const MatrixF32 back = dequantize(k);
    ASSERT_EQ(back.data.size(), odd.data.size());
    EXPECT_EQ(back.data, odd.data);  // at most 2 distinct values: exact
  }
}

TEST(QuantKMeans, ConstantRowsAndDeterminism) {
  MatrixF32 c{2, 10, std::vector<float>(20, 5.0f)};
  std::fill(c.data.begin() + 10, c.data.end(), 0.0f);
  for (bool per_row : {true, false}) {
    const MatrixF32 back = dequantize(quantize_kmeans(c, per_row));
    for (float v : back.data) ASSERT_FALSE(std::isnan(v));
    EXPECT_EQ(back.data, c.data);
  }
  std::mt19937_64 rng(test::test_seed());
  const MatrixF32 w = gaussian_with_outliers(rng, 8, 300);
  const KMeansMatrix a = quantize_kmeans(w, true), b = quantize_kmeans(w, true);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.centroids, b.centroids);
}

// Lloyd only lowers the squared error from its start, the uniform 16-level grid over [min, max];
// so the result must beat that grid (up to the fp16 rounding of the centroids), and per-row
// codebooks must beat one per-tensor codebook on rows with their own outliers.
TEST(QuantKMeans, BeatsUniformGridOnRandomMatrices) {
  std::mt19937_64 rng(test::test_seed());
  SCOPED_TRACE(testing::Message() << "seed " << test::test_seed());
  const std::pair<int64_t, int64_t> shapes[] = {{4, 33}, {16, 256}, {3, 1000}};
  for (const auto& [rows, cols] : shapes) {
    const MatrixF32 w = gaussian_with_outliers(rng, rows, cols);
    MatrixF32 grid = w;
    const auto [lo, hi] = std::minmax_element(w.data.begin(), w.data.end());
    const double step = (double(*hi) - double(*lo)) / 15;
    for (auto& v : grid.data) v = float(*lo + step * std::round((v - *lo) / step));
    const MatrixF32 tensor = dequantize(quantize_kmeans(w, false));
    const MatrixF32 row = dequantize(quantize_kmeans(w, true));
    EXPECT_LE(mse(w, tensor), mse(w, grid) * 1.001 + 1e-9) << rows << "x" << cols;
    EXPECT_LT(mse(w, row), mse(w, tensor)) << rows << "x" << cols;
    for (size_t i = 0; i < w.data.size(); ++i) ASSERT_LE(std::fabs(w.data[i] - tensor.data[i]), (*hi - *lo) / 2);
  }
}

TEST(QuantKMeans, Bits) {
  MatrixF32 w{4, 64, std::vector<float>(256, 1.0f)};
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize_kmeans(w, false)), 4.0 + 16.0 * 16 / 256);
  EXPECT_DOUBLE_EQ(bits_per_weight(quantize_kmeans(w, true)), 4.0 + 16.0 * 16 / 64);
}

}  // namespace
}  // namespace quill
