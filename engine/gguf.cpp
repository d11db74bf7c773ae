// GgufFile: mapping a GGUF file and parsing it with every count, length, dim, type and offset checked against the
// bytes that remain before anything is allocated. Errors name the field and its byte offset.
#include "engine/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "engine/error.hpp"

namespace quill {

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
      return "uint8";
    case GgufType::kInt8:
      return "int8";
    case GgufType::kUint16:
      return "uint16";
    case GgufType::kInt16:
      return "int16";
    case GgufType::kUint32:
      return "uint32";
    case GgufType::kInt32:
      return "int32";
    case GgufType::kFloat32:
      return "float32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kUint64:
      return "uint64";
    case GgufType::kInt64:
      return "int64";
    case GgufType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool gguf_type_valid(uint32_t id) { return id <= uint32_t(GgufType::kFloat64); }

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;  // products were checked for overflow when parsing
  return n;
}

int64_t GgufTensor::rows() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

namespace {

constexpr int kMaxArrayDepth = 8;          // nested arrays deeper than this are rejected (no unbounded recursion)
constexpr uint64_t kMaxReserve = 1 << 16;  // up-front reservations are capped; vectors grow with parsed data

// Smallest encoding of one value of a type: bounds array counts by the bytes left before reserving.
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
      return 8;  // uint64 length
    case GgufType::kArray:
      return 12;  // uint32 type + uint64 count
  }
  return 1;
}

// A bounds-checked little-endian cursor over the file image.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& name) : base_(base), size_(size), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  void need(uint64_t n, std::string_view field) const {
    if (n > left()) {
      fail(ErrorKind::kFormat, "{}: {} at offset {}: needs {} bytes but only {} remain (file size {})", name_, field,
           pos_, n, left(), size_);
    }
  }
  template <typename T>
  T scalar(std::string_view field) {
    need(sizeof(T), field);
    T x;
    std::memcpy(&x, base_ + pos_, sizeof(T));  // the host is little-endian like the format
    pos_ += sizeof(T);
    return x;
  }
  std::string string(std::string_view field) {
    const uint64_t at = pos_;
    const uint64_t n = scalar<uint64_t>(field);
    if (n > left()) {
      fail(ErrorKind::kFormat, "{}: {} at offset {}: string length {} exceeds the {} bytes left in the file", name_,
           field, at, n, left());
    }
    std::string s(reinterpret_cast<const char*>(base_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }

  GgufValue value(GgufType type, std::string_view field, int depth) {
    switch (type) {
      case GgufType::kUint8:
        return scalar<uint8_t>(field);
      case GgufType::kInt8:
        return scalar<int8_t>(field);
      case GgufType::kUint16:
        return scalar<uint16_t>(field);
      case GgufType::kInt16:
        return scalar<int16_t>(field);
      case GgufType::kUint32:
        return scalar<uint32_t>(field);
      case GgufType::kInt32:
        return scalar<int32_t>(field);
      case GgufType::kFloat32:
        return scalar<float>(field);
      case GgufType::kUint64:
        return scalar<uint64_t>(field);
      case GgufType::kInt64:
        return scalar<int64_t>(field);
      case GgufType::kFloat64:
        return scalar<double>(field);
      case GgufType::kBool: {
        const uint64_t at = pos_;
        const uint8_t b = scalar<uint8_t>(field);
        if (b > 1)
          fail(ErrorKind::kFormat, "{}: {} at offset {}: bool value {} is neither 0 nor 1", name_, field, at, b);
        return bool(b);
      }
      case GgufType::kString:
        return string(field);
      case GgufType::kArray:
        return array(field, depth);
    }
    fail(ErrorKind::kInternal, "unreachable value type {}", uint32_t(type));
  }

  GgufValue array(std::string_view field, int depth) {
    const uint64_t at = pos_;
    if (depth >= kMaxArrayDepth) {
      fail(ErrorKind::kFormat, "{}: {} at offset {}: arrays nested deeper than {}", name_, field, at, kMaxArrayDepth);
    }
    const uint32_t elem_id = scalar<uint32_t>(field);
    if (!gguf_type_valid(elem_id)) {
      fail(ErrorKind::kFormat, "{}: {} at offset {}: unknown array element type {}", name_, field, at, elem_id);
    }
    const auto elem = GgufType(elem_id);
    const uint64_t count_at = pos_;
    const uint64_t count = scalar<uint64_t>(field);
    if (count > left() / min_value_bytes(elem)) {
      fail(ErrorKind::kFormat, "{}: {} at offset {}: array of {} {} elements cannot fit in the {} bytes left", name_,
           field, count_at, count, gguf_type_name(elem), left());
    }
    GgufArray a;
    a.elem_type = elem;
    a.items.reserve(size_t(std::min<uint64_t>(count, kMaxReserve)));  // grows only as items parse
    for (uint64_t i = 0; i < count; ++i) a.items.push_back(value(elem, field, depth + 1));
    return GgufValue(std::move(a));
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

// The value of an integer GgufValue, widened; nullopt when not an integer.
std::optional<__int128> as_integer(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> std::optional<__int128> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          return __int128(x);
        } else {
          return std::nullopt;
        }
      },
      v.v);
}

