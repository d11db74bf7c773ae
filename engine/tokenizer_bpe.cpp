// GPT-2 style byte-level BPE: bytes -> printable stand-in characters, a hand-written Llama 3 pre-tokenizer, then
// per word repeatedly merge the adjacent pair of lowest merge rank (ties: leftmost). O(n log n) per word.
#include "engine/error.hpp"
#include "engine/symbol_merge.hpp"
#include "engine/tokenizer.hpp"

namespace quill {

namespace {

std::string utf8_encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// One decoded code point and its byte length; invalid sequences decode as one byte (U+FFFD stand-in class).
struct Cp {
  uint32_t cp;
  uint32_t len;
};

Cp utf8_decode(std::string_view s, size_t i) {
  const auto b0 = uint8_t(s[i]);
  const auto cont = [&](size_t k) { return i + k < s.size() && (uint8_t(s[i + k]) & 0xC0) == 0x80; };
  if (b0 < 0x80) return {b0, 1};
  if ((b0 >> 5) == 0x6 && cont(1)) return {(uint32_t(b0 & 0x1F) << 6) | (uint8_t(s[i + 1]) & 0x3F), 2};
  if ((b0 >> 4) == 0xE && cont(1) && cont(2)) {
    return {(uint32_t(b0 & 0x0F) << 12) | (uint32_t(uint8_t(s[i + 1]) & 0x3F) << 6) | (uint8_t(s[i + 2]) & 0x3F), 3};
  }
  if ((b0 >> 3) == 0x1E && cont(1) && cont(2) && cont(3)) {
    return {(uint32_t(b0 & 0x07) << 18) | (uint32_t(uint8_t(s[i + 1]) & 0x3F) << 12) |
                (uint32_t(uint8_t(s[i + 2]) & 0x3F) << 6) | (uint8_t(s[i + 3]) & 0x3F),
            4};
  }
  return {0xFFFD, 1};
}

enum class Cls { kLetter, kNumber, kSpace, kOther };

// \p{L}, \p{N}, \s for ASCII exactly; for other code points the common blocks (Latin-1 symbols, combining marks,
// general punctuation, CJK punctuation, emoji, a few digit ranges); every other code point counts as a letter.
Cls classify(uint32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return Cls::kLetter;
    if (c >= '0' && c <= '9') return Cls::kNumber;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return Cls::kSpace;
    return Cls::kOther;
  }
  if (c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
      c == 0x202F || c == 0x205F || c == 0x3000) {
    return Cls::kSpace;
  }
  if (c == 0xB2 || c == 0xB3 || c == 0xB9 || (c >= 0xBC && c <= 0xBE) || (c >= 0x660 && c <= 0x669) ||
      (c >= 0x6F0 && c <= 0x6F9) || (c >= 0x966 && c <= 0x96F) || (c >= 0xFF10 && c <= 0xFF19)) {
    return Cls::kNumber;
  }
  if (c == 0xAA || c == 0xB5 || c == 0xBA) return Cls::kLetter;
  if ((c >= 0x80 && c <= 0xBF) || c == 0xD7 || c == 0xF7 || (c >= 0x300 && c <= 0x36F) ||
      (c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE00 && c <= 0xFE0F) ||
      (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0x1F000 && c <= 0x1FAFF) || c == 0xFFFD) {
    return Cls::kOther;
  }
  return Cls::kLetter;
}

bool is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }

}  // namespace

const std::array<std::string, 256>& gpt2_byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = utf8_encode(printable ? b : next++);
    }
    return t;
  }();
  return table;
}

