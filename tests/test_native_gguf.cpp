// GGUF files whose matmul weights are stored as Q8_0 / Q4_0: loaded as q8_0 / int4 they are uploaded
// in their own blocks (no dequantize + quantize round trip), and the result matches the same
// weights given as f32.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "engine/gguf.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/llama_loader.hpp"
#include "engine/quantize_ggml.hpp"
#include "engine/session.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

// Rewrites `in` with every 2-D weight whose rows are a multiple of 32 stored as `type`; with
// `dequantized` the same values are stored back as F32 instead (what the blocks decode to).
void write_requantized(const GgufFile& in, GgmlType type, bool dequantized, const std::filesystem::path& out) {
  GgufWriter w(in.alignment());
  for (const GgufKv& kv : in.metadata())
    if (kv.key != "general.alignment") w.set(kv.key, kv.value);
  for (const GgufTensor& t : in.tensors()) {
    const bool convert = t.dims.size() == 2 && t.cols() % 32 == 0 && t.name.rfind("blk.", 0) == 0;
    if (!convert) {
      w.add_tensor(t.name, t.type, t.dims, t.bytes());
      continue;
    }
    const MatrixF32 m = dequantize_matrix(t);
    std::vector<uint8_t> blocks(size_t(ggml_row_bytes(type, m.cols) * m.rows));
    for (int64_t r = 0; r < m.rows; ++r) quantize_ggml_row(type, m.row(r), blocks.data() + r * ggml_row_bytes(type, m.cols), m.cols);
    if (!dequantized) {
      w.add_tensor(t.name, type, t.dims, blocks);
      continue;
    }
    std::vector<float> back(size_t(m.rows * m.cols));
    for (int64_t r = 0; r < m.rows; ++r)
      dequantize_ggml_row(type, blocks.data() + r * ggml_row_bytes(type, m.cols), back.data() + r * m.cols, m.cols);
    w.add_tensor_f32(t.name, t.dims, back);
  }
  w.write(out);
}

TEST(NativeGguf, Q8_0AndQ4_0AreUploadedAsStored) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  const GgufFile original = GgufFile::open(gguf);
  const auto dir = std::filesystem::temp_directory_path();
  for (auto [type, scheme] : {std::pair{GgmlType::Q8_0, QuantScheme::Q8_0}, std::pair{GgmlType::Q4_0, QuantScheme::Int4}}) {
    const auto native_path = dir / fmt::format("quill_native_{}.gguf", int(type));
    const auto f32_path = dir / fmt::format("quill_native_{}_f32.gguf", int(type));
    write_requantized(original, type, false, native_path);
    write_requantized(original, type, true, f32_path);
    ModelOptions o;
    o.device = "cpu";
    o.scheme = scheme;
    auto native = Model::load_gguf(native_path.string(), o);
    auto requantized = Model::load_gguf(f32_path.string(), o);
    // Per layer: qkv, wo, gate_up come from 64-wide rows; ffn_down's 172-wide rows stay F32 in the file.
    EXPECT_EQ(native->native_matrices(), 3 * native->config().n_layers);
    EXPECT_EQ(requantized->native_matrices(), 0);
    const std::vector<int32_t> tokens = native->tokenizer().encode("Once upon a time", true);
    Session a(native), b(requantized);
    a.eval(tokens);
    b.eval(tokens);
    float max_abs = 0;
    for (float v : b.logits()) max_abs = std::max(max_abs, std::fabs(v));
    for (size_t i = 0; i < a.logits().size(); ++i)
      ASSERT_NEAR(a.logits()[i], b.logits()[i], 1e-5 * max_abs) << ggml_type_name(type) << " logit " << i;
    std::filesystem::remove(native_path);
    std::filesystem::remove(f32_path);
  }
}

}  // namespace
}  // namespace quill
