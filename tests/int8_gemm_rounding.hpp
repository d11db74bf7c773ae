// What the int8 rounding of the prefill GEMM's operands (host::GemmDequant's int8 core) and of the dp4a
// GEMV's x may move a product by, for the tests' error bounds: x rounded to int8 per group of columns
// (|w| * amax / 254 per product), and nf4 / fp4 table values rounded to int8 (|x| * absmax / 254).
#pragma once

#include <algorithm>
#include <cmath>
#include <variant>
#include <vector>

#include "engine/quantize_blockwise.hpp"
#include "engine/quantize_matrix.hpp"
#include "host/device_info.hpp"
#include "host/gemm_dequant.hpp"

namespace quill::test {

// Whether the prefill GEMM of `scheme` runs on the int8 tensor cores on this device (host::GemmDequant:
// int4, q8_0, nf4, fp4 where int8_core_on), and so rounds x, and nf4 / fp4's table, to int8.
inline bool int8_gemm_core(QuantScheme scheme, const host::DeviceInfo& info) {
  return (scheme == QuantScheme::Int4 || scheme == QuantScheme::Q8_0 || scheme == QuantScheme::NF4 ||
          scheme == QuantScheme::FP4) &&
         host::GemmDequant::int8_core_on(info);
}

// Per column of one token's x [cols]: the amax of its group of `group` columns (from column 0) / 254.
template <typename T>
std::vector<double> x_int8_half_steps(const T* x, int cols, int group) {
  std::vector<double> out(size_t(cols), 0.0);
  for (int g0 = 0; g0 < cols; g0 += group) {
    double amax = 0.0;
    for (int k = g0; k < std::min(cols, g0 + group); ++k) amax = std::max(amax, std::fabs(double(x[k])));
    for (int k = g0; k < std::min(cols, g0 + group); ++k) out[size_t(k)] = amax / 254.0;
  }
  return out;
}

// [rows, cols]: the block absmax / 254 of each weight of a blockwise 4-bit matrix (nf4, fp4), whose table
// values the int8 core rounds to int8; empty for every other format.
inline std::vector<double> table_int8_half_steps(const QuantizedMatrix& q) {
  const auto* b = std::get_if<BlockwiseMatrix>(&q);
  if (!b || b->scheme == QuantScheme::Dyn8) return {};
  const std::vector<float> absmax = block_absmax(*b);
  std::vector<double> out(size_t(b->rows * b->cols));
  for (int64_t r = 0; r < b->rows; ++r)
    for (int64_t k = 0; k < b->cols; ++k)
      out[size_t(r * b->cols + k)] = std::fabs(double(absmax[size_t(r * b->blocks_per_row() + k / b->block)])) / 254.0;
  return out;
}

}  // namespace quill::test