template <typename T>
std::optional<T> integer_as(const GgufValue& v) {
  const auto x = as_integer(v);
  if (!x || *x < __int128(std::numeric_limits<T>::min()) || *x > __int128(std::numeric_limits<T>::max())) {
    return std::nullopt;
  }
  return T(*x);
}

std::optional<float> float_as(const GgufValue& v) {
  if (const float* f = std::get_if<float>(&v.v)) return *f;
  if (const double* d = std::get_if<double>(&v.v)) return float(*d);
  return std::nullopt;
}

std::string describe(const GgufValue& v) {
  if (v.empty()) return "nothing";
  const auto x = as_integer(v);
  if (x) return fmt::format("{} {}", gguf_type_name(v.type()), int64_t(*x));
  if (const auto* a = std::get_if<GgufArray>(&v.v)) {
    return fmt::format("array of {} {}", a->items.size(), gguf_type_name(a->elem_type));
  }
  return std::string(gguf_type_name(v.type()));
}

}  // namespace

// ---- opening ----

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.name_ = path.string();
  // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; the type is checked just below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(ErrorKind::kFile, "cannot open GGUF file '{}': {}", f.name_, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(ErrorKind::kFile, "cannot stat GGUF file '{}': {}", f.name_, std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(ErrorKind::kFile, "'{}' is a directory, not a GGUF file", f.name_);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorKind::kFile, "'{}' is not a regular file", f.name_);
  }
  f.size_ = uint64_t(st.st_size);
  if (f.size_ == 0) {
    ::close(fd);
    fail(ErrorKind::kFormat, "{}: the file is empty (0 bytes), too short for a GGUF header", f.name_);
  }
  void* map = ::mmap(nullptr, size_t(f.size_), PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (map == MAP_FAILED) fail(ErrorKind::kFile, "cannot map GGUF file '{}': {}", f.name_, std::strerror(err));
  f.map_ = map;
  f.base_ = static_cast<const uint8_t*>(map);
  f.parse();
  return f;
}

GgufFile GgufFile::from_bytes(std::vector<uint8_t> bytes, std::string display_name) {
  GgufFile f;
  f.name_ = std::move(display_name);
  f.owned_ = std::move(bytes);
  f.base_ = f.owned_.data();
  f.size_ = f.owned_.size();
  f.parse();
  return f;
}

GgufFile::GgufFile(GgufFile&& o) noexcept { *this = std::move(o); }

