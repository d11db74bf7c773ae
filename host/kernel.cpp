// Kernel argument setting, launching and event timing (see kernel.hpp).
#include "host/kernel.hpp"

#include <utility>

#include "host/device.hpp"
#include "host/opencl.hpp"

namespace quill::host {

Event::~Event() {
  if (event_) clReleaseEvent(event_);
}
Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (event_) clReleaseEvent(event_);
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

void Event::wait() const {
  if (event_) check_cl(clWaitForEvents(1, &event_), "clWaitForEvents");
}

uint64_t Event::elapsed_ns() const {
  if (!event_) return 0;
  wait();
  cl_ulong start = 0, end = 0;
  check_cl(clGetEventProfilingInfo(event_, CL_PROFILING_COMMAND_START, sizeof start, &start, nullptr),
           "clGetEventProfilingInfo (is the queue profiling?)");
  check_cl(clGetEventProfilingInfo(event_, CL_PROFILING_COMMAND_END, sizeof end, &end, nullptr),
           "clGetEventProfilingInfo");
  return end - start;
}

Kernel::Kernel(std::shared_ptr<const Program> program, const std::string& name)
    : program_(std::move(program)), name_(name) {
  cl_int status = CL_SUCCESS;
  kernel_ = clCreateKernel(program_->handle(), name.c_str(), &status);
  if (status != CL_SUCCESS)
    fail(ErrorKind::kDevice, "kernel {} not found in program {}: {}", name, program_->name(), cl_error_name(status));
}

Kernel::~Kernel() {
  if (kernel_) clReleaseKernel(kernel_);
}

Kernel::Kernel(Kernel&& other) noexcept
    : program_(std::move(other.program_)),
      kernel_(std::exchange(other.kernel_, nullptr)),
      name_(std::move(other.name_)),
      next_arg_(other.next_arg_) {}

Kernel& Kernel::operator=(Kernel&& other) noexcept {
  if (this != &other) {
    if (kernel_) clReleaseKernel(kernel_);
    program_ = std::move(other.program_);
    kernel_ = std::exchange(other.kernel_, nullptr);
    name_ = std::move(other.name_);
    next_arg_ = other.next_arg_;
  }
  return *this;
}

namespace {
void set(ClKernel kernel, const std::string& name, uint32_t index, size_t size, const void* value) {
  const cl_int status = clSetKernelArg(kernel, index, size, value);
  if (status != CL_SUCCESS)
    fail(ErrorKind::kInternal, "setting argument {} of kernel {}: {}", index, name, cl_error_name(status));
}
}  // namespace

void Kernel::set_arg(uint32_t index, const Buffer& buffer) {
  cl_mem mem = buffer.mem();
  set(kernel_, name_, index, sizeof mem, &mem);
}
void Kernel::set_arg(uint32_t index, int32_t value) { set(kernel_, name_, index, sizeof value, &value); }
void Kernel::set_arg(uint32_t index, uint32_t value) { set(kernel_, name_, index, sizeof value, &value); }
void Kernel::set_arg(uint32_t index, uint64_t value) { set(kernel_, name_, index, sizeof value, &value); }
void Kernel::set_arg(uint32_t index, float value) { set(kernel_, name_, index, sizeof value, &value); }
void Kernel::set_arg(uint32_t index, LocalBytes local) { set(kernel_, name_, index, local.bytes, nullptr); }

void Kernel::launch(Device& device, Range global, Range local, Event* event) {
  size_t rounded[3];
  for (size_t d = 0; d < global.dims; ++d) {
    const size_t l = d < local.dims ? local.size[d] : 1;
    rounded[d] = (global.size[d] + l - 1) / l * l;
  }
  cl_event recorded = nullptr;
  const bool record = device.profile_recording() && !event;
  const cl_int status = clEnqueueNDRangeKernel(device.queue(), kernel_, cl_uint(global.dims), nullptr, rounded,
                                               local.size, 0, nullptr, event ? event->out() : record ? &recorded : nullptr);
  if (status != CL_SUCCESS) check_cl(status, ("clEnqueueNDRangeKernel(" + name_ + ")").c_str());
  device.note_launch();
  if (record) {
    std::string grid;
    for (size_t d = 0; d < global.dims; ++d)
      grid += (d ? "x" : "") + std::to_string(rounded[d] / (d < local.dims ? local.size[d] : 1));
    device.record_event(name_, grid, recorded);
  }
}

}  // namespace quill::host
