// Quantized models on disk: `quill quantize` writes a model already quantized as a GGUF v3 file that
// any GGUF reader can parse, and `quill run -m OUT.gguf` uploads the stored codes as they are (no
// re-quantization; bit-identical to quantizing at load with the same options).
//
// Layout. Norms are F32, token_embd F16 (F32 for the f32 scheme: what Model keeps). Each of the five
// fused matmuls a Model holds (blk.N.attn_qkv = q|k|v rows, blk.N.attn_output, blk.N.ffn_gate_up =
// gate|up rows, blk.N.ffn_down, and the head `output`) is stored either
//  - natively, when the scheme is a ggml type and the rows are a whole number of its blocks: f32, f16,
//    q8_0 (GGUF Q8_0) and int4 (GGUF Q4_0) as the standard per-matrix tensors blk.N.attn_q.weight, ...
//    (so llama.cpp reads those files as ordinary models; the rows quantize independently, so stacking
//    them again gives exactly the fused matrix), or
//  - as plain typed tensors named PREFIX.quill_* (ne[0] first, rows = out features):
//      int8 / llm-int8   quill_codes I8 [cols, rows] CB; quill_scales F32 [rows] SCB;
//                        quill_outlier_dims I32 [n] + quill_w16 F16 [n, rows] when n > 0
//      nf4 / fp4 / dyn8  quill_codes I8 [code bytes per row, rows] (quill's nibble order);
//                        quill_scales F32 [blocks per row, rows], or with double quant
//                        quill_dq_codes I8 [n], quill_dq_absmax2 F32 [ceil(n/256)], quill_dq_offset F32 [1]
//      int4 / q8_0       (rows not a multiple of 32) quill_codes I8 [code bytes per row, rows] in the
//                        GPU layout; quill_scales F16 [blocks per row, rows]
//      kmeans4           quill_codes I8 [padded_cols / 2, rows]; quill_scales F16 [16, rows] (per row) or [16]
// Metadata: the source's own keys (general.*, llama.*, tokenizer.*) plus quill.format_version (1),
// quill.scheme, quill.block, quill.double_quant, quill.kmeans_per_row, quill.quantize_embeddings,
// quill.outlier_dims, quill.int8_threshold, quill.smooth_alpha, quill.calibration, and with static
// activation scales quill.act_scale_method + quill.act_amax ([4 n_layers + 1], QuantParams order).
// A synthetic source has no tokenizer metadata: quill.synthetic_vocab marks its built-in vocabulary.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/gguf.hpp"
#include "engine/quantize_matrix.hpp"
#include "engine/reference_forward.hpp"
#include "engine/weight_source.hpp"

namespace quill {

inline constexpr uint32_t kQuillGgufFormatVersion = 1;

struct ModelOptions;

// A WeightSource over a quill-quantized GGUF: matrix() dequantizes (for the reference forward or a
// different scheme); quantized() hands out the stored fused matmuls for Model to upload directly.
class QuantizedGgufSource : public WeightSource {
 public:
  virtual QuantScheme scheme() const = 0;
  virtual const QuantParams& params() const = 0;  // block resolved, double quant, k-means layout, threshold
  virtual bool quantize_embeddings() const = 0;
  virtual std::vector<float> act_amax() const = 0;  // stored static activation ranges (empty: none)
  // The stored matrix of a fused matmul: site kQkv, kWo, kGateUp, kDown of `layer`, or kOutput (the head).
  virtual QuantizedMatrix quantized(int layer, MatmulSite site) const = 0;
  // Whether Model can upload the stored matrices for a load with this scheme / params / head choice.
  bool serves(QuantScheme scheme, const QuantParams& params, bool quantize_embeddings) const;
  // options adopted to the file: a missing or equal scheme takes the stored scheme, block, double quant,
  // k-means layout, head choice, outlier dims and static ranges (the threshold stays the caller's).
  ModelOptions adopt(const ModelOptions& options) const;
};

bool is_quill_quantized_gguf(const GgufFile& file);
std::unique_ptr<QuantizedGgufSource> quantized_gguf_source(const std::string& path);
// A quill-quantized file's source, or gguf_weight_source for any other GGUF.
std::unique_ptr<WeightSource> open_gguf_weight_source(const std::string& path);

struct QuantizeFileOptions {
  QuantScheme scheme = QuantScheme::Int8;
  QuantParams params;
  bool quantize_embeddings = false;
  std::vector<int32_t> outlier_dims;  // llm-int8 (empty: the source's known ones, as Model does)
  std::vector<float> act_amax;        // int8 static activation ranges (empty: per token)
  std::string act_scale_method;       // informational
  float smooth_alpha = 0.0f;          // informational (the source is already smoothed)
  std::string calibration;            // informational: the stats file
  const GgufFile* metadata_from = nullptr;  // copy general/llama/tokenizer keys from this file
};

struct QuantizeFileSummary {
  int64_t weights = 0;           // elements of the per-layer matmuls
  double bits_per_weight = 0;    // of those, as Model::bits_per_weight()
  int64_t file_bytes = 0;
  int native_tensors = 0;        // stored as standard ggml types
  int quill_tensors = 0;         // stored as quill_* tensors
};

// Quantizes every matmul of `source` exactly as Model would and writes the file (atomically).
QuantizeFileSummary write_quantized_gguf(const WeightSource& source, const QuantizeFileOptions& options,
                                         const std::string& path,
                                         const std::function<void(int done, int total)>& progress = {});

}  // namespace quill
