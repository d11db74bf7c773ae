// SentencePiece BPE encoding as llama.cpp and llama2.c do it: a space prefix, spaces as U+2581, one symbol per
// UTF-8 character, then repeatedly merge the adjacent pair whose concatenation is the highest-scoring vocab piece
// (ties: leftmost), and byte-fallback tokens <0xXX> for whatever is left that is not a piece.
// The merge loop: engine/symbol_merge.hpp.
#include "engine/symbol_merge.hpp"
#include "engine/tokenizer.hpp"

namespace quill {

namespace {

size_t utf8_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;  // a stray continuation or invalid byte stands alone (and falls back to its byte token)
}

}  // namespace

void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  const std::string_view space = escape_spaces_ ? std::string_view("\xe2\x96\x81") : std::string_view(" ");
  std::string s;  // the normalized text
  s.reserve(text.size() * 2 + 3);
  if (add_space_prefix_) s += space;
  for (const char c : text) {
    if (c == ' ') {
      s += space;
    } else {
      s += c;
    }
  }

  std::vector<MergeSymbol> sym;  // [n_symbols]
  sym.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t len = std::min(utf8_len(uint8_t(s[i])), s.size() - i);
    const auto idx = int32_t(sym.size());
    sym.push_back(MergeSymbol{idx - 1, idx + 1, uint32_t(i), uint32_t(len)});
    i += len;
  }
  sym.back().next = -1;

  merge_symbols(sym, [&](int32_t l, int32_t r, double* priority) {
    const auto it =
        mergeable_.find(std::string_view(s).substr(sym[size_t(l)].start, sym[size_t(l)].len + sym[size_t(r)].len));
    if (it == mergeable_.end()) return false;
    *priority = scores_[size_t(it->second)];
    return true;
  });

  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) {
    const std::string_view piece = std::string_view(s).substr(sym[size_t(i)].start, sym[size_t(i)].len);
    const auto it = mergeable_.find(piece);
    if (it != mergeable_.end()) {
      out.push_back(it->second);
    } else {
      append_bytes(piece, out);
    }
  }
}

}  // namespace quill
