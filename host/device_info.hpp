// Discovery of OpenCL devices and their capabilities, and the device-selection rule shared by
// `--device` and $QUILL_DEVICE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/cl_handles.hpp"

namespace quill::host {

struct DeviceInfo {
  int index = 0;  // position in the flattened list over all platforms (what `--device N` names)
  ClPlatform platform = nullptr;
  ClDevice device = nullptr;
  std::string platform_name;
  std::string platform_version;
  std::string name;
  std::string vendor;
  std::string device_version;
  std::string driver_version;
  std::string opencl_c_version;
  std::string extensions;
  bool is_gpu = false;
  bool is_cpu = false;
  bool fp16 = false;         // cl_khr_fp16: half arithmetic compiles
  bool nvidia = false;       // NVIDIA's own OpenCL platform
  bool inline_ptx = false;   // NVIDIA inline PTX (asm volatile) path usable
  int sm_version = 0;        // compute capability * 10 (90 for the H100), 0 when unknown
  uint32_t compute_units = 0;
  uint64_t local_mem_bytes = 0;
  uint64_t max_alloc_bytes = 0;
  uint64_t global_mem_bytes = 0;
  uint64_t max_work_group_size = 0;

  std::string type_name() const { return is_gpu ? "gpu" : is_cpu ? "cpu" : "other"; }
};

// Every device of every platform. Throws quill::Error(kDevice) when no OpenCL platform exists.
std::vector<DeviceInfo> enumerate_devices();

// The device a spec names: "" (default: first GPU, else first CPU, else first), an index, "gpu",
// "cpu", or a case-insensitive substring of "platform device". Throws kInvalidArgument listing the
// devices when nothing matches.
const DeviceInfo& choose_device(const std::vector<DeviceInfo>& devices, std::string_view spec);

// The spec to use: the explicit one if non-empty, else $QUILL_DEVICE, else "".
std::string device_spec_or_env(std::string_view explicit_spec);

// The -D flags a kernel program is built with on this device (portable vs NVIDIA PTX path).
std::string capability_build_options(const DeviceInfo& info);

}  // namespace quill::host
