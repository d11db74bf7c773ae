// Model: an immutable Llama-family model on one device — config, tokenizer, norms, the token
// embedding, and every matmul as a Linear in the chosen scheme. Shared by sessions (shared_ptr).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/linear.hpp"
#include "engine/llama_config.hpp"
#include "engine/tokenizer.hpp"
#include "engine/weight_source.hpp"
#include "host/device.hpp"

namespace quill {

struct ModelOptions {
  std::string device;                     // --device spec ("" = $QUILL_DEVICE or default)
  std::optional<QuantScheme> scheme;      // nullopt = as stored (f32 file -> f32, else f16)
  QuantParams params;                     // --block, --double-quant, --int8-threshold
  bool quantize_embeddings = false;       // output head in the scheme too (else fp16, f32 for f32)
  std::vector<int32_t> outlier_dims;      // llm-int8: fp16 weight columns to keep (calibrated)
  // int8 static activation ranges (calibration, --act-scale): absmax per matmul input in CalibrationStats::site_amax
  // order, [4 n_layers + 1] = (qkv, wo, gate_up, down) per layer, then the head; empty = per-token scales.
  std::vector<float> static_act_amax;
  bool profiling = false;                 // event timing on the device queue
  // Loading progress: layers done of n_layers + 1 (the last unit is the embeddings and the head), called one
  // at a time but possibly from a loader thread; an exception it throws cancels the load (and propagates), and
  // it is not called again.
  // Empty: a progress bar on stderr (when it is a terminal and the log level is info).
  std::function<void(int64_t done, int64_t total)> progress;
};

struct ModelLayer {
  host::Buffer attn_norm;           // [dim] f32
  host::Buffer ffn_norm;            // [dim] f32
  std::unique_ptr<Linear> qkv;      // [q_dim + 2 kv_dim, dim]: wq | wk | wv rows
  std::unique_ptr<Linear> wo;       // [dim, q_dim]
  std::unique_ptr<Linear> gate_up;  // [2 ffn, dim]: gate rows | up rows
  std::unique_ptr<Linear> down;     // [dim, ffn]
  host::L2Prefetch attention_prefetch;  // what decode attention requests into L2 (wo's head)
};

class Model {
 public:
  // Loads from a weight source (GGUF file or synthetic preset): quantizes every matmul and uploads it.
  Model(const WeightSource& source, const ModelOptions& options);

  static std::shared_ptr<Model> load_gguf(const std::string& path, const ModelOptions& options);
  static std::shared_ptr<Model> synthetic(const std::string& preset, const ModelOptions& options, uint64_t seed = 1);

  const LlamaConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  host::Device& device() const { return *device_; }
  QuantScheme scheme() const { return scheme_; }
  const std::string& description() const { return description_; }
  const std::vector<ModelLayer>& layers() const { return layers_; }
  const host::Buffer& token_embd() const { return token_embd_; }  // [vocab, dim] fp16 (f32 for f32)
  bool embd_f32() const { return embd_f32_; }
  const host::Buffer& output_norm() const { return output_norm_; }
  Linear& output() const { return *output_; }
  const std::vector<int32_t>& outlier_dims() const { return outlier_dims_; }

  uint64_t weight_bytes() const;         // device bytes of every matmul weight (what decode reads)
  double bits_per_weight() const;        // of the seven per-layer matmuls
  double load_seconds() const { return load_seconds_; }
  // Fused matmuls uploaded in the file's own blocks (GGUF Q8_0 / Q4_0 loaded as q8_0 / int4).
  int native_matrices() const { return native_matrices_; }

 private:
  // Decode's L2 prefetch chain (Linear::set_l2_prefetch): qkv -> wo, attention -> wo, wo -> gate_up,
  // gate_up -> down, down -> the next layer's qkv (the last: the head). $QUILL_L2_PREFETCH_MIB sets the
  // bytes (0: off).
  void link_l2_prefetch();

  std::unique_ptr<host::Device> device_;
  LlamaConfig config_;
  Tokenizer tokenizer_;
  QuantScheme scheme_ = QuantScheme::F32;
  std::string description_;
  std::vector<ModelLayer> layers_;
  host::Buffer token_embd_;
  bool embd_f32_ = false;
  host::Buffer output_norm_;
  std::unique_ptr<Linear> output_;
  std::vector<int32_t> outlier_dims_;
  double bits_ = 0;
  double load_seconds_ = 0;
  std::atomic<int> native_matrices_{0};
};

// The rows of each part in turn (same cols): fuses QKV and gate/up into one matmul each.
MatrixF32 stack_rows(std::span<const MatrixF32* const> parts);
inline MatrixF32 stack_rows(std::initializer_list<const MatrixF32*> parts) {
  return stack_rows(std::span<const MatrixF32* const>(parts.begin(), parts.size()));
}
GgmlBlockMatrix stack_block_rows(std::span<const GgmlBlockMatrix> parts);

}  // namespace quill
