// Model-loading flags and the load summary (see model_flags.hpp).
#include "cli/model_flags.hpp"

#include "engine/log.hpp"
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
  app.add_option("-d,--device", f.device, "OpenCL device: index, gpu, cpu, or part of a name (env QUILL_DEVICE)");
}

std::shared_ptr<Model> load_model(const ModelFlags& f, bool profiling) {
  ModelOptions options;
  options.device = f.device;
  if (!f.quant.empty()) options.scheme = parse_quant_scheme(f.quant);
  options.params.block = f.block;
  options.params.double_quant = f.double_quant;
  options.params.int8_threshold = f.int8_threshold;
  options.quantize_embeddings = f.quantize_embeddings;
  options.profiling = profiling;
  auto model = f.model_path.empty() ? Model::synthetic(f.synthetic, options, f.synthetic_seed)
                                    : Model::load_gguf(f.model_path, options);
  const LlamaConfig& c = model->config();
  log_info("model: {} ({} layers, dim {}, {} heads / {} kv, ffn {}, vocab {})", model->description(), c.n_layers,
           c.dim, c.n_heads, c.n_kv_heads, c.ffn_dim, c.vocab_size);
  log_info("device: {}; scheme {}: {:.3f} bits/weight, {:.1f} MiB of matmul weights, loaded in {:.2f} s",
           model->device().info().name, scheme_name(model->scheme()), model->bits_per_weight(),
           model->weight_bytes() / 1048576.0, model->load_seconds());
  return model;
}

}  // namespace quill::cli
