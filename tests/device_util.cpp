// The tests' shared OpenCL device (see device_util.hpp).
#include "tests/device_util.hpp"

#include <cstdlib>
#include <memory>

namespace quill::test {

host::Device& test_device() {
  static std::unique_ptr<host::Device> device = [] {
    host::DeviceOptions options;
    const char* env = std::getenv("QUILL_TEST_DEVICE");
    options.spec = env && *env ? env : host::device_spec_or_env("");
    if (options.spec.empty()) options.spec = "cpu";
    options.profiling = true;
    return std::make_unique<host::Device>(options);
  }();
  return *device;
}

const char* device_spec() {
  const char* env = std::getenv("QUILL_TEST_DEVICE");
  return env && *env ? env : "cpu";
}

}  // namespace quill::test
