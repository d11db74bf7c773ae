// Resource limits: a model larger than the device's maximum allocation or global memory is refused before
// anything is quantized or allocated, with the sizes in the message (sparse GGUF files claim the size, see
// tests/hostile_gguf.hpp); a prompt longer than the context is "context full"; token ids outside the
// vocabulary are rejected with nothing evaluated; a KV cache too large for the device is refused and the model
// stays usable. A kernel build failure carrying its build log: tests/test_program_cache.cpp (ProgramBuild.*).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/model.hpp"
#include "engine/session.hpp"
#include "quill.h"
#include "tests/device_util.hpp"
#include "tests/hostile_gguf.hpp"

namespace quill {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

ModelOptions options(std::optional<QuantScheme> scheme = std::nullopt) {
  ModelOptions o;
  o.device = quill::test::device_spec();
  o.scheme = scheme;
  return o;
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("quill_limits_" + std::to_string(::getpid()) + "_" + name);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Model::load_gguf(path) must throw kOutOfMemory quickly (nothing quantized: the data is a hole) mentioning
// every string of `parts`; the C API must answer QUILL_ERR_OUT_OF_MEMORY with the same message.
void expect_refused_before_allocating(const fs::path& path, const std::vector<std::string>& parts) {
  const auto start = Clock::now();
  try {
    Model::load_gguf(path.string(), options());
    ADD_FAILURE() << "loaded a model larger than the device";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory) << e.what();
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
  EXPECT_LT(seconds_since(start), 10.0) << "the refusal must come before quantizing or uploading";
  quill_model_params p = quill_model_default_params();
  p.device = quill::test::device_spec();
  quill_model* model = nullptr;
  EXPECT_EQ(quill_model_load(path.c_str(), &p, &model), QUILL_ERR_OUT_OF_MEMORY) << quill_last_error();
  EXPECT_EQ(model, nullptr);
  for (const std::string& part : parts)
    EXPECT_NE(std::string(quill_last_error()).find(part), std::string::npos) << quill_last_error();
}

TEST(Limits, MatrixLargerThanMaxAllocationIsRefusedBeforeAllocating) {
  const host::DeviceInfo& info = test::test_device().info();
  const int dim = 4096;
  // ffn_gate+up as one f32 matrix [2 ffn, dim] just over the maximum allocation.
  const int64_t ffn = int64_t(info.max_alloc_bytes / (2 * 4 * uint64_t(dim))) + 64;
  if (ffn > std::numeric_limits<int32_t>::max()) GTEST_SKIP() << "max allocation too large for an int32 ffn";
  const fs::path path = temp_file("max_alloc.gguf");
  const uint64_t size = test::hostile::write_sparse_llama(path, dim, 32, int(ffn), 1);
  std::cout << "sparse model of " << size << " bytes; " << info.name << ": max allocation " << info.max_alloc_bytes
            << ", global memory " << info.global_mem_bytes << "\n";
  expect_refused_before_allocating(path, {"ffn_gate+up", "maximum allocation", std::to_string(info.max_alloc_bytes)});
  fs::remove(path);
}

TEST(Limits, ModelLargerThanGlobalMemoryIsRefusedBeforeAllocating) {
  const host::DeviceInfo& info = test::test_device().info();
  const int dim = 4096, ffn = 11008;
  const uint64_t layer_bytes = (4ull * dim * dim + 3ull * dim * ffn) * 4;  // f32
  if (info.max_alloc_bytes < 2ull * ffn * dim * 4) GTEST_SKIP() << "max allocation below one layer's matrix";
  const int n_layers = int(info.global_mem_bytes / layer_bytes) + 2;
  const fs::path path = temp_file("global_mem.gguf");
  test::hostile::write_sparse_llama(path, dim, 32, ffn, n_layers);
  expect_refused_before_allocating(path, {"device memory", std::to_string(info.global_mem_bytes)});
  fs::remove(path);
}

class LimitsOnTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::synthetic("tiny", options(QuantScheme::F16)); }
  static void TearDownTestSuite() { model_.reset(); }
  static std::shared_ptr<Model> model_;
};
std::shared_ptr<Model> LimitsOnTiny::model_;

