// Device discovery, capability probing and selection (see device_info.hpp).
#include "host/device_info.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "host/env.hpp"
#include "host/opencl.hpp"

#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#endif

namespace quill::host {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

bool has_extension(const std::string& extensions, std::string_view name) {
  size_t pos = 0;
  while ((pos = extensions.find(name, pos)) != std::string::npos) {
    const size_t end = pos + name.size();
    if ((pos == 0 || extensions[pos - 1] == ' ') && (end == extensions.size() || extensions[end] == ' ')) return true;
    pos = end;
  }
  return false;
}

DeviceInfo probe(cl_platform_id platform, cl_device_id device, int index) {
  DeviceInfo d;
  d.index = index;
  d.platform = platform;
  d.device = device;
  d.platform_name = platform_string(platform, CL_PLATFORM_NAME);
  d.platform_version = platform_string(platform, CL_PLATFORM_VERSION);
  d.name = device_string(device, CL_DEVICE_NAME);
  d.vendor = device_string(device, CL_DEVICE_VENDOR);
  d.device_version = device_string(device, CL_DEVICE_VERSION);
  d.driver_version = device_string(device, CL_DRIVER_VERSION);
  d.opencl_c_version = device_string(device, CL_DEVICE_OPENCL_C_VERSION);
  d.extensions = device_string(device, CL_DEVICE_EXTENSIONS);
  const auto type = device_value<cl_device_type>(device, CL_DEVICE_TYPE);
  d.is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  d.is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
  d.fp16 = has_extension(d.extensions, "cl_khr_fp16");
  d.compute_units = device_value<cl_uint>(device, CL_DEVICE_MAX_COMPUTE_UNITS);
  d.local_mem_bytes = device_value<cl_ulong>(device, CL_DEVICE_LOCAL_MEM_SIZE);
  d.max_alloc_bytes = device_value<cl_ulong>(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
  d.global_mem_bytes = device_value<cl_ulong>(device, CL_DEVICE_GLOBAL_MEM_SIZE);
  d.max_work_group_size = device_value<size_t>(device, CL_DEVICE_MAX_WORK_GROUP_SIZE);
  d.nvidia = lower(d.platform_name).find("nvidia") != std::string::npos;
  if (d.nvidia && has_extension(d.extensions, "cl_nv_device_attribute_query")) {
    const auto major = device_value<cl_uint>(device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV);
    const auto minor = device_value<cl_uint>(device, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV);
    d.sm_version = int(major * 10 + minor);
  }
  // NVIDIA's compiler accepts inline PTX; the kernels need sm_80+ (mma.sync m16n8k32 s8, dp4a).
  const char* no_ptx = std::getenv("QUILL_NO_PTX");
  d.inline_ptx = d.nvidia && d.sm_version >= 80 && !(no_ptx && *no_ptx && *no_ptx != '0');
  return d;
}

}  // namespace

std::vector<DeviceInfo> enumerate_devices() {
  cl_uint n_platforms = 0;
  const cl_int status = clGetPlatformIDs(0, nullptr, &n_platforms);
  if (status == -1001 || n_platforms == 0) {
    fail(ErrorKind::kDevice,
         "no OpenCL platform found: install an OpenCL driver (on Debian/Ubuntu: pocl-opencl-icd for the CPU, "
         "or your GPU vendor's ICD) and check `clinfo -l`");
  }
  check_cl(status, "clGetPlatformIDs");
  std::vector<cl_platform_id> platforms(n_platforms);
  check_cl(clGetPlatformIDs(n_platforms, platforms.data(), nullptr), "clGetPlatformIDs");
  std::vector<DeviceInfo> devices;
  for (cl_platform_id platform : platforms) {
    cl_uint n_devices = 0;
    if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, nullptr, &n_devices) != CL_SUCCESS || n_devices == 0) continue;
    std::vector<cl_device_id> ids(n_devices);
    check_cl(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, n_devices, ids.data(), nullptr), "clGetDeviceIDs");
    for (cl_device_id id : ids) devices.push_back(probe(platform, id, int(devices.size())));
  }
  if (devices.empty()) fail(ErrorKind::kDevice, "OpenCL platforms found, but no device on any of them");
  return devices;
}

const DeviceInfo& choose_device(const std::vector<DeviceInfo>& devices, std::string_view spec) {
  if (devices.empty()) fail(ErrorKind::kDevice, "no OpenCL device available");
  const std::string want = lower(spec);
  if (want.empty()) {
    for (const auto& d : devices)
      if (d.is_gpu) return d;
    for (const auto& d : devices)
      if (d.is_cpu) return d;
    return devices.front();
  }
  if (std::all_of(want.begin(), want.end(), [](unsigned char c) { return std::isdigit(c); })) {
    const long index = std::strtol(want.c_str(), nullptr, 10);
    if (want.size() < 6 && index >= 0 && index < long(devices.size())) return devices[size_t(index)];
  } else if (want == "gpu" || want == "cpu") {
    for (const auto& d : devices)
      if ((want == "gpu" && d.is_gpu) || (want == "cpu" && d.is_cpu)) return d;
  } else {
    for (const auto& d : devices)
      if (lower(d.platform_name + " " + d.name).find(want) != std::string::npos) return d;
  }
  std::string list;
  for (const auto& d : devices) list += fmt::format("\n  {}: {} / {} ({})", d.index, d.platform_name, d.name, d.type_name());
  fail(ErrorKind::kInvalidArgument,
       "no OpenCL device matches '{}' (expected an index, 'gpu', 'cpu' or part of a name); devices:{}", spec, list);
}

std::string device_spec_or_env(std::string_view explicit_spec) {
  if (!explicit_spec.empty()) return std::string(explicit_spec);
  const char* env = std::getenv("QUILL_DEVICE");
  return env ? std::string(env) : std::string();
}

std::string capability_build_options(const DeviceInfo& info) {
  std::string options = "-cl-std=CL1.2 -cl-mad-enable";
  if (info.inline_ptx) options += fmt::format(" -DQUILL_PTX=1 -DQUILL_SM={}", info.sm_version);
  if (info.fp16) options += " -DQUILL_FP16=1";
  // $QUILL_NV_VERBOSE=1: NVIDIA's per-kernel register / spill / shared-memory report, logged at info
  // level after each build from source (set QUILL_CACHE_DIR=off so programs are rebuilt).
  if (info.inline_ptx && env_is("QUILL_NV_VERBOSE", "1"))
    options += " -cl-nv-verbose";
  return options;
}

}  // namespace quill::host
