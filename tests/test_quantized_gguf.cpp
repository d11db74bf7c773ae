// Quantized GGUF files (`quill quantize`): a file written for each scheme parses as a plain GGUF,
// holds exactly what quantizing at load produces (matrix by matrix), and a Model loaded from it gives
// bit-identical logits to quantizing at load, without re-quantizing.
#include <gtest/gtest.h>

#include <filesystem>

#include <fmt/format.h>
#include <unistd.h>

#include "engine/calibration.hpp"
#include "engine/gguf.hpp"
#include "engine/model.hpp"
#include "engine/quantized_gguf.hpp"
#include "engine/session.hpp"
#include "engine/smoothquant.hpp"
#include "util.hpp"

namespace quill {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / fmt::format("quill_qgguf_{}_{}.gguf", getpid(), name)).string();
}

ModelOptions cpu(QuantScheme scheme, QuantParams params = {}) {
  ModelOptions o;
  o.device = "cpu";
  if (const char* env = std::getenv("QUILL_TEST_DEVICE"); env && *env) o.device = env;
  o.scheme = scheme;
  o.params = params;
  return o;
}

std::vector<float> logits_of(const std::shared_ptr<Model>& model, const std::vector<int32_t>& tokens) {
  Session s(model, {.n_ctx = 64});
  s.eval(tokens, /*all_logits=*/true);
  return s.logits();
}

struct Case {
  const char* name;
  QuantScheme scheme;
  QuantParams params;
  bool quantize_embeddings = false;
};

class QuantizedGgufSchemes : public ::testing::TestWithParam<Case> {};

// Matrix by matrix on the CPU, for every scheme layout: the stored matrix is the one Model would quantize.
TEST_P(QuantizedGgufSchemes, StoresExactlyWhatModelQuantizes) {
  const Case c = GetParam();
  auto plain = synthetic_weight_source("tiny");
  const std::string path = temp_path(c.name);
  QuantizeFileOptions o{.scheme = c.scheme, .params = c.params, .quantize_embeddings = c.quantize_embeddings};
  const QuantizeFileSummary summary = write_quantized_gguf(*plain, o, path);
  EXPECT_GT(summary.weights, 0);
  const GgufFile file = GgufFile::open(path);  // a valid GGUF for the plain reader
  EXPECT_TRUE(is_quill_quantized_gguf(file));
  EXPECT_EQ(file.get_string("quill.scheme"), scheme_name(c.scheme));
  auto stored = quantized_gguf_source(path);
  EXPECT_EQ(stored->scheme(), c.scheme);
  EXPECT_TRUE(stored->serves(c.scheme, c.params, c.quantize_embeddings));
  const LlamaConfig& cfg = plain->config();
  const std::vector<int32_t> outliers = plain->known_outlier_dims();
  for (int l : {0, cfg.n_layers - 1}) {
    const MatrixF32 q = plain->matrix(l, MatmulWeight::kQ), k = plain->matrix(l, MatmulWeight::kK),
                    v = plain->matrix(l, MatmulWeight::kV);
    const QuantizedMatrix want = quantize(stack_rows({&q, &k, &v}), c.scheme, c.params, outliers);
    const QuantizedMatrix got = stored->quantized(l, MatmulSite::kQkv);
    EXPECT_EQ(dequantize(got).data, dequantize(want).data) << "layer " << l;
    EXPECT_DOUBLE_EQ(bits_per_weight(got), bits_per_weight(want));
    const QuantizedMatrix want_down = quantize(plain->matrix(l, MatmulWeight::kDown), c.scheme, c.params);
    EXPECT_EQ(dequantize(stored->quantized(l, MatmulSite::kDown)).data, dequantize(want_down).data);
    EXPECT_EQ(stored->norm(l, NormWeight::kFfn), plain->norm(l, NormWeight::kFfn));
  }
  // Dequantized per-matrix views slice the fused rows back out.
  const MatrixF32 kd = stored->matrix(0, MatmulWeight::kK);
  EXPECT_EQ(kd.rows, plain->matrix(0, MatmulWeight::kK).rows);
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, QuantizedGgufSchemes,
    ::testing::Values(Case{"f16", QuantScheme::F16, {}}, Case{"q8_0", QuantScheme::Q8_0, {}},
                      Case{"int4", QuantScheme::Int4, {}}, Case{"int8", QuantScheme::Int8, {}},
                      Case{"llm_int8", QuantScheme::LlmInt8, {}}, Case{"nf4", QuantScheme::NF4, {}},
                      Case{"nf4_dq", QuantScheme::NF4, {.block = 128, .double_quant = true}},
                      Case{"dyn8", QuantScheme::Dyn8, {}}, Case{"fp4", QuantScheme::FP4, {}},
                      Case{"kmeans4_tensor", QuantScheme::KMeans4, {.kmeans_per_row = false}},
                      Case{"int8_head", QuantScheme::Int8, {}, true}),
    [](const auto& info) { return std::string(info.param.name); });

