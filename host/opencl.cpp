// OpenCL status names and info-string queries (see opencl.hpp).
#include "host/opencl.hpp"

#include <vector>

namespace quill::host {

const char* cl_error_name(cl_int status) {
  switch (status) {
#define QUILL_CL_ERR(x) \
  case x:               \
    return #x;
    QUILL_CL_ERR(CL_SUCCESS)
    QUILL_CL_ERR(CL_DEVICE_NOT_FOUND)
    QUILL_CL_ERR(CL_DEVICE_NOT_AVAILABLE)
    QUILL_CL_ERR(CL_COMPILER_NOT_AVAILABLE)
    QUILL_CL_ERR(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    QUILL_CL_ERR(CL_OUT_OF_RESOURCES)
    QUILL_CL_ERR(CL_OUT_OF_HOST_MEMORY)
    QUILL_CL_ERR(CL_PROFILING_INFO_NOT_AVAILABLE)
    QUILL_CL_ERR(CL_BUILD_PROGRAM_FAILURE)
    QUILL_CL_ERR(CL_INVALID_VALUE)
    QUILL_CL_ERR(CL_INVALID_DEVICE)
    QUILL_CL_ERR(CL_INVALID_CONTEXT)
    QUILL_CL_ERR(CL_INVALID_COMMAND_QUEUE)
    QUILL_CL_ERR(CL_INVALID_MEM_OBJECT)
    QUILL_CL_ERR(CL_INVALID_BINARY)
    QUILL_CL_ERR(CL_INVALID_BUILD_OPTIONS)
    QUILL_CL_ERR(CL_INVALID_PROGRAM)
    QUILL_CL_ERR(CL_INVALID_PROGRAM_EXECUTABLE)
    QUILL_CL_ERR(CL_INVALID_KERNEL_NAME)
    QUILL_CL_ERR(CL_INVALID_KERNEL)
    QUILL_CL_ERR(CL_INVALID_ARG_INDEX)
    QUILL_CL_ERR(CL_INVALID_ARG_VALUE)
    QUILL_CL_ERR(CL_INVALID_ARG_SIZE)
    QUILL_CL_ERR(CL_INVALID_KERNEL_ARGS)
    QUILL_CL_ERR(CL_INVALID_WORK_DIMENSION)
    QUILL_CL_ERR(CL_INVALID_WORK_GROUP_SIZE)
    QUILL_CL_ERR(CL_INVALID_WORK_ITEM_SIZE)
    QUILL_CL_ERR(CL_INVALID_GLOBAL_OFFSET)
    QUILL_CL_ERR(CL_INVALID_EVENT)
    QUILL_CL_ERR(CL_INVALID_OPERATION)
    QUILL_CL_ERR(CL_INVALID_BUFFER_SIZE)
    QUILL_CL_ERR(CL_INVALID_GLOBAL_WORK_SIZE)
    QUILL_CL_ERR(CL_INVALID_PLATFORM)
    QUILL_CL_ERR(CL_INVALID_DEVICE_TYPE)
#undef QUILL_CL_ERR
    case -1001:
      return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL platform installed)";
    default:
      return "unknown OpenCL error";
  }
}

void check_cl(cl_int status, const char* what) {
  if (status == CL_SUCCESS) return;
  const bool oom = status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_HOST_MEMORY ||
                   status == CL_OUT_OF_RESOURCES || status == CL_INVALID_BUFFER_SIZE;
  fail(oom ? ErrorKind::kOutOfMemory : ErrorKind::kDevice, "{} failed: {} ({})", what, cl_error_name(status), status);
}

std::string device_string(cl_device_id device, cl_device_info param) {
  size_t size = 0;
  check_cl(clGetDeviceInfo(device, param, 0, nullptr, &size), "clGetDeviceInfo");
  std::string s(size, '\0');
  check_cl(clGetDeviceInfo(device, param, size, s.data(), nullptr), "clGetDeviceInfo");
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string platform_string(cl_platform_id platform, cl_platform_info param) {
  size_t size = 0;
  check_cl(clGetPlatformInfo(platform, param, 0, nullptr, &size), "clGetPlatformInfo");
  std::string s(size, '\0');
  check_cl(clGetPlatformInfo(platform, param, size, s.data(), nullptr), "clGetPlatformInfo");
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace quill::host
