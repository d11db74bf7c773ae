// `quill perplexity`: perplexity of a model on a text file by the windowed protocol of quill_perplexity
// (include/quill.h), optionally with KL(f32 || scheme) and top-1 agreement against the same weights in
// f32 run on the same device. Progress on stderr; the result on stdout (one JSON object as the last line
// with --json).
#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "cli/util.hpp"

namespace quill::cli {
namespace {

struct PerplexityCliOptions {
  ModelFlags model;
  std::string text_path;
  int ctx = 512;
  int64_t max_tokens = 0;
  int max_batch = 256;
  bool kl = false;
  bool fake_quant = false;
  bool json = false;
};

int run(const PerplexityCliOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const std::string text = read_text_file(o.text_path);
  quill_model_params params = model_params(o.model);
  params.fake_quant = o.fake_quant;
  const model_ptr model = load_model(o.model, params);
  model_ptr reference;
  if (o.kl) {  // the same weights in f32
    quill_model_params f32 = model_params(o.model);
    f32.quant = "f32";
    f32.block = 0;
    f32.double_quant = false;
    f32.act_scale = nullptr;  // the reference is plain f32
    reference = load_model(o.model, f32);
  }
  quill_status status = QUILL_OK;
  const std::vector<int32_t> tokens = tokenize(model.get(), text, /*add_bos=*/false, &status);
  check(status);
  const int64_t n_scored = o.max_tokens > 0 ? std::min<int64_t>(o.max_tokens, int64_t(tokens.size()))
                                            : int64_t(tokens.size());
  if (log_enabled(QUILL_LOG_INFO))
    std::fprintf(stderr, "text: %zu tokens, scoring %lld in windows of ctx %d ([BOS] + %d tokens)\n", tokens.size(),
                 (long long)n_scored, o.ctx, o.ctx - 1);
  ProgressBar bar("perplexity");
  quill_perplexity_params pp = quill_perplexity_default_params();
  pp.ctx = o.ctx;
  pp.max_tokens = o.max_tokens;
  pp.max_batch = o.max_batch;
  pp.reference = reference.get();
  pp.progress_callback = ProgressBar::callback;
  pp.progress_callback_user_data = &bar;
  quill_perplexity_result r{};
  check(quill_perplexity(model.get(), tokens.data(), int64_t(tokens.size()), &pp, &r));
  bar.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  quill_model_info info{};
  check(quill_model_get_info(model.get(), &info));
  const std::string scheme = o.fake_quant ? "fake-" + (o.model.quant.empty() ? std::string("f32") : o.model.quant)
                                          : std::string(info.scheme);

  // Plain text first (stderr with --json, so the JSON object is the last line of stdout).
  std::FILE* text_out = o.json ? stderr : stdout;
  std::fprintf(text_out, "perplexity %.4f  (mean NLL %.6f +- %.6f nats/token) over %lld tokens in %d windows of ctx %d\n",
               r.ppl, r.nll, r.nll_stderr, (long long)r.tokens, r.windows, r.ctx);
  if (r.has_reference)
    std::fprintf(text_out, "vs f32 (perplexity %.4f): mean KL %.6g nats (max %.4g), top-1 agreement %.4f\n",
                 r.ref_ppl, r.kl_mean, r.kl_max, r.top1_agree);
  std::fflush(text_out);
  if (o.json) {
    nlohmann::json out = {{"ppl", r.ppl},
                          {"nll", r.nll},
                          {"nll_stderr", r.nll_stderr},
                          {"tokens", r.tokens},
                          {"windows", r.windows},
                          {"ctx", r.ctx},
                          {"scheme", scheme},
                          {"bits_per_weight", info.bits_per_weight},
                          {"double_quant", o.model.double_quant},
                          {"fake_quant", o.fake_quant},
                          {"model", info.description},
                          {"device", info.device_name},
                          {"seconds", seconds}};
    if (r.has_reference) {
      out["kl_mean"] = r.kl_mean;
      out["kl_max"] = r.kl_max;
      out["top1_agree"] = r.top1_agree;
      out["ref_ppl"] = r.ref_ppl;
      out["ref_nll"] = r.ref_nll;
    }
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

}  // namespace

Command add_perplexity_command(CLI::App& app) {
  auto o = std::make_shared<PerplexityCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "perplexity", "Perplexity of a model on a text file (chunks of ctx-1 tokens, each as [BOS] + chunk)");
  add_model_flags(*sub, o->model);
  sub->add_option("-f,--file", o->text_path, "Text file (tokenized as a whole, without BOS)")->required();
  sub->add_option("-c,--ctx", o->ctx, "Window length including the BOS")->capture_default_str();
  sub->add_option("--max-tokens", o->max_tokens, "Score only the first N tokens of the text (0 = all)")
      ->capture_default_str();
  sub->add_option("--batch", o->max_batch, "Tokens per device pass")->capture_default_str();
  sub->add_flag("--kl-divergence", o->kl,
                "Also run the weights in f32 on the same device: mean KL(f32 || scheme) and top-1 agreement");
  sub->add_flag("--fake-quant", o->fake_quant,
                "Simulate --quant: quantize and dequantize the weights on the CPU and run them in f32 "
                "(weight rounding only; checks the scheme's GPU kernel)");
  sub->add_flag("--json", o->json, "Print one JSON object (ppl, nll, tokens, ...) as the last line of stdout");
  return [o] { return run(*o); };
}

}  // namespace quill::cli
