// Device buffers: round trips, bounds, memory accounting, and refusal of oversized allocations.
#include <gtest/gtest.h>

#include <random>

#include "engine/error.hpp"
#include "host/buffer.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill::host {
namespace {

TEST(Buffer, RoundTripWithOffsets) {
  Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed());
  for (size_t n : {1, 3, 1000, 65537}) {
    const auto data = test::random_floats(rng, n);
    Buffer b = upload(device, data);
    EXPECT_EQ(b.bytes(), n * sizeof(float));
    EXPECT_EQ(b.read_vector<float>(n), data);
    if (n > 2) {
      const float patch[2] = {42.0f, -7.5f};
      b.write(patch, sizeof patch, sizeof(float));
      float back[3];
      b.read(back, sizeof back);
      EXPECT_EQ(back[0], data[0]);
      EXPECT_EQ(back[1], 42.0f);
      EXPECT_EQ(back[2], -7.5f);
    }
  }
}

TEST(Buffer, OutOfBoundsAccessIsRefused) {
  Device& device = test::test_device();
  Buffer b(device, 16);
  char bytes[32] = {};
  EXPECT_THROW(b.write(bytes, 17), Error);
  EXPECT_THROW(b.write(bytes, 8, 12), Error);
  EXPECT_THROW(b.read(bytes, 4, 16 + 1), Error);
  EXPECT_NO_THROW(b.read(bytes, 4, 12));
}

TEST(Buffer, FillPoisons) {
  Device& device = test::test_device();
  Buffer b(device, 40);
  b.fill_bytes(0xff);
  for (float v : b.read_vector<float>(10)) EXPECT_TRUE(std::isnan(v));
}

TEST(Buffer, AccountingAndMoves) {
  Device& device = test::test_device();
  const uint64_t before = device.allocated_bytes();
  {
    Buffer a(device, 1000);
    EXPECT_EQ(device.allocated_bytes(), before + 1000);
    Buffer b = std::move(a);
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(device.allocated_bytes(), before + 1000);
    b = Buffer(device, 24);
    EXPECT_EQ(device.allocated_bytes(), before + 24);
    EXPECT_GE(device.peak_allocated_bytes(), before + 1000);
  }
  EXPECT_EQ(device.allocated_bytes(), before);
}

TEST(Buffer, L2PrefetchArgumentsClampToTheBuffer) {
  Device& device = test::test_device();
  Buffer a(device, 1000), fallback(device, 16);
  const L2Prefetch none;
  EXPECT_EQ(&none.arg_buffer(fallback), &fallback);
  EXPECT_EQ(none.arg_bytes(), 0);
  const L2Prefetch some{&a, 10};
  EXPECT_EQ(&some.arg_buffer(fallback), &a);
  EXPECT_EQ((L2Prefetch{&a, 10}.arg_bytes()), 10);
  EXPECT_EQ((L2Prefetch{&a, 5000}.arg_bytes()), 1000);  // never past the buffer's end
}

TEST(Buffer, LargerThanMaxAllocationIsOutOfMemory) {
  Device& device = test::test_device();
  try {
    Buffer b(device, size_t(device.info().max_alloc_bytes) + 1);
    FAIL() << "allocation past the device's maximum must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("maximum allocation"), std::string::npos);
  }
  EXPECT_THROW(Buffer(device, 0), Error);
}

}  // namespace
}  // namespace quill::host
