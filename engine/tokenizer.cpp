// Tokenizer: construction from GGUF metadata, id checks, decoding (encoders live in tokenizer_spm.cpp and
// tokenizer_bpe.cpp).
#include "engine/tokenizer.hpp"

#include <limits>

#include "engine/error.hpp"

namespace quill {

namespace {

constexpr std::string_view kSpmSpace = "\xe2\x96\x81";  // U+2581 "▁"

// "<0x41>" -> 0x41; -1 when the text is not a byte token.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = 0;
  for (char c : s.substr(3, 2)) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else
      return -1;
  }
  return v;
}

// An optional special-token id: absent or 0xFFFFFFFF / -1 -> -1; otherwise it must name a token.
int32_t special_id(const GgufFile& f, const std::string& key, int32_t fallback, int32_t vocab) {
  const GgufValue* v = f.find(key);
  if (!v) return fallback < vocab ? fallback : -1;
  if (const auto* u = std::get_if<uint32_t>(&v->v); u && *u == std::numeric_limits<uint32_t>::max()) return -1;
  const int64_t id = f.get_i32(key);
  if (id == -1) return -1;
  if (id < 0 || id >= vocab) {
    fail(ErrorKind::kFormat, "{}: metadata '{}' = {} is not a token id (vocab {})", f.path(), key, id, vocab);
  }
  return int32_t(id);
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& f) {
  Tokenizer t;
  const std::string& model = f.get_string("tokenizer.ggml.model");
  if (model == "llama") {
    t.kind_ = TokenizerKind::kSentencePiece;
  } else if (model == "gpt2") {
    t.kind_ = TokenizerKind::kGpt2Bpe;
  } else {
    fail(ErrorKind::kFormat, "{}: unsupported tokenizer.ggml.model '{}' (quill reads 'llama' and 'gpt2')", f.path(),
         model);
  }
  t.tokens_ = f.get_string_array("tokenizer.ggml.tokens");
  if (t.tokens_.empty() || t.tokens_.size() > size_t(std::numeric_limits<int32_t>::max())) {
    fail(ErrorKind::kFormat, "{}: tokenizer.ggml.tokens has {} entries", f.path(), t.tokens_.size());
  }
  const auto n = int32_t(t.tokens_.size());
  if (f.has("tokenizer.ggml.scores")) {
    t.scores_ = f.get_f32_array("tokenizer.ggml.scores");
    if (t.scores_.size() != t.tokens_.size()) {
      fail(ErrorKind::kFormat, "{}: tokenizer.ggml.scores has {} entries for {} tokens", f.path(), t.scores_.size(), n);
    }
  } else {
    t.scores_.assign(size_t(n), 0.0f);
  }
  t.types_.assign(size_t(n), TokenType::kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    const std::vector<int32_t> types = f.get_i32_array("tokenizer.ggml.token_type");
    if (types.size() != t.tokens_.size()) {
      fail(ErrorKind::kFormat, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", f.path(), types.size(), n);
    }
    for (int32_t i = 0; i < n; ++i) {
      if (types[size_t(i)] < 0 || types[size_t(i)] > int32_t(TokenType::kByte)) {
        fail(ErrorKind::kFormat, "{}: tokenizer.ggml.token_type[{}] = {} is unknown", f.path(), i, types[size_t(i)]);
      }
      t.types_[size_t(i)] = TokenType(types[size_t(i)]);
    }
  }

  const bool spm = t.kind_ == TokenizerKind::kSentencePiece;
  t.byte_token_.fill(-1);
  t.escape_spaces_ = false;
  for (int32_t i = 0; i < n; ++i) {
    const std::string& s = t.tokens_[size_t(i)];
    const TokenType type = t.types_[size_t(i)];
    t.text_to_id_.emplace(s, i);
    if (spm) {
      const int b = parse_byte_token(s);
      if (b >= 0 && (type == TokenType::kByte || type == TokenType::kNormal || type == TokenType::kUndefined)) {
        if (t.byte_token_[size_t(b)] < 0) t.byte_token_[size_t(b)] = i;
        continue;  // byte tokens are produced by fallback, never by merging
      }
      if (s.find(kSpmSpace) != std::string::npos) t.escape_spaces_ = true;
    }
    if (type != TokenType::kControl && type != TokenType::kByte && type != TokenType::kUnknown) {
      t.mergeable_.emplace(s, i);
    }
  }

  t.unk_ = special_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n);
  t.bos_ = special_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, n);
  t.eos_ = special_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, n);
  t.add_bos_ = f.find_bool("tokenizer.ggml.add_bos_token").value_or(spm);
  t.add_space_prefix_ = spm && f.find_bool("tokenizer.ggml.add_space_prefix").value_or(true);

  if (!spm) {
    const std::vector<std::string> merges = f.get_string_array("tokenizer.ggml.merges");
    t.merge_rank_.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t sp = merges[r].find(' ', 1);  // the left part may itself be a single ' '-free symbol
      if (sp == std::string::npos || sp + 1 >= merges[r].size()) {
        fail(ErrorKind::kFormat, "{}: tokenizer.ggml.merges[{}] = '{}' is not 'left right'", f.path(), r, merges[r]);
      }
      t.merge_rank_.emplace(merges[r], int32_t(std::min<size_t>(r, size_t(std::numeric_limits<int32_t>::max()))));
    }
    const std::optional<std::string> pre = f.find_string("tokenizer.ggml.pre");
    t.ignore_merges_ = pre && *pre == "llama-bpe";
  }
  return t;
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    fail(ErrorKind::kInvalidArgument, "token id {} is out of range (vocab {})", id, vocab_size());
  }
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return tokens_[size_t(id)];
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(id);
  return types_[size_t(id)];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const auto it = text_to_id_.find(text);
  if (it == text_to_id_.end()) return std::nullopt;
  return it->second;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 2 + 2);
  if (add_bos) {
    if (bos_ < 0) fail(ErrorKind::kInvalidArgument, "encode: a BOS token was requested but the vocab has none");
    out.push_back(bos_);
  }
  if (kind_ == TokenizerKind::kSentencePiece) {
    encode_spm(text, out);
  } else {
    encode_bpe(text, out);
  }
  return out;
}

