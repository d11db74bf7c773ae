// `quill perplexity`: perplexity of a model on a text file by the windowed protocol of
// engine/perplexity.hpp, optionally with KL(f32 || scheme) and top-1 agreement against the same
// weights in f32 run on the same device. Progress on stderr; the result on stdout (one JSON object
// as the last line with --json).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/perplexity.hpp"
#include "engine/progress.hpp"

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

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::kFile, "cannot open text file '{}'", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The model of the flags; with fake_quant, the same weights quantized and dequantized on the CPU, run as f32.
std::shared_ptr<Model> load(const ModelFlags& flags, bool fake_quant) {
  if (!fake_quant) return load_model(flags);
  ModelOptions options;
  options.device = flags.device;
  options.scheme = QuantScheme::F32;
  QuantParams params;
  params.block = flags.block;
  params.double_quant = flags.double_quant;
  params.int8_threshold = flags.int8_threshold;
  const QuantScheme scheme = flags.quant.empty() ? QuantScheme::F32 : parse_quant_scheme(flags.quant);
  auto inner = flags.model_path.empty() ? synthetic_weight_source(flags.synthetic, flags.synthetic_seed)
                                        : gguf_weight_source(flags.model_path);
  auto model = std::make_shared<Model>(*fake_quant_weight_source(std::move(inner), scheme, params), options);
  log_info("model: {} on {}", model->description(), model->device().info().name);
  return model;
}

int run(const PerplexityCliOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  auto model = load(o.model, o.fake_quant);
  std::shared_ptr<Model> reference;
  if (o.kl) {
    ModelFlags f32 = o.model;
    f32.quant = "f32";
    f32.block = 0;
    f32.double_quant = false;
    reference = load(f32, false);
  }
  const std::vector<int32_t> tokens = model->tokenizer().encode(read_text(o.text_path), /*add_bos=*/false);
  PerplexityOptions options{.ctx = o.ctx, .max_tokens = o.max_tokens, .max_batch = o.max_batch};
  const int64_t n_scored = o.max_tokens > 0 ? std::min<int64_t>(o.max_tokens, int64_t(tokens.size()))
                                            : int64_t(tokens.size());
  log_info("text: {} tokens, scoring {} in windows of ctx {} ([BOS] + {} tokens)", tokens.size(), n_scored, o.ctx,
           o.ctx - 1);
  ProgressBar bar("perplexity", int64_t(perplexity_windows(n_scored, o.ctx).size()));
  const PerplexityResult r =
      compute_perplexity(model, tokens, options, reference, [&](int done, int) { bar.update(done); });
  bar.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string scheme = o.fake_quant ? "fake-" + (o.model.quant.empty() ? std::string("f32") : o.model.quant)
                                          : std::string(scheme_name(model->scheme()));

  // Plain text first (stderr with --json, so the JSON object is the last line of stdout).
  std::FILE* text_out = o.json ? stderr : stdout;
  std::fprintf(text_out, "perplexity %.4f  (mean NLL %.6f +- %.6f nats/token) over %lld tokens in %d windows of ctx %d\n",
               r.ppl(), r.nll(), r.nll_stderr(), (long long)r.tokens, r.windows, r.ctx);
  if (r.has_reference)
    std::fprintf(text_out, "vs f32 (perplexity %.4f): mean KL %.6g nats (max %.4g), top-1 agreement %.4f\n",
                 r.reference_ppl(), r.kl_mean(), r.kl_max, r.top1_agree());
  std::fflush(text_out);
  if (o.json) {
    nlohmann::json out = {{"ppl", r.ppl()},
                          {"nll", r.nll()},
                          {"nll_stderr", r.nll_stderr()},
                          {"tokens", r.tokens},
                          {"windows", r.windows},
                          {"ctx", r.ctx},
                          {"scheme", scheme},
                          {"bits_per_weight", model->bits_per_weight()},
                          {"double_quant", o.model.double_quant},
                          {"fake_quant", o.fake_quant},
                          {"model", model->description()},
                          {"device", model->device().info().name},
                          {"seconds", seconds}};
    if (r.has_reference) {
      out["kl_mean"] = r.kl_mean();
      out["kl_max"] = r.kl_max;
      out["top1_agree"] = r.top1_agree();
      out["ref_ppl"] = r.reference_ppl();
      out["ref_nll"] = r.reference_nll();
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
