// Buffer: an RAII OpenCL memory object with its size. Never a raw cl_mem outside host/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "host/cl_handles.hpp"

namespace quill::host {

class Device;

class Buffer {
 public:
  Buffer() = default;
  Buffer(Device& device, size_t bytes);  // device memory, read-write; throws kOutOfMemory
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  size_t bytes() const { return bytes_; }
  bool empty() const { return mem_ == nullptr; }
  ClMem mem() const { return mem_; }

  // Blocking copies between host and device (offsets and sizes in bytes, checked).
  void write(const void* src, size_t bytes, size_t offset = 0);
  void read(void* dst, size_t bytes, size_t offset = 0) const;
  void fill_bytes(uint8_t value);  // e.g. poison an output before a test
  // Non-blocking: src must stay valid and unchanged until the queue's next synchronization.
  void write_async(const void* src, size_t bytes, size_t offset = 0);
  // Non-blocking device-side copy of `bytes` from src at src_offset to this buffer at offset.
  void copy_from(const Buffer& src, size_t bytes, size_t src_offset = 0, size_t offset = 0);

  template <typename T>
  void write(std::span<const T> src) {
    write(src.data(), src.size_bytes());
  }
  template <typename T>
  std::vector<T> read_vector(size_t count) const {
    std::vector<T> out(count);
    read(out.data(), count * sizeof(T));
    return out;
  }

 private:
  Device* device_ = nullptr;
  ClMem mem_ = nullptr;
  size_t bytes_ = 0;
};

// A region a decode kernel requests into L2 as it finishes (kernels/common.cl prefetch_l2): the first
// `bytes` of *buffer, normally the next kernel's weights. Empty (bytes 0): nothing.
struct L2Prefetch {
  const Buffer* buffer = nullptr;
  size_t bytes = 0;
  // The kernel arguments: the buffer (or `fallback` when empty) and the byte count, at most the buffer's.
  const Buffer& arg_buffer(const Buffer& fallback) const { return buffer ? *buffer : fallback; }
  int32_t arg_bytes() const;
};

// Creates a buffer holding a copy of a host vector.
template <typename T>
Buffer upload(Device& device, const std::vector<T>& data) {
  Buffer b(device, std::max<size_t>(1, data.size() * sizeof(T)));
  if (!data.empty()) b.write(data.data(), data.size() * sizeof(T));
  return b;
}

}  // namespace quill::host
