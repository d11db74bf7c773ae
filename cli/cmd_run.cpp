// `quill run`: load a model (the built-in synthetic one by default), evaluate the prompt as one
// batch, then sample token by token. stdout: the prompt and the generated text only; everything
// else (load summary, timings, memory) on stderr, or one JSON object on stdout with --json.
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "engine/log.hpp"
#include "engine/sampler.hpp"
#include "engine/session.hpp"

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

int run(const RunOptions& o) {
  auto model = load_model(o.model);
  const Tokenizer& tokenizer = model->tokenizer();
  std::vector<int32_t> tokens = tokenizer.encode(o.prompt, true);
  Session session(model, {.n_ctx = o.ctx});
  SamplerParams sp;
  sp.temperature = o.temperature;
  sp.top_k = o.top_k;
  sp.top_p = o.top_p;
  sp.min_p = o.min_p;
  sp.repeat_penalty = o.repeat_penalty;
  sp.repeat_last_n = o.repeat_last_n;
  sp.seed = o.seed >= 0 ? uint64_t(o.seed) : std::random_device{}();
  Sampler sampler(sp);

  if (!o.json) {
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  const auto t_prompt = std::chrono::steady_clock::now();
  session.eval(tokens);
  const double prompt_seconds = seconds_since(t_prompt);
  const size_t n_prompt = tokens.size();

  std::string generated;
  int n_generated = 0;
  uint64_t launches = 0;
  const auto t_decode = std::chrono::steady_clock::now();
  while (n_generated < o.n_predict) {
    const int32_t next = sampler.sample(session.logits().data(), model->config().vocab_size, tokens);
    if (next == tokenizer.eos_id()) break;
    const std::string piece = tokenizer.decode_next(tokens.back(), next);
    tokens.push_back(next);
    ++n_generated;
    generated += piece;
    if (!o.json) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
    if (n_generated == o.n_predict) break;
    if (session.position() >= session.n_ctx()) {
      log_warn("context full ({} tokens): stopping", session.n_ctx());
      break;
    }
    const int32_t one[1] = {next};
    session.eval(one);
    launches = session.last_launches();
  }
  const double decode_seconds = seconds_since(t_decode);
  const double prompt_tps = n_prompt / std::max(prompt_seconds, 1e-9);
  const double decode_tps = n_generated / std::max(decode_seconds, 1e-9);
  const double peak_mib = model->device().peak_allocated_bytes() / 1048576.0;
  if (o.json) {
    nlohmann::json out = {{"prompt", o.prompt},
                          {"text", generated},
                          {"prompt_tokens", n_prompt},
                          {"generated_tokens", n_generated},
                          {"prompt_tok_s", prompt_tps},
                          {"decode_tok_s", decode_tps},
                          {"load_s", model->load_seconds()},
                          {"scheme", std::string(scheme_name(model->scheme()))},
                          {"bits_per_weight", model->bits_per_weight()},
                          {"weight_bytes", model->weight_bytes()},
                          {"launches_per_token", launches},
                          {"device", model->device().info().name},
                          {"peak_device_mib", peak_mib},
                          {"seed", sp.seed}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::fputs("\n", stdout);
    std::fflush(stdout);
    log_info("prompt: {} tokens in {:.3f} s ({:.1f} tok/s); decode: {} tokens in {:.3f} s ({:.1f} tok/s), {} kernel "
             "launches/token; device memory peak {:.1f} MiB; seed {}",
             n_prompt, prompt_seconds, prompt_tps, n_generated, decode_seconds, decode_tps, launches, peak_mib, sp.seed);
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
