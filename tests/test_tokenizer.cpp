// Tokenizer: SentencePiece BPE on stories260K (golden ids, the 31,480-id TinyStories sample, a naive llama2.c
// encoder on random strings, round trips, byte fallback) and byte-level BPE on a hand-built vocab + merges GGUF.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/tokenizer.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// llama2.c's encode, transcribed naively (O(n^2) rescans): the oracle for the heap-based encoder.
std::vector<int32_t> naive_llama2c_encode(const Tokenizer& tok, const std::string& text) {
  std::vector<std::string> pieces;  // vocab strings with "▁" for spaces, as in the GGUF
  std::vector<int32_t> ids;
  const auto lookup = [&](const std::string& s) -> int32_t {
    const auto id = tok.find_token(s);
    if (!id) return -1;
    const TokenType t = tok.token_type(*id);
    return t == TokenType::kControl || t == TokenType::kByte || t == TokenType::kUnknown ? -1 : *id;
  };
  std::string s = " " + text;
  std::string norm;
  for (char c : s) norm += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
  for (size_t i = 0; i < norm.size();) {
    size_t len = 1;
    while (i + len < norm.size() && (uint8_t(norm[i + len]) & 0xC0) == 0x80 && len < 4) ++len;
    const std::string cp = norm.substr(i, len);
    const int32_t id = lookup(cp);
    if (id >= 0) {
      ids.push_back(id);
      pieces.push_back(cp);
    } else {
      for (char b : cp) {
        ids.push_back(int32_t(uint8_t(b)) + 3);
        pieces.push_back("\x01");  // never part of a merge
      }
    }
    i += len;
  }
  while (true) {
    float best = -1e10f;
    int best_id = -1;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const int32_t id = lookup(pieces[i] + pieces[i + 1]);
      if (id >= 0 && -float(id) > best) {  // stories260K: score = -(id - 259), monotone in id
        best = -float(id);
        best_id = id;
        best_i = i;
      }
    }
    if (best_id < 0) break;
    ids[best_i] = best_id;
    pieces[best_i] += pieces[best_i + 1];
    ids.erase(ids.begin() + std::ptrdiff_t(best_i) + 1);
    pieces.erase(pieces.begin() + std::ptrdiff_t(best_i) + 1);
  }
  return ids;
}

TEST(TokenizerSpm, Stories260KGoldenPrompt) {
  QUILL_REQUIRE_SHARED_FILE(path, "stories260K/stories260K.gguf");
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(path));
  EXPECT_EQ(tok.kind(), TokenizerKind::kSentencePiece);
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_TRUE(tok.add_bos());
  const std::vector<int32_t> ids = tok.encode("Once upon a time");
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok.encode("Once upon a time", false), (std::vector<int32_t>{403, 407, 261, 378}));
  EXPECT_EQ(tok.decode(ids), "Once upon a time");
  EXPECT_EQ(tok.piece(403), " Once");
  EXPECT_EQ(tok.decode_next(1, 403), "Once");  // llama2.c strips the space after BOS
  EXPECT_EQ(tok.decode_next(403, 407), " upon");
  EXPECT_EQ(tok.piece(13), "\n");  // byte token <0x0A>
  EXPECT_EQ(tok.piece(1), "");     // control
  EXPECT_EQ(tok.token_text(261),
            "\xe2\x96\x81"
            "a");
  EXPECT_EQ(tok.token_type(1), TokenType::kControl);
  EXPECT_EQ(tok.encode("", true), (std::vector<int32_t>{1}));
  EXPECT_TRUE(tok.encode("", false).empty());
  EXPECT_THROW(tok.piece(512), Error);
  EXPECT_THROW(tok.piece(-1), Error);
  const std::vector<int32_t> bad = {1, 9999};
  EXPECT_THROW(tok.decode(bad), Error);
}

TEST(TokenizerSpm, TinyStoriesSampleMatchesReferenceIds) {
  QUILL_REQUIRE_SHARED_FILE(model, "stories260K/stories260K.gguf");
  QUILL_REQUIRE_SHARED_FILE(text_path, "tinystories/tinystories_valid_sample.txt");
  QUILL_REQUIRE_SHARED_FILE(ids_path, "tinystories/tinystories_valid_sample.tok512.txt");
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(model));
  const std::string text = read_text(text_path);
  ASSERT_EQ(text.size(), 65708u);
  std::vector<int32_t> want;
  {
    std::ifstream in(ids_path);
    for (int32_t id; in >> id;) want.push_back(id);
  }
  ASSERT_EQ(want.size(), 31480u);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> got = tok.encode(text, false);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "first difference at id #" << i;
  EXPECT_LT(seconds, 1.0) << "65 KB took " << seconds << " s";
  EXPECT_EQ(tok.decode(got), text);
}

