// The OpenCL device the tests run on: $QUILL_TEST_DEVICE, else $QUILL_DEVICE, else the CPU (PoCL),
// so CI and developer machines test the same path; one Device per test process.
#pragma once

#include "host/device.hpp"

namespace quill::test {

host::Device& test_device();

// The device spec for tests that load through ModelOptions, the C API or the CLI: $QUILL_TEST_DEVICE,
// else "cpu".
const char* device_spec();

}  // namespace quill::test
