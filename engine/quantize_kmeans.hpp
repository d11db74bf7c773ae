// 4-bit k-means (codebook) quantization (QUANT_SPEC.md 7): 1-D Lloyd with 16 centroids, linear
// initialization over [min, max], deterministic; one codebook per row or one per tensor, stored as
// fp16; value = centroids[index]. On the GPU it is the NF4 lookup path with a learned table.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/llama_weights.hpp"

namespace quill {

struct KMeansMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t padded_cols = 0;  // cols rounded up to a multiple of 32 (4-bit rows aligned like nf4/int4)
  bool per_row = true;      // one codebook per row, or one for the whole tensor
  // per_row: [rows, 16] fp16 bits, ascending within a row; per tensor: [16] fp16 bits, ascending
  std::vector<uint16_t> centroids;
  // [rows, padded_cols / 2], element 2i in the HIGH nibble; the padding holds the index of the
  // centroid nearest to 0 (NOT necessarily value 0: kernels must zero-pad the activations instead)
  std::vector<uint8_t> codes;

  static constexpr int kCentroids = 16;
  static constexpr int kRowAlign = 32;
  const uint16_t* codebook(int64_t row) const { return centroids.data() + (per_row ? row * kCentroids : 0); }
};

struct KMeansOptions {
  int max_iterations = 500;  // Lloyd iteration cap (an iteration is 15 binary searches: cheap after the sort)
  double tolerance = 1e-7;   // stop when no centroid moves more than tolerance * (max - min)
};

// The 16 centroids (ascending, fp32) of values: linear init c_k = min + (max - min) * k / 15, then
// Lloyd until the assignment stops changing, no centroid moves more than the tolerance, or the cap.
// An empty cluster is re-seeded deterministically by splitting the cluster of largest squared error
// at its median (linear init leaves most clusters empty when a row has outliers). With at most 16
// distinct values the centroids are those values (the largest repeated). Empty input gives zeros.
std::array<float, 16> kmeans_1d(std::span<const float> values, const KMeansOptions& options = {});

KMeansMatrix quantize_kmeans(const MatrixF32& w, bool per_row, const KMeansOptions& options = {});
MatrixF32 dequantize(const KMeansMatrix& q);
// Storage bits per real weight: 4-bit codes (padding included) plus the fp16 codebooks.
double bits_per_weight(const KMeansMatrix& q);

}  // namespace quill
