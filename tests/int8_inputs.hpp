// Test inputs for the int8 / llm-int8 kernels: random activations with planted LLM.int8() cases
// (outlier columns with |x| >= 6, one exactly 6.0, one just below; a zero row; a row whose only
// non-zero values are outliers) and the calibrated outlier_dims (some planted columns in it, some not).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/llama_weights.hpp"
#include "tests/util.hpp"

namespace quill::test {

struct Int8Inputs {
  MatrixF32 x;                        // [n_tok, cols]
  std::vector<int32_t> outlier_dims;  // calibrated columns for the fp16 copies
};

inline Int8Inputs make_int8_inputs(std::mt19937_64& rng, int n_tok, int cols, bool plant_outliers) {
  Int8Inputs in;
  in.x = MatrixF32{n_tok, cols, random_floats(rng, size_t(n_tok) * cols, -2.0f, 2.0f)};
  if (n_tok >= 3) std::fill(in.x.row(1), in.x.row(1) + cols, 0.0f);  // zero row: SCA 0, no NaN
  if (!plant_outliers) return in;
  std::vector<int32_t> perm(static_cast<size_t>(cols));
  for (int j = 0; j < cols; ++j) perm[size_t(j)] = j;
  std::shuffle(perm.begin(), perm.end(), rng);
  const int n_planted = std::min(cols - 2, 5);
  std::vector<int32_t> planted(perm.begin(), perm.begin() + n_planted);
  std::uniform_real_distribution<float> big(6.0f, 12.0f);
  std::uniform_int_distribution<int> tok(0, n_tok - 1);
  for (int p = 0; p < n_planted; ++p) {
    int i = tok(rng);
    if (n_tok >= 3 && i == 1) i = 0;
    const float sign = (rng() & 1) ? 1.0f : -1.0f;
    in.x.row(i)[planted[size_t(p)]] = p == 0 ? 6.0f * sign : big(rng) * sign;  // p == 0: exactly the threshold
  }
  in.x.row(0)[perm[size_t(n_planted)]] = 5.999f;  // just below: not an outlier
  if (n_tok >= 3) {  // row 2: only its outlier columns are non-zero
    std::fill(in.x.row(2), in.x.row(2) + cols, 0.0f);
    for (int32_t j : planted) in.x.row(2)[j] = 7.5f;
  }
  // Calibrated: planted 0, 1, 3 and one column that is no outlier now; planted 2 and 4 use the fallback.
  in.outlier_dims = {planted[0], planted[1], perm[size_t(n_planted + 1)]};
  if (n_planted > 3) in.outlier_dims.push_back(planted[3]);
  return in;
}

}  // namespace quill::test
