// Helpers the subcommands share: errors (main() prints "quill: error: MESSAGE" for what they throw),
// the log-level check, reading a text file, and a progress bar on stderr drawn from the C API's
// quill_progress_callback. The CLI uses the library only through include/quill.h.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "quill.hpp"

namespace quill::cli {

[[noreturn]] inline void fail(const std::string& message) { throw std::runtime_error(message); }

// Throws quill_last_error() for a failed call.
inline void check(quill_status status) {
  if (status != QUILL_OK) fail(quill_last_error());
}

inline bool log_enabled(quill_log_level level) { return quill_log_get_level() >= level; }

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open text file '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "label [#####     ] done/total" on stderr; silent when stderr is not a terminal or the log level is
// below info, so logs and CI output stay clean. Pass ProgressBar::callback with the bar as user data.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)), enabled_(isatty(2) && log_enabled(QUILL_LOG_INFO)) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  static bool callback(int64_t done, int64_t total, void* self) {
    static_cast<ProgressBar*>(self)->update(done, total);
    return true;
  }
  void update(int64_t done, int64_t total) {
    if (!enabled_ || total <= 0) return;
    const int width = 30;
    const int filled = int(width * done / total);
    std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld", label_.c_str(), filled, "##############################",
                 width - filled, "", (long long)done, (long long)total);
    std::fflush(stderr);
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\n");
    shown_ = false;
  }

 private:
  std::string label_;
  bool enabled_;
  bool shown_ = false;
};

}  // namespace quill::cli
