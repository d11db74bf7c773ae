// Buffer: RAII device memory (see buffer.hpp).
#include "host/buffer.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "host/device.hpp"
#include "host/opencl.hpp"

namespace quill::host {

int32_t L2Prefetch::arg_bytes() const {
  if (!buffer) return 0;
  return int32_t(std::min<size_t>({bytes, buffer->bytes(), size_t(INT32_MAX)}));
}

Buffer::Buffer(Device& device, size_t bytes) : device_(&device), bytes_(bytes) {
  if (bytes == 0) fail(ErrorKind::kInvalidArgument, "cannot allocate an empty device buffer");
  const auto& info = device.info();
  if (bytes > info.max_alloc_bytes) {
    fail(ErrorKind::kOutOfMemory, "device buffer of {} bytes exceeds {}'s maximum allocation of {} bytes", bytes,
         info.name, info.max_alloc_bytes);
  }
  if (device.take_injected_allocation_failure())
    fail(ErrorKind::kOutOfMemory, "device buffer of {} bytes: out of device memory (injected by a test)", bytes);
  cl_int status = CL_SUCCESS;
  mem_ = clCreateBuffer(device.context(), CL_MEM_READ_WRITE, bytes, nullptr, &status);
  check_cl(status, "clCreateBuffer");
  device.note_alloc(bytes);
}

Buffer::~Buffer() {
  if (mem_) {
    clReleaseMemObject(mem_);
    device_->note_free(bytes_);
  }
}

Buffer::Buffer(Buffer&& other) noexcept
    : device_(std::exchange(other.device_, nullptr)),
      mem_(std::exchange(other.mem_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Buffer dying(std::move(*this));
    device_ = std::exchange(other.device_, nullptr);
    mem_ = std::exchange(other.mem_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void Buffer::write(const void* src, size_t bytes, size_t offset) {
  if (offset > bytes_ || bytes > bytes_ - offset)
    fail(ErrorKind::kInternal, "buffer write of {} bytes at {} past its {} bytes", bytes, offset, bytes_);
  if (bytes == 0) return;
  check_cl(clEnqueueWriteBuffer(device_->queue(), mem_, CL_TRUE, offset, bytes, src, 0, nullptr, nullptr),
           "clEnqueueWriteBuffer");
}

void Buffer::read(void* dst, size_t bytes, size_t offset) const {
  if (offset > bytes_ || bytes > bytes_ - offset)
    fail(ErrorKind::kInternal, "buffer read of {} bytes at {} past its {} bytes", bytes, offset, bytes_);
  if (bytes == 0) return;
  check_cl(clEnqueueReadBuffer(device_->queue(), mem_, CL_TRUE, offset, bytes, dst, 0, nullptr, nullptr),
           "clEnqueueReadBuffer");
}

void Buffer::write_async(const void* src, size_t bytes, size_t offset) {
  if (offset > bytes_ || bytes > bytes_ - offset)
    fail(ErrorKind::kInternal, "buffer write of {} bytes at {} past its {} bytes", bytes, offset, bytes_);
  if (bytes == 0) return;
  check_cl(clEnqueueWriteBuffer(device_->queue(), mem_, CL_FALSE, offset, bytes, src, 0, nullptr, nullptr),
           "clEnqueueWriteBuffer");
}

void Buffer::copy_from(const Buffer& src, size_t bytes, size_t src_offset, size_t offset) {
  if (offset > bytes_ || bytes > bytes_ - offset || src_offset > src.bytes_ || bytes > src.bytes_ - src_offset)
    fail(ErrorKind::kInternal, "buffer copy of {} bytes out of range", bytes);
  if (bytes == 0) return;
  check_cl(clEnqueueCopyBuffer(device_->queue(), src.mem_, mem_, src_offset, offset, bytes, 0, nullptr, nullptr),
           "clEnqueueCopyBuffer");
}

void Buffer::fill_bytes(uint8_t value) {
  check_cl(clEnqueueFillBuffer(device_->queue(), mem_, &value, 1, 0, bytes_, 0, nullptr, nullptr),
           "clEnqueueFillBuffer");
}

}  // namespace quill::host
