// Logging to stderr with a level chosen by $QUILL_LOG (see log.hpp).
#include "engine/log.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace quill {
namespace {

LogLevel level_from_env() {
  const char* env = std::getenv("QUILL_LOG");
  if (!env) return LogLevel::kInfo;
  if (!std::strcmp(env, "error")) return LogLevel::kError;
  if (!std::strcmp(env, "warn")) return LogLevel::kWarn;
  if (!std::strcmp(env, "debug")) return LogLevel::kDebug;
  return LogLevel::kInfo;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{int(level_from_env())};
  return level;
}

}  // namespace

LogLevel log_level() { return LogLevel(level_storage().load(std::memory_order_relaxed)); }
void set_log_level(LogLevel level) { level_storage().store(int(level)); }

void log_line(LogLevel level, const std::string& line) {
  static std::mutex mutex;
  static const char* const prefix[] = {"error: ", "warning: ", "", "debug: "};
  std::lock_guard<std::mutex> lock(mutex);
  std::fprintf(stderr, "%s%s\n", prefix[int(level)], line.c_str());
}

}  // namespace quill
