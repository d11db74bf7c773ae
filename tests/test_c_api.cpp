// The public C API (include/quill.h), exercised only through that header as a host application would:
// error paths return a status and a message, the tokenizer's size protocol, greedy determinism across
// sessions and threads, streaming stop, all-position logits, and stories260K's golden greedy text.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "quill.h"
#include "tests/device_util.hpp"
#include "tests/progress_recorder.hpp"
#include "tests/util.hpp"

namespace {

quill_model_params cpu_params() {
  quill_model_params p = quill_model_default_params();
  p.device = quill::test::device_spec();
  return p;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("quill_c_api_" + std::to_string(::getpid()) + "_" + std::to_string(quill::test::test_seed()) + "_" + name);
}

std::vector<int32_t> tokenize(const quill_model* model, const std::string& text, bool add_bos) {
  const int32_t needed = quill_tokenize(model, text.data(), int32_t(text.size()), nullptr, 0, add_bos);
  EXPECT_NE(needed, QUILL_INVALID) << quill_last_error();
  std::vector<int32_t> tokens(needed < 0 && needed != QUILL_INVALID ? size_t(-int64_t(needed)) : 0);
  if (!tokens.empty()) {
    EXPECT_EQ(quill_tokenize(model, text.data(), int32_t(text.size()), tokens.data(), int32_t(tokens.size()), add_bos),
              int32_t(tokens.size()));
  }
  return tokens;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::string text;
  int stop_after = -1;  // return false once this many tokens arrived (-1: never)
};

bool collect(int32_t token, const char* piece, int32_t piece_len, void* user_data) {
  auto* c = static_cast<Collected*>(user_data);
  EXPECT_EQ(std::strlen(piece), size_t(piece_len));  // NUL-terminated (the test vocabularies have no NUL byte)
  c->tokens.push_back(token);
  c->text.append(piece, size_t(piece_len));
  return c->stop_after < 0 || int(c->tokens.size()) < c->stop_after;
}

// Greedy continuation of prompt in a fresh session of the model.
Collected greedy(quill_model* model, const std::string& prompt, int n_tokens, quill_status* status_out = nullptr) {
  Collected out;
  quill_session* session = nullptr;
  EXPECT_EQ(quill_session_create(model, nullptr, &session), QUILL_OK) << quill_last_error();
  quill_sampler_params sp = quill_sampler_default_params();
  sp.temp = 0.0f;
  quill_sampler* sampler = nullptr;
  EXPECT_EQ(quill_sampler_create(&sp, &sampler), QUILL_OK) << quill_last_error();
  const std::vector<int32_t> tokens = tokenize(model, prompt, true);
  int32_t n_generated = -1;
  const quill_status status =
      quill_generate(session, sampler, tokens.data(), int32_t(tokens.size()), n_tokens, collect, &out, &n_generated);
  if (status_out)
    *status_out = status;
  else
    EXPECT_EQ(status, QUILL_OK) << quill_last_error();
  EXPECT_EQ(size_t(n_generated), out.tokens.size());
  quill_sampler_free(sampler);
  quill_session_free(session);
  return out;
}

// One synthetic model shared by the tests of this suite (loading is the slow part).
class CApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    quill_model_params p = cpu_params();
    ASSERT_EQ(quill_model_load(nullptr, &p, &model_), QUILL_OK) << quill_last_error();
  }
  static void TearDownTestSuite() {
    quill_model_free(model_);
    model_ = nullptr;
  }
  static quill_model* model_;
};
quill_model* CApi::model_ = nullptr;

TEST(CApiBasics, VersionAndStatusStrings) {
  EXPECT_STRNE(quill_version(), "");
  std::vector<std::string> names;
  for (int s = QUILL_OK; s <= QUILL_ERR_CANCELLED; ++s) {
    names.push_back(quill_status_string(quill_status(s)));
    for (size_t i = 0; i + 1 < names.size(); ++i) EXPECT_NE(names[i], names.back());
  }
  EXPECT_STREQ(quill_status_string(QUILL_OK), "ok");
  EXPECT_NE(quill_status_string(quill_status(99)), nullptr);
  EXPECT_NE(std::string(quill_quant_names()).find("nf4"), std::string::npos);
  EXPECT_NE(std::string(quill_synthetic_names()).find("tiny"), std::string::npos);
}

