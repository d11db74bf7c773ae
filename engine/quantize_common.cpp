// Shared quantizer helpers (see quantize_common.hpp).
#include "engine/quantize_common.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"

namespace quill {

void check_matrix(const MatrixF32& m, const char* what) {
  if (m.rows < 0 || m.cols < 0 || m.data.size() != size_t(m.rows * m.cols)) {
    fail(ErrorKind::kInvalidArgument, "{}: matrix [{}, {}] holds {} values", what, m.rows, m.cols, m.data.size());
  }
  for (size_t i = 0; i < m.data.size(); ++i) {
    if (!std::isfinite(m.data[i])) {
      fail(ErrorKind::kInvalidArgument, "{}: non-finite value {} at row {}, column {}", what, m.data[i],
           int64_t(i) / m.cols, int64_t(i) % m.cols);
    }
  }
}

void copy_padded_row(const MatrixF32& m, int64_t r, int64_t padded_cols, std::vector<float>& out) {
  out.assign(size_t(padded_cols), 0.0f);
  std::copy_n(m.row(r), m.cols, out.begin());
}

void pack_nibbles_high_first(std::span<const uint8_t> codes, uint8_t* out) {
  if (codes.size() % 2 != 0) fail(ErrorKind::kInternal, "pack_nibbles_high_first: odd count {}", codes.size());
  for (size_t i = 0; i < codes.size() / 2; ++i) out[i] = uint8_t((codes[2 * i] << 4) | (codes[2 * i + 1] & 0x0F));
}

}  // namespace quill
