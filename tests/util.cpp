// Helpers shared by the tests (see util.hpp).
#include "tests/util.hpp"

#include <chrono>
#include <cstdlib>

namespace quill::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("QUILL_SHARED_DIR"); env && *env) return env;
#ifdef QUILL_SHARED_DIR
  std::filesystem::path p = QUILL_SHARED_DIR;
  if (std::filesystem::is_directory(p)) return p;
#endif
  return {};
}

std::filesystem::path shared_model_file(const std::string& relative) {
  const auto dir = shared_dir();
  if (dir.empty()) return {};
  auto p = dir / "models" / relative;
  return std::filesystem::exists(p) ? p : std::filesystem::path{};
}

uint64_t test_seed() {
  if (const char* env = std::getenv("QUILL_TEST_SEED"); env && *env) return std::strtoull(env, nullptr, 10);
  static const uint64_t seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  return seed;
}

std::vector<float> random_floats(std::mt19937_64& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace quill::test
