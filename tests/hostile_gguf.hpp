// Generator of broken and hostile GGUF files for the robustness tests (tests/test_hostile_gguf.cpp,
// tests/test_limits.cpp) and the fuzz seeds: a tiny valid Llama model (tokenizer included), every named way of
// breaking it (each a patch of one field, located through the parsed valid file), and a sparse writer for
// models far larger than any device (the data section is a hole: nothing is written or read).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/llama_loader.hpp"

namespace quill::test::hostile {

// Shape of the generated Llama model (defaults: ~10 KB, every tensor F32, head tied to token_embd).
struct TinySpec {
  int dim = 16, n_heads = 2, n_kv_heads = 1, ffn = 32, n_layers = 1, context = 64;
  bool drop_last_token = false;  // 15 tokens for 16 embedding rows
};

inline const std::vector<std::string>& tiny_vocab() {
  static const std::vector<std::string> v = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "c", "d",
                                             "e", "\xe2\x96\x81" "a", "\xe2\x96\x81" "b", "ab", "cd", "de", "e.", "."};
  return v;
}

inline GgufWriter tiny_llama_writer(const TinySpec& s = {}) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("general.alignment", 32);  // present so the alignment can be broken in place
  w.set_u32("llama.embedding_length", uint32_t(s.dim));
  w.set_u32("llama.block_count", uint32_t(s.n_layers));
  w.set_u32("llama.attention.head_count", uint32_t(s.n_heads));
  w.set_u32("llama.attention.head_count_kv", uint32_t(s.n_kv_heads));
  w.set_u32("llama.feed_forward_length", uint32_t(s.ffn));
  w.set_u32("llama.context_length", uint32_t(s.context));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::vector<std::string> tokens = tiny_vocab();
  const int64_t vocab = int64_t(tokens.size());
  if (s.drop_last_token) tokens.pop_back();
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (size_t i = 0; i < tokens.size(); ++i) {
    scores.push_back(i < 3 ? 0.0f : float(tokens[i].size()));
    types.push_back(i == 0 ? 2 : i < 3 ? 3 : 1);
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  int seed = 0;
  const auto add = [&](const std::string& name, std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    ++seed;
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.02f * float((i * 7 + size_t(seed) * 13) % 17) - 0.16f;
    if (dims.size() == 1)
      for (float& x : v) x = 1.0f;  // norms
    w.add_tensor_f32(name, dims, v);
  };
  const int64_t d = s.dim, q = s.dim, kv = int64_t(s.dim / s.n_heads) * s.n_kv_heads, f = s.ffn;
  add("token_embd.weight", {d, vocab});
  add("output_norm.weight", {d});
  for (int l = 0; l < s.n_layers; ++l) {
    add(llama_layer_tensor_name(l, "attn_norm"), {d});
    add(llama_layer_tensor_name(l, "attn_q"), {d, q});
    add(llama_layer_tensor_name(l, "attn_k"), {d, kv});
    add(llama_layer_tensor_name(l, "attn_v"), {d, kv});
    add(llama_layer_tensor_name(l, "attn_output"), {q, d});
    add(llama_layer_tensor_name(l, "ffn_norm"), {d});
    add(llama_layer_tensor_name(l, "ffn_gate"), {d, f});
    add(llama_layer_tensor_name(l, "ffn_up"), {d, f});
    add(llama_layer_tensor_name(l, "ffn_down"), {f, d});
  }
  return w;
}

inline std::vector<uint8_t> tiny_llama(const TinySpec& s = {}) { return tiny_llama_writer(s).to_bytes(); }

// One hostile file: its bytes and what the refusal must be (kind and a part of the message).
struct HostileCase {
  std::string name;
  std::vector<uint8_t> bytes;
  ErrorKind kind = ErrorKind::kFormat;
  std::string expect;
};