TEST_F(LimitsOnTiny, PromptLongerThanTheContextIsContextFull) {
  Session session(model_, {.n_ctx = 8});
  const std::vector<int32_t> prompt(9, 5);
  try {
    session.eval(prompt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kContextFull);
    EXPECT_NE(std::string(e.what()).find("context full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(session.position(), 0);
  session.eval(std::span(prompt).first(8));  // what fits still runs
  EXPECT_EQ(session.position(), 8);
  EXPECT_THROW(session.eval(std::span(prompt).first(1)), Error);
}

TEST_F(LimitsOnTiny, KvCacheLargerThanTheDeviceIsRefusedBeforeAllocating) {
  const host::DeviceInfo& info = model_->device().info();
  const LlamaConfig& c = model_->config();
  const uint64_t per_token = 2ull * c.n_layers * uint64_t(c.kv_dim()) * 2;  // K and V, fp16, every layer
  const uint64_t n_ctx = info.global_mem_bytes / per_token + 1;
  if (n_ctx > uint64_t(std::numeric_limits<int32_t>::max())) GTEST_SKIP() << "device memory too large for int n_ctx";
  const uint64_t before = model_->device().allocated_bytes();
  try {
    Session session(model_, {.n_ctx = int(n_ctx)});
    FAIL() << "a " << n_ctx << "-token cache was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("KV cache of " + std::to_string(n_ctx) + " tokens"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(model_->device().allocated_bytes(), before);
}

// Out of device memory in the middle of an eval (here: while the session grows its scratch buffers
// for a longer prompt, injected) reports kOutOfMemory, evaluates nothing, and leaves the session usable:
// the same prompt afterwards gives the logits of a session that never failed.
TEST_F(LimitsOnTiny, OutOfMemoryMidRunLeavesTheSessionUsable) {
  host::Device& device = model_->device();
  struct Reset {
    host::Device& d;
    ~Reset() { d.inject_allocation_failure(-1); }
  } reset{device};
  const std::vector<int32_t> first{1}, prompt{5, 9, 2, 7, 3, 11, 4, 8, 6, 10, 12, 13};
  Session failing(model_);
  failing.eval(first);
  device.inject_allocation_failure(2);  // the third buffer of the scratch growth fails
  try {
    failing.eval(prompt);
    FAIL() << "the injected allocation failure did not surface";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory) << e.what();
    EXPECT_NE(std::string(e.what()).find("out of device memory"), std::string::npos) << e.what();
  }
  EXPECT_EQ(failing.position(), 1);
  device.inject_allocation_failure(-1);
  failing.eval(prompt);
  Session clean(model_);
  clean.eval(first);
  clean.eval(prompt);
  EXPECT_EQ(failing.position(), clean.position());
  EXPECT_EQ(failing.logits(), clean.logits());
}

TEST_F(LimitsOnTiny, TokenIdsOutsideTheVocabularyAreRejected) {
  Session session(model_, {.n_ctx = 16});
  const int32_t vocab = model_->config().vocab_size;
  for (const int32_t bad : {-1, vocab, vocab + 1, std::numeric_limits<int32_t>::max(),
                            std::numeric_limits<int32_t>::min()}) {
    const std::vector<int32_t> tokens = {1, 5, bad};
    try {
      session.eval(tokens);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    }
    EXPECT_EQ(session.position(), 0) << "nothing is evaluated";
    EXPECT_THROW(model_->tokenizer().piece(bad), Error);
    EXPECT_THROW(model_->tokenizer().decode(tokens), Error);
  }
}

TEST(LimitsCApi, ContextFullAndBadTokensThroughTheCApi) {
  quill_model_params p = quill_model_default_params();
  p.device = quill::test::device_spec();
  quill_model* model = nullptr;
  ASSERT_EQ(quill_model_load(nullptr, &p, &model), QUILL_OK) << quill_last_error();
  quill_session_params sp = quill_session_default_params();
  sp.n_ctx = 4;
  quill_session* session = nullptr;
  ASSERT_EQ(quill_session_create(model, &sp, &session), QUILL_OK) << quill_last_error();
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_EQ(quill_session_eval(session, five.data(), 5), QUILL_ERR_CONTEXT_FULL);
  EXPECT_NE(std::string(quill_last_error()).find("context full"), std::string::npos) << quill_last_error();
  const int32_t bad[] = {1, quill_model_n_vocab(model)};
  EXPECT_EQ(quill_session_eval(session, bad, 2), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(quill_session_position(session), 0);
  char piece[16];
  EXPECT_EQ(quill_token_to_piece(model, -5, piece, 16), QUILL_INVALID);
  EXPECT_EQ(quill_session_eval(session, five.data(), 4), QUILL_OK) << quill_last_error();
  quill_session_free(session);

  // A KV cache larger than the device: refused with sizes, and the model stays usable.
  sp.n_ctx = std::numeric_limits<int32_t>::max();
  session = reinterpret_cast<quill_session*>(0x1);
  EXPECT_EQ(quill_session_create(model, &sp, &session), QUILL_ERR_OUT_OF_MEMORY) << quill_last_error();
  EXPECT_EQ(session, nullptr);
  EXPECT_NE(std::string(quill_last_error()).find("bytes"), std::string::npos) << quill_last_error();
  sp.n_ctx = 8;
  ASSERT_EQ(quill_session_create(model, &sp, &session), QUILL_OK) << quill_last_error();
  EXPECT_EQ(quill_session_eval(session, five.data(), 5), QUILL_OK) << quill_last_error();
  quill_session_free(session);
  quill_model_free(model);
}

#ifdef QUILL_CLI_PATH
TEST(LimitsCli, PromptLongerThanTheContextIsOneClearLine) {
  const fs::path err = temp_file("cli.err");
  const std::string command = "QUILL_DEVICE=" + std::string(quill::test::device_spec()) + " '" QUILL_CLI_PATH
                              "' run -c 4 -n 4 -p 'Once upon a time there was a little girl' > /dev/null 2> '" +
                              err.string() + "'";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream f(err);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("quill: error: context full"), std::string::npos) << text;
  fs::remove(err);
}
#endif

}  // namespace
}  // namespace quill
