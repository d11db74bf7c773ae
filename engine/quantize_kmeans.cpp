// 1-D Lloyd k-means and the 4-bit codebook quantizer (see quantize_kmeans.hpp).
//
// In one dimension, sorted centroids partition the sorted values into contiguous runs split at the
// midpoints, and Lloyd keeps the centroids sorted. So each iteration is 15 binary searches in the
// sorted values plus prefix sums (double), not a pass over all values. Sorting dominates the cost.
#include "engine/quantize_kmeans.hpp"

#include <algorithm>
#include <cmath>

#include "engine/half.hpp"
#include "engine/quant_tables.hpp"
#include "engine/quantize_common.hpp"

namespace quill {
namespace {

constexpr int kK = KMeansMatrix::kCentroids;

// Rounds the centroids to fp16 and returns the nearest-entry codebook over the rounded values.
SortedCodebook fp16_codebook(const std::array<float, kK>& centroids, uint16_t* out_bits) {
  std::array<float, kK> rounded;
  for (int k = 0; k < kK; ++k) {
    out_bits[k] = float_to_half(centroids[k]);
    rounded[k] = half_to_float(out_bits[k]);
  }
  std::sort(rounded.begin(), rounded.end());  // already sorted unless rounding ties, kept safe
  for (int k = 0; k < kK; ++k) out_bits[k] = float_to_half(rounded[k]);
  return SortedCodebook(rounded);
}

// Codes of one zero-padded row under a codebook, packed high-first.
void encode_row(const SortedCodebook& book, const MatrixF32& w, int64_t r, int64_t padded_cols, uint8_t* dst) {
  std::vector<uint8_t> codes(size_t(padded_cols), book.nearest_code(0.0f));
  for (int64_t c = 0; c < w.cols; ++c) codes[size_t(c)] = book.nearest_code(w.row(r)[c]);
  pack_nibbles_high_first(codes, dst);
}

}  // namespace

std::array<float, 16> kmeans_1d(std::span<const float> values, const KMeansOptions& options) {
  std::array<float, kK> c{};
  if (values.empty()) return c;
  std::vector<float> v(values.begin(), values.end());
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  // At most 16 distinct values: they are the optimal centroids (the last one repeated).
  std::vector<float> distinct;
  for (float x : v) {
    if (distinct.empty() || x != distinct.back()) distinct.push_back(x);
    if (distinct.size() > size_t(kK)) break;
  }
  if (distinct.size() <= size_t(kK)) {
    for (int k = 0; k < kK; ++k) c[k] = distinct[std::min(size_t(k), distinct.size() - 1)];
    return c;
  }
  std::vector<double> sum(n + 1, 0.0), sum2(n + 1, 0.0);  // prefix sums of v and v^2
  for (size_t i = 0; i < n; ++i) {
    sum[i + 1] = sum[i] + v[i];
    sum2[i + 1] = sum2[i] + double(v[i]) * v[i];
  }
  const auto mean = [&](size_t b, size_t e) { return float((sum[e] - sum[b]) / double(e - b)); };
  const auto sse = [&](size_t b, size_t e) {
    const double s = sum[e] - sum[b];
    return e > b ? (sum2[e] - sum2[b]) - s * s / double(e - b) : 0.0;
  };
  const float lo = v.front(), hi = v.back();
  for (int k = 0; k < kK; ++k) c[k] = float(double(lo) + (double(hi) - double(lo)) * k / (kK - 1));
  const double tol = options.tolerance * (double(hi) - double(lo));
  std::array<size_t, kK + 1> bounds{};  // cluster k = v[bounds[k] .. bounds[k+1])
  for (int it = 0; it < options.max_iterations; ++it) {
    // Assignment: values with x > mid go to the upper centroid (a tie goes to the lower one).
    std::array<size_t, kK + 1> next{};
    next[kK] = n;
    for (int k = 1; k < kK; ++k) {
      const float mid = float((double(c[k - 1]) + double(c[k])) / 2.0);
      next[k] = size_t(std::upper_bound(v.begin(), v.end(), mid) - v.begin());
    }
    if (it > 0 && next == bounds) break;  // converged: the centroids are the means of these clusters
    // Empty clusters are re-seeded by splitting the cluster of largest squared error at its median
    // (there are more than 16 distinct values, so one with error > 0 exists).
    std::vector<std::pair<size_t, size_t>> runs;
    for (int k = 0; k < kK; ++k) {
      if (next[k + 1] > next[k]) runs.emplace_back(next[k], next[k + 1]);
    }
    while (runs.size() < size_t(kK)) {
      size_t worst = 0;
      for (size_t r = 1; r < runs.size(); ++r) {
        if (sse(runs[r].first, runs[r].second) > sse(runs[worst].first, runs[worst].second)) worst = r;
      }
      const auto [b, e] = runs[worst];
      if (sse(b, e) <= 0.0) break;
      size_t m = b + (e - b) / 2;  // keep equal values together, both halves non-empty
      while (m > b && v[m - 1] == v[m]) --m;
      if (m == b) m = size_t(std::upper_bound(v.begin() + b, v.begin() + e, v[b]) - v.begin());
      runs[worst] = {b, m};
      runs.insert(runs.begin() + worst + 1, {m, e});
    }
    for (size_t k = 0; k < runs.size(); ++k) next[k] = runs[k].first;
    next[runs.size()] = n;
    // Update: every centroid moves to the mean of its cluster.
    double max_move = 0.0;
    for (size_t k = 0; k < runs.size(); ++k) {
      const float m = mean(runs[k].first, runs[k].second);
      max_move = std::max(max_move, std::fabs(double(m) - double(c[k])));
      c[k] = m;
    }
    bounds = next;
    if (max_move <= tol) break;
  }
  return c;
}

KMeansMatrix quantize_kmeans(const MatrixF32& w, bool per_row, const KMeansOptions& options) {
  check_matrix(w, "quantize_kmeans");
  KMeansMatrix q;
  q.rows = w.rows;
  q.cols = w.cols;
  q.per_row = per_row;
  q.padded_cols = round_up(w.cols, KMeansMatrix::kRowAlign);
  q.codes.resize(size_t(q.rows * q.padded_cols / 2));
  if (per_row) {
    q.centroids.resize(size_t(q.rows * kK));
    for (int64_t r = 0; r < q.rows; ++r) {
      const auto centroids = kmeans_1d(std::span<const float>(w.row(r), size_t(w.cols)), options);
      const SortedCodebook book = fp16_codebook(centroids, q.centroids.data() + r * kK);
      encode_row(book, w, r, q.padded_cols, q.codes.data() + r * q.padded_cols / 2);
    }
  } else {
    q.centroids.resize(kK);
    const SortedCodebook book = fp16_codebook(kmeans_1d(w.data, options), q.centroids.data());
    for (int64_t r = 0; r < q.rows; ++r) encode_row(book, w, r, q.padded_cols, q.codes.data() + r * q.padded_cols / 2);
  }
  return q;
}

MatrixF32 dequantize(const KMeansMatrix& q) {
  MatrixF32 out{q.rows, q.cols, std::vector<float>(size_t(q.rows * q.cols))};
  for (int64_t r = 0; r < q.rows; ++r) {
    const uint16_t* book = q.codebook(r);
    const uint8_t* codes = q.codes.data() + r * q.padded_cols / 2;
    for (int64_t c = 0; c < q.cols; ++c) out.row(r)[c] = half_to_float(book[nibble_high_first(codes, c)]);
  }
  return out;
}

double bits_per_weight(const KMeansMatrix& q) {
  if (q.rows * q.cols == 0) return 0.0;
  return (8.0 * double(q.codes.size()) + 16.0 * double(q.centroids.size())) / double(q.rows * q.cols);
}

}  // namespace quill
