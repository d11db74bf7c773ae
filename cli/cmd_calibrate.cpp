// `quill calibrate`: runs the model in f32 (the CPU reference forward: exact and device-independent)
// over calibration text and writes the statistics of every matmul input (quill_calibrate) as JSON,
// for --calib on run / perplexity / quantize. Progress on stderr; a summary on stdout (one JSON
// object as the last line with --json).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "cli/util.hpp"

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

int run(const CalibrateOptions& o) {
  const std::string text = read_text_file(o.text_path);
  const quill_model_params model = model_params(o.model);
  ProgressBar bar("calibrate");
  quill_calibrate_params params = quill_calibrate_default_params();
  params.ctx = o.ctx;
  params.max_tokens = o.max_tokens;
  params.percentile = o.percentile;
  params.outlier_fraction = o.outlier_fraction;
  params.progress_callback = ProgressBar::callback;
  params.progress_callback_user_data = &bar;
  const char* summary_json = nullptr;
  check(quill_calibrate(o.model.path(), &model, text.data(), int64_t(text.size()), &params, o.out_path.c_str(),
                        &summary_json));
  bar.finish();
  const nlohmann::json summary = nlohmann::json::parse(summary_json);

  std::string outliers;
  for (const auto& d : summary["outlier_dims"]) outliers += (outliers.empty() ? "" : " ") + std::to_string(d.get<int>());
  std::FILE* out = o.json ? stderr : stdout;
  std::fprintf(out, "calibrated %lld tokens, %zu matmul inputs -> %s\n", summary["tokens"].get<long long>(),
               summary["sites"].size(), o.out_path.c_str());
  std::fprintf(out, "outlier dims (|x| >= %g in >= %g%% of tokens at a qkv/gate_up input): %s\n",
               summary["int8_threshold"].get<double>(), o.outlier_fraction * 100, outliers.c_str());
  std::fprintf(out, "%-6s %-8s %5s %10s %10s %10s %10s\n", "layer", "site", "dim", "absmax", "p99.99", "mse",
               "entropy");
  for (const auto& s : summary["sites"]) {
    const auto& r = s["ranges"];
    std::fprintf(out, "%-6d %-8s %5d %10.4g %10.4g %10.4g %10.4g\n", s["layer"].get<int>(),
                 s["site"].get<std::string>().c_str(), s["dim"].get<int>(), r["absmax"].get<double>(),
                 r["percentile"].get<double>(), r["mse"].get<double>(), r["entropy"].get<double>());
  }
  std::fflush(out);
  if (o.json) {
    const nlohmann::json result = {{"stats", o.out_path},
                                   {"model", summary["model"]},
                                   {"tokens", summary["tokens"]},
                                   {"ctx", summary["ctx"]},
                                   {"outlier_dims", summary["outlier_dims"]},
                                   {"sites", summary["sites"]}};
    std::printf("%s\n", result.dump().c_str());
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
