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
#include <string_view>

#include "quill.hpp"

namespace quill::cli {

[[noreturn]] inline void fail(const std::string& message) { throw std::runtime_error(message); }

// Prints "quill: error: MESSAGE" as one line on stderr: control characters (a newline inside a tensor
// name read from a hostile file, ...) are written escaped. A kernel build failure's compiler log,
// after "build log:", follows verbatim on the next lines.
inline void print_error(const std::string& message) {
  static constexpr std::string_view kLog = "build log:";
  const size_t log_at = message.find(kLog);
  const size_t line_end = log_at == std::string::npos ? message.size() : log_at + kLog.size();
  std::string line = "quill: error: ";
  for (size_t i = 0; i < line_end; ++i) {
    const unsigned char ch = static_cast<unsigned char>(message[i]);
    if (ch == '\n') line += "\\n";
    else if (ch < 0x20 || ch == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", ch);
      line += hex;
    } else {
      line += char(ch);
    }
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  if (line_end < message.size())
    std::fprintf(stderr, "%s\n", message.c_str() + line_end + (message[line_end] == '\n' ? 1 : 0));
}

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
