// GGUF / ggml tensor types: ids, block geometry, and dequantization of a row to fp32 (CPU).
// Layouts: ../shared/QUANT_SPEC.md section 5.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace quill {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  I8 = 24,   // plain integer tensors (ggml GGML_TYPE_I8/I16/I32): quill's own codes and indices
  I16 = 25,
  I32 = 26,
  BF16 = 30,
};

// The types quill reads; nullopt for any other id (the caller reports it with the tensor name).
std::optional<GgmlType> ggml_type_from_id(uint32_t id);
std::string_view ggml_type_name(GgmlType type);
int64_t ggml_block_elements(GgmlType type);  // values per block (1 for F32/F16/BF16)
int64_t ggml_block_bytes(GgmlType type);     // bytes per block
// Bytes of a row of n elements; n must be a multiple of ggml_block_elements (checked by the caller).
inline int64_t ggml_row_bytes(GgmlType type, int64_t n) { return n / ggml_block_elements(type) * ggml_block_bytes(type); }

// dst[0..n) = the n values stored at src in the given type.
void dequantize_ggml_row(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace quill
