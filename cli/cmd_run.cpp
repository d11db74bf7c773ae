// `quill run`: load a model (the built-in synthetic one by default), evaluate the prompt as one
// batch, then stream sampled tokens. stdout: the prompt and the generated text only; everything
// else (load summary, timings, memory) on stderr, or one JSON object on stdout with --json.
// A host application of the public C API: it calls nothing but include/quill.h.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "cli/util.hpp"

namespace quill::cli {
namespace {

struct RunOptions {
  ModelFlags model;
  std::string prompt = "Once upon a time";
  int n_predict = 64;
  int ctx = 0;
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  int64_t seed = -1;
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int report_error() {
  print_error(quill_last_error());
  return 1;
}

struct Stream {
  std::string text;
  bool print = true;
};

bool on_token(int32_t, const char* piece, int32_t piece_len, void* user_data) {
  auto* stream = static_cast<Stream*>(user_data);
  stream->text.append(piece, size_t(piece_len));
  if (stream->print) {
    std::fwrite(piece, 1, size_t(piece_len), stdout);
    std::fflush(stdout);
  }
  return true;
}

int run(const RunOptions& o) {
  model_ptr model = load_model(o.model, model_params(o.model));
  quill_status tokenized = QUILL_OK;
  const std::vector<int32_t> tokens = tokenize(model.get(), o.prompt, /*add_bos=*/true, &tokenized);
  if (tokenized != QUILL_OK) return report_error();
  quill_session_params session_params = quill_session_default_params();
  session_params.n_ctx = o.ctx;
  session_ptr session = create_session(model.get(), &session_params);
  if (!session) return report_error();
  quill_sampler_params sp = quill_sampler_default_params();
  sp.temp = o.temperature;
  sp.top_k = o.top_k;
  sp.top_p = o.top_p;
  sp.min_p = o.min_p;
  sp.repeat_penalty = o.repeat_penalty;
  sp.repeat_last_n = o.repeat_last_n;
  sp.seed = o.seed >= 0 ? uint64_t(o.seed) : std::random_device{}();
  sampler_ptr sampler = create_sampler(&sp);
  if (!sampler) return report_error();

  if (!o.json) {
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  const auto t_prompt = std::chrono::steady_clock::now();
  if (quill_session_eval(session.get(), tokens.data(), int32_t(tokens.size())) != QUILL_OK) return report_error();
  const double prompt_seconds = seconds_since(t_prompt);
  const size_t n_prompt = tokens.size();
  const int32_t position_after_prompt = quill_session_position(session.get());

  Stream stream{.text = {}, .print = !o.json};
  int32_t n_generated = 0;
  const auto t_decode = std::chrono::steady_clock::now();
  const quill_status status = quill_generate(session.get(), sampler.get(), nullptr, 0, std::max(o.n_predict, 0),
                                             on_token, &stream, &n_generated);
  const double decode_seconds = seconds_since(t_decode);
  if (status == QUILL_ERR_CONTEXT_FULL) {
    if (log_enabled(QUILL_LOG_WARN))
      std::fprintf(stderr, "warning: context full (%d tokens): stopping\n", quill_session_n_ctx(session.get()));
  } else if (status != QUILL_OK) {
    return report_error();
  }
  const uint64_t launches =
      quill_session_position(session.get()) > position_after_prompt ? quill_session_last_launches(session.get()) : 0;
  const double prompt_tps = n_prompt / std::max(prompt_seconds, 1e-9);
  const double decode_tps = n_generated / std::max(decode_seconds, 1e-9);
  quill_model_info info{};
  quill_model_get_info(model.get(), &info);
  const double peak_mib = info.device_peak_bytes / 1048576.0;
  if (o.json) {
    nlohmann::json out = {{"prompt", o.prompt},
                          {"text", stream.text},
                          {"prompt_tokens", n_prompt},
                          {"generated_tokens", n_generated},
                          {"prompt_tok_s", prompt_tps},
                          {"decode_tok_s", decode_tps},
                          {"load_s", info.load_seconds},
                          {"scheme", info.scheme},
                          {"bits_per_weight", info.bits_per_weight},
                          {"weight_bytes", info.weight_bytes},
                          {"launches_per_token", launches},
                          {"device", info.device_name},
                          {"peak_device_mib", peak_mib},
                          {"seed", sp.seed}};
    // replace: a model may stream bytes that are not valid UTF-8 (byte tokens); JSON output must not fail
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (log_enabled(QUILL_LOG_INFO))
      std::fprintf(stderr,
                   "prompt: %zu tokens in %.3f s (%.1f tok/s); decode: %d tokens in %.3f s (%.1f tok/s), %llu kernel "
                   "launches/token; device memory peak %.1f MiB; seed %llu\n",
                   n_prompt, prompt_seconds, prompt_tps, n_generated, decode_seconds, decode_tps,
                   (unsigned long long)launches, peak_mib, (unsigned long long)sp.seed);
  }
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt (default model: the built-in synthetic one)");
  add_model_flags(*sub, o->model);
  sub->add_option("-p,--prompt", o->prompt, "Prompt text")->capture_default_str();
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (stops early at end-of-sequence)")
      ->capture_default_str();
  sub->add_option("-c,--ctx", o->ctx, "Context length (0 = the model's, at most 4096)");
  sub->add_option("--temp", o->temperature, "Temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", o->top_k, "Top-k (0 = off)")->capture_default_str();
  sub->add_option("--top-p", o->top_p, "Top-p (1 = off)")->capture_default_str();
  sub->add_option("--min-p", o->min_p, "Min-p (0 = off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  sub->add_option("--repeat-last-n", o->repeat_last_n, "Tokens the penalty looks back over")->capture_default_str();
  sub->add_option("-s,--seed", o->seed, "Sampling seed (-1 = random)")->capture_default_str();
  sub->add_flag("--json", o->json, "Print one JSON object (text, timings, memory) on stdout instead of the text");
  return [o] { return run(*o); };
}

}  // namespace quill::cli
