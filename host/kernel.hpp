// Kernel: one kernel of a built program, with typed argument setting, launch over an NDRange, and
// optional event timing. A Kernel object holds argument state, so each thread/session owns its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "host/buffer.hpp"
#include "host/cl_handles.hpp"
#include "host/program.hpp"

namespace quill::host {

class Device;

struct LocalBytes {  // a __local pointer argument of this many bytes
  size_t bytes;
};

struct Range {  // a 1-, 2- or 3-D work size
  size_t dims = 1;
  size_t size[3] = {1, 1, 1};
  Range(size_t x) : dims(1), size{x, 1, 1} {}
  Range(size_t x, size_t y) : dims(2), size{x, y, 1} {}
  Range(size_t x, size_t y, size_t z) : dims(3), size{x, y, z} {}
};

// Completed-work timing from a profiling queue.
class Event {
 public:
  Event() = default;
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  ClEvent* out() { return &event_; }
  void wait() const;
  uint64_t elapsed_ns() const;  // end - start; needs DeviceOptions::profiling

 private:
  ClEvent event_ = nullptr;
};

class Kernel {
 public:
  Kernel() = default;
  Kernel(std::shared_ptr<const Program> program, const std::string& name);
  ~Kernel();
  Kernel(Kernel&& other) noexcept;
  Kernel& operator=(Kernel&& other) noexcept;
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  void set_arg(uint32_t index, const Buffer& buffer);
  void set_arg(uint32_t index, int32_t value);
  void set_arg(uint32_t index, uint32_t value);
  void set_arg(uint32_t index, uint64_t value);
  void set_arg(uint32_t index, float value);
  void set_arg(uint32_t index, LocalBytes local);

  // Sets arguments 0, 1, .. in order; next_arg() is then the index after the last of them.
  template <typename... Args>
  Kernel& args(const Args&... values) {
    uint32_t index = 0;
    (set_arg(index++, values), ...);
    next_arg_ = index;
    return *this;
  }
  uint32_t next_arg() const { return next_arg_; }

  // Enqueues over `global` work-items in groups of `local` (global rounded up to a multiple).
  void launch(Device& device, Range global, Range local, Event* event = nullptr);

  const std::string& name() const { return name_; }
  bool valid() const { return kernel_ != nullptr; }  // false for a default-constructed Kernel
  ClKernel handle() const { return kernel_; }          // for enqueueing on a queue other than the device's

 private:
  std::shared_ptr<const Program> program_;
  ClKernel kernel_ = nullptr;
  std::string name_;
  uint32_t next_arg_ = 0;
};

}  // namespace quill::host