GgufFile& GgufFile::operator=(GgufFile&& o) noexcept {
  if (this == &o) return *this;
  if (map_) ::munmap(map_, size_t(size_));
  name_ = std::move(o.name_);
  owned_ = std::move(o.owned_);  // the heap buffer moves with its address, so base_ and tensor views stay valid
  map_ = o.map_;
  base_ = o.base_;
  size_ = o.size_;
  version_ = o.version_;
  alignment_ = o.alignment_;
  data_offset_ = o.data_offset_;
  kvs_ = std::move(o.kvs_);
  kv_index_ = std::move(o.kv_index_);
  tensors_ = std::move(o.tensors_);
  tensor_index_ = std::move(o.tensor_index_);
  o.map_ = nullptr;
  o.base_ = nullptr;
  o.size_ = 0;
  return *this;
}

GgufFile::~GgufFile() {
  if (map_) ::munmap(map_, size_t(size_));
}

// ---- parsing ----

void GgufFile::parse() {
  Cursor c(base_, size_, name_);
  if (size_ < 4) {
    fail(ErrorKind::kFormat, "{}: the file is {} bytes, too short for the GGUF magic at offset 0", name_, size_);
  }
  if (std::memcmp(base_, "GGUF", 4) != 0) {
    fail(ErrorKind::kFormat,
         "{}: bad magic at offset 0: expected 'GGUF' (47 47 55 46), found {:02x} {:02x} {:02x} {:02x}", name_, base_[0],
         base_[1], base_[2], base_[3]);
  }
  c.scalar<uint32_t>("magic");
  version_ = c.scalar<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    fail(ErrorKind::kFormat, "{}: version at offset 4: {} is not supported (2 and 3 are; big-endian files are not)",
         name_, version_);
  }
  const uint64_t n_tensors = c.scalar<uint64_t>("tensor count");
  const uint64_t n_kv_at = c.pos();
  const uint64_t n_kv = c.scalar<uint64_t>("metadata count");
  // Each key/value takes at least 13 bytes (length, type, one byte); each tensor info at least 28.
  if (n_kv > c.left() / 13) {
    fail(ErrorKind::kFormat, "{}: metadata count at offset {}: {} pairs cannot fit in the {} bytes left", name_,
         n_kv_at, n_kv, c.left());
  }
  if (n_tensors > c.left() / 28) {
    fail(ErrorKind::kFormat, "{}: tensor count at offset 8: {} tensors cannot fit in the {} bytes left", name_,
         n_tensors, c.left());
  }

  kvs_.reserve(size_t(std::min<uint64_t>(n_kv, kMaxReserve)));
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKv kv;
    kv.offset = c.pos();
    kv.key = c.string(fmt::format("metadata key #{}", i));
    const std::string field = fmt::format("metadata '{}'", kv.key);
    const uint64_t type_at = c.pos();
    const uint32_t type = c.scalar<uint32_t>(field);
    if (!gguf_type_valid(type)) {
      fail(ErrorKind::kFormat, "{}: {} at offset {}: unknown value type {}", name_, field, type_at, type);
    }
    kv.value = c.value(GgufType(type), field, 0);
    if (kv_index_.count(kv.key)) {
      fail(ErrorKind::kFormat, "{}: {} at offset {}: duplicate metadata key", name_, field, kv.offset);
    }
    kv_index_.emplace(kv.key, kvs_.size());
    kvs_.push_back(std::move(kv));
  }

  if (const GgufValue* a = find("general.alignment")) {
    const auto align = integer_as<uint32_t>(*a);
    if (!align || *align == 0 || (*align & (*align - 1)) != 0) {
      fail(ErrorKind::kFormat, "{}: metadata 'general.alignment' at offset {}: {} is not a power of two", name_,
           kv_offset("general.alignment"), describe(*a));
    }
    alignment_ = *align;
  }

  tensors_.reserve(size_t(std::min<uint64_t>(n_tensors, kMaxReserve)));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.info_offset = c.pos();
    t.name = c.string(fmt::format("tensor #{} name", i));
    const std::string where = fmt::format("{}: tensor '{}' at offset {}", name_, t.name, t.info_offset);
    const uint32_t n_dims = c.scalar<uint32_t>("tensor n_dims");
    if (n_dims == 0 || n_dims > kGgufMaxDims) {
      fail(ErrorKind::kFormat, "{}: n_dims {} is not in [1, {}]", where, n_dims, kGgufMaxDims);
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.scalar<uint64_t>("tensor dims");
      if (ne == 0 || ne > uint64_t(std::numeric_limits<int64_t>::max())) {
        fail(ErrorKind::kFormat, "{}: ne[{}] = {} is not a positive int64", where, d, ne);
      }
      if (n_elements > uint64_t(std::numeric_limits<int64_t>::max()) / ne) {
        fail(ErrorKind::kFormat, "{}: the product of dims overflows int64 at ne[{}] = {}", where, d, ne);
      }
      n_elements *= ne;
      t.dims.push_back(int64_t(ne));
    }
    const uint32_t type_id = c.scalar<uint32_t>("tensor type");
    const auto type = ggml_type_from_id(type_id);
    if (!type) fail(ErrorKind::kFormat, "{}: unknown or unsupported ggml type id {}", where, type_id);
    t.type = *type;
    t.offset = c.scalar<uint64_t>("tensor data offset");
    const int64_t block = ggml_block_elements(t.type);
    if (t.dims[0] % block != 0) {
      fail(ErrorKind::kFormat, "{}: ne[0] = {} is not a multiple of the {} block size {}", where, t.dims[0],
           ggml_type_name(t.type), block);
    }
    const uint64_t row_bytes = uint64_t(t.dims[0] / block) * uint64_t(ggml_block_bytes(t.type));
    const uint64_t rows = n_elements / uint64_t(t.dims[0]);
    if (row_bytes != 0 && rows > std::numeric_limits<uint64_t>::max() / row_bytes) {
      fail(ErrorKind::kFormat, "{}: the byte size overflows", where);
    }
    t.n_bytes = row_bytes * rows;
    if (tensor_index_.count(t.name)) fail(ErrorKind::kFormat, "{}: duplicate tensor name", where);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment (it may lie at the very end of the file).
  const uint64_t end_of_infos = c.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  for (GgufTensor& t : tensors_) {
    const std::string where = fmt::format("{}: tensor '{}' at offset {}", name_, t.name, t.info_offset);
    if (t.offset % alignment_ != 0) {
      fail(ErrorKind::kFormat, "{}: data offset {} is not a multiple of the alignment {}", where, t.offset, alignment_);
    }
    const bool inside =
        data_offset_ <= size_ && t.offset <= size_ - data_offset_ && t.n_bytes <= size_ - data_offset_ - t.offset;
    if (!inside) {
      const unsigned __int128 begin = (unsigned __int128)data_offset_ + t.offset;
      fail(ErrorKind::kFormat, "{}: data [{}, {}) lies past end of file (size {})", where, uint64_t(begin),
           uint64_t(begin + t.n_bytes), size_);
    }
    t.data = base_ + data_offset_ + t.offset;
  }
  // No two tensors may share bytes.
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const GgufTensor& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor& a = *by_offset[i - 1];
    const GgufTensor& b = *by_offset[i];
    if (a.offset + a.n_bytes > b.offset) {
      fail(ErrorKind::kFormat, "{}: tensor '{}' at offset {}: data [{}, {}) overlaps tensor '{}' data [{}, {})", name_,
           b.name, b.info_offset, data_offset_ + b.offset, data_offset_ + b.offset + b.n_bytes, a.name,
           data_offset_ + a.offset, data_offset_ + a.offset + a.n_bytes);
    }
  }
}

