// GgufFile: a memory-mapped GGUF container (versions 2 and 3) with strict validation of every count, length,
// shape, type and offset before anything is allocated; typed metadata lookups and typed tensor views.
// The metadata value types (GgufValue) are shared with the writer (engine/gguf_writer.hpp).
// Format: ../shared/QUANT_SPEC.md section 5.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "engine/ggml_types.hpp"

namespace quill {

// ---- metadata values ----

// Type ids exactly as stored in the file.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view gguf_type_name(GgufType type);
bool gguf_type_valid(uint32_t id);

struct GgufValue;

// An array: one element type for all items (items of kArray type are themselves GgufArrays).
struct GgufArray {
  GgufType elem_type = GgufType::kUint8;
  std::vector<GgufValue> items;

  bool operator==(const GgufArray& other) const;
};

// One metadata value. The variant's alternative index is the GGUF type id + 1 (index 0: empty).
struct GgufValue {
  using Storage = std::variant<std::monostate, uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, GgufArray, uint64_t, int64_t, double>;
  Storage v;

  GgufValue() = default;
  template <typename T>
  requires(!std::is_same_v<std::decay_t<T>, GgufValue> && std::is_constructible_v<Storage, T>) GgufValue(T x)
      : v(std::move(x)) {}  // NOLINT: implicit on purpose (writer.set("k", uint32_t{3}))
  GgufValue(const char* s) : v(std::string(s)) {}
  GgufValue(std::string_view s) : v(std::string(s)) {}

  bool empty() const { return v.index() == 0; }
  GgufType type() const { return GgufType(uint32_t(v.index() - 1)); }  // only when !empty()
  bool operator==(const GgufValue& other) const { return v == other.v; }

  // Array helpers for the writer and tests: GgufValue::array(GgufType::kString, {"a", "b"}).
  static GgufValue array(GgufType elem_type, std::vector<GgufValue> items) {
    return GgufValue(GgufArray{elem_type, std::move(items)});
  }
  template <typename T>
  static GgufValue array_of(const std::vector<T>& xs) {
    GgufArray a;
    a.elem_type = GgufValue(T{}).type();
    a.items.reserve(xs.size());
    for (const T& x : xs) a.items.emplace_back(x);
    return GgufValue(std::move(a));
  }
  static GgufValue string_array(const std::vector<std::string>& xs) {
    GgufArray a;
    a.elem_type = GgufType::kString;
    a.items.reserve(xs.size());
    for (const auto& x : xs) a.items.emplace_back(x);
    return GgufValue(std::move(a));
  }
};

inline bool GgufArray::operator==(const GgufArray& other) const {
  return elem_type == other.elem_type && items == other.items;
}

// ---- the container ----

// Hash/equality for string-keyed maps looked up with string_views (no temporary strings).
struct GgufStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using GgufStringMap = std::unordered_map<std::string, V, GgufStringHash, std::equal_to<>>;

inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr uint32_t kGgufMaxDims = 4;

// One tensor of the file: a view into the mapping, valid while the GgufFile lives.
struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> dims;      // ne[0] first: ne[0] = contiguous dimension (columns of a matrix)
  uint64_t offset = 0;            // relative to the data section
  uint64_t info_offset = 0;       // file offset of this tensor's info record (for error messages)
  const uint8_t* data = nullptr;  // [n_bytes] inside the mapping, aligned to the file's alignment
  uint64_t n_bytes = 0;

  int64_t n_elements() const;
  int64_t cols() const { return dims.empty() ? 0 : dims[0]; }  // ne[0]
  int64_t rows() const;                                        // product of ne[1..] (1 for a vector)
  std::span<const uint8_t> bytes() const { return {data, size_t(n_bytes)}; }
};

// One metadata key/value pair and where it starts in the file.
struct GgufKv {
  std::string key;
  GgufValue value;
  uint64_t offset = 0;
};

class GgufFile {
 public:
  // Maps and parses the file. kFile for a missing path, a directory or an unreadable file; kFormat for bad contents.
  static GgufFile open(const std::filesystem::path& path);
  // Parses an in-memory image (tests, the writer's output); the bytes are owned by the GgufFile.
  static GgufFile from_bytes(std::vector<uint8_t> bytes, std::string display_name = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  uint64_t file_size() const { return size_; }

  // ---- metadata ----
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  const GgufValue& get(std::string_view key) const;   // kFormat "missing metadata key" when absent

  // Required getters throw kFormat when the key is absent or its type does not fit (naming key, offset, types);
  // find_* return nullopt when absent and throw on a type mismatch. Integer getters accept any integer type whose
  // value fits the target; float getters accept float32 and float64.
  uint32_t get_u32(std::string_view key) const;
  int32_t get_i32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const GgufArray& get_array(std::string_view key) const;
  std::optional<uint32_t> find_u32(std::string_view key) const;
  std::optional<int32_t> find_i32(std::string_view key) const;
  std::optional<uint64_t> find_u64(std::string_view key) const;
  std::optional<float> find_f32(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  std::optional<std::string> find_string(std::string_view key) const;
  const GgufArray* find_array(std::string_view key) const;

  // Typed array copies; every element must have the matching type (integers: any integer type that fits).
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<int32_t> get_i32_array(std::string_view key) const;

  // ---- tensors ----
  const std::vector<GgufTensor>& tensors() const { return tensors_; }  // in file order
  const GgufTensor* find_tensor(std::string_view name) const;          // nullptr when absent
  const GgufTensor& tensor(std::string_view name) const;               // kFormat "missing tensor" when absent

 private:
  GgufFile() = default;
  void parse();
  uint64_t kv_offset(std::string_view key) const;

  std::string name_;
  std::vector<uint8_t> owned_;     // from_bytes images
  void* map_ = nullptr;            // mmap'ed files (unmapped in the destructor)
  const uint8_t* base_ = nullptr;  // [size_]
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  GgufStringMap<size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  GgufStringMap<size_t> tensor_index_;
};

}  // namespace quill
