// Helpers every quantizer shares: input checks, zero-padding of a row to the block multiple, and
// the one 4-bit packing quill's own layouts use (two codes per byte, element 2i in the HIGH nibble,
// as bitsandbytes stores them).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/llama_weights.hpp"

namespace quill {

// Throws kInvalidArgument when data.size() != rows*cols, a dimension is negative, or a value is
// not finite (naming `what` and the first bad row/column).
void check_matrix(const MatrixF32& m, const char* what);

inline int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// out[0..padded_cols) = row r of m followed by zeros.
void copy_padded_row(const MatrixF32& m, int64_t r, int64_t padded_cols, std::vector<float>& out);

// codes.size() must be even; out[i] = (codes[2i] << 4) | codes[2i+1]; each code 0..15.
void pack_nibbles_high_first(std::span<const uint8_t> codes, uint8_t* out);
// Code of element i in a high-nibble-first packed array.
inline uint8_t nibble_high_first(const uint8_t* packed, int64_t i) {
  return (i & 1) ? packed[i >> 1] & 0x0F : packed[i >> 1] >> 4;
}

}  // namespace quill
