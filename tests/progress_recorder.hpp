// A quill_progress_callback for the C API tests: records every (done, total) report and returns false
// (cancel) once stop_after reports arrived (-1: never).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace quill::test {

struct ProgressRecorder {
  std::vector<std::pair<int64_t, int64_t>> calls;
  int stop_after = -1;
  static bool callback(int64_t done, int64_t total, void* self) {
    auto* p = static_cast<ProgressRecorder*>(self);
    p->calls.emplace_back(done, total);
    return p->stop_after < 0 || int(p->calls.size()) < p->stop_after;
  }
  // Reports counted up to their total.
  void expect_complete() const {
    ASSERT_FALSE(calls.empty());
    for (size_t i = 1; i < calls.size(); ++i) {
      EXPECT_GT(calls[i].first, calls[i - 1].first);
      EXPECT_EQ(calls[i].second, calls[0].second);
    }
    EXPECT_EQ(calls.back().first, calls.back().second);
  }
};

}  // namespace quill::test