namespace detail {

template <typename T>
void poke(std::vector<uint8_t>& b, uint64_t at, T value) {
  if (at + sizeof(T) > b.size()) throw std::runtime_error("hostile_gguf: patch past the image");
  std::memcpy(b.data() + at, &value, sizeof(T));
}

// Where the parts of the valid image lie (found by parsing it).
struct Layout {
  const GgufFile file;
  explicit Layout(const std::vector<uint8_t>& b) : file(GgufFile::from_bytes(b, "valid.gguf")) {}
  const GgufKv& kv(std::string_view key) const {
    for (const GgufKv& kv : file.metadata())
      if (kv.key == key) return kv;
    throw std::runtime_error("hostile_gguf: no key " + std::string(key));
  }
  uint64_t key_at(std::string_view key) const { return kv(key).offset + 8; }                 // key bytes
  uint64_t type_at(std::string_view key) const { return kv(key).offset + 8 + key.size(); }  // uint32 type
  uint64_t value_at(std::string_view key) const { return type_at(key) + 4; }
  const GgufTensor& tensor(std::string_view name) const { return file.tensor(name); }
  uint64_t name_at(std::string_view name) const { return tensor(name).info_offset + 8; }
  uint64_t n_dims_at(std::string_view name) const { return name_at(name) + name.size(); }
  uint64_t dims_at(std::string_view name) const { return n_dims_at(name) + 4; }
  uint64_t type_of_at(std::string_view name) const { return dims_at(name) + 8 * tensor(name).dims.size(); }
  uint64_t offset_at(std::string_view name) const { return type_of_at(name) + 4; }
};

}  // namespace detail