std::string Tokenizer::piece(int32_t id) const {
  check_id(id);
  const std::string& s = tokens_[size_t(id)];
  const TokenType type = types_[size_t(id)];
  if (type == TokenType::kControl) return "";
  if (kind_ == TokenizerKind::kSentencePiece) {
    if (const int b = parse_byte_token(s); b >= 0 && byte_token_[size_t(b)] == id) return std::string(1, char(b));
    if (!escape_spaces_) return s;
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, kSpmSpace.size(), kSpmSpace) == 0) {
        out += ' ';
        i += kSpmSpace.size();
      } else {
        out += s[i++];
      }
    }
    return out;
  }
  if (type == TokenType::kUserDefined) return s;  // added tokens are stored as plain text
  // Byte-level BPE: map each stand-in character back to its byte; characters outside the map pass through.
  static const GgufStringMap<int> unmap = [] {
    GgufStringMap<int> m;
    for (int b = 0; b < 256; ++b) m.emplace(gpt2_byte_to_unicode()[size_t(b)], b);
    return m;
  }();
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto lead = uint8_t(s[i]);
    size_t len = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 1;
    len = std::min(len, s.size() - i);
    const auto it = unmap.find(std::string_view(s).substr(i, len));
    if (it != unmap.end()) {
      out += char(it->second);
    } else {
      out.append(s, i, len);
    }
    i += len;
  }
  return out;
}

std::string Tokenizer::decode_next(int32_t prev, int32_t id) const {
  std::string p = piece(id);
  if (add_space_prefix_ && prev == bos_ && bos_ >= 0 && !p.empty() && p[0] == ' ') p.erase(0, 1);
  return p;
}

std::string Tokenizer::decode(std::span<const int32_t> tokens) const {
  std::string out;
  bool first = true;
  for (const int32_t id : tokens) {
    std::string p = piece(id);
    if (p.empty()) continue;
    if (first && add_space_prefix_ && p[0] == ' ') p.erase(0, 1);
    first = false;
    out += p;
  }
  return out;
}

void Tokenizer::append_bytes(std::string_view bytes, std::vector<int32_t>& out) const {
  for (const char c : bytes) {
    const int32_t id = byte_token_[uint8_t(c)];
    if (id >= 0) {
      out.push_back(id);
    } else if (unk_ >= 0) {
      out.push_back(unk_);
    } else {
      fail(ErrorKind::kInvalidArgument, "encode: byte 0x{:02X} has no token and the vocab has no <unk>", uint8_t(c));
    }
  }
}

}  // namespace quill
