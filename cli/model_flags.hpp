// Flags shared by every command that loads a model (-m / --synthetic, --quant and its tuning,
// --calib / --smooth / --act-scale, --device), their quill_model_params, and the load itself with its
// summary on stderr.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "quill.hpp"

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

  // The path argument of the C API calls: NULL for the synthetic model.
  const char* path() const { return model_path.empty() ? nullptr : model_path.c_str(); }
};

void add_model_flags(CLI::App& app, ModelFlags& flags);
// The flags as load parameters; the strings point into flags, which must outlive the result.
quill_model_params model_params(const ModelFlags& flags);
// Loads the model the parameters describe; logs a one-line summary on stderr; throws on failure.
model_ptr load_model(const ModelFlags& flags, const quill_model_params& params);

}  // namespace quill::cli
