// The OpenCL device the tests run on: $QUILL_TEST_DEVICE, else $QUILL_DEVICE, else the CPU (PoCL),
// so CI and developer machines test the same path; one Device per test process.
#pragma once

#include "host/device.hpp"

namespace quill::test {

host::Device& test_device();

}  // namespace quill::test
