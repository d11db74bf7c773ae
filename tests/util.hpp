// Helpers shared by the tests: where ../shared/models is, seeded random inputs, skipping politely.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace quill::test {

// ../shared (next to the checkout), or $QUILL_SHARED_DIR; empty path when absent.
std::filesystem::path shared_dir();
// ../shared/models/<relative>, or an empty path when the file is absent (tests then GTEST_SKIP).
std::filesystem::path shared_model_file(const std::string& relative);

// A fresh seed per run (logged by the caller on failure), fixed with $QUILL_TEST_SEED.
uint64_t test_seed();
std::vector<float> random_floats(std::mt19937_64& rng, size_t n, float lo = -1.0f, float hi = 1.0f);

}  // namespace quill::test

#define QUILL_REQUIRE_SHARED_FILE(var, relative)                                  \
  const std::filesystem::path var = ::quill::test::shared_model_file(relative);   \
  if (var.empty()) GTEST_SKIP() << "../shared/models/" << relative << " is absent"