TEST(TokenizerSpm, AgreesWithNaiveLlama2cEncoderAndRoundTrips) {
  QUILL_REQUIRE_SHARED_FILE(path, "stories260K/stories260K.gguf");
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(path));
  std::mt19937_64 rng(quill::test::test_seed());
  const std::vector<std::string> alphabet = {"a",
                                             "e",
                                             "t",
                                             "h",
                                             "o",
                                             "n",
                                             "s",
                                             " ",
                                             " ",
                                             "Th",
                                             "ing",
                                             ".",
                                             ",",
                                             "\n",
                                             "!",
                                             "'",
                                             "L",
                                             "ily",
                                             "z",
                                             "Q",
                                             "\xc3\xa9",
                                             "\xe4\xb8\x96",
                                             "\xf0\x9f\x99\x82",
                                             "  ",
                                             "\t",
                                             "1",
                                             "\xe2\x96\x81"};
  for (int trial = 0; trial < 300; ++trial) {
    std::string s;
    const int n = int(rng() % 40);
    for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    const std::vector<int32_t> ids = tok.encode(s, false);
    if (s.find("\xe2\x96\x81") == std::string::npos) {
      EXPECT_EQ(tok.decode(ids), s) << "seed " << quill::test::test_seed();
    }
    if (!s.empty()) {
      EXPECT_EQ(ids, naive_llama2c_encode(tok, s)) << "'" << s << "' seed " << quill::test::test_seed();
    }
  }
  // Byte fallback: characters outside the vocab become their UTF-8 bytes.
  const std::vector<int32_t> ids = tok.encode("\xe4\xb8\x96", false);  // "世"
  const std::optional<int32_t> space = tok.find_token("\xe2\x96\x81");
  ASSERT_TRUE(space.has_value());
  EXPECT_EQ(ids, (std::vector<int32_t>{*space, 0xE4 + 3, 0xB8 + 3, 0x96 + 3}));
  EXPECT_EQ(tok.decode(ids), "\xe4\xb8\x96");
  EXPECT_EQ(tok.decode(tok.encode("  two leading spaces")), "  two leading spaces");
  EXPECT_EQ(tok.decode(tok.encode("<s> is text, not BOS")), "<s> is text, not BOS");
  EXPECT_EQ(tok.encode("<s>", false).front() == tok.bos_id(), false);
}

// A GPT-2 style vocab: ids 0..255 are the byte stand-ins, then six merged tokens, two control tokens, and "Ġth"
// (264), which no merge produces.
GgufFile tiny_bpe_file(bool llama3_pre = false) {
  std::vector<std::string> tokens(gpt2_byte_to_unicode().begin(), gpt2_byte_to_unicode().end());
  for (const char* t : {"\xc4\xa0t", "he", "\xc4\xa0the", "at",
                        "\xc4\xa0"
                        "c",
                        "\xc4\xa0"
                        "cat",
                        "<|begin_of_text|>", "<|end_of_text|>", "\xc4\xa0th"}) {
    tokens.push_back(t);
  }
  std::vector<int32_t> types(tokens.size(), int32_t(TokenType::kNormal));
  types[262] = types[263] = int32_t(TokenType::kControl);
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  if (llama3_pre) w.set_string("tokenizer.ggml.pre", "llama-bpe");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "a t", "\xc4\xa0 c",
                                               "\xc4\xa0"
                                               "c at"});
  w.set_u32("tokenizer.ggml.bos_token_id", 262);
  w.set_u32("tokenizer.ggml.eos_token_id", 263);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  return GgufFile::from_bytes(w.to_bytes(), "bpe.gguf");
}

TEST(TokenizerBpe, ByteToUnicodeMap) {
  const auto& m = gpt2_byte_to_unicode();
  EXPECT_EQ(m[' '], "\xc4\xa0");   // Ġ (U+0120)
  EXPECT_EQ(m['\n'], "\xc4\x8a");  // Ċ (U+010A)
  EXPECT_EQ(m['a'], "a");
  EXPECT_EQ(m[0], "\xc4\x80");     // U+0100
  EXPECT_EQ(m[0xA1], "\xc2\xa1");  // printable Latin-1 maps to itself
  EXPECT_EQ(m[0xAD], "\xc5\x83");  // soft hyphen: the 68th non-printable byte -> U+0143
  std::set<std::string> unique(m.begin(), m.end());
  EXPECT_EQ(unique.size(), 256u);
}

