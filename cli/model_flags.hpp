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
};

void add_model_flags(CLI::App& app, ModelFlags& flags);
// Loads the model the flags name; logs a one-line summary on stderr.
std::shared_ptr<Model> load_model(const ModelFlags& flags, bool profiling = false);

}  // namespace quill::cli
