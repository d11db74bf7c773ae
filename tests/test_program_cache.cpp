// Kernel sources, program builds (errors carry the log) and the on-disk binary cache.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine/error.hpp"
#include "host/kernel.hpp"
#include "host/kernel_sources.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill::host {
namespace {

namespace fs = std::filesystem;

// Points QUILL_CACHE_DIR at a fresh folder for one test, restoring the old value after.
class ScopedCacheDir {
 public:
  ScopedCacheDir() {
    std::mt19937_64 rng(test::test_seed() ^ uint64_t(::getpid()));
    dir_ = fs::temp_directory_path() / ("quill_cache_test_" + std::to_string(rng()));
    fs::create_directories(dir_);
    if (const char* old = std::getenv("QUILL_CACHE_DIR")) old_ = old;
    ::setenv("QUILL_CACHE_DIR", dir_.c_str(), 1);
  }
  ~ScopedCacheDir() {
    if (old_.empty()) ::unsetenv("QUILL_CACHE_DIR");
    else ::setenv("QUILL_CACHE_DIR", old_.c_str(), 1);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::vector<fs::path> entries() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path());
    return out;
  }

 private:
  fs::path dir_;
  std::string old_;
};

const std::string kAddOne = "__kernel void add_one(__global int* a) { a[get_global_id(0)] += 1; }\n";

// Runs add_one from `program` over {0..n) and checks the result.
void expect_add_one_works(std::shared_ptr<const Program> program) {
  Device& device = test::test_device();
  std::vector<int32_t> data(37);
  for (size_t i = 0; i < data.size(); ++i) data[i] = int32_t(i * 3);
  Buffer buffer = upload(device, data);
  Kernel kernel(program, "add_one");
  kernel.args(buffer);
  kernel.launch(device, Range(data.size()), Range(1));
  const auto out = buffer.read_vector<int32_t>(data.size());
  for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(out[i], int32_t(i * 3 + 1));
}

TEST(KernelSources, IncludesAreExpandedOnce) {
  const std::string text = load_kernel_source("matmul_f16.cl");
  EXPECT_NE(text.find("lane_group_sum"), std::string::npos);   // from common.cl
  EXPECT_NE(text.find("__kernel"), std::string::npos);
  EXPECT_EQ(text.find("#include"), std::string::npos);
  const auto first = text.find("#define QUILL_COMMON_CL");
  EXPECT_EQ(text.find("#define QUILL_COMMON_CL", first + 1), std::string::npos);
}

TEST(KernelSources, UnknownFileIsAnError) {
  EXPECT_THROW(load_kernel_source("no_such_kernel.cl"), Error);
}

TEST(KernelSources, KernelDirOverridesEmbedded) {
  const fs::path dir = fs::temp_directory_path() / "quill_kernel_dir_test";
  fs::create_directories(dir);
  std::ofstream(dir / "matmul_f16.cl") << "// replaced\n";
  ::setenv("QUILL_KERNEL_DIR", dir.c_str(), 1);
  const std::string text = load_kernel_source("matmul_f16.cl");
  ::unsetenv("QUILL_KERNEL_DIR");
  fs::remove_all(dir);
  EXPECT_NE(text.find("// replaced"), std::string::npos);
  EXPECT_EQ(text.find("__kernel"), std::string::npos);
}

TEST(ProgramBuild, SyntaxErrorCarriesTheBuildLog) {
  ScopedCacheDir cache;
  Device& device = test::test_device();
  ProgramCache programs(device.info(), device.context());
  try {
    programs.get("broken.cl", "__kernel void broken(__global int* a) { a[0] = undeclared_name; }\n", "");
    FAIL() << "a kernel with an error must not build";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kDevice);
    EXPECT_NE(what.find("broken.cl"), std::string::npos) << what;
    EXPECT_NE(what.find("undeclared_name"), std::string::npos) << "the compiler's log is missing: " << what;
  }
  EXPECT_TRUE(cache.entries().empty());  // nothing cached for a failed build
}

TEST(ProgramBuild, BadOptionIsAnError) {
  ScopedCacheDir cache;
  Device& device = test::test_device();
  ProgramCache programs(device.info(), device.context());
  EXPECT_THROW(programs.get("add_one.cl", kAddOne, "-cl-no-such-option-quill"), Error);
}

TEST(ProgramCacheTest, MemoryHitThenDiskHit) {
  ScopedCacheDir cache;
  Device& device = test::test_device();
  ProgramCache first(device.info(), device.context());
  auto a = first.get("add_one.cl", kAddOne, "");
  auto b = first.get("add_one.cl", kAddOne, "");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(first.stats().builds, 1u);
  EXPECT_EQ(first.stats().memory_hits, 1u);
  ASSERT_EQ(cache.entries().size(), 1u);

  ProgramCache second(device.info(), device.context());
  auto c = second.get("add_one.cl", kAddOne, "");
  EXPECT_EQ(second.stats().disk_hits, 1u);
  EXPECT_EQ(second.stats().builds, 0u);
  expect_add_one_works(c);
}

TEST(ProgramCacheTest, OptionsAndSourceChangeTheKey) {
  ScopedCacheDir cache;
  Device& device = test::test_device();
  ProgramCache programs(device.info(), device.context());
  programs.get("add_one.cl", kAddOne, "");
  programs.get("add_one.cl", kAddOne, "-DUNUSED=1");
  programs.get("add_one.cl", kAddOne + "// changed\n", "");
  EXPECT_EQ(programs.stats().builds, 3u);
  EXPECT_EQ(cache.entries().size(), 3u);
}

TEST(ProgramCacheTest, CorruptEntryIsIgnoredAndRebuilt) {
  ScopedCacheDir cache;
  Device& device = test::test_device();
  ProgramCache(device.info(), device.context()).get("add_one.cl", kAddOne, "");
  ASSERT_EQ(cache.entries().size(), 1u);
  const fs::path entry = cache.entries()[0];
  const auto size = fs::file_size(entry);
  for (int damage = 0; damage < 3; ++damage) {
    if (damage == 0) {  // flip a byte in the payload
      std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(size / 2));
      f.put('\x5a');
    } else if (damage == 1) {  // truncate
      fs::resize_file(entry, size / 3);
    } else {  // garbage
      std::ofstream(entry, std::ios::binary | std::ios::trunc) << "not a program binary";
    }
    ProgramCache programs(device.info(), device.context());
    auto program = programs.get("add_one.cl", kAddOne, "");
    EXPECT_EQ(programs.stats().corrupt_entries, 1u) << "damage " << damage;
    EXPECT_EQ(programs.stats().builds, 1u);
    expect_add_one_works(program);
    ProgramCache again(device.info(), device.context());
    again.get("add_one.cl", kAddOne, "");
    EXPECT_EQ(again.stats().disk_hits, 1u) << "the rebuilt entry was not stored";
  }
}

TEST(ProgramCacheTest, DisabledCacheWritesNothing) {
  ScopedCacheDir cache;
  ::setenv("QUILL_CACHE_DIR", "off", 1);
  Device& device = test::test_device();
  ProgramCache programs(device.info(), device.context());
  programs.get("add_one.cl", kAddOne, "");
  EXPECT_TRUE(ProgramCache::cache_dir().empty());
  EXPECT_TRUE(cache.entries().empty());
}

}  // namespace
}  // namespace quill::host
