// A progress bar on stderr for long work (loading, quantizing, perplexity); silent when stderr is
// not a terminal or the log level is below info, so logs and CI output stay clean.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

#include "engine/log.hpp"

namespace quill {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total)
      : label_(std::move(label)), total_(total), enabled_(isatty(2) && log_level() >= LogLevel::kInfo) {}
  ~ProgressBar() { finish(); }

  void update(int64_t done) {
    if (!enabled_ || total_ <= 0) return;
    const int width = 30;
    const int filled = int(width * done / total_);
    std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld", label_.c_str(), filled, "##############################",
                 width - filled, "", (long long)done, (long long)total_);
    std::fflush(stderr);
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\n");
    shown_ = false;
  }

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool shown_ = false;
};

}  // namespace quill
