// `quill calibrate`: runs the model in f32 (the CPU reference forward: exact and device-independent)
// over calibration text and writes the statistics of every matmul input (engine/calibration.hpp) as
// JSON, for --calib on run / perplexity / quantize. Progress on stderr; a summary on stdout (one JSON
// object as the last line with --json).
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "engine/calibration.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/progress.hpp"

namespace quill::cli {
namespace {

struct CalibrateOptions {
  ModelFlags model;
  std::string text_path;
  std::string out_path;
  int ctx = 512;
  int64_t max_tokens = 0;
  double percentile = 99.99;
  double outlier_fraction = 0.01;
  bool json = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::kFile, "cannot open text file '{}'", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(const CalibrateOptions& o) {
  const auto source = open_weight_source(o.model);
  const Tokenizer tokenizer = source->tokenizer();
  const std::vector<int32_t> tokens = tokenizer.encode(read_file(o.text_path), /*add_bos=*/false);
  const int64_t n = o.max_tokens > 0 ? std::min<int64_t>(o.max_tokens, int64_t(tokens.size())) : int64_t(tokens.size());
  log_info("calibrating {} in f32 (CPU reference) on {} of {} tokens, windows of ctx {}", source->description(), n,
           tokens.size(), o.ctx);
  CalibrationOptions options{.ctx = o.ctx,
                             .max_tokens = o.max_tokens,
                             .int8_threshold = o.model.int8_threshold,
                             .percentile = o.percentile};
  ProgressBar bar("calibrate", n);
  const CalibrationStats stats = calibrate(*source, tokens, options, [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();
  save_calibration(stats, o.out_path);

  const std::vector<int32_t> outliers = stats.outlier_dims(o.outlier_fraction);
  std::FILE* text = o.json ? stderr : stdout;
  std::fprintf(text, "calibrated %lld tokens, %zu matmul inputs -> %s\n", (long long)stats.tokens, stats.sites.size(),
               o.out_path.c_str());
  std::fprintf(text, "outlier dims (|x| >= %g in >= %g%% of tokens at a qkv/gate_up input): %s\n",
               stats.int8_threshold, o.outlier_fraction * 100, fmt::format("{}", fmt::join(outliers, " ")).c_str());
  std::fprintf(text, "%-6s %-8s %5s %10s %10s %10s %10s\n", "layer", "site", "dim", "absmax", "p99.99", "mse",
               "entropy");
  for (const SiteStats& s : stats.sites)
    std::fprintf(text, "%-6d %-8s %5d %10.4g %10.4g %10.4g %10.4g\n", s.layer, matmul_site_name(s.site), s.dim,
                 s.range(RangeMethod::kAbsmax), s.range(RangeMethod::kPercentile), s.range(RangeMethod::kMse),
                 s.range(RangeMethod::kEntropy));
  std::fflush(text);
  if (o.json) {
    nlohmann::json sites = nlohmann::json::array();
    for (const SiteStats& s : stats.sites) {
      nlohmann::json ranges;
      for (RangeMethod m : kRangeMethods) ranges[std::string(range_method_name(m))] = s.range(m);
      sites.push_back({{"layer", s.layer}, {"site", matmul_site_name(s.site)}, {"dim", s.dim}, {"ranges", ranges}});
    }
    const nlohmann::json out = {{"stats", o.out_path},     {"model", stats.model}, {"tokens", stats.tokens},
                                {"ctx", stats.ctx},        {"outlier_dims", outliers}, {"sites", sites}};
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

}  // namespace

Command add_calibrate_command(CLI::App& app) {
  auto o = std::make_shared<CalibrateOptions>();
  CLI::App* sub = app.add_subcommand(
      "calibrate", "Collect activation statistics (ranges, histograms, outlier dims) of every matmul input in f32");
  add_model_flags(*sub, o->model);
  sub->add_option("-f,--file", o->text_path, "Calibration text (tokenized as a whole, without BOS)")->required();
  sub->add_option("-o,--output", o->out_path, "Where to write the statistics (JSON)")->required();
  sub->add_option("-c,--ctx", o->ctx, "Window length including the BOS")->capture_default_str();
  sub->add_option("--max-tokens", o->max_tokens, "Use only the first N tokens of the text (0 = all)")
      ->capture_default_str();
  sub->add_option("--percentile", o->percentile, "Percentile of the percentile range method")->capture_default_str();
  sub->add_option("--outlier-fraction", o->outlier_fraction,
                  "Summary: a dim is an outlier when it reaches the threshold in this fraction of tokens")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "Print one JSON summary object as the last line of stdout");
  return [o] { return run(*o); };
}

}  // namespace quill::cli