// ---- metadata lookups ----

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

uint64_t GgufFile::kv_offset(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? 0 : kvs_[it->second].offset;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail(ErrorKind::kFormat, "{}: missing metadata key '{}'", name_, key);
  return *v;
}

namespace {

template <typename T>
T convert_or_fail(const GgufFile& f, std::string_view key, uint64_t offset, const GgufValue& v, std::string_view want) {
  std::optional<T> x;
  if constexpr (std::is_same_v<T, float>) {
    x = float_as(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (const bool* b = std::get_if<bool>(&v.v)) x = *b;
  } else {
    x = integer_as<T>(v);
  }
  if (!x) {
    fail(ErrorKind::kFormat, "{}: metadata '{}' at offset {}: expected {}, found {}", f.path(), key, offset, want,
         describe(v));
  }
  return *x;
}

}  // namespace

#define QUILL_GGUF_GETTERS(T, suffix, want)                                \
  T GgufFile::get_##suffix(std::string_view key) const {                   \
    return convert_or_fail<T>(*this, key, kv_offset(key), get(key), want); \
  }                                                                        \
  std::optional<T> GgufFile::find_##suffix(std::string_view key) const {   \
    const GgufValue* v = find(key);                                        \
    if (!v) return std::nullopt;                                           \
    return convert_or_fail<T>(*this, key, kv_offset(key), *v, want);       \
  }