TEST(CApiBasics, MissingFileIsAFileErrorWithAMessage) {
  quill_model_params p = cpu_params();
  quill_model* model = reinterpret_cast<quill_model*>(0x1);  // must be reset to NULL
  EXPECT_EQ(quill_model_load("/nonexistent/quill/model.gguf", &p, &model), QUILL_ERR_FILE);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(quill_last_error()).find("/nonexistent/quill/model.gguf"), std::string::npos)
      << quill_last_error();
}

TEST(CApiBasics, DirectoryIsAFileError) {
  const auto dir = temp_path("dir");
  std::filesystem::create_directories(dir);
  quill_model_params p = cpu_params();
  quill_model* model = nullptr;
  EXPECT_EQ(quill_model_load(dir.c_str(), &p, &model), QUILL_ERR_FILE);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(quill_last_error()).find("directory"), std::string::npos) << quill_last_error();
  std::filesystem::remove_all(dir);
}

TEST(CApiBasics, BrokenFilesAreFormatErrors) {
  const std::vector<std::string> contents = {std::string("GGUF\x03\x00\x00\x00\x01", 9), "hello, not a model",
                                             std::string(64, '\0')};
  for (size_t i = 0; i < contents.size(); ++i) {
    const auto path = temp_path("broken" + std::to_string(i) + ".gguf");
    std::ofstream(path, std::ios::binary) << contents[i];
    quill_model_params p = cpu_params();
    quill_model* model = nullptr;
    EXPECT_EQ(quill_model_load(path.c_str(), &p, &model), QUILL_ERR_FORMAT) << i << ": " << quill_last_error();
    EXPECT_EQ(model, nullptr);
    EXPECT_STRNE(quill_last_error(), "");
    std::filesystem::remove(path);
  }
}

