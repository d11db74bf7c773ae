// Code tables and nearest-entry rounding (see quant_tables.hpp).
#include "engine/quant_tables.hpp"

#include <algorithm>
#include <numeric>

#include "engine/error.hpp"

namespace quill {
namespace {

// torch.linspace(start, end, steps) in float32, as its CPU kernel computes it: the first half
// counts up from start, the second half counts down from end.
std::vector<float> linspace_f32(float start, float end, int steps) {
  const float step = (end - start) / float(steps - 1);
  const int halfway = steps / 2;
  std::vector<float> out(steps);
  for (int i = 0; i < steps; ++i) out[i] = i < halfway ? start + step * float(i) : end - step * float(steps - i - 1);
  return out;
}

// bitsandbytes create_dynamic_map(signed, max_exponent_bits=7, total_bits=8) in float32.
std::array<float, 256> make_dynamic_map(bool is_signed) {
  constexpr double kDecade[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};  // 10^(i-6) as Python computes it
  std::vector<float> data;
  for (int i = 0; i < 7; ++i) {
    const int items = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
    const std::vector<float> b = linspace_f32(0.1f, 1.0f, items);
    const float scale = float(kDecade[i]);
    for (int k = 0; k + 1 < items; ++k) {
      const float mean = (b[k] + b[k + 1]) / 2.0f;
      data.push_back(scale * mean);
      if (is_signed) data.push_back(-scale * mean);
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  if (data.size() != 256) fail(ErrorKind::kInternal, "dynamic map has {} entries, expected 256", data.size());
  std::sort(data.begin(), data.end());
  std::array<float, 256> out;
  std::copy(data.begin(), data.end(), out.begin());
  return out;
}

// FP4 magnitudes in ascending order and the 3-bit code of each.
constexpr std::array<float, 8> kFp4Magnitudes = {0.0f,     1.0f / 192, 1.0f / 6, 1.0f / 4,
                                                 1.0f / 3, 1.0f / 2,   2.0f / 3, 1.0f};
constexpr std::array<uint8_t, 8> kFp4MagnitudeCodes = {0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011};

}  // namespace

const std::array<float, 16>& nf4_table() {
  static const std::array<float, 16> table = {-1.0f,
                                              -0.6961928009986877f,
                                              -0.5250730514526367f,
                                              -0.39491748809814453f,
                                              -0.28444138169288635f,
                                              -0.18477343022823334f,
                                              -0.09105003625154495f,
                                              0.0f,
                                              0.07958029955625534f,
                                              0.16093020141124725f,
                                              0.24611230194568634f,
                                              0.33791524171829224f,
                                              0.44070982933044434f,
                                              0.5626170039176941f,
                                              0.7229568362236023f,
                                              1.0f};
  return table;
}

const std::array<float, 16>& fp4_table() {
  static const std::array<float, 16> table = [] {
    std::array<float, 16> t{};
    for (int i = 0; i < 8; ++i) {
      t[kFp4MagnitudeCodes[i]] = kFp4Magnitudes[i];
      t[kFp4MagnitudeCodes[i] | 8] = -kFp4Magnitudes[i];
    }
    return t;
  }();
  return table;
}

const std::array<float, 256>& dyn8_signed_table() {
  static const std::array<float, 256> table = make_dynamic_map(true);
  return table;
}

const std::array<float, 256>& dyn8_unsigned_table() {
  static const std::array<float, 256> table = make_dynamic_map(false);
  return table;
}

SortedCodebook::SortedCodebook(std::span<const float> values, std::span<const uint8_t> codes)
    : values_(values.begin(), values.end()) {
  if (values_.empty() || values_.size() > 256) fail(ErrorKind::kInternal, "codebook of {} entries", values_.size());
  if (!std::is_sorted(values_.begin(), values_.end())) fail(ErrorKind::kInternal, "codebook values are not sorted");
  if (codes.empty()) {
    codes_.resize(values_.size());
    std::iota(codes_.begin(), codes_.end(), uint8_t{0});
  } else {
    if (codes.size() != values_.size())
      fail(ErrorKind::kInternal, "codebook: {} codes for {} values", codes.size(), values_.size());
    codes_.assign(codes.begin(), codes.end());
  }
  mids_.resize(values_.size() - 1);
  for (size_t i = 0; i + 1 < values_.size(); ++i) mids_[i] = float((double(values_[i]) + double(values_[i + 1])) / 2.0);
}

int SortedCodebook::nearest_index(float x) const {
  // first midpoint >= x; every midpoint before it is < x, i.e. x > mid.
  return int(std::lower_bound(mids_.begin(), mids_.end(), x) - mids_.begin());
}

const SortedCodebook& nf4_codebook() {
  static const SortedCodebook book(nf4_table());
  return book;
}

uint8_t fp4_code(float x) {
  static const SortedCodebook magnitudes(kFp4Magnitudes, kFp4MagnitudeCodes);
  const uint8_t sign = x < 0.0f ? 8 : 0;
  return uint8_t(magnitudes.nearest_code(x < 0.0f ? -x : x) | sign);
}

const SortedCodebook& dyn8_signed_codebook() {
  static const SortedCodebook book(dyn8_signed_table());
  return book;
}

}  // namespace quill
