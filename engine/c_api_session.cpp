// C API: sessions (eval, logits, reset), the sampler, and streaming generation (include/quill.h).
#include <span>
#include <string>

#include "engine/c_api_internal.hpp"
#include "engine/error.hpp"

using namespace quill;

namespace {

// Evaluates tokens and keeps the session's token history in step with its position, even when the
// eval fails part-way (a device error after some batches ran).
quill_status eval_tokens(quill_session* s, const int32_t* tokens, int32_t n, bool all_logits, const char* function) {
  if (!capi::check_not_null(s, function, "session")) return QUILL_ERR_INVALID_ARGUMENT;
  if (n <= 0 || !tokens)
    return capi::guard([&] {
      return capi::set_error(QUILL_ERR_INVALID_ARGUMENT,
                             std::string(function) + ": needs at least one token (tokens is NULL or n <= 0)");
    });
  const quill_status status = capi::guard([&] {
    s->session->eval(std::span<const int32_t>(tokens, size_t(n)), all_logits);
    s->logit_rows = all_logits ? n : 1;
    return QUILL_OK;
  });
  const size_t before = s->history.size();
  const size_t position = size_t(s->session->position());
  if (position < before) {
    s->history.resize(position);
  } else if (position > before) {
    const size_t added = std::min(position - before, size_t(n));
    s->history.insert(s->history.end(), tokens, tokens + added);
  }
  if (status != QUILL_OK && position != before) s->logit_rows = 0;  // partial eval: the logits are stale
  return status;
}

}  // namespace