QUILL_GGUF_GETTERS(uint32_t, u32, "an integer in uint32 range")
QUILL_GGUF_GETTERS(int32_t, i32, "an integer in int32 range")
QUILL_GGUF_GETTERS(uint64_t, u64, "an integer in uint64 range")
QUILL_GGUF_GETTERS(float, f32, "float32 or float64")
QUILL_GGUF_GETTERS(bool, bool, "bool")
#undef QUILL_GGUF_GETTERS

const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = get(key);
  const auto* s = std::get_if<std::string>(&v.v);
  if (!s)
    fail(ErrorKind::kFormat, "{}: metadata '{}' at offset {}: expected string, found {}", name_, key, kv_offset(key),
         describe(v));
  return *s;
}

std::optional<std::string> GgufFile::find_string(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}

const GgufArray& GgufFile::get_array(std::string_view key) const {
  const GgufValue& v = get(key);
  const auto* a = std::get_if<GgufArray>(&v.v);
  if (!a)
    fail(ErrorKind::kFormat, "{}: metadata '{}' at offset {}: expected array, found {}", name_, key, kv_offset(key),
         describe(v));
  return *a;
}

const GgufArray* GgufFile::find_array(std::string_view key) const { return has(key) ? &get_array(key) : nullptr; }

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufArray& a = get_array(key);
  if (a.elem_type != GgufType::kString) {
    fail(ErrorKind::kFormat, "{}: metadata '{}' at offset {}: expected array of string, found array of {}", name_, key,
         kv_offset(key), gguf_type_name(a.elem_type));
  }
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const GgufValue& v : a.items) out.push_back(std::get<std::string>(v.v));
  return out;
}

std::vector<float> GgufFile::get_f32_array(std::string_view key) const {
  const GgufArray& a = get_array(key);
  std::vector<float> out;
  out.reserve(a.items.size());
  for (const GgufValue& v : a.items)
    out.push_back(convert_or_fail<float>(*this, key, kv_offset(key), v, "float elements"));
  return out;
}

std::vector<int32_t> GgufFile::get_i32_array(std::string_view key) const {
  const GgufArray& a = get_array(key);
  std::vector<int32_t> out;
  out.reserve(a.items.size());
  for (const GgufValue& v : a.items) {
    out.push_back(convert_or_fail<int32_t>(*this, key, kv_offset(key), v, "integer elements in int32 range"));
  }
  return out;
}

// ---- tensors ----

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  const GgufTensor* t = find_tensor(name);
  if (!t) fail(ErrorKind::kFormat, "{}: missing tensor '{}'", name_, name);
  return *t;
}

}  // namespace quill
