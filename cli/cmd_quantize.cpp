// `quill quantize`: quantizes a model once and writes it as a GGUF (engine/quantized_gguf.hpp) that
// `quill run -m OUT.gguf` loads without re-quantizing. --calib / --smooth / --act-scale work as for
// run: the outlier dims, the smoothing and the static ranges are baked into the file.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/log.hpp"
#include "engine/progress.hpp"
#include "engine/quantized_gguf.hpp"

namespace quill::cli {
namespace {

struct QuantizeOptions {
  ModelFlags model;
  std::string out_path;
  bool json = false;
};

int run(const QuantizeOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.model.quant.empty()) fail(ErrorKind::kInvalidArgument, "quantize: --quant SCHEME is required");
  const auto source = open_weight_source(o.model);
  if (dynamic_cast<const QuantizedGgufSource*>(source.get()))
    fail(ErrorKind::kInvalidArgument, "quantize: {} is already quantized by quill", o.model.model_path);
  const ModelOptions model = model_options(o.model);
  QuantizeFileOptions options;
  options.scheme = *model.scheme;
  options.params = model.params;
  options.quantize_embeddings = model.quantize_embeddings;
  options.outlier_dims = model.outlier_dims;
  options.act_amax = model.static_act_amax;
  options.act_scale_method = o.model.act_scale;
  options.smooth_alpha = o.model.smooth;
  options.calibration = o.model.calib;
  std::optional<GgufFile> original;
  if (!o.model.model_path.empty()) original.emplace(GgufFile::open(o.model.model_path));
  options.metadata_from = original ? &*original : nullptr;

  ProgressBar bar(fmt::format("quantizing {} to {}", source->description(), o.model.quant), source->config().n_layers + 1);
  const QuantizeFileSummary s =
      write_quantized_gguf(*source, options, o.out_path, [&](int done, int) { bar.update(done); });
  bar.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::FILE* text = o.json ? stderr : stdout;
  std::fprintf(text,
               "wrote %s: %s, %.3f bits/weight over %lld matmul weights, %d native + %d quill tensors, %.2f MiB, "
               "%.2f s\n",
               o.out_path.c_str(), std::string(scheme_name(options.scheme)).c_str(), s.bits_per_weight,
               (long long)s.weights, s.native_tensors, s.quill_tensors, s.file_bytes / 1048576.0, seconds);
  std::fflush(text);
  if (o.json) {
    const nlohmann::json out = {{"output", o.out_path},
                                {"model", source->description()},
                                {"scheme", scheme_name(options.scheme)},
                                {"bits_per_weight", s.bits_per_weight},
                                {"weights", s.weights},
                                {"native_tensors", s.native_tensors},
                                {"quill_tensors", s.quill_tensors},
                                {"file_bytes", s.file_bytes},
                                {"outlier_dims", options.outlier_dims},
                                {"smooth", options.smooth_alpha},
                                {"act_scale", options.act_scale_method},
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
