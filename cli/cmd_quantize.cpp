// `quill quantize`: quantizes a model once (quill_model_quantize) and writes it as a GGUF that
// `quill run -m OUT.gguf` loads without re-quantizing. --calib / --smooth / --act-scale work as for
// run: the outlier dims, the smoothing and the static ranges are baked into the file.
#include <chrono>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "cli/util.hpp"

namespace quill::cli {
namespace {

struct QuantizeOptions {
  ModelFlags model;
  std::string out_path;
  bool json = false;
};

int run(const QuantizeOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.model.quant.empty()) fail("quantize: --quant SCHEME is required");
  quill_model_params params = model_params(o.model);
  const std::string source = o.model.model_path.empty() ? "synthetic:" + o.model.synthetic : o.model.model_path;
  ProgressBar bar("quantizing " + source + " to " + o.model.quant);
  params.progress_callback = ProgressBar::callback;
  params.progress_callback_user_data = &bar;
  quill_quantize_result s{};
  check(quill_model_quantize(o.model.path(), o.out_path.c_str(), &params, &s));
  bar.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::FILE* text = o.json ? stderr : stdout;
  std::fprintf(text,
               "wrote %s: %s, %.3f bits/weight over %lld matmul weights, %d native + %d quill tensors, %.2f MiB, "
               "%.2f s\n",
               o.out_path.c_str(), s.scheme, s.bits_per_weight, (long long)s.weights, s.native_tensors,
               s.quill_tensors, s.file_bytes / 1048576.0, seconds);
  std::fflush(text);
  if (o.json) {
    const std::vector<int32_t> outlier_dims(s.outlier_dims, s.outlier_dims + s.n_outlier_dims);
    const nlohmann::json out = {{"output", o.out_path},
                                {"model", s.description},
                                {"scheme", s.scheme},
                                {"bits_per_weight", s.bits_per_weight},
                                {"weights", s.weights},
                                {"native_tensors", s.native_tensors},
                                {"quill_tensors", s.quill_tensors},
                                {"file_bytes", s.file_bytes},
                                {"outlier_dims", outlier_dims},
                                {"smooth", o.model.smooth},
                                {"act_scale", o.model.act_scale},
                                {"seconds", seconds}};
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

}  // namespace

Command add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* sub = app.add_subcommand("quantize", "Quantize a model and write it as a GGUF that loads without re-quantizing");
  add_model_flags(*sub, o->model);
  sub->add_option("-o,--output", o->out_path, "Output GGUF path")->required();
  sub->add_flag("--json", o->json, "Print one JSON summary object as the last line of stdout");
  return [o] { return run(*o); };
}

}  // namespace quill::cli
