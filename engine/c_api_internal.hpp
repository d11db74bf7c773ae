// Internals of the C API (include/quill.h): the structs behind the opaque handles, and guard(), the
// one place where C++ exceptions become quill_status codes and the thread's last-error message.
// Only engine/c_api*.cpp include this file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/calibration.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine/session.hpp"
#include "engine/weight_source.hpp"
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

// Thrown through the engine when a quill_progress_callback returns false; guard() maps it to
// QUILL_ERR_CANCELLED.
struct Cancelled {};

// An engine progress hook (done, total) calling a C callback (may be NULL); throws Cancelled on false.
inline auto progress_hook(quill_progress_callback callback, void* user_data) {
  return [callback, user_data](int64_t done, int64_t total) {
    if (callback && !callback(done, total, user_data)) throw Cancelled{};
  };
}

// What quill_model_params say beyond ModelOptions, resolved once per call (engine/c_api_model.cpp).
// The stats of calib_path (null when none), after checking smooth_alpha / act_scale need them.
std::shared_ptr<const CalibrationStats> calibration_of(const quill_model_params& p);
// The weights to read: the GGUF at path (NULL = the synthetic preset), smoothed when smooth_alpha > 0.
std::shared_ptr<const WeightSource> open_weight_source(const char* path, const quill_model_params& p,
                                                       const CalibrationStats* calibration);
// The load options: scheme and tuning; from the calibration the llm-int8 outlier dims (and static scales).
ModelOptions model_options(const quill_model_params& p, const CalibrationStats* calibration);
// Loads the model the params describe (fake-quant, smoothed, or as quill_model_load documents).
std::shared_ptr<Model> load_model(const char* path, const quill_model_params& p);

}  // namespace quill::capi