// Every named way of breaking the tiny model (truncations are generated by the tests, offset by offset).
inline std::vector<HostileCase> hostile_cases() {
  using detail::poke;
  const std::vector<uint8_t> valid = tiny_llama();
  const detail::Layout L(valid);
  std::vector<HostileCase> cases;
  const auto patch = [&](std::string name, std::string expect, auto&& edit, ErrorKind kind = ErrorKind::kFormat) {
    std::vector<uint8_t> b = valid;
    edit(b);
    cases.push_back({std::move(name), std::move(b), kind, std::move(expect)});
  };
  constexpr uint64_t kHuge = uint64_t(1) << 63;
  const std::string embd = "token_embd.weight", down = llama_layer_tensor_name(0, "ffn_down");
  const std::string q = llama_layer_tensor_name(0, "attn_q");

  cases.push_back({"empty", {}, ErrorKind::kFormat, "too short"});
  cases.push_back({"three bytes", {'G', 'G', 'U'}, ErrorKind::kFormat, "too short"});
  cases.push_back({"text file", {'h', 'e', 'l', 'l', 'o', '\n'}, ErrorKind::kFormat, "bad magic"});
  patch("wrong magic", "bad magic at offset 0", [](auto& b) { b[0] = 'X'; });
  patch("version 1", "version at offset 4", [](auto& b) { poke<uint32_t>(b, 4, 1); });
  patch("version 4", "version at offset 4", [](auto& b) { poke<uint32_t>(b, 4, 4); });
  patch("big-endian version", "version at offset 4", [](auto& b) { poke<uint32_t>(b, 4, 0x03000000); });
  patch("tensor count 2^63", "tensor count at offset 8", [&](auto& b) { poke(b, 8, kHuge); });
  patch("tensor count +1", "", [&](auto& b) { poke<uint64_t>(b, 8, L.file.tensors().size() + 1); });
  patch("metadata count 2^63", "metadata count at offset 16", [&](auto& b) { poke(b, 16, kHuge); });
  patch("metadata count +1", "", [&](auto& b) { poke<uint64_t>(b, 16, L.file.metadata().size() + 1); });
  patch("key length 2^63", "string length", [&](auto& b) { poke(b, 24, kHuge); });
  patch("key length UINT64_MAX", "string length", [&](auto& b) { poke(b, 24, ~uint64_t(0)); });
  patch("string value length 2^63", "string length",
        [&](auto& b) { poke(b, L.value_at("general.architecture"), kHuge); });
  patch("unknown value type", "unknown value type 99",
        [&](auto& b) { poke<uint32_t>(b, L.type_at("llama.block_count"), 99); });
  patch("array count 2^63", "cannot fit",
        [&](auto& b) { poke(b, L.value_at("tokenizer.ggml.tokens") + 4, kHuge); });
  patch("array element type 77", "unknown array element type 77",
        [&](auto& b) { poke<uint32_t>(b, L.value_at("tokenizer.ggml.scores"), 77); });
  patch("array of arrays instead of strings", "",
        [&](auto& b) { poke<uint32_t>(b, L.value_at("tokenizer.ggml.tokens"), 9); });
  patch("token string length 2^63", "string length",
        [&](auto& b) { poke(b, L.value_at("tokenizer.ggml.tokens") + 12, kHuge); });
  patch("alignment 0", "not a power of two", [&](auto& b) { poke<uint32_t>(b, L.value_at("general.alignment"), 0); });
  patch("alignment 3", "not a power of two", [&](auto& b) { poke<uint32_t>(b, L.value_at("general.alignment"), 3); });
  patch("alignment 2^31", "", [&](auto& b) { poke<uint32_t>(b, L.value_at("general.alignment"), 1u << 31); });
  patch("zero dims", "n_dims 0", [&](auto& b) { poke<uint32_t>(b, L.n_dims_at(embd), 0); });
  patch("too many dims", "n_dims 5", [&](auto& b) { poke<uint32_t>(b, L.n_dims_at(embd), 5); });
  patch("n_dims 2^32-1", "n_dims", [&](auto& b) { poke<uint32_t>(b, L.n_dims_at(embd), ~0u); });
  patch("dim 0", "is not a positive int64", [&](auto& b) { poke<uint64_t>(b, L.dims_at(embd), 0); });
  patch("dim 2^63", "is not a positive int64", [&](auto& b) { poke(b, L.dims_at(embd), kHuge); });
  patch("dims product overflows int64", "overflows", [&](auto& b) {
    poke<uint64_t>(b, L.dims_at(embd), uint64_t(1) << 32);
    poke<uint64_t>(b, L.dims_at(embd) + 8, uint64_t(1) << 32);
  });
  patch("byte size overflows uint64", "overflows", [&](auto& b) {
    poke<uint64_t>(b, L.dims_at(embd), uint64_t(1) << 31);
    poke<uint64_t>(b, L.dims_at(embd) + 8, uint64_t(1) << 31);
  });
  patch("dims larger than the file", "past end of file", [&](auto& b) {
    poke<uint64_t>(b, L.dims_at(embd) + 8, uint64_t(1) << 40);
  });
  patch("unknown tensor type 999", "unknown or unsupported ggml type id 999",
        [&](auto& b) { poke<uint32_t>(b, L.type_of_at(embd), 999); });
  patch("removed tensor type 4 (Q4_2)", "unknown or unsupported ggml type id 4",
        [&](auto& b) { poke<uint32_t>(b, L.type_of_at(embd), 4); });
  patch("offset past the end", "past end of file", [&](auto& b) { poke<uint64_t>(b, L.offset_at(down), 1u << 20); });
  patch("offset near 2^64", "past end of file", [&](auto& b) { poke<uint64_t>(b, L.offset_at(down), ~uint64_t(31)); });
  patch("misaligned offset", "not a multiple of the alignment",
        [&](auto& b) { poke<uint64_t>(b, L.offset_at(down), L.tensor(down).offset + 4); });
  patch("overlapping tensors", "overlaps",
        [&](auto& b) { poke<uint64_t>(b, L.offset_at(down), L.tensor(q).offset); });
  patch("duplicate tensor name", "duplicate tensor name", [&](auto& b) {
    std::memcpy(b.data() + L.name_at(down) + 6, "ffn_gate", 8);  // blk.0.ffn_down -> blk.0.ffn_gate
  });
  patch("missing tensor", "missing tensor 'blk.0.ffn_down.weight'",
        [&](auto& b) { b[L.name_at(down) + 10] = 'X'; });
  patch("non-UTF-8 tensor name", "missing tensor 'blk.0.attn_q.weight'", [&](auto& b) { b[L.name_at(q) + 7] = 0xff; });
  patch("non-UTF-8 key", "missing metadata key 'general.architecture'",
        [&](auto& b) { b[L.key_at("general.architecture") + 19] = 0xfe; });
  patch("non-UTF-8 architecture", "unsupported architecture",
        [&](auto& b) { b[L.value_at("general.architecture") + 8 + 2] = 0xc3; });
  patch("newline in architecture", "unsupported architecture 'll\nma'",  // the CLI must still print one line
        [&](auto& b) { b[L.value_at("general.architecture") + 8 + 2] = '\n'; });
  patch("architecture llamx", "unsupported architecture 'llamx'",
        [&](auto& b) { b[L.value_at("general.architecture") + 8 + 4] = 'x'; });
  patch("embedding_length vs tensors", "shape mismatch",
        [&](auto& b) { poke<uint32_t>(b, L.value_at("llama.embedding_length"), 32); });
  patch("head_count 3", "not a multiple of head_count",
        [&](auto& b) { poke<uint32_t>(b, L.value_at("llama.attention.head_count"), 3); });
  patch("block_count 1000", "llama.block_count = 1000 needs 9000 layer tensors", [&](auto& b) { poke<uint32_t>(b, L.value_at("llama.block_count"), 1000); });
  patch("block_count 2^31", "int32", [&](auto& b) { poke<uint32_t>(b, L.value_at("llama.block_count"), 1u << 31); });
  patch("context_length 0", "must be positive",
        [&](auto& b) { poke<uint32_t>(b, L.value_at("llama.context_length"), 0); });
  patch("ffn length vs tensors", "shape mismatch",
        [&](auto& b) { poke<uint32_t>(b, L.value_at("llama.feed_forward_length"), 31); });
  patch("rms epsilon NaN", "must be positive", [&](auto& b) {
    poke<float>(b, L.value_at("llama.attention.layer_norm_rms_epsilon"), std::numeric_limits<float>::quiet_NaN());
  });
  patch("tokenizer model unknown", "unsupported tokenizer.ggml.model",
        [&](auto& b) { b[L.value_at("tokenizer.ggml.model") + 8 + 4] = 'x'; });
  patch("token type 99", "is unknown",
        [&](auto& b) { poke<int32_t>(b, L.value_at("tokenizer.ggml.token_type") + 12, 99); });
  patch("bos id past the vocabulary", "is not a token id",
        [&](auto& b) { poke<uint32_t>(b, L.value_at("tokenizer.ggml.bos_token_id"), 999); });
  patch("scores of another type", "", [&](auto& b) {
    poke<uint32_t>(b, L.value_at("tokenizer.ggml.scores"), uint32_t(GgufType::kUint32));
    poke<uint32_t>(b, L.type_at("tokenizer.ggml.scores"), uint32_t(GgufType::kArray));
  });
  cases.push_back({"tokenizer shorter than token_embd", tiny_llama({.drop_last_token = true}), ErrorKind::kFormat,
                   "tokenizer has 15 tokens but token_embd has 16 rows"});
  return cases;
}

