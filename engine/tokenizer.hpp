// Tokenizer built from GGUF metadata (tokenizer.ggml.*): SentencePiece BPE ("llama", as llama.cpp / llama2.c)
// and GPT-2 style byte-level BPE ("gpt2", with a hand-written Llama-3 pre-tokenizer). Text in, token ids out, and
// back. Encoding is O(n log n): a linked list of symbols and a priority queue of candidate merges.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.hpp"

namespace quill {

enum class TokenizerKind { kSentencePiece, kGpt2Bpe };

// tokenizer.ggml.token_type values (SentencePiece's piece types).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Tokenizer {
 public:
  // kFormat for a missing/unsupported tokenizer.ggml.model, arrays of mismatched lengths, ids out of range,
  // malformed merges.
  static Tokenizer from_gguf(const GgufFile& file);

  TokenizerKind kind() const { return kind_; }
  int32_t vocab_size() const { return int32_t(tokens_.size()); }
  int32_t bos_id() const { return bos_; }    // -1 when the vocab has none
  int32_t eos_id() const { return eos_; }    // -1 when the vocab has none
  bool add_bos() const { return add_bos_; }  // tokenizer.ggml.add_bos_token (SentencePiece default: true)
  bool add_space_prefix() const { return add_space_prefix_; }

  // Text -> ids. Special-token text such as "<s>" is NOT parsed: it is encoded as ordinary characters.
  std::vector<int32_t> encode(std::string_view text) const { return encode(text, add_bos_); }
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;

  // Ids -> text: control tokens (BOS/EOS) produce nothing, byte tokens their raw byte; for SentencePiece the
  // leading space of the first piece (the prefix encode added) is stripped. decode(encode(t)) == t.
  std::string decode(std::span<const int32_t> tokens) const;
  // The text of one token as it appears in decoded output (no stripping); kInvalidArgument for a bad id.
  std::string piece(int32_t id) const;
  // Streaming: piece(id), minus its leading space when prev is BOS and a space prefix is in use (llama2.c).
  std::string decode_next(int32_t prev, int32_t id) const;

  const std::string& token_text(int32_t id) const;  // the raw vocab string ("▁the", "<0x0A>", "Ġthe")
  TokenType token_type(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;  // exact vocab string -> id

 private:
  Tokenizer() = default;
  void check_id(int32_t id) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;  // engine/tokenizer_spm.cpp
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;  // engine/tokenizer_bpe.cpp
  void append_bytes(std::string_view bytes, std::vector<int32_t>& out) const;

  TokenizerKind kind_ = TokenizerKind::kSentencePiece;
  std::vector<std::string> tokens_;        // [vocab]
  std::vector<float> scores_;              // [vocab] SentencePiece merge priority (higher merges first)
  std::vector<TokenType> types_;           // [vocab]
  GgufStringMap<int32_t> text_to_id_;      // every token text -> first id
  GgufStringMap<int32_t> mergeable_;       // texts that merges/characters may produce (no control/byte/unknown)
  GgufStringMap<int32_t> merge_rank_;      // GPT-2: "left right" -> rank (lower merges first)
  std::array<int32_t, 256> byte_token_{};  // SentencePiece byte fallback <0xXX> -> id, -1 when absent
  int32_t bos_ = -1;
  int32_t eos_ = -1;
  int32_t unk_ = -1;
  bool add_bos_ = true;
  bool add_space_prefix_ = true;
  bool escape_spaces_ = true;   // SentencePiece: spaces are stored as U+2581 in the vocab
  bool ignore_merges_ = false;  // GPT-2 (Llama 3): a word that is itself a token is taken whole
};

// Byte-level BPE helpers (exposed for tests).
// GPT-2's printable stand-in for each byte, UTF-8 encoded ("Ġ" for ' ', "Ċ" for '\n').
const std::array<std::string, 256>& gpt2_byte_to_unicode();
// Splits text as Llama 3's pre-tokenizer regex does (common cases; non-ASCII letters/digits approximated):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
std::vector<std::string_view> pretokenize_llama3(std::string_view text);

}  // namespace quill