extern "C" {

QUILL_API quill_session_params quill_session_default_params(void) {
  quill_session_params p;
  p.n_ctx = 0;
  p.max_batch = 256;
  p.kv_f32 = false;
  return p;
}

QUILL_API quill_status quill_session_create(quill_model* model, const quill_session_params* params,
                                            quill_session** out) {
  if (!capi::check_not_null(out, "quill_session_create", "out")) return QUILL_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  if (!capi::check_not_null(model, "quill_session_create", "model")) return QUILL_ERR_INVALID_ARGUMENT;
  const quill_session_params p = params ? *params : quill_session_default_params();
  return capi::guard([&] {
    if (p.n_ctx < 0) fail(ErrorKind::kInvalidArgument, "quill_session_create: n_ctx {} is negative", p.n_ctx);
    auto handle = std::make_unique<quill_session>();
    handle->owner = model;
    handle->session = std::make_unique<Session>(
        model->model, SessionOptions{.n_ctx = p.n_ctx, .max_batch = p.max_batch, .kv_f32 = p.kv_f32});
    handle->history.reserve(size_t(handle->session->n_ctx()));
    *out = handle.release();
    return QUILL_OK;
  });
}

QUILL_API void quill_session_free(quill_session* session) { delete session; }

QUILL_API quill_status quill_session_eval(quill_session* session, const int32_t* tokens, int32_t n) {
  return eval_tokens(session, tokens, n, false, "quill_session_eval");
}

QUILL_API quill_status quill_session_eval_all(quill_session* session, const int32_t* tokens, int32_t n) {
  return eval_tokens(session, tokens, n, true, "quill_session_eval_all");
}

QUILL_API const float* quill_session_logits(const quill_session* session) {
  return quill_session_logits_ith(session, -1);
}

QUILL_API const float* quill_session_logits_ith(const quill_session* session, int32_t i) {
  if (!capi::check_not_null(session, "quill_session_logits", "session")) return nullptr;
  const int32_t rows = session->logit_rows;
  const int32_t row = i < 0 ? rows + i : i;
  if (row < 0 || row >= rows) {
    capi::guard([&] {
      if (rows == 0)
        return capi::set_error(QUILL_ERR_INVALID_ARGUMENT,
                               "quill_session_logits: no logits yet (nothing evaluated since the last reset)");
      return capi::set_error(QUILL_ERR_INVALID_ARGUMENT, "quill_session_logits_ith: row " + std::to_string(i) +
                                                             " is outside the last eval's " + std::to_string(rows) +
                                                             " rows");
    });
    return nullptr;
  }
  const size_t vocab = size_t(session->session->model().config().vocab_size);
  return session->session->logits().data() + size_t(row) * vocab;
}

QUILL_API quill_status quill_session_reset(quill_session* session) {
  if (!capi::check_not_null(session, "quill_session_reset", "session")) return QUILL_ERR_INVALID_ARGUMENT;
  session->session->reset();
  session->history.clear();
  session->logit_rows = 0;
  return QUILL_OK;
}

QUILL_API int32_t quill_session_position(const quill_session* session) {
  return session ? session->session->position() : 0;
}

QUILL_API int32_t quill_session_n_ctx(const quill_session* session) { return session ? session->session->n_ctx() : 0; }

QUILL_API uint64_t quill_session_last_launches(const quill_session* session) {
  return session ? session->session->last_launches() : 0;
}

QUILL_API quill_sampler_params quill_sampler_default_params(void) {
  const SamplerParams d = sampler_default_params();
  quill_sampler_params p;
  p.temp = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.seed = d.seed;
  return p;
}

QUILL_API quill_status quill_sampler_create(const quill_sampler_params* params, quill_sampler** out) {
  if (!capi::check_not_null(out, "quill_sampler_create", "out")) return QUILL_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  const quill_sampler_params p = params ? *params : quill_sampler_default_params();
  return capi::guard([&] {
    SamplerParams sp;
    sp.temperature = p.temp;
    sp.top_k = p.top_k;
    sp.top_p = p.top_p;
    sp.min_p = p.min_p;
    sp.repeat_penalty = p.repeat_penalty;
    sp.repeat_last_n = p.repeat_last_n;
    sp.seed = p.seed;
    auto handle = std::make_unique<quill_sampler>();
    handle->sampler = std::make_unique<Sampler>(sp);
    *out = handle.release();
    return QUILL_OK;
  });
}

QUILL_API void quill_sampler_free(quill_sampler* sampler) { delete sampler; }

QUILL_API quill_status quill_sampler_sample(quill_sampler* sampler, const float* logits, int32_t n_vocab,
                                            const int32_t* history, int32_t n_history, int32_t* out_token) {
  if (!capi::check_not_null(sampler, "quill_sampler_sample", "sampler") ||
      !capi::check_not_null(logits, "quill_sampler_sample", "logits") ||
      !capi::check_not_null(out_token, "quill_sampler_sample", "out_token"))
    return QUILL_ERR_INVALID_ARGUMENT;
  if (n_vocab <= 0 || n_history < 0 || (n_history > 0 && !history))
    return capi::set_error(QUILL_ERR_INVALID_ARGUMENT,
                           "quill_sampler_sample: n_vocab must be positive and history non-NULL when n_history > 0");
  return capi::guard([&] {
    *out_token =
        sampler->sampler->sample(logits, n_vocab, std::span<const int>(history, history ? size_t(n_history) : 0));
    return QUILL_OK;
  });
}

QUILL_API quill_status quill_generate(quill_session* session, quill_sampler* sampler, const int32_t* prompt,
                                      int32_t n_prompt, int32_t max_tokens, quill_token_callback callback,
                                      void* user_data, int32_t* n_generated) {
  if (n_generated) *n_generated = 0;
  if (!capi::check_not_null(session, "quill_generate", "session") ||
      !capi::check_not_null(sampler, "quill_generate", "sampler"))
    return QUILL_ERR_INVALID_ARGUMENT;
  if (n_prompt < 0 || (n_prompt > 0 && !prompt) || max_tokens < 0)
    return capi::set_error(QUILL_ERR_INVALID_ARGUMENT,
                           "quill_generate: prompt is NULL with n_prompt > 0, or a count is negative");
  if (n_prompt > 0) {
    const quill_status status = eval_tokens(session, prompt, n_prompt, false, "quill_generate");
    if (status != QUILL_OK) return status;
  } else if (session->logit_rows == 0) {
    return capi::set_error(QUILL_ERR_INVALID_ARGUMENT,
                           "quill_generate: no prompt and nothing evaluated yet to continue from");
  }
  int32_t produced = 0;
  const quill_status status = capi::guard([&] {
    Session& s = *session->session;
    const Tokenizer& tokenizer = s.model().tokenizer();
    const int n_vocab = s.model().config().vocab_size;
    std::string piece;
    while (produced < max_tokens) {
      const float* logits = quill_session_logits(session);
      if (!logits) fail(ErrorKind::kInternal, "quill_generate: logits missing");
      const int32_t next = sampler->sampler->sample(logits, n_vocab, session->history);
      if (next == tokenizer.eos_id()) break;
      piece = session->history.empty() ? tokenizer.piece(next) : tokenizer.decode_next(session->history.back(), next);
      ++produced;
      if (callback && !callback(next, piece.c_str(), int32_t(piece.size()), user_data)) break;
      if (produced == max_tokens) break;
      if (s.position() >= s.n_ctx())
        fail(ErrorKind::kContextFull, "context full ({} tokens): generation stopped after {} tokens", s.n_ctx(),
             produced);
      const quill_status st = eval_tokens(session, &next, 1, false, "quill_generate");
      if (st != QUILL_OK) return st;
    }
    return QUILL_OK;
  });
  if (n_generated) *n_generated = produced;
  return status;
}

}  // extern "C"