// ---- sparse files for models larger than a device ----

// Serializes one metadata value (the writer's encoding, repeated here so headers can be built without data).
inline void put_value(std::vector<uint8_t>& out, const GgufValue& v) {
  const auto raw = [&](const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    out.insert(out.end(), c, c + n);
  };
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          throw std::runtime_error("hostile_gguf: empty value");
        } else if constexpr (std::is_same_v<T, std::string>) {
          const uint64_t n = x.size();
          raw(&n, 8);
          raw(x.data(), x.size());
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          const auto t = uint32_t(x.elem_type);
          const uint64_t n = x.items.size();
          raw(&t, 4);
          raw(&n, 8);
          for (const GgufValue& item : x.items) put_value(out, item);
        } else if constexpr (std::is_same_v<T, bool>) {
          const uint8_t b = x ? 1 : 0;
          raw(&b, 1);
        } else {
          raw(&x, sizeof(T));
        }
      },
      v.v);
}

// A Llama model of F32 tensors with these shapes whose data section is a hole (ftruncate): the file claims
// n_layers * (4 dim^2 + 3 dim ffn) * 4 bytes and more while using a few KB of disk. Returns the file size.
inline uint64_t write_sparse_llama(const std::filesystem::path& path, int dim, int n_heads, int ffn, int n_layers) {
  std::vector<std::pair<std::string, GgufValue>> kvs = {
      {"general.architecture", GgufValue("llama")},
      {"llama.embedding_length", GgufValue(uint32_t(dim))},
      {"llama.block_count", GgufValue(uint32_t(n_layers))},
      {"llama.attention.head_count", GgufValue(uint32_t(n_heads))},
      {"llama.feed_forward_length", GgufValue(uint32_t(ffn))},
      {"llama.context_length", GgufValue(uint32_t(64))},
      {"llama.attention.layer_norm_rms_epsilon", GgufValue(1e-5f)},
      {"tokenizer.ggml.model", GgufValue("llama")},
      {"tokenizer.ggml.tokens", GgufValue::string_array(tiny_vocab())},
  };
  const int64_t vocab = int64_t(tiny_vocab().size());
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {{"token_embd.weight", {dim, vocab}},
                                                                       {"output_norm.weight", {dim}}};
  for (int l = 0; l < n_layers; ++l) {
    for (const char* norm : {"attn_norm", "ffn_norm"}) tensors.push_back({llama_layer_tensor_name(l, norm), {dim}});
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output"})
      tensors.push_back({llama_layer_tensor_name(l, m), {dim, dim}});
    tensors.push_back({llama_layer_tensor_name(l, "ffn_gate"), {dim, ffn}});
    tensors.push_back({llama_layer_tensor_name(l, "ffn_up"), {dim, ffn}});
    tensors.push_back({llama_layer_tensor_name(l, "ffn_down"), {ffn, dim}});
  }
  std::vector<uint8_t> h = {'G', 'G', 'U', 'F'};
  const auto u32 = [&](uint32_t x) { put_value(h, GgufValue(x)); };
  const auto u64 = [&](uint64_t x) { put_value(h, GgufValue(x)); };
  u32(3);
  u64(tensors.size());
  u64(kvs.size());
  for (const auto& [key, value] : kvs) {
    put_value(h, GgufValue(key));
    u32(uint32_t(value.type()));
    put_value(h, value);
  }
  uint64_t offset = 0;
  for (const auto& [name, dims] : tensors) {
    put_value(h, GgufValue(name));
    u32(uint32_t(dims.size()));
    uint64_t n = 4;
    for (int64_t d : dims) {
      u64(uint64_t(d));
      n *= uint64_t(d);
    }
    u32(0);  // F32
    u64(offset);
    offset += (n + 31) / 32 * 32;
  }
  h.resize((h.size() + 31) / 32 * 32, 0);
  const uint64_t total = h.size() + offset;
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(h.data()), std::streamsize(h.size()));
    if (!f) throw std::runtime_error("hostile_gguf: cannot write " + path.string());
  }
  std::filesystem::resize_file(path, total);  // the hole: reads as zeros, takes no disk space
  return total;
}

}  // namespace quill::test::hostile