TEST(CApiBasics, BadParametersAreInvalidArguments) {
  quill_model* model = nullptr;
  quill_model_params p = cpu_params();
  p.quant = "bogus";
  EXPECT_EQ(quill_model_load(nullptr, &p, &model), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(quill_last_error()).find("bogus"), std::string::npos) << quill_last_error();
  p = cpu_params();
  p.synthetic = "no-such-preset";
  EXPECT_EQ(quill_model_load(nullptr, &p, &model), QUILL_ERR_INVALID_ARGUMENT);
  p = cpu_params();
  p.device = "no-such-device-xyz";
  EXPECT_EQ(quill_model_load(nullptr, &p, &model), QUILL_ERR_INVALID_ARGUMENT);
  p = cpu_params();
  p.quant = "nf4";
  p.block = 48;  // not a power of two
  EXPECT_EQ(quill_model_load(nullptr, &p, &model), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(model, nullptr);

  quill_sampler_params sp = quill_sampler_default_params();
  sp.temp = -1.0f;
  quill_sampler* sampler = nullptr;
  EXPECT_EQ(quill_sampler_create(&sp, &sampler), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(sampler, nullptr);
}

// Model loading reports layers done of n_layers + 1 through the params' callback (from loader threads, one call
// at a time: the recorder takes no lock of its own), and a false return cancels the load with nothing loaded.
TEST(CApiBasics, LoadReportsProgressAndCanBeCancelled) {
  quill::test::ProgressRecorder all;
  quill_model_params p = cpu_params();
  p.quant = "nf4";
  p.progress_callback = quill::test::ProgressRecorder::callback;
  p.progress_callback_user_data = &all;
  quill_model* model = nullptr;
  ASSERT_EQ(quill_model_load(nullptr, &p, &model), QUILL_OK) << quill_last_error();
  quill_model_info info{};
  ASSERT_EQ(quill_model_get_info(model, &info), QUILL_OK);
  quill_model_free(model);
  ASSERT_EQ(all.calls.size(), size_t(info.n_layers) + 1);
  for (size_t i = 0; i < all.calls.size(); ++i) {
    EXPECT_EQ(all.calls[i].first, int64_t(i) + 1);  // in order, each unit once
    EXPECT_EQ(all.calls[i].second, int64_t(info.n_layers) + 1);
  }

  quill::test::ProgressRecorder cancel;
  cancel.stop_after = 1;
  p.progress_callback_user_data = &cancel;
  model = reinterpret_cast<quill_model*>(&cancel);  // must be reset to NULL
  EXPECT_EQ(quill_model_load(nullptr, &p, &model), QUILL_ERR_CANCELLED);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(quill_last_error()).find("cancelled"), std::string::npos) << quill_last_error();
  EXPECT_EQ(cancel.calls.size(), 1u);  // no call after the one that returned false
}

TEST(CApiBasics, NullArgumentsAreRejectedNotCrashes) {
  EXPECT_EQ(quill_model_load(nullptr, nullptr, nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_STRNE(quill_last_error(), "");
  quill_session* session = nullptr;
  EXPECT_EQ(quill_session_create(nullptr, nullptr, &session), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(session, nullptr);
  const int32_t token = 1;
  EXPECT_EQ(quill_session_eval(nullptr, &token, 1), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(quill_session_eval_all(nullptr, &token, 1), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(quill_session_reset(nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(quill_session_logits(nullptr), nullptr);
  EXPECT_EQ(quill_session_logits_ith(nullptr, 0), nullptr);
  EXPECT_EQ(quill_session_position(nullptr), 0);
  EXPECT_EQ(quill_model_n_vocab(nullptr), 0);
  EXPECT_EQ(quill_model_n_ctx(nullptr), 0);
  EXPECT_EQ(quill_token_bos(nullptr), -1);
  quill_model_info info;
  EXPECT_EQ(quill_model_get_info(nullptr, &info), QUILL_ERR_INVALID_ARGUMENT);
  int32_t tokens[4];
  EXPECT_EQ(quill_tokenize(nullptr, "hi", -1, tokens, 4, true), QUILL_INVALID);
  char buf[8];
  EXPECT_EQ(quill_token_to_piece(nullptr, 1, buf, 8), QUILL_INVALID);
  const float logits[2] = {0, 1};
  int32_t out = -1;
  EXPECT_EQ(quill_sampler_sample(nullptr, logits, 2, nullptr, 0, &out), QUILL_ERR_INVALID_ARGUMENT);
  int32_t n_generated = 7;
  EXPECT_EQ(quill_generate(nullptr, nullptr, &token, 1, 4, nullptr, nullptr, &n_generated), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(n_generated, 0);
  quill_model_free(nullptr);
  quill_session_free(nullptr);
  quill_sampler_free(nullptr);
}

TEST(CApiBasics, LastErrorIsPerThread) {
  quill_model* model = nullptr;
  EXPECT_EQ(quill_model_load("/nonexistent/a.gguf", nullptr, &model), QUILL_ERR_FILE);
  std::string other;
  std::thread t([&] {
    EXPECT_STREQ(quill_last_error(), "");  // nothing failed in this thread yet
    EXPECT_EQ(quill_model_load("/nonexistent/b.gguf", nullptr, &model), QUILL_ERR_FILE);
    other = quill_last_error();
  });
  t.join();
  EXPECT_NE(other.find("b.gguf"), std::string::npos) << other;
  EXPECT_NE(std::string(quill_last_error()).find("a.gguf"), std::string::npos) << quill_last_error();
}

TEST(CApiBasics, DeviceListing) {
  EXPECT_GE(quill_device_count(), 1) << quill_last_error();
  const char* json = quill_devices_json(quill::test::device_spec());
  ASSERT_NE(json, nullptr) << quill_last_error();
  EXPECT_NE(std::string(json).find("\"devices\""), std::string::npos);
  EXPECT_NE(std::string(json).find("\"selected\""), std::string::npos);
  EXPECT_EQ(quill_devices_json("no-such-device-xyz"), nullptr);
  EXPECT_NE(std::string(quill_last_error()).find("no-such-device-xyz"), std::string::npos) << quill_last_error();
}

TEST_F(CApi, ModelFacts) {
  EXPECT_GT(quill_model_n_vocab(model_), 0);
  EXPECT_GT(quill_model_n_ctx(model_), 0);
  quill_model_info info{};
  ASSERT_EQ(quill_model_get_info(model_, &info), QUILL_OK);
  EXPECT_EQ(info.n_vocab, quill_model_n_vocab(model_));
  EXPECT_GT(info.n_layers, 0);
  EXPECT_GT(info.weight_bytes, 0u);
  EXPECT_STRNE(info.device_name, "");
  EXPECT_STRNE(info.description, "");
}

TEST_F(CApi, TokenizeAndPieceRoundTripWithSizeProtocol) {
  const std::string text = "Once upon a time, a little fox ran home.";
  const int32_t needed = quill_tokenize(model_, text.c_str(), -1, nullptr, 0, true);
  ASSERT_LT(needed, -1);  // BOS + at least one token
  std::vector<int32_t> tokens(size_t(-needed));
  EXPECT_EQ(quill_tokenize(model_, text.c_str(), -1, tokens.data(), -needed - 1, true), needed);  // one short
  EXPECT_EQ(quill_tokenize(model_, text.c_str(), -1, tokens.data(), -needed, true), -needed);
  EXPECT_EQ(tokens[0], quill_token_bos(model_));
  // text_len limits the input: the first 4 bytes ("Once") give fewer tokens than the whole text.
  std::vector<int32_t> prefix(tokens.size());
  const int32_t n_prefix = quill_tokenize(model_, text.c_str(), 4, prefix.data(), int32_t(prefix.size()), false);
  EXPECT_GT(n_prefix, 0);
  EXPECT_LT(n_prefix, -needed - 1);

  std::string decoded;
  for (size_t i = 1; i < tokens.size(); ++i) {
    const int32_t size = -quill_token_to_piece(model_, tokens[i], nullptr, 0);
    ASSERT_GT(size, 0) << "token " << tokens[i];
    std::vector<char> buf(size_t(size) + 1, 'x');
    if (size > 1) {
      EXPECT_EQ(quill_token_to_piece(model_, tokens[i], buf.data(), size - 1), -size);
    }
    EXPECT_EQ(quill_token_to_piece(model_, tokens[i], buf.data(), size), size);  // exact fit: no NUL
    EXPECT_EQ(buf[size_t(size)], 'x');
    EXPECT_EQ(quill_token_to_piece(model_, tokens[i], buf.data(), size + 1), size);
    EXPECT_EQ(buf[size_t(size)], '\0');
    decoded.append(buf.data(), size_t(size));
  }
  EXPECT_TRUE(decoded == text || decoded == " " + text) << "'" << decoded << "'";
  char buf[4];
  EXPECT_EQ(quill_token_to_piece(model_, quill_token_bos(model_), buf, 4), 0);  // control token: no text
}

TEST_F(CApi, BadTokenIdsAreRejectedAndNothingIsEvaluated) {
  quill_session* session = nullptr;
  ASSERT_EQ(quill_session_create(model_, nullptr, &session), QUILL_OK) << quill_last_error();
  const int32_t n_vocab = quill_model_n_vocab(model_);
  const int32_t bad[][2] = {{1, -1}, {1, n_vocab}, {INT32_MIN, 1}};
  for (const auto& tokens : bad) {
    EXPECT_EQ(quill_session_eval(session, tokens, 2), QUILL_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(quill_last_error()).find("vocabulary"), std::string::npos) << quill_last_error();
    EXPECT_EQ(quill_session_position(session), 0);
  }
  EXPECT_EQ(quill_session_eval(session, bad[0], 0), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(quill_session_logits(session), nullptr);  // nothing evaluated yet
  char buf[16];
  EXPECT_EQ(quill_token_to_piece(model_, -1, buf, 16), QUILL_INVALID);
  EXPECT_EQ(quill_token_to_piece(model_, n_vocab, buf, 16), QUILL_INVALID);
  EXPECT_NE(std::string(quill_last_error()).find("vocabulary"), std::string::npos) << quill_last_error();
  quill_sampler_params penalized = quill_sampler_default_params();
  penalized.repeat_penalty = 1.1f;  // the penalty reads the history, so it checks the ids
  quill_sampler* sampler = nullptr;
  ASSERT_EQ(quill_sampler_create(&penalized, &sampler), QUILL_OK);
  const int32_t one = 1;
  EXPECT_EQ(quill_session_eval(session, &one, 1), QUILL_OK);
  const int32_t bad_history[1] = {n_vocab + 5};
  int32_t out = -1;
  EXPECT_EQ(quill_sampler_sample(sampler, quill_session_logits(session), n_vocab, bad_history, 1, &out),
            QUILL_ERR_INVALID_ARGUMENT);
  quill_sampler_free(sampler);
  quill_session_free(session);
}

TEST_F(CApi, ContextOverflowIsReportedAndGenerationStops) {
  quill_session_params sp = quill_session_default_params();
  sp.n_ctx = 8;
  quill_session* session = nullptr;
  ASSERT_EQ(quill_session_create(model_, &sp, &session), QUILL_OK) << quill_last_error();
  EXPECT_EQ(quill_session_n_ctx(session), 8);
  const std::vector<int32_t> six = {1, 10, 20, 30, 40, 50};
  ASSERT_EQ(quill_session_eval(session, six.data(), 6), QUILL_OK) << quill_last_error();
  EXPECT_EQ(quill_session_eval(session, six.data(), 3), QUILL_ERR_CONTEXT_FULL);
  EXPECT_NE(std::string(quill_last_error()).find("context"), std::string::npos) << quill_last_error();
  EXPECT_EQ(quill_session_position(session), 6);
  EXPECT_NE(quill_session_logits(session), nullptr);  // the last good eval's logits are kept

  quill_sampler_params greedy = quill_sampler_default_params();
  greedy.temp = 0;
  quill_sampler* sampler = nullptr;
  ASSERT_EQ(quill_sampler_create(&greedy, &sampler), QUILL_OK);
  Collected c;
  int32_t n = -1;
  const quill_status status = quill_generate(session, sampler, nullptr, 0, 100, collect, &c, &n);
  EXPECT_EQ(size_t(n), c.tokens.size());
  if (status == QUILL_OK) {  // only an end-of-sequence token may stop it before the context fills
    EXPECT_LT(n, 3);
  } else {
    EXPECT_EQ(status, QUILL_ERR_CONTEXT_FULL) << quill_last_error();
    EXPECT_EQ(n, 3);  // positions 6 and 7 evaluated, a third token delivered, then no room
    EXPECT_EQ(quill_session_position(session), 8);
  }
  ASSERT_EQ(quill_session_reset(session), QUILL_OK);
  EXPECT_EQ(quill_session_position(session), 0);
  EXPECT_EQ(quill_session_logits(session), nullptr);
  EXPECT_EQ(quill_session_eval(session, six.data(), 6), QUILL_OK) << quill_last_error();
  quill_sampler_free(sampler);
  quill_session_free(session);
}

TEST_F(CApi, TwoSessionsOnOneModelGiveIdenticalGreedyText) {
  const Collected a = greedy(model_, "Once upon a time", 24);
  const Collected b = greedy(model_, "Once upon a time", 24);
  ASSERT_FALSE(a.tokens.empty());
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.text, b.text);

  // Interleaved: two live sessions advanced alternately see the same logits.
  quill_session *s1 = nullptr, *s2 = nullptr;
  ASSERT_EQ(quill_session_create(model_, nullptr, &s1), QUILL_OK);
  ASSERT_EQ(quill_session_create(model_, nullptr, &s2), QUILL_OK);
  const std::vector<int32_t> prompt = tokenize(model_, "Once upon a time", true);
  ASSERT_EQ(quill_session_eval(s1, prompt.data(), int32_t(prompt.size())), QUILL_OK);
  ASSERT_EQ(quill_session_eval(s2, prompt.data(), int32_t(prompt.size())), QUILL_OK);
  const int32_t n_vocab = quill_model_n_vocab(model_);
  for (size_t i = 0; i < 8 && i < a.tokens.size(); ++i) {
    const float* l1 = quill_session_logits(s1);
    const float* l2 = quill_session_logits(s2);
    ASSERT_TRUE(l1 && l2);
    EXPECT_EQ(std::memcmp(l1, l2, sizeof(float) * size_t(n_vocab)), 0) << "step " << i;
    ASSERT_EQ(quill_session_eval(s1, &a.tokens[i], 1), QUILL_OK);
    ASSERT_EQ(quill_session_eval(s2, &a.tokens[i], 1), QUILL_OK);
  }
  quill_session_free(s1);
  quill_session_free(s2);
}

TEST_F(CApi, SessionsOnTwoThreadsMatchTheSingleThreadedText) {
  const Collected reference = greedy(model_, "Once upon a time", 32);
  ASSERT_FALSE(reference.tokens.empty());
  for (int round = 0; round < 3; ++round) {
    Collected results[2];
    std::thread threads[2];
    for (int t = 0; t < 2; ++t)
      threads[t] = std::thread([&, t] { results[t] = greedy(model_, "Once upon a time", 32); });
    for (auto& t : threads) t.join();
    for (const Collected& r : results) {
      EXPECT_EQ(r.tokens, reference.tokens) << "round " << round;
      EXPECT_EQ(r.text, reference.text);
    }
  }
}

TEST_F(CApi, StreamingCallbackCanStopGeneration) {
  quill_session* session = nullptr;
  ASSERT_EQ(quill_session_create(model_, nullptr, &session), QUILL_OK);
  quill_sampler_params sp = quill_sampler_default_params();
  sp.temp = 0;
  quill_sampler* sampler = nullptr;
  ASSERT_EQ(quill_sampler_create(&sp, &sampler), QUILL_OK);
  const std::vector<int32_t> prompt = tokenize(model_, "Once upon a time", true);
  Collected c;
  c.stop_after = 3;
  int32_t n = -1;
  ASSERT_EQ(quill_generate(session, sampler, prompt.data(), int32_t(prompt.size()), 50, collect, &c, &n), QUILL_OK)
      << quill_last_error();
  const Collected full = greedy(model_, "Once upon a time", 50);
  if (full.tokens.size() >= 3) {
    EXPECT_EQ(n, 3);
    EXPECT_EQ(c.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + 3));
    EXPECT_EQ(quill_session_position(session), int32_t(prompt.size()) + 2);  // the stopping token is not evaluated
  }
  // Continue from where it stopped (n_prompt 0): evaluating the third token by hand first gives the rest.
  if (full.tokens.size() >= 6) {
    ASSERT_EQ(quill_session_eval(session, &c.tokens[2], 1), QUILL_OK);
    Collected rest;
    ASSERT_EQ(quill_generate(session, sampler, nullptr, 0, 3, collect, &rest, &n), QUILL_OK) << quill_last_error();
    EXPECT_EQ(rest.tokens, std::vector<int32_t>(full.tokens.begin() + 3, full.tokens.begin() + 6));
  }
  quill_sampler_free(sampler);
  quill_session_free(session);
}

TEST_F(CApi, EvalAllGivesEveryPositionsLogits) {
  const std::vector<int32_t> prompt = tokenize(model_, "Once upon a time there was", true);
  const int32_t n = int32_t(prompt.size());
  const int32_t n_vocab = quill_model_n_vocab(model_);
  quill_session *all = nullptr, *step = nullptr;
  ASSERT_EQ(quill_session_create(model_, nullptr, &all), QUILL_OK);
  ASSERT_EQ(quill_session_create(model_, nullptr, &step), QUILL_OK);
  ASSERT_EQ(quill_session_eval_all(all, prompt.data(), n), QUILL_OK) << quill_last_error();
  EXPECT_EQ(quill_session_logits_ith(all, -1), quill_session_logits(all));
  EXPECT_EQ(quill_session_logits_ith(all, n - 1), quill_session_logits(all));
  EXPECT_EQ(quill_session_logits_ith(all, n), nullptr);
  EXPECT_EQ(quill_session_logits_ith(all, -n - 1), nullptr);
  for (int32_t i = 0; i < n; ++i) {
    ASSERT_EQ(quill_session_eval(step, &prompt[size_t(i)], 1), QUILL_OK);
    const float* expected = quill_session_logits(step);
    const float* got = quill_session_logits_ith(all, i);
    ASSERT_TRUE(expected && got);
    float max_abs = 0, max_diff = 0;
    for (int32_t v = 0; v < n_vocab; ++v) {
      max_abs = std::max(max_abs, std::fabs(expected[v]));
      max_diff = std::max(max_diff, std::fabs(expected[v] - got[v]));
    }
    EXPECT_LE(max_diff, 1e-3f * std::max(max_abs, 1.0f)) << "position " << i;
  }
  // After a plain eval only the last row exists.
  ASSERT_EQ(quill_session_eval(all, &prompt[1], 1), QUILL_OK);
  EXPECT_NE(quill_session_logits_ith(all, -1), nullptr);
  EXPECT_EQ(quill_session_logits_ith(all, 1), nullptr);
  quill_session_free(all);
  quill_session_free(step);
}

TEST_F(CApi, GreedySamplerIsArgmax) {
  quill_session* session = nullptr;
  ASSERT_EQ(quill_session_create(model_, nullptr, &session), QUILL_OK);
  const std::vector<int32_t> prompt = tokenize(model_, "Once", true);
  ASSERT_EQ(quill_session_eval(session, prompt.data(), int32_t(prompt.size())), QUILL_OK);
  quill_sampler_params sp = quill_sampler_default_params();
  sp.temp = 0;
  quill_sampler* sampler = nullptr;
  ASSERT_EQ(quill_sampler_create(&sp, &sampler), QUILL_OK);
  const float* logits = quill_session_logits(session);
  const int32_t n_vocab = quill_model_n_vocab(model_);
  int32_t token = -1;
  ASSERT_EQ(quill_sampler_sample(sampler, logits, n_vocab, prompt.data(), int32_t(prompt.size()), &token), QUILL_OK);
  EXPECT_EQ(token, int32_t(std::max_element(logits, logits + n_vocab) - logits));
  quill_sampler_free(sampler);
  quill_session_free(session);
}

TEST(CApiStories260K, GreedyTextMatchesQuillRun) {
  QUILL_REQUIRE_SHARED_FILE(gguf, "stories260K/stories260K.gguf");
  quill_model_params p = cpu_params();
  quill_model* model = nullptr;
  ASSERT_EQ(quill_model_load(gguf.c_str(), &p, &model), QUILL_OK) << quill_last_error();
  const std::string reference =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw "
      "a big, red ball.";
  const Collected c = greedy(model, "Once upon a time", 40);
  const std::string text = "Once upon a time" + c.text;
  EXPECT_EQ(text.substr(0, reference.size()), reference);
  quill_model_free(model);
}

}  // namespace
