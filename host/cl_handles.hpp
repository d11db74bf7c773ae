// Forward declarations of the OpenCL handle types, so host/ headers can name them without
// including CL/cl.h (only host/*.cpp include it).
#pragma once

struct _cl_platform_id;
struct _cl_device_id;
struct _cl_context;
struct _cl_command_queue;
struct _cl_mem;
struct _cl_program;
struct _cl_kernel;
struct _cl_event;

namespace quill::host {

using ClPlatform = _cl_platform_id*;
using ClDevice = _cl_device_id*;
using ClContext = _cl_context*;
using ClQueue = _cl_command_queue*;
using ClMem = _cl_mem*;
using ClProgram = _cl_program*;
using ClKernel = _cl_kernel*;
using ClEvent = _cl_event*;

}  // namespace quill::host
