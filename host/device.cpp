// Device: context, queue, memory accounting and program cache (see device.hpp).
#include "host/device.hpp"

#include <algorithm>
#include <map>

#include "host/kernel_sources.hpp"
#include "host/opencl.hpp"

namespace quill::host {
namespace {

const DeviceInfo& select(const DeviceOptions& options, std::vector<DeviceInfo>& storage) {
  storage = enumerate_devices();
  return choose_device(storage, device_spec_or_env(options.spec));
}

}  // namespace

Device::Device(const DeviceOptions& options)
    : info_([&] {
        std::vector<DeviceInfo> all;
        return select(options, all);
      }()),
      profiling_(options.profiling) {
  cl_int status = CL_SUCCESS;
  cl_device_id device = info_.device;
  context_ = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &status);
  check_cl(status, "clCreateContext");
  const cl_command_queue_properties props = profiling_ ? CL_QUEUE_PROFILING_ENABLE : 0;
  queue_ = clCreateCommandQueue(context_, device, props, &status);
  if (status != CL_SUCCESS) {
    clReleaseContext(context_);
    check_cl(status, "clCreateCommandQueue");
  }
  cache_ = std::make_unique<ProgramCache>(info_, context_);
}

Device::~Device() {
  for (auto& launch : recorded_) clReleaseEvent(launch.event);
  if (queue_) {
    clFinish(queue_);
    clReleaseCommandQueue(queue_);
  }
  if (context_) clReleaseContext(context_);
}

std::shared_ptr<const Program> Device::program(std::string_view source, std::string_view options) {
  std::string all_options = capability_build_options(info_);
  if (!options.empty()) {
    all_options += ' ';
    all_options += options;
  }
  return cache_->get(std::string(source), load_kernel_source(source), all_options);
}

void Device::finish() { check_cl(clFinish(queue_), "clFinish"); }
void Device::flush() { check_cl(clFlush(queue_), "clFlush"); }

void Device::note_alloc(size_t bytes) {
  const uint64_t now = allocated_.fetch_add(bytes) + bytes;
  uint64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
}

void Device::note_free(size_t bytes) { allocated_.fetch_sub(bytes); }

bool Device::take_injected_allocation_failure() {
  int64_t left = fail_allocation_after_.load();
  while (left >= 0 && !fail_allocation_after_.compare_exchange_weak(left, left - 1)) {
  }
  return left == 0;  // this allocation was the one to fail (the counter is now -1: off again)
}

void Device::set_profile_recording(bool on) {
  if (on && !profiling_) fail(ErrorKind::kInvalidArgument, "kernel profiling needs a device opened with profiling");
  recording_ = on;
}

void Device::record_event(const std::string& kernel, const std::string& grid, ClEvent event) {
  std::lock_guard<std::mutex> lock(profile_mutex_);
  recorded_.push_back({kernel, grid, event});
}

std::vector<Device::KernelProfile> Device::profile_report() {
  std::vector<RecordedLaunch> events;
  {
    std::lock_guard<std::mutex> lock(profile_mutex_);
    events.swap(recorded_);
  }
  std::map<std::pair<std::string, std::string>, KernelProfile> by_name;
  for (auto& [name, grid, event] : events) {
    cl_ulong start = 0, end = 0;
    clWaitForEvents(1, &event);
    clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_START, sizeof start, &start, nullptr);
    clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_END, sizeof end, &end, nullptr);
    clReleaseEvent(event);
    KernelProfile& p = by_name[{name, grid}];
    p.name = name;
    p.grid = grid;
    p.launches += 1;
    p.total_ns += end - start;
  }
  std::vector<KernelProfile> out;
  for (auto& [name, p] : by_name) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.total_ns > b.total_ns; });
  return out;
}

}  // namespace quill::host
