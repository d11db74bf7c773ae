// GgufWriter: serializes metadata and tensors to the GGUF v3 layout (see engine/gguf_writer.hpp).
#include "engine/gguf_writer.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "engine/error.hpp"

namespace quill {

namespace {

class Out {
 public:
  explicit Out(std::vector<uint8_t>& bytes) : b_(bytes) {}
  template <typename T>
  void scalar(T x) {
    const size_t at = b_.size();
    b_.resize(at + sizeof(T));
    std::memcpy(b_.data() + at, &x, sizeof(T));
  }
  void string(const std::string& s) {
    scalar<uint64_t>(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void pad(uint32_t alignment) { b_.resize((b_.size() + alignment - 1) / alignment * alignment, 0); }

  // The value without its type tag (arrays: element type, count, items).
  void value(const GgufValue& v) {
    std::visit(
        [this](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::monostate>) {
            fail(ErrorKind::kInvalidArgument, "GgufWriter: empty metadata value");
          } else if constexpr (std::is_same_v<T, std::string>) {
            string(x);
          } else if constexpr (std::is_same_v<T, GgufArray>) {
            scalar<uint32_t>(uint32_t(x.elem_type));
            scalar<uint64_t>(x.items.size());
            for (const GgufValue& item : x.items) {
              if (item.empty() || item.type() != x.elem_type) {
                fail(ErrorKind::kInvalidArgument, "GgufWriter: array of {} holds an item of another type",
                     gguf_type_name(x.elem_type));
              }
              value(item);
            }
          } else if constexpr (std::is_same_v<T, bool>) {
            scalar<uint8_t>(x ? 1 : 0);
          } else {
            scalar<T>(x);
          }
        },
        v.v);
  }

 private:
  std::vector<uint8_t>& b_;
};

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail(ErrorKind::kInvalidArgument, "GgufWriter: alignment {} is not a power of two", alignment);
  }
  if (alignment != kGgufDefaultAlignment) set("general.alignment", alignment);
}

void GgufWriter::set(const std::string& key, GgufValue value) {
  if (value.empty()) fail(ErrorKind::kInvalidArgument, "GgufWriter: empty value for metadata '{}'", key);
  for (GgufKv& kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kvs_.push_back(GgufKv{key, std::move(value), 0});
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims,
                            std::span<const uint8_t> data) {
  for (const Tensor& t : tensors_) {
    if (t.name == name) fail(ErrorKind::kInvalidArgument, "GgufWriter: duplicate tensor '{}'", name);
  }
  if (dims.empty() || dims.size() > kGgufMaxDims) {
    fail(ErrorKind::kInvalidArgument, "GgufWriter: tensor '{}' has {} dims (1..4 allowed)", name, dims.size());
  }
  int64_t rows = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] <= 0) fail(ErrorKind::kInvalidArgument, "GgufWriter: tensor '{}' ne[{}] = {}", name, i, dims[i]);
    if (i > 0) rows *= dims[i];
  }
  if (dims[0] % ggml_block_elements(type) != 0) {
    fail(ErrorKind::kInvalidArgument, "GgufWriter: tensor '{}' ne[0] = {} is not a multiple of the {} block {}", name,
         dims[0], ggml_type_name(type), ggml_block_elements(type));
  }
  const int64_t n_bytes = ggml_row_bytes(type, dims[0]) * rows;
  if (int64_t(data.size()) != n_bytes) {
    fail(ErrorKind::kInvalidArgument, "GgufWriter: tensor '{}' needs {} bytes, got {}", name, n_bytes, data.size());
  }
  tensors_.push_back(Tensor{name, type, std::move(dims), std::vector<uint8_t>(data.begin(), data.end())});
}

void GgufWriter::add_tensor_f32(const std::string& name, std::vector<int64_t> dims, std::span<const float> data) {
  add_tensor(name, GgmlType::F32, std::move(dims),
             std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size_bytes()));
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> bytes;
  Out out(bytes);
  out.scalar<uint32_t>(0x46554747u);  // "GGUF"
  out.scalar<uint32_t>(3);
  out.scalar<uint64_t>(tensors_.size());
  out.scalar<uint64_t>(kvs_.size());
  for (const GgufKv& kv : kvs_) {
    out.string(kv.key);
    out.scalar<uint32_t>(uint32_t(kv.value.type()));
    out.value(kv.value);
  }
  uint64_t offset = 0;  // relative to the data section
  for (const Tensor& t : tensors_) {
    out.string(t.name);
    out.scalar<uint32_t>(uint32_t(t.dims.size()));
    for (int64_t d : t.dims) out.scalar<uint64_t>(uint64_t(d));
    out.scalar<uint32_t>(uint32_t(t.type));
    out.scalar<uint64_t>(offset);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  out.pad(alignment_);
  for (const Tensor& t : tensors_) {
    bytes.insert(bytes.end(), t.data.begin(), t.data.end());
    out.pad(alignment_);
  }
  return bytes;
}

void GgufWriter::write(const std::filesystem::path& path) const {
  const std::vector<uint8_t> bytes = to_bytes();
  std::filesystem::path tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(ErrorKind::kFile, "GgufWriter: cannot create '{}'", tmp.string());
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      f.close();
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      fail(ErrorKind::kFile, "GgufWriter: write to '{}' failed", tmp.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    fail(ErrorKind::kFile, "GgufWriter: cannot rename '{}' to '{}': {}", tmp.string(), path.string(), ec.message());
  }
}

}  // namespace quill
