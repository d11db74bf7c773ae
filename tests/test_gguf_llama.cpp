// llama_loader: LlamaConfig and fp32 weights from stories260K.gguf (checked against the llama2.c .bin of the same
// model), hand-made files (defaults, tied head, Q8_0 weights), and clear errors for bad architectures and shapes.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/half.hpp"
#include "engine/llama_loader.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

TEST(LlamaLoader, Stories260KConfigAndTensors) {
  QUILL_REQUIRE_SHARED_FILE(path, "stories260K/stories260K.gguf");
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.metadata().size(), 19u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 14176u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 512u);

  const LlamaConfig c = read_llama_config(f);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.context_length, 2048);
  EXPECT_EQ(c.rope_dim, 8);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FALSE(c.tied_output);  // this conversion stores output.weight as a separate copy

  const LlamaTensors t = find_llama_tensors(f);
  ASSERT_EQ(t.layers.size(), 5u);
  EXPECT_EQ(t.token_embd->type, GgmlType::F32);
  EXPECT_EQ(t.layers[2].wk->dims, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(t.layers[4].w_down->dims, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(t.layers[0].wq->n_bytes, 64u * 64u * 4u);
}

// Every matrix equals the llama2.c checkpoint's (same [out, in] row-major layout, Q/K not permuted).
TEST(LlamaLoader, Stories260KWeightsMatchLlama2cCheckpoint) {
  QUILL_REQUIRE_SHARED_FILE(gguf_path, "stories260K/stories260K.gguf");
  QUILL_REQUIRE_SHARED_FILE(bin_path, "stories260K/stories260K.bin");
  const LlamaWeightsF32 w = load_llama_weights_f32(GgufFile::open(gguf_path));
  std::ifstream in(bin_path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(raw.size(), 1056540u);
  std::vector<float> bin((raw.size() - 28) / 4);
  std::memcpy(bin.data(), raw.data() + 28, bin.size() * 4);
  const LlamaConfig& c = w.config;
  const size_t dim = 64, kv = 32, hid = 172, L = 5, vocab = 512;
  size_t at = 0;
  const auto take = [&](size_t n) {
    std::vector<float> v(bin.begin() + std::ptrdiff_t(at), bin.begin() + std::ptrdiff_t(at + n));
    at += n;
    return v;
  };
  const auto emb = take(vocab * dim);
  const auto rms_att = take(L * dim);
  const auto wq = take(L * dim * dim);
  const auto wk = take(L * dim * kv);
  const auto wv = take(L * dim * kv);
  const auto wo = take(L * dim * dim);
  const auto rms_ffn = take(L * dim);
  const auto w1 = take(L * hid * dim);
  const auto w2 = take(L * dim * hid);
  const auto w3 = take(L * hid * dim);
  const auto rms_final = take(dim);
  const auto slice = [](const std::vector<float>& v, size_t l, size_t n) {
    return std::vector<float>(v.begin() + std::ptrdiff_t(l * n), v.begin() + std::ptrdiff_t((l + 1) * n));
  };
  EXPECT_EQ(w.token_embd.data, emb);
  EXPECT_EQ(w.output.data, emb);
  EXPECT_EQ(w.output_norm, rms_final);
  ASSERT_EQ(w.layers.size(), L);
  for (size_t l = 0; l < L; ++l) {
    const LlamaLayerWeightsF32& y = w.layers[l];
    EXPECT_EQ(y.attn_norm, slice(rms_att, l, dim)) << l;
    EXPECT_EQ(y.wq.data, slice(wq, l, dim * dim)) << l;
    EXPECT_EQ(y.wk.data, slice(wk, l, dim * kv)) << l;
    EXPECT_EQ(y.wv.data, slice(wv, l, dim * kv)) << l;
    EXPECT_EQ(y.wo.data, slice(wo, l, dim * dim)) << l;
    EXPECT_EQ(y.ffn_norm, slice(rms_ffn, l, dim)) << l;
    EXPECT_EQ(y.w_gate.data, slice(w1, l, hid * dim)) << l;
    EXPECT_EQ(y.w_down.data, slice(w2, l, dim * hid)) << l;
    EXPECT_EQ(y.w_up.data, slice(w3, l, hid * dim)) << l;
    EXPECT_EQ(y.wk.rows, int64_t(kv));
    EXPECT_EQ(y.wk.cols, int64_t(dim));
    EXPECT_EQ(y.w_down.rows, int64_t(dim));
    EXPECT_EQ(y.w_down.cols, int64_t(hid));
  }
  EXPECT_EQ(c.vocab_size, int32_t(vocab));
}

// A tiny hand-made llama: dim 32, 2 layers, 4 heads (2 kv), ffn 64, vocab 10.
struct TinyLlama {
  bool tied = false;
  bool with_kv_heads = true;
  std::string arch = "llama";
  std::string skip;       // a tensor name not to write
  std::string bad_shape;  // a tensor written with one extra row
  GgmlType matrix_type = GgmlType::F32;

  GgufWriter build() const {
    GgufWriter w;
    w.set("general.architecture", arch);
    w.set_u32("llama.embedding_length", 32);
    w.set_u32("llama.block_count", 2);
    w.set_u32("llama.attention.head_count", 4);
    if (with_kv_heads) w.set_u32("llama.attention.head_count_kv", 2);
    w.set_u32("llama.feed_forward_length", 64);
    w.set_u32("llama.context_length", 128);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
    int seed = 0;
    const auto add = [&](const std::string& name, int64_t cols, int64_t rows, bool matrix) {
      if (name == skip) return;
      if (name == bad_shape) ++rows;
      ++seed;
      if (matrix && matrix_type == GgmlType::Q8_0) {
        std::vector<uint8_t> q(size_t(rows * cols / 32 * 34));
        for (int64_t b = 0; b < rows * cols / 32; ++b) {
          const uint16_t d = float_to_half(0.5f * float(seed));
          std::memcpy(&q[size_t(b * 34)], &d, 2);
          for (int j = 0; j < 32; ++j) q[size_t(b * 34 + 2 + j)] = uint8_t(int8_t(j - 16));
        }
        w.add_tensor(name, GgmlType::Q8_0, {cols, rows}, q);
        return;
      }
      std::vector<float> v(size_t(rows * cols));
      for (size_t i = 0; i < v.size(); ++i) v[i] = float(seed) + float(i) * 1e-3f;
      std::vector<int64_t> dims = {cols};
      if (rows > 1 || matrix) dims.push_back(rows);
      w.add_tensor_f32(name, dims, v);
    };
    add("token_embd.weight", 32, 10, true);
    add("output_norm.weight", 32, 1, false);
    if (!tied) add("output.weight", 32, 10, true);
    for (int l = 0; l < 2; ++l) {
      add(llama_layer_tensor_name(l, "attn_norm"), 32, 1, false);
      add(llama_layer_tensor_name(l, "attn_q"), 32, 32, true);
      add(llama_layer_tensor_name(l, "attn_k"), 32, with_kv_heads ? 16 : 32, true);
      add(llama_layer_tensor_name(l, "attn_v"), 32, with_kv_heads ? 16 : 32, true);
      add(llama_layer_tensor_name(l, "attn_output"), 32, 32, true);
      add(llama_layer_tensor_name(l, "ffn_norm"), 32, 1, false);
      add(llama_layer_tensor_name(l, "ffn_gate"), 32, 64, true);
      add(llama_layer_tensor_name(l, "ffn_up"), 32, 64, true);
      add(llama_layer_tensor_name(l, "ffn_down"), 64, 32, true);
    }
    return w;
  }
  GgufFile file() const { return GgufFile::from_bytes(build().to_bytes(), "tiny.gguf"); }
};

void expect_load_error(const TinyLlama& m, const std::string& part) {
  try {
    load_llama_weights_f32(m.file());
    ADD_FAILURE() << "no error, expected '" << part << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(LlamaLoader, DefaultsAndTiedHead) {
  TinyLlama m;
  m.tied = true;
  m.with_kv_heads = false;
  const GgufFile f = m.file();
  const LlamaConfig c = read_llama_config(f);
  EXPECT_EQ(c.n_kv_heads, 4);  // defaults to head_count
  EXPECT_EQ(c.rope_dim, 8);    // defaults to head_dim
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.vocab_size, 10);
  EXPECT_TRUE(c.tied_output);
  const LlamaTensors t = find_llama_tensors(f);
  EXPECT_EQ(t.output, t.token_embd);
  const LlamaWeightsF32 w = load_llama_weights_f32(f);
  EXPECT_EQ(w.output.data, w.token_embd.data);
  EXPECT_EQ(w.output.rows, 10);
  EXPECT_EQ(w.layers[1].wk.rows, 32);
  EXPECT_EQ(w.layers[1].w_down.cols, 64);
}

TEST(LlamaLoader, DequantizesQ8_0Weights) {
  TinyLlama m;
  m.matrix_type = GgmlType::Q8_0;
  const GgufFile f = m.file();
  const LlamaTensors t = find_llama_tensors(f);
  EXPECT_EQ(t.layers[0].wq->type, GgmlType::Q8_0);  // raw bytes and type stay available
  EXPECT_EQ(t.layers[0].wq->n_bytes, 32u * 34u);
  const LlamaWeightsF32 w = load_llama_weights_f32(f);
  const MatrixF32& wq = w.layers[0].wq;
  ASSERT_EQ(wq.rows, 32);
  ASSERT_EQ(wq.cols, 32);
  const float d = round_to_half(0.5f * 5.0f);  // wq of layer 0 is the 5th tensor written
  for (int64_t r = 0; r < wq.rows; ++r) {
    for (int j = 0; j < 32; ++j) ASSERT_EQ(wq.row(r)[j], float(j - 16) * d);
  }
}

TEST(LlamaLoader, Errors) {
  TinyLlama m;
  m.arch = "gpt2";
  expect_load_error(m, "unsupported architecture 'gpt2'");
  m = {};
  m.skip = "blk.1.ffn_up.weight";
  expect_load_error(m, "missing tensor 'blk.1.ffn_up.weight'");
  m = {};
  m.skip = "output_norm.weight";
  expect_load_error(m, "missing tensor 'output_norm.weight'");
  m = {};
  m.bad_shape = "blk.0.attn_k.weight";
  expect_load_error(m, "tensor 'blk.0.attn_k.weight' at offset");
  expect_load_error(m, "shape mismatch: ne = [32, 17] but the config needs [32, 16]");
  m = {};
  m.skip = "token_embd.weight";
  expect_load_error(m, "missing tensor 'token_embd.weight'");

  GgufWriter w = TinyLlama{}.build();
  w.set_u32("llama.attention.head_count", 5);
  EXPECT_THROW(read_llama_config(GgufFile::from_bytes(w.to_bytes())), Error);
  w = TinyLlama{}.build();
  w.set_u32("llama.feed_forward_length", 0);
  EXPECT_THROW(read_llama_config(GgufFile::from_bytes(w.to_bytes())), Error);
  w = TinyLlama{}.build();
  w.set_string("llama.block_count", "two");
  EXPECT_THROW(read_llama_config(GgufFile::from_bytes(w.to_bytes())), Error);
  w = TinyLlama{}.build();
  w.set_u32("llama.embedding_length", 16);  // token_embd has ne[0] = 32
  EXPECT_THROW(find_llama_tensors(GgufFile::from_bytes(w.to_bytes())), Error);
  GgufWriter bare;
  bare.set("general.architecture", "llama");
  try {
    read_llama_config(GgufFile::from_bytes(bare.to_bytes()));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing metadata key 'llama.embedding_length'"), std::string::npos);
  }
}

}  // namespace
}  // namespace quill
