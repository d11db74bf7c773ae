// quill.hpp — optional C++ convenience over quill.h: unique_ptr handles with the matching free calls,
// a helper that turns a status into a message, and tokenize() into a vector. Header-only; the ABI stays
// the C one.
//
//   quill::model_ptr model = quill::load_model(path, params);   // nullptr on failure, see quill_last_error()
//   quill::session_ptr session = quill::create_session(model.get());
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quill.h"

namespace quill {

struct model_deleter {
  void operator()(quill_model* m) const noexcept { quill_model_free(m); }
};
struct session_deleter {
  void operator()(quill_session* s) const noexcept { quill_session_free(s); }
};
struct sampler_deleter {
  void operator()(quill_sampler* s) const noexcept { quill_sampler_free(s); }
};

using model_ptr = std::unique_ptr<quill_model, model_deleter>;
using session_ptr = std::unique_ptr<quill_session, session_deleter>;
using sampler_ptr = std::unique_ptr<quill_sampler, sampler_deleter>;

// "<status name>: <quill_last_error()>" for a failed call in this thread.
inline std::string error_message(quill_status status) {
  return std::string(quill_status_string(status)) + ": " + quill_last_error();
}

// nullptr on failure (quill_last_error() says why); status, when given, receives the code.
inline model_ptr load_model(const char* path, const quill_model_params* params = nullptr,
                            quill_status* status = nullptr) {
  quill_model* m = nullptr;
  const quill_status s = quill_model_load(path, params, &m);
  if (status) *status = s;
  return model_ptr(m);
}

inline session_ptr create_session(quill_model* model, const quill_session_params* params = nullptr,
                                  quill_status* status = nullptr) {
  quill_session* p = nullptr;
  const quill_status s = quill_session_create(model, params, &p);
  if (status) *status = s;
  return session_ptr(p);
}

inline sampler_ptr create_sampler(const quill_sampler_params* params = nullptr, quill_status* status = nullptr) {
  quill_sampler* p = nullptr;
  const quill_status s = quill_sampler_create(params, &p);
  if (status) *status = s;
  return sampler_ptr(p);
}

// text -> token ids through quill_tokenize's size protocol. On failure: empty, *status (when given) says why.
inline std::vector<int32_t> tokenize(const quill_model* model, std::string_view text, bool add_bos,
                                     quill_status* status = nullptr) {
  if (status) *status = QUILL_OK;
  if (text.size() > size_t(INT32_MAX)) {  // quill_tokenize takes an int32_t length
    if (status) *status = QUILL_ERR_INVALID_ARGUMENT;
    return {};
  }
  const char* data = text.data() ? text.data() : "";
  const int32_t len = int32_t(text.size());
  const int32_t needed = quill_tokenize(model, data, len, nullptr, 0, add_bos);
  std::vector<int32_t> tokens(needed < 0 && needed != QUILL_INVALID ? size_t(-int64_t(needed)) : 0);
  if (needed == QUILL_INVALID ||
      (!tokens.empty() && quill_tokenize(model, data, len, tokens.data(), int32_t(tokens.size()), add_bos) < 0)) {
    if (status) *status = QUILL_ERR_INVALID_ARGUMENT;
    return {};
  }
  return tokens;
}

}  // namespace quill
