// Model-loading flags and the load summary (see model_flags.hpp).
#include "cli/model_flags.hpp"

#include "engine/calibration.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/quantized_gguf.hpp"
#include "engine/smoothquant.hpp"
#include "engine/synthetic_model.hpp"

namespace quill::cli {

void add_model_flags(CLI::App& app, ModelFlags& f) {
  std::string presets;
  for (auto name : synthetic_preset_names()) presets += std::string(presets.empty() ? "" : ", ") + std::string(name);
  app.add_option("-m,--model", f.model_path, "GGUF model file (llama architecture)");
  app.add_option("--synthetic", f.synthetic, "Built-in synthetic model when no -m: " + presets)
      ->capture_default_str();
  app.add_option("--synthetic-seed", f.synthetic_seed, "Seed of the synthetic model's weights")->capture_default_str();
  app.add_option("-q,--quant", f.quant, "Quantization scheme: " + quant_scheme_names() + " (default: as stored)");
  app.add_option("--block", f.block, "Block size for nf4/fp4/dyn8 (power of two 32..4096; 0 = scheme default)");
  app.add_flag("--double-quant", f.double_quant, "nf4/fp4/dyn8: quantize the block absmax values too (QLoRA)");
  app.add_option("--int8-threshold", f.int8_threshold, "llm-int8 activation outlier threshold (0 = off)")
      ->capture_default_str();
  app.add_flag("--quantize-embeddings", f.quantize_embeddings, "Quantize the output head too (default fp16)");
  app.add_option("--calib", f.calib,
                 "Calibration stats (quill calibrate): llm-int8 keeps fp16 columns for its outlier dims; needed by "
                 "--smooth and --act-scale");
  app.add_option("--smooth", f.smooth, "SmoothQuant migration strength alpha in (0, 1] (needs --calib; 0 = off)");
  app.add_option("--act-scale", f.act_scale,
                 "int8: static per-tensor activation scales from --calib by method absmax|percentile|mse|entropy "
                 "(default: per-token absmax)");
  app.add_option("-d,--device", f.device, "OpenCL device: index, gpu, cpu, or part of a name (env QUILL_DEVICE)");
}

namespace {
std::shared_ptr<const CalibrationStats> calibration_of(const ModelFlags& f) {
  if (f.calib.empty()) {
    if (f.smooth > 0) fail(ErrorKind::kInvalidArgument, "--smooth needs --calib STATS.json (quill calibrate)");
    if (!f.act_scale.empty()) fail(ErrorKind::kInvalidArgument, "--act-scale needs --calib STATS.json (quill calibrate)");
    return nullptr;
  }
  return std::make_shared<CalibrationStats>(load_calibration(f.calib));
}
}  // namespace

std::shared_ptr<const WeightSource> open_weight_source(const ModelFlags& f) {
  std::shared_ptr<const WeightSource> source = f.model_path.empty()
                                                   ? std::shared_ptr<const WeightSource>(
                                                         synthetic_weight_source(f.synthetic, f.synthetic_seed))
                                                   : std::shared_ptr<const WeightSource>(open_gguf_weight_source(f.model_path));
  if (f.smooth < 0 || f.smooth > 1) fail(ErrorKind::kInvalidArgument, "--smooth {} outside (0, 1]", f.smooth);
  if (f.smooth > 0) {
    if (dynamic_cast<const QuantizedGgufSource*>(source.get()))
      fail(ErrorKind::kInvalidArgument, "--smooth: {} is already quantized (smooth before quill quantize)", f.model_path);
    const auto calib = calibration_of(f);
    if (!calib) fail(ErrorKind::kInvalidArgument, "--smooth needs --calib STATS.json (quill calibrate)");
    source = smoothquant_weight_source(std::move(source), *calib, f.smooth);
  }
  return source;
}

ModelOptions model_options(const ModelFlags& f, bool profiling) {
  ModelOptions options;
  options.device = f.device;
  if (!f.quant.empty()) options.scheme = parse_quant_scheme(f.quant);
  options.params.block = f.block;
  options.params.double_quant = f.double_quant;
  options.params.int8_threshold = f.int8_threshold;
  options.quantize_embeddings = f.quantize_embeddings;
  options.profiling = profiling;
  if (const auto calib = calibration_of(f)) {
    if (options.scheme == QuantScheme::LlmInt8) {
      options.outlier_dims = calib->outlier_dims();
      log_info("calibration {}: llm-int8 keeps fp16 weight columns for {} outlier dims", f.calib,
               options.outlier_dims.size());
      if (options.outlier_dims.empty()) log_warn("calibration found no outlier dims: llm-int8 uses the model's known ones");
    }
    if (!f.act_scale.empty()) {
      if (options.scheme != QuantScheme::Int8)
        fail(ErrorKind::kInvalidArgument, "--act-scale applies to --quant int8 only");
      options.static_act_amax = calib->site_amax(parse_range_method(f.act_scale));
      // The ranges reach every int8 Linear (QuantParams::static_act_amax), but the int8 kernels still
      // quantize activations per token: refuse rather than silently ignore the flag.
      fail(ErrorKind::kInvalidArgument,
           "--act-scale: static int8 activation scales are calibrated but not yet applied by the int8 kernels");
    }
  }
  return options;
}

std::shared_ptr<Model> load_model(const ModelFlags& f, bool profiling) {
  const ModelOptions options = model_options(f, profiling);
  std::shared_ptr<Model> model;
  if (f.smooth > 0) {
    model = std::make_shared<Model>(*open_weight_source(f), options);
  } else {
    model = f.model_path.empty() ? Model::synthetic(f.synthetic, options, f.synthetic_seed)
                                 : Model::load_gguf(f.model_path, options);
  }
  const LlamaConfig& c = model->config();
  log_info("model: {} ({} layers, dim {}, {} heads / {} kv, ffn {}, vocab {})", model->description(), c.n_layers,
           c.dim, c.n_heads, c.n_kv_heads, c.ffn_dim, c.vocab_size);
  log_info("device: {}; scheme {}: {:.3f} bits/weight, {:.1f} MiB of matmul weights, loaded in {:.2f} s",
           model->device().info().name, scheme_name(model->scheme()), model->bits_per_weight(),
           model->weight_bytes() / 1048576.0, model->load_seconds());
  return model;
}

}  // namespace quill::cli
