// GgufWriter: builds a GGUF v3 file (metadata of every type, tensors padded to the alignment) in memory or at a
// path, written atomically (a temp file in the same folder, then rename). Used by tests to make hand-made and
// broken files, and by `quill quantize`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "engine/ggml_types.hpp"
#include "engine/gguf.hpp"

namespace quill {

class GgufWriter {
 public:
  // alignment must be a power of two; a value other than 32 is also stored as general.alignment (uint32).
  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment);

  // Adds or replaces a metadata pair (kept in first-insertion order).
  void set(const std::string& key, GgufValue value);
  void set_u32(const std::string& key, uint32_t v) { set(key, v); }
  void set_i32(const std::string& key, int32_t v) { set(key, v); }
  void set_f32(const std::string& key, float v) { set(key, v); }
  void set_bool(const std::string& key, bool v) { set(key, v); }
  void set_string(const std::string& key, const std::string& v) { set(key, GgufValue(v)); }
  void set_string_array(const std::string& key, const std::vector<std::string>& v) {
    set(key, GgufValue::string_array(v));
  }
  void set_f32_array(const std::string& key, const std::vector<float>& v) { set(key, GgufValue::array_of(v)); }
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v) { set(key, GgufValue::array_of(v)); }

  // Adds a tensor; dims are ne[0] first; data must hold exactly the tensor's bytes (copied).
  // kInvalidArgument for a duplicate name, 0 or > 4 dims, a zero dim, ne[0] not a multiple of the block, a size
  // mismatch.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims, std::span<const uint8_t> data);
  void add_tensor_f32(const std::string& name, std::vector<int64_t> dims, std::span<const float> data);

  std::vector<uint8_t> to_bytes() const;
  // Writes to path.tmp.<pid> then renames over path; kFile on I/O errors (the temp file is removed).
  void write(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
  };
  uint32_t alignment_;
  std::vector<GgufKv> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace quill
