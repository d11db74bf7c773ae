// The user-facing quantization schemes (what `--quant NAME` selects), their names, and the
// parameters that tune them, validated once so the quantizers can trust them.
#pragma once

#include <string>
#include <string_view>

namespace quill {

enum class QuantScheme {
  F32,      // plain fp32
  F16,      // IEEE binary16
  Q8_0,     // GGUF Q8_0: blocks of 32, fp16 d, int8 codes
  Int8,     // vector-wise int8 (one fp32 scale per output row), no outlier decomposition
  LlmInt8,  // LLM.int8(): vector-wise int8 + fp16 outlier columns (threshold on activations)
  Dyn8,     // bitsandbytes blockwise dynamic-exponent 8-bit
  NF4,      // bitsandbytes NormalFloat4, blockwise absmax
  FP4,      // bitsandbytes FP4 (its own permuted code order, not OCP E2M1), blockwise absmax
  Int4,     // GGUF Q4_0 ("int4" and "q4_0" are the same scheme)
  KMeans4,  // 16-centroid k-means codebook per row or per tensor, fp16 centroids
};

// "f32 f16 q8_0 int8 llm-int8 dyn8 nf4 fp4 int4 q4_0 kmeans4" (case-sensitive; q4_0 = int4).
// Throws quill::Error(kInvalidArgument) listing the valid names for anything else.
QuantScheme parse_quant_scheme(std::string_view name);
// The canonical name ("int4" for Int4).
std::string_view scheme_name(QuantScheme scheme);
// All valid names, space-separated (for help texts and error messages).
std::string quant_scheme_names();

struct QuantParams {
  int block = 0;                // 0 = scheme default: nf4/fp4 64, dyn8 256, q8_0/int4 32 (the only valid value)
  bool double_quant = false;    // nf4/fp4/dyn8: compress the fp32 absmax array (QLoRA double quantization)
  float int8_threshold = 6.0f;  // llm-int8: activation outlier threshold (|a| >= t); 0 = no decomposition
  // kmeans4: one codebook per row (default: 1.4-4.8x lower MSE than per tensor on gaussian weights with
  // outliers, for +256 bits per row, i.e. +0.0625 bit/weight at 4096 columns) or one per tensor.
  bool kmeans_per_row = true;
  // int8 with static activation scales (calibration, `--act-scale`): this matmul's fixed per-tensor
  // activation absmax; the scale is amax / 127 for every token, values beyond it clip to +-127.
  // 0 = dynamic per-token absmax (the default). Set per matmul by Model from ModelOptions::static_act_amax.
  float static_act_amax = 0.0f;
};

// Throws quill::Error(kInvalidArgument) when params do not fit the scheme: block not a power of two
// in 32..4096 for nf4/fp4/dyn8, block other than 0/32 for q8_0/int4, a block for a scheme without
// blocks, double_quant outside nf4/fp4/dyn8, a negative or non-finite int8_threshold.
void validate_quant_params(QuantScheme scheme, const QuantParams& params);
// The block size the scheme will use (defaults resolved); 0 for schemes without blocks.
int resolved_block(QuantScheme scheme, const QuantParams& params);
// Nominal storage bits per weight for a row length that is a multiple of the block: codes plus
// per-block scales (plus double-quant statistics); per-row / per-tensor extras (int8 row scales,
// k-means codebooks, llm-int8 fp16 columns) are not counted here, see bits_per_weight(QuantizedMatrix).
// nf4 block 64: 4.5, with double quant 4 + 8/64 + 32/(64*256) = 4.127.
double nominal_bits_per_weight(QuantScheme scheme, const QuantParams& params);

}  // namespace quill
