// The one place that includes CL/cl.h; error checking that turns an OpenCL status into a
// quill::Error naming the call. Include only from host/*.cpp.
#pragma once

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include <string>

#include "engine/error.hpp"

namespace quill::host {

const char* cl_error_name(cl_int status);

// Throws quill::Error (kOutOfMemory for allocation failures, kDevice otherwise) when status != CL_SUCCESS.
void check_cl(cl_int status, const char* what);

std::string device_string(cl_device_id device, cl_device_info param);
std::string platform_string(cl_platform_id platform, cl_platform_info param);

template <typename T>
T device_value(cl_device_id device, cl_device_info param) {
  T value{};
  check_cl(clGetDeviceInfo(device, param, sizeof(T), &value, nullptr), "clGetDeviceInfo");
  return value;
}

}  // namespace quill::host
