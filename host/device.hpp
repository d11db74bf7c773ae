// Device: one OpenCL device with its context, in-order queue, capabilities, device-memory
// accounting and kernel-program cache.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host/cl_handles.hpp"
#include "host/device_info.hpp"
#include "host/program.hpp"

namespace quill::host {

struct DeviceOptions {
  std::string spec;         // "" = $QUILL_DEVICE or the default rule (device_info.hpp)
  bool profiling = false;   // event timing on the queue
};

class Device {
 public:
  explicit Device(const DeviceOptions& options = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const DeviceInfo& info() const { return info_; }
  ClContext context() const { return context_; }
  ClQueue queue() const { return queue_; }
  bool profiling() const { return profiling_; }

  // The program built from kernels/<source> with the capability flags plus `options`; built once
  // per (source, options) and cached in memory and on disk (program.hpp).
  std::shared_ptr<const Program> program(std::string_view source, std::string_view options = "");

  ProgramCache& program_cache() { return *cache_; }

  void finish();  // waits for all queued work
  void flush();

  // Device memory accounting (Buffer reports here).
  // Fault injection for tests: the allocation after the next `after` ones fails as a device
  // out-of-memory would (-1: off, the default). Lets tests drive the out-of-memory paths.
  void inject_allocation_failure(int64_t after) { fail_allocation_after_.store(after); }
  bool take_injected_allocation_failure();  // Buffer's constructor asks before allocating
  void note_alloc(size_t bytes);
  void note_free(size_t bytes);
  uint64_t allocated_bytes() const { return allocated_.load(); }
  uint64_t peak_allocated_bytes() const { return peak_.load(); }

  // Kernel launches enqueued so far (Kernel::launch counts here).
  void note_launch() { launches_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t launch_count() const { return launches_.load(std::memory_order_relaxed); }

  // Per-kernel profiling (needs DeviceOptions::profiling): while recording, every launch keeps its
  // event; profile_report() waits for them and returns (kernel name, work-group grid, launches,
  // total ns) per name and grid, sorted by time, then clears.
  struct KernelProfile {
    std::string name;
    std::string grid;  // work-groups per dimension, e.g. "768x1": tells a kernel's shapes apart
    uint64_t launches = 0;
    uint64_t total_ns = 0;
  };
  void set_profile_recording(bool on);
  bool profile_recording() const { return recording_; }
  void record_event(const std::string& kernel, const std::string& grid, ClEvent event);  // owns the event
  std::vector<KernelProfile> profile_report();

 private:
  DeviceInfo info_;
  ClContext context_ = nullptr;
  ClQueue queue_ = nullptr;
  bool profiling_ = false;
  std::unique_ptr<ProgramCache> cache_;
  std::atomic<uint64_t> allocated_{0};
  std::atomic<int64_t> fail_allocation_after_{-1};
  std::atomic<uint64_t> peak_{0};
  std::atomic<uint64_t> launches_{0};
  bool recording_ = false;
  std::mutex profile_mutex_;
  struct RecordedLaunch {
    std::string kernel, grid;
    ClEvent event;
  };
  std::vector<RecordedLaunch> recorded_;
};

}  // namespace quill::host