// End to end on the device: load the file (no --quant: the stored scheme) and compare every logit.
void expect_round_trip(const WeightSource& source, const std::string& name, QuantScheme scheme,
                       const ModelOptions& at_load, const std::vector<int32_t>& tokens,
                       const GgufFile* metadata_from = nullptr) {
  const std::string path = temp_path(name);
  QuantizeFileOptions o{.scheme = scheme, .params = at_load.params, .outlier_dims = at_load.outlier_dims};
  o.metadata_from = metadata_from;
  write_quantized_gguf(source, o, path);
  auto direct = std::make_shared<Model>(source, at_load);
  ModelOptions from_file = at_load;
  from_file.scheme.reset();
  auto loaded = Model::load_gguf(path, from_file);
  EXPECT_EQ(loaded->scheme(), scheme);
  EXPECT_DOUBLE_EQ(loaded->bits_per_weight(), direct->bits_per_weight());
  if (scheme == QuantScheme::LlmInt8) EXPECT_EQ(loaded->outlier_dims(), direct->outlier_dims());
  EXPECT_EQ(logits_of(loaded, tokens), logits_of(direct, tokens)) << name;
  std::filesystem::remove(path);
}

TEST(QuantizedGgufRoundTrip, SyntheticTinyGivesIdenticalLogits) {
  auto source = synthetic_weight_source("tiny");
  const std::vector<int32_t> tokens = {1, 40, 41, 300, 7, 99, 250, 12};
  for (QuantScheme s : {QuantScheme::NF4, QuantScheme::Int8, QuantScheme::Q8_0})
    expect_round_trip(*source, std::string(scheme_name(s)), s, cpu(s), tokens);
  ModelOptions llm = cpu(QuantScheme::LlmInt8);
  llm.outlier_dims = {22, 37, 198};  // calibrated dims, not the source's known ones
  expect_round_trip(*source, "llm-int8", QuantScheme::LlmInt8, llm, tokens);
}

TEST(QuantizedGgufRoundTrip, SmoothedInt8GivesIdenticalLogits) {
  std::shared_ptr<const WeightSource> plain = synthetic_weight_source("tiny");
  const std::vector<int32_t> tokens = {1, 40, 41, 300, 7, 99};
  const CalibrationStats stats = calibrate(*plain, tokens, {.ctx = 16});
  auto smooth = smoothquant_weight_source(plain, stats, 0.8f);
  expect_round_trip(*smooth, "smooth-int8", QuantScheme::Int8, cpu(QuantScheme::Int8), tokens);
}

TEST(QuantizedGgufRoundTrip, Stories260kKeepsItsMetadataAndLogits) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  const GgufFile original = GgufFile::open(gguf);
  auto source = gguf_weight_source(gguf.string());
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 293};
  // int4: ffn_down's 172 columns are not whole Q4_0 blocks, so that matrix takes the quill layout.
  for (QuantScheme s : {QuantScheme::Int4, QuantScheme::NF4, QuantScheme::Int8})
    expect_round_trip(*source, "stories-" + std::string(scheme_name(s)), s, cpu(s), tokens, &original);
  const std::string path = temp_path("stories-meta");
  write_quantized_gguf(*source, {.scheme = QuantScheme::Int4, .metadata_from = &original}, path);
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.get_string_array("tokenizer.ggml.tokens"), original.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(file.tensor("blk.0.attn_q.weight").type, GgmlType::Q4_0);  // native where the blocks fit
  EXPECT_EQ(file.tensor("blk.0.ffn_down.quill_codes").type, GgmlType::I8);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace quill
