// Internals of the C API (include/quill.h): the structs behind the opaque handles, and guard(), the
// one place where C++ exceptions become quill_status codes and the thread's last-error message.
// Only engine/c_api*.cpp include this file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine/session.hpp"
#include "quill.h"

struct quill_model {
  std::shared_ptr<quill::Model> model;
  std::string description, device_name, scheme;  // stable storage for quill_model_info's strings
};

struct quill_session {
  quill_model* owner = nullptr;
  std::unique_ptr<quill::Session> session;
  std::vector<int32_t> history;  // every token in the context since the last reset (repetition penalty)
  int32_t logit_rows = 0;        // rows of session->logits(): 0 = none yet (or reset), n after eval_all
};

struct quill_sampler {
  std::unique_ptr<quill::Sampler> sampler;
};

namespace quill::capi {

// Records a failure for quill_last_error() in this thread and returns its status. Never throws.
quill_status set_error(quill_status status, const std::string& message) noexcept;
quill_status set_error(quill_status status, const char* message) noexcept;

// Records the status and message of the exception in flight (call only inside a catch block).
quill_status set_error_from_current_exception() noexcept;

// Runs body (returning quill_status) and maps any exception to a status and message.
// Never lets an exception escape: the C boundary must not unwind.
template <typename Body>
quill_status guard(Body&& body) noexcept {
  try {
    return body();
  } catch (...) {
    return set_error_from_current_exception();
  }
}

// Argument checks: record "<function>: <what> is NULL" and return false.
bool check_not_null(const void* p, const char* function, const char* what) noexcept;

}  // namespace quill::capi