TEST(TokenizerBpe, Llama3PreTokenizer) {
  using V = std::vector<std::string_view>;
  // Expected splits computed with Python's `regex` module and the Llama 3 pattern.
  EXPECT_EQ(pretokenize_llama3("Hello world's 12345 ok!!\n\n  x"),
            (V{"Hello", " world", "'s", " ", "123", "45", " ok", "!!\n\n", " ", " x"}));
  EXPECT_EQ(pretokenize_llama3("I'M here, they'LL go.  \n\tTabs\r\nand  multiple   spaces "),
            (V{"I", "'M", " here", ",", " they", "'LL", " go", ".", "  \n", "\tTabs", "\r\n", "and", " ", " multiple",
               "  ", " spaces", " "}));
  EXPECT_EQ(pretokenize_llama3("h\xc3\xa9llo w\xc3\xb6rld \xe4\xb8\x96\xe7\x95\x8c \xc2\xbd 3.14159 \xe2\x80\x94 "
                               "\xe2\x80\x9cquoted\xe2\x80\x9d (x) \xf0\x9f\x99\x82\xf0\x9f\x99\x82 end\n"),
            (V{"h\xc3\xa9llo",
               " w\xc3\xb6rld",
               " \xe4\xb8\x96\xe7\x95\x8c",
               " ",
               "\xc2\xbd",
               " ",
               "3",
               ".",
               "141",
               "59",
               " \xe2\x80\x94",
               " \xe2\x80\x9c",
               "quoted",
               "\xe2\x80\x9d",
               " (",
               "x",
               ")",
               " \xf0\x9f\x99\x82\xf0\x9f\x99\x82",
               " end",
               "\n"}));
  EXPECT_EQ(pretokenize_llama3("a\n\n\nb  \n  c"), (V{"a", "\n\n\n", "b", "  \n", " ", " c"}));
  EXPECT_EQ(pretokenize_llama3(" leading"), (V{" leading"}));
  EXPECT_EQ(pretokenize_llama3("'re'x'"), (V{"'re", "'x", "'"}));
  EXPECT_EQ(pretokenize_llama3("x  "), (V{"x", "  "}));
  EXPECT_EQ(pretokenize_llama3("$100,000 #tag @user"), (V{"$", "100", ",", "000", " #", "tag", " @", "user"}));
  EXPECT_EQ(pretokenize_llama3("don't\r\n"), (V{"don", "'t", "\r\n"}));
  EXPECT_TRUE(pretokenize_llama3("").empty());
}

TEST(TokenizerBpe, EncodeDecodeHandBuiltVocab) {
  const Tokenizer tok = Tokenizer::from_gguf(tiny_bpe_file());
  EXPECT_EQ(tok.kind(), TokenizerKind::kGpt2Bpe);
  EXPECT_EQ(tok.bos_id(), 262);
  EXPECT_TRUE(tok.add_bos());
  // "the": t h e -> t he ("t he" is no merge); " cat": Ġ c a t -> Ġ c at -> Ġc at -> Ġcat; " the" -> Ġthe.
  EXPECT_EQ(tok.encode("the cat the"), (std::vector<int32_t>{262, 't', 257, 261, 258}));
  EXPECT_EQ(tok.encode("the", false), (std::vector<int32_t>{'t', 257}));
  EXPECT_EQ(tok.decode(tok.encode("the cat the")), "the cat the");
  EXPECT_EQ(tok.piece(261), " cat");
  EXPECT_EQ(tok.piece(262), "");
  EXPECT_EQ(tok.piece(10), "\n");
  const std::string mixed = "H\xc3\xa9llo,\n\n  w\xc3\xb6rld 123 \xf0\x9f\x99\x82\x01\xff";
  const std::vector<int32_t> ids = tok.encode(mixed, false);
  EXPECT_EQ(tok.decode(ids), mixed);
  EXPECT_EQ(ids[1], 0xC3);  // "é" as its two byte stand-ins
  EXPECT_EQ(ids[2], 0xA9);
  EXPECT_EQ(tok.decode(tok.encode(" the  cat\n")), " the  cat\n");  // no space prefix to strip in byte-level BPE
}

TEST(TokenizerBpe, Llama3IgnoreMergesTakesWholeWords) {
  // With ignore_merges (tokenizer.ggml.pre = llama-bpe) a word that is itself a token is taken whole, even when
  // the merges cannot reach it: " th" -> "Ġth" (264) instead of "Ġt" + "h".
  const Tokenizer llama3 = Tokenizer::from_gguf(tiny_bpe_file(true));
  EXPECT_EQ(llama3.encode(" th cat", false), (std::vector<int32_t>{264, 261}));
  const Tokenizer gpt2 = Tokenizer::from_gguf(tiny_bpe_file(false));
  EXPECT_EQ(gpt2.encode(" th cat", false), (std::vector<int32_t>{256, 'h', 261}));
}

TEST(Tokenizer, MetadataErrors) {
  const auto expect_fail = [](GgufWriter& w, const std::string& part) {
    try {
      Tokenizer::from_gguf(GgufFile::from_bytes(w.to_bytes()));
      ADD_FAILURE() << "expected " << part;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kFormat);
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  GgufWriter w;
  expect_fail(w, "missing metadata key 'tokenizer.ggml.model'");
  w.set_string("tokenizer.ggml.model", "bert");
  expect_fail(w, "unsupported tokenizer.ggml.model 'bert'");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0});
  expect_fail(w, "tokenizer.ggml.scores has 3 entries for 4 tokens");
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, 0});
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 9});
  expect_fail(w, "token_type[3] = 9");
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1});
  w.set_u32("tokenizer.ggml.bos_token_id", 4);
  expect_fail(w, "'tokenizer.ggml.bos_token_id' = 4");
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::from_bytes(w.to_bytes()));
  EXPECT_EQ(tok.encode("a"), (std::vector<int32_t>{1, 0, 3}));  // no "▁" piece, no byte tokens: <unk> for ' '
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string_array("tokenizer.ggml.merges", {"ab"});
  expect_fail(w, "tokenizer.ggml.merges[0] = 'ab'");
}

}  // namespace
}  // namespace quill
