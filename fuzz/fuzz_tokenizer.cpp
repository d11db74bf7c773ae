// libFuzzer target: arbitrary text through both tokenizers (SentencePiece with byte fallback, GPT-2 byte-level
// BPE with Llama 3's pre-tokenizer), built once from small fixed vocabularies. Checks: ids inside the vocabulary,
// and decode(encode(text)) == text where the tokenizer promises it (SentencePiece with every byte token present,
// byte-level BPE). Seeds: fuzz/corpus/tokenizer (plain, multi-byte and invalid UTF-8 text).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/tokenizer.hpp"

namespace {

using namespace quill;

Tokenizer spm() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);
  }
  for (const char* p : {"\xe2\x96\x81", "a", "b", "e", "h", "l", "o", "t", "\xe2\x96\x81t", "he", "\xe2\x96\x81the",
                        "ll", "llo", "\xc3\xa9", "\xe2\x96\x81\xe2\x96\x81"}) {
    tokens.push_back(p);
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = float(tokens[i].size());
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  return Tokenizer::from_gguf(GgufFile::from_bytes(w.to_bytes(), "spm"));
}

Tokenizer bpe() {
  const auto& b2u = gpt2_byte_to_unicode();
  std::vector<std::string> tokens(b2u.begin(), b2u.end());
  std::vector<std::string> merges;
  for (const char* m : {"h e", "l l", "he ll", "\xc4\xa0 t", "t h", "\xc4\xa0t h"}) {
    merges.push_back(m);
    std::string joined(m);
    joined.erase(joined.find(' '), 1);
    tokens.push_back(joined);
  }
  tokens.push_back("<|begin_of_text|>");
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "llama-bpe");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_string_array("tokenizer.ggml.merges", merges);
  w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(tokens.size() - 1));
  return Tokenizer::from_gguf(GgufFile::from_bytes(w.to_bytes(), "bpe"));
}

void check(const Tokenizer& t, std::string_view text, bool round_trip) {
  const std::vector<int32_t> ids = t.encode(text, false);
  for (int32_t id : ids) {
    if (id < 0 || id >= t.vocab_size()) {
      std::fprintf(stderr, "id %d outside [0, %d)\n", id, t.vocab_size());
      std::abort();
    }
    t.piece(id);
  }
  const std::string back = t.decode(ids);
  if (round_trip && back != text) {
    std::fprintf(stderr, "round trip: %zu bytes in, %zu bytes out\n", text.size(), back.size());
    std::abort();
  }
  pretokenize_llama3(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer s = spm();
  static const Tokenizer b = bpe();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check(s, text, false);
    check(b, text, true);
  } catch (const quill::Error& e) {
    std::fprintf(stderr, "tokenizer threw on valid input: %s\n", e.what());
    std::abort();
  }
  return 0;
}