std::vector<std::string_view> pretokenize_llama3(std::string_view text) {
  std::vector<Cp> cps;     // [n_code_points]
  std::vector<size_t> at;  // byte offset of each code point, plus the end
  for (size_t i = 0; i < text.size();) {
    const Cp c = utf8_decode(text, i);
    cps.push_back(c);
    at.push_back(i);
    i += c.len;
  }
  at.push_back(text.size());
  const size_t n = cps.size();
  const auto cls = [&](size_t k) { return k < n ? classify(cps[k].cp) : Cls::kOther; };
  const auto lower = [&](size_t k) { return k < n && cps[k].cp < 0x80 ? char(std::tolower(int(cps[k].cp))) : '\0'; };

  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < n) {
    const uint32_t c = cps[i].cp;
    size_t end = i;
    // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (c == '\'' && i + 1 < n) {
      const char a = lower(i + 1), b = lower(i + 2);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        end = i + 3;
      } else if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        end = i + 2;
      }
    }
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+
    if (end == i) {
      size_t k = i;
      if (cls(k) != Cls::kLetter && cls(k) != Cls::kNumber && !is_crlf(c) && cls(k + 1) == Cls::kLetter) ++k;
      if (cls(k) == Cls::kLetter) {
        while (cls(k) == Cls::kLetter && k < n) ++k;
        end = k;
      }
    }
    // 3. \p{N}{1,3}
    if (end == i && cls(i) == Cls::kNumber) {
      size_t k = i;
      while (k < n && k < i + 3 && cls(k) == Cls::kNumber) ++k;
      end = k;
    }
    // 4. ' '?[^\s\p{L}\p{N}]+[\r\n]*
    if (end == i) {
      size_t k = i;
      if (c == ' ' && k + 1 < n && cls(k + 1) == Cls::kOther) ++k;
      if (k < n && cls(k) == Cls::kOther) {
        while (k < n && cls(k) == Cls::kOther) ++k;
        while (k < n && is_crlf(cps[k].cp)) ++k;
        end = k;
      }
    }
    if (end == i && cls(i) == Cls::kSpace) {
      size_t j = i;  // the whole whitespace run [i, j)
      while (j < n && cls(j) == Cls::kSpace) ++j;
      // 5. \s*[\r\n]+ : up to and including the run's last line break
      size_t last_break = n;
      for (size_t k = i; k < j; ++k) {
        if (is_crlf(cps[k].cp)) last_break = k;
      }
      if (last_break != n) {
        end = last_break + 1;
      } else if (j == n || j - i == 1) {
        end = j;  // 6. \s+(?!\S) at the end of the text, or 7. \s+ for a single space before a word
      } else {
        end = j - 1;  // 6. \s+(?!\S): leave the last space to lead the next word
      }
    }
    if (end == i) end = i + 1;  // cannot happen with the classes above; never loop forever
    words.push_back(text.substr(at[i], at[end] - at[i]));
    i = end;
  }
  return words;
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  const auto& byte_map = gpt2_byte_to_unicode();
  std::string s;     // one word in stand-in characters
  std::string pair;  // "left right" lookup key
  std::vector<MergeSymbol> sym;
  for (const std::string_view word : pretokenize_llama3(text)) {
    s.clear();
    sym.clear();
    for (const char b : word) {
      const std::string& m = byte_map[uint8_t(b)];
      const auto idx = int32_t(sym.size());
      sym.push_back(MergeSymbol{idx - 1, idx + 1, uint32_t(s.size()), uint32_t(m.size())});
      s += m;
    }
    sym.back().next = -1;
    if (ignore_merges_) {
      if (const auto it = text_to_id_.find(s); it != text_to_id_.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    merge_symbols(sym, [&](int32_t l, int32_t r, double* priority) {
      pair.assign(s, sym[size_t(l)].start, sym[size_t(l)].len);
      pair += ' ';
      pair.append(s, sym[size_t(r)].start, sym[size_t(r)].len);
      const auto it = merge_rank_.find(pair);
      if (it == merge_rank_.end()) return false;
      *priority = -double(it->second);  // lowest rank first
      return true;
    });
    for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) {
      const std::string_view piece = std::string_view(s).substr(sym[size_t(i)].start, sym[size_t(i)].len);
      if (const auto it = text_to_id_.find(piece); it != text_to_id_.end()) {
        out.push_back(it->second);
        continue;
      }
      // A merge produced a string the vocab lacks: fall back to one token per stand-in character.
      for (size_t k = 0; k < piece.size();) {
        const size_t len = utf8_decode(piece, k).len;
        const auto it = text_to_id_.find(piece.substr(k, len));
        if (it != text_to_id_.end()) {
          out.push_back(it->second);
        } else if (unk_ >= 0) {
          out.push_back(unk_);
        } else {
          fail(ErrorKind::kInvalidArgument, "encode: '{}' has no token and the vocab has no unknown token",
               piece.substr(k, len));
        }
        k += len;
      }
    }
  }
}

}  // namespace quill
