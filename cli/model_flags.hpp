// Flags shared by every command that loads a model (-m / --synthetic, --quant and its tuning,
// --device), and the load itself with its summary on stderr.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/model.hpp"

namespace quill::cli {

struct ModelFlags {
  std::string model_path;
  std::string synthetic = "tiny";
  std::string quant;  // "" = as stored
  int block = 0;
  bool double_quant = false;
  float int8_threshold = 6.0f;
  bool quantize_embeddings = false;
  std::string device;
  uint64_t synthetic_seed = 1;
  std::string calib;      // --calib STATS.json (quill calibrate): llm-int8 outlier dims, SmoothQuant, static scales
  float smooth = 0.0f;    // --smooth ALPHA: SmoothQuant with these stats before quantizing (0 = off)
  std::string act_scale;  // --act-scale absmax|percentile|mse|entropy: int8 static activation scales ("" = per token)
};

void add_model_flags(CLI::App& app, ModelFlags& flags);
// The weights the flags name, SmoothQuant applied when --smooth is given (what quantize and calibrate read).
std::shared_ptr<const WeightSource> open_weight_source(const ModelFlags& flags);
// The ModelOptions of the flags (scheme, params, and from --calib the llm-int8 outlier dims / static scales).
ModelOptions model_options(const ModelFlags& flags, bool profiling = false);
// Loads the model the flags name; logs a one-line summary on stderr.
std::shared_ptr<Model> load_model(const ModelFlags& flags, bool profiling = false);

}  // namespace quill::cli
