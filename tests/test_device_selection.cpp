// Device discovery and the selection rule (--device / QUILL_DEVICE).
#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/error.hpp"
#include "host/device_info.hpp"

namespace quill::host {
namespace {

DeviceInfo fake(int index, const char* platform, const char* name, bool gpu, bool cpu) {
  DeviceInfo d;
  d.index = index;
  d.platform_name = platform;
  d.name = name;
  d.is_gpu = gpu;
  d.is_cpu = cpu;
  return d;
}

std::vector<DeviceInfo> fake_devices() {
  return {fake(0, "Portable Computing Language", "pthread-haswell", false, true),
          fake(1, "NVIDIA CUDA", "NVIDIA H100 80GB HBM3", true, false), fake(2, "Other", "accelerator", false, false)};
}

TEST(DeviceSelection, DefaultPrefersFirstGpu) {
  const auto d = fake_devices();
  EXPECT_EQ(choose_device(d, "").index, 1);
}

TEST(DeviceSelection, DefaultFallsBackToCpu) {
  auto d = fake_devices();
  d[1].is_gpu = false;
  EXPECT_EQ(choose_device(d, "").index, 0);
}

TEST(DeviceSelection, ByIndexTypeAndName) {
  const auto d = fake_devices();
  EXPECT_EQ(choose_device(d, "2").index, 2);
  EXPECT_EQ(choose_device(d, "0").index, 0);
  EXPECT_EQ(choose_device(d, "cpu").index, 0);
  EXPECT_EQ(choose_device(d, "GPU").index, 1);
  EXPECT_EQ(choose_device(d, "h100").index, 1);
  EXPECT_EQ(choose_device(d, "portable").index, 0);  // platform name counts too
}

TEST(DeviceSelection, NoMatchIsAClearError) {
  const auto d = fake_devices();
  for (const char* spec : {"7", "tpu", "radeon"}) {
    try {
      choose_device(d, spec);
      FAIL() << "spec " << spec << " should not match";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("NVIDIA H100"), std::string::npos) << e.what();  // lists devices
    }
  }
}

TEST(DeviceSelection, EnvironmentVariableWhenNoFlag) {
  ::setenv("QUILL_DEVICE", "cpu", 1);
  EXPECT_EQ(device_spec_or_env(""), "cpu");
  EXPECT_EQ(device_spec_or_env("1"), "1");  // the flag wins
  ::unsetenv("QUILL_DEVICE");
  EXPECT_EQ(device_spec_or_env(""), "");
}

TEST(DeviceDiscovery, FindsACpuDeviceWithCapabilities) {
  const auto devices = enumerate_devices();
  ASSERT_FALSE(devices.empty());
  const DeviceInfo& cpu = choose_device(devices, "cpu");
  EXPECT_TRUE(cpu.is_cpu);
  EXPECT_GT(cpu.compute_units, 0u);
  EXPECT_GT(cpu.max_alloc_bytes, 0u);
  EXPECT_GE(cpu.global_mem_bytes, cpu.max_alloc_bytes);
  EXPECT_GT(cpu.local_mem_bytes, 0u);
  EXPECT_NE(cpu.opencl_c_version.find("OpenCL C"), std::string::npos);
  EXPECT_FALSE(cpu.inline_ptx);  // only NVIDIA's platform takes inline PTX
  EXPECT_EQ(capability_build_options(cpu).find("QUILL_PTX"), std::string::npos);
}

TEST(DeviceDiscovery, PtxFlagsOnlyForNvidia) {
  DeviceInfo nv;
  nv.inline_ptx = true;
  nv.sm_version = 90;
  EXPECT_NE(capability_build_options(nv).find("-DQUILL_PTX=1 -DQUILL_SM=90"), std::string::npos);
}

}  // namespace
}  // namespace quill::host
