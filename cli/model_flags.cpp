// Model-loading flags, their quill_model_params, and the load summary (see model_flags.hpp).
#include "cli/model_flags.hpp"

#include <cstdio>

#include "cli/util.hpp"

namespace quill::cli {

void add_model_flags(CLI::App& app, ModelFlags& f) {
  std::string presets = quill_synthetic_names();  // space-separated
  for (size_t at = presets.find(' '); at != std::string::npos; at = presets.find(' ', at + 2))
    presets.replace(at, 1, ", ");
  app.add_option("-m,--model", f.model_path, "GGUF model file (llama architecture)");
  app.add_option("--synthetic", f.synthetic, "Built-in synthetic model when no -m: " + presets)
      ->capture_default_str();
  app.add_option("--synthetic-seed", f.synthetic_seed, "Seed of the synthetic model's weights")->capture_default_str();
  app.add_option("-q,--quant", f.quant,
                 "Quantization scheme: " + std::string(quill_quant_names()) + " (default: as stored)");
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

quill_model_params model_params(const ModelFlags& f) {
  quill_model_params p = quill_model_default_params();
  p.device = f.device.c_str();
  p.quant = f.quant.empty() ? nullptr : f.quant.c_str();
  p.block = f.block;
  p.double_quant = f.double_quant;
  p.int8_threshold = f.int8_threshold;
  p.quantize_embeddings = f.quantize_embeddings;
  p.synthetic = f.synthetic.c_str();
  p.synthetic_seed = f.synthetic_seed;
  p.calib_path = f.calib.empty() ? nullptr : f.calib.c_str();
  p.smooth_alpha = f.smooth;
  p.act_scale = f.act_scale.empty() ? nullptr : f.act_scale.c_str();
  return p;
}

model_ptr load_model(const ModelFlags& f, const quill_model_params& params) {
  quill_status status = QUILL_OK;
  // The loading bar is the CLI's own (through the C API's progress callback) unless the caller set one.
  ProgressBar bar("loading " + (f.model_path.empty() ? "synthetic " + f.synthetic : f.model_path) +
                  (params.quant && *params.quant ? std::string(" as ") + params.quant : std::string()));
  quill_model_params p = params;
  if (!p.progress_callback) {
    p.progress_callback = ProgressBar::callback;
    p.progress_callback_user_data = &bar;
  }
  model_ptr model = ::quill::load_model(f.path(), &p, &status);
  bar.finish();
  check(status);
  quill_model_info info{};
  check(quill_model_get_info(model.get(), &info));
  if (log_enabled(QUILL_LOG_INFO)) {
    std::fprintf(stderr, "model: %s (%d layers, dim %d, %d heads / %d kv, ffn %d, vocab %d)\n", info.description,
                 info.n_layers, info.dim, info.n_heads, info.n_kv_heads, info.ffn_dim, info.n_vocab);
    std::fprintf(stderr, "device: %s; scheme %s: %.3f bits/weight, %.1f MiB of matmul weights, loaded in %.2f s\n",
                 info.device_name, info.scheme, info.bits_per_weight, info.weight_bytes / 1048576.0, info.load_seconds);
  }
  return model;
}

}  // namespace quill::cli
