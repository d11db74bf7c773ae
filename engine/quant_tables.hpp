// The fixed code tables of the table-lookup formats (NF4, bitsandbytes FP4, the dynamic-exponent
// 8-bit maps) and the one rounding rule they share: nearest entry of a sorted table, thresholds at
// the midpoints, strict `x > mid` (a tie goes to the lower entry). Values: QUANT_SPEC.md 2 and 3.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace quill {

// NF4 value by code 0..15 (sorted ascending: code 0 = -1, code 7 = 0, code 15 = 1).
const std::array<float, 16>& nf4_table();
// bitsandbytes FP4 value by code 0..15: bit 3 is the sign, the low 3 bits index the magnitudes
// {0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4}. Code 8 is -0.0. NOT sorted.
const std::array<float, 16>& fp4_table();
// The signed dynamic map (create_dynamic_map(signed=True)), built in float32 as bitsandbytes does:
// 256 sorted values, [0] = -0.99296875, [127] = 0, [255] = 1, smallest positive 5.5e-7.
const std::array<float, 256>& dyn8_signed_table();
// The unsigned variant: [0] = 0, [255] = 1, 2^(i+1) points per decade.
const std::array<float, 256>& dyn8_unsigned_table();

// Nearest-entry rounding into a sorted (non-decreasing) table of at most 256 values, each entry
// mapped to the code stored for it (the identity for NF4 and DYN8, a permutation for FP4).
class SortedCodebook {
 public:
  // values sorted ascending; codes[i] is the code emitted for values[i] (empty = identity).
  SortedCodebook(std::span<const float> values, std::span<const uint8_t> codes = {});
  // Index into the sorted values of the entry nearest to x: the number of midpoints m with x > m
  // (binary search). Midpoints are computed in double and rounded to float once.
  int nearest_index(float x) const;
  uint8_t nearest_code(float x) const { return codes_[nearest_index(x)]; }
  float value(int index) const { return values_[index]; }
  int size() const { return int(values_.size()); }

 private:
  std::vector<float> values_;   // [n] sorted
  std::vector<float> mids_;     // [n-1] mids_[i] = (values_[i] + values_[i+1]) / 2
  std::vector<uint8_t> codes_;  // [n]
};

// The rounding rules of the fixed formats, ready to use.
const SortedCodebook& nf4_codebook();
// FP4 rounds the magnitude |x| into the 8 sorted magnitudes (a tie goes to the smaller magnitude,
// as bitsandbytes' dQuantizeFP4 does for either sign), then sets bit 3 when x < 0.
uint8_t fp4_code(float x);
const SortedCodebook& dyn8_signed_codebook();

}  // namespace quill
