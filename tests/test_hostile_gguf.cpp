// Hostile model files (tests/hostile_gguf.hpp): every broken file, truncation, bad path and special file must be
// refused cleanly — a quill::Error of the right kind naming the problem from the C++ loader, a status and message
// from quill_model_load, and from `quill run -m FILE` a non-zero exit with one line on stderr and no signal —
// each within seconds.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/llama_loader.hpp"
#include "engine/model.hpp"
#include "engine/session.hpp"
#include "engine/tokenizer.hpp"
#include "quill.h"
#include "tests/device_util.hpp"
#include "tests/hostile_gguf.hpp"

namespace quill {
namespace {

namespace fs = std::filesystem;
using test::hostile::HostileCase;
using test::hostile::hostile_cases;
using test::hostile::tiny_llama;
using Clock = std::chrono::steady_clock;

constexpr double kSecondsPerFile = 5.0;

// A private scratch folder, removed at the end of the test.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("quill_hostile_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    const fs::path p = path / name;
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return p;
  }
};

std::string file_name(const std::string& case_name) {
  std::string s;
  for (char c : case_name) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s + ".gguf";
}

quill_status status_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kFile:
      return QUILL_ERR_FILE;
    case ErrorKind::kFormat:
      return QUILL_ERR_FORMAT;
    case ErrorKind::kOutOfMemory:
      return QUILL_ERR_OUT_OF_MEMORY;
    default:
      return QUILL_ERR_INTERNAL;
  }
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

ModelOptions cpu_options() {
  ModelOptions o;
  o.device = quill::test::device_spec();
  return o;
}

// quill_model_load(path) must fail with `status`, leave *out NULL and say something containing `expect`.
void expect_c_api_refusal(const fs::path& path, quill_status status, const std::string& expect,
                          const std::string& what) {
  quill_model_params p = quill_model_default_params();
  p.device = quill::test::device_spec();
  quill_model* model = reinterpret_cast<quill_model*>(0x1);
  const auto start = Clock::now();
  const quill_status got = quill_model_load(path.c_str(), &p, &model);
  EXPECT_LT(seconds_since(start), kSecondsPerFile) << what;
  EXPECT_EQ(got, status) << what << ": " << quill_last_error();
  EXPECT_EQ(model, nullptr) << what;
  if (got == QUILL_OK) quill_model_free(model);
  const std::string message = quill_last_error();
  EXPECT_FALSE(message.empty()) << what;
  EXPECT_NE(message.find(expect), std::string::npos) << what << ": " << message;
}

TEST(HostileGguf, TheGeneratedModelIsValidAndRuns) {
  TempDir dir;
  const fs::path path = dir.write("valid.gguf", tiny_llama());
  auto model = Model::load_gguf(path.string(), cpu_options());
  EXPECT_EQ(model->config().vocab_size, 16);
  Session session(model);
  const std::vector<int32_t> prompt = model->tokenizer().encode("ab cd");
  ASSERT_FALSE(prompt.empty());
  session.eval(prompt);
  ASSERT_EQ(session.logits().size(), 16u);
  for (float x : session.logits()) EXPECT_TRUE(std::isfinite(x));
}

TEST(HostileGguf, EveryCaseIsRefusedByTheParserAndTheLoader) {
  TempDir dir;
  const auto cases = hostile_cases();
  ASSERT_GT(cases.size(), 50u);
  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.name);
    // In memory: the parser and the Llama/tokenizer readers either refuse with quill::Error or accept.
    const auto start = Clock::now();
    try {
      const GgufFile f = GgufFile::from_bytes(c.bytes, c.name);
      find_llama_tensors(f);
      Tokenizer::from_gguf(f);
    } catch (const Error&) {
    }
    // From disk through Model::load_gguf: refused with the expected kind and message.
    const fs::path path = dir.write(file_name(c.name), c.bytes);
    try {
      Model::load_gguf(path.string(), cpu_options());
      ADD_FAILURE() << "loaded; expected a refusal mentioning '" << c.expect << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), c.kind) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
    EXPECT_LT(seconds_since(start), kSecondsPerFile);
  }
}

TEST(HostileGguf, EveryCaseIsAStatusFromTheCApi) {
  TempDir dir;
  for (const HostileCase& c : hostile_cases()) {
    const fs::path path = dir.write(file_name(c.name), c.bytes);
    expect_c_api_refusal(path, status_of(c.kind), c.expect, c.name);
  }
}

TEST(HostileGguf, TruncatedAtEveryOffsetIsRefused) {
  TempDir dir;
  const std::vector<uint8_t> full = tiny_llama();
  const fs::path path = dir.path / "truncated.gguf";
  // Every prefix through the parser; through quill_model_load (a file each), every prefix of the header,
  // metadata and tensor infos and every 61st of the data section.
  const uint64_t data_offset = GgufFile::from_bytes(full).data_offset();
  const auto start = Clock::now();
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
    EXPECT_THROW(GgufFile::from_bytes(cut), Error) << n;
    if (n > data_offset && n % 61 != 0 && n + 1 != full.size()) continue;
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(cut.data()), std::streamsize(n));
    }
    quill_model* model = nullptr;
    quill_model_params p = quill_model_default_params();
    p.device = quill::test::device_spec();
    const quill_status s = quill_model_load(path.c_str(), &p, &model);
    ASSERT_EQ(s, QUILL_ERR_FORMAT) << "prefix of " << n << " of " << full.size() << " bytes: " << quill_last_error();
    ASSERT_EQ(model, nullptr);
  }
  const double seconds = seconds_since(start);
  EXPECT_LT(seconds, 120.0) << full.size() << " prefixes in " << seconds << " s";
}

TEST(HostileGguf, BadPathsAreFileErrors) {
  TempDir dir;
  expect_c_api_refusal(dir.path / "missing.gguf", QUILL_ERR_FILE, "missing.gguf", "missing path");
  expect_c_api_refusal(dir.path, QUILL_ERR_FILE, "directory", "directory");
  expect_c_api_refusal("", QUILL_ERR_FILE, "empty", "empty path");
  expect_c_api_refusal("/dev/null", QUILL_ERR_FILE, "not a regular file", "character device");
  fs::create_symlink(dir.path / "nowhere.gguf", dir.path / "dangling.gguf");
  expect_c_api_refusal(dir.path / "dangling.gguf", QUILL_ERR_FILE, "dangling.gguf", "dangling symlink");
  try {
    Model::load_gguf((dir.path / "missing.gguf").string(), cpu_options());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFile);
  }
}

// A FIFO with no writer: open(O_RDONLY) would block forever. The loader must refuse it at once; a helper thread
// opens the write end after a few seconds so that a regression fails this test instead of hanging it.
TEST(HostileGguf, FifoIsRefusedWithoutBlocking) {
  TempDir dir;
  const fs::path fifo = dir.path / "model.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::atomic<bool> done{false};
  std::thread unblock([&] {
    for (int i = 0; i < 160 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!done) {
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
    }
  });
  expect_c_api_refusal(fifo, QUILL_ERR_FILE, "not a regular file", "fifo");
  done = true;
  unblock.join();
}

// Non-UTF-8 bytes in a vocabulary entry are data, not a crash: the model loads (or is refused with a message)
// and tokenizing and decoding arbitrary bytes stays within the vocabulary.
TEST(HostileGguf, NonUtf8TokenTextNeverCrashesTheTokenizer) {
  std::vector<uint8_t> bytes = tiny_llama();
  const test::hostile::detail::Layout layout(bytes);
  const uint64_t first_token = layout.value_at("tokenizer.ggml.tokens") + 12;  // "<unk>"'s length
  // Token 11 is "ab": overwrite it with two invalid UTF-8 bytes.
  uint64_t at = first_token;
  for (int i = 0; i < 11; ++i) {
    uint64_t n;
    std::memcpy(&n, bytes.data() + at, 8);
    at += 8 + n;
  }
  bytes[at + 8] = 0xff;
  bytes[at + 9] = 0xfe;
  const GgufFile f = GgufFile::from_bytes(bytes, "non-utf8.gguf");
  const Tokenizer t = Tokenizer::from_gguf(f);
  EXPECT_EQ(t.token_text(11), "\xff\xfe");
  for (const std::string& text : std::vector<std::string>{"ab", "\xff\xfe", "a\xff\xfe b", "\xe2\x96", "\xc3(", std::string("a\0b", 3)}) {
    const std::vector<int32_t> ids = t.encode(text);
    for (int32_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, t.vocab_size());
    }
    t.decode(ids);
  }
}

// ---- the CLI ----

#ifdef QUILL_CLI_PATH
struct CliResult {
  bool exited = false;
  int code = -1;
  int signal = 0;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

CliResult run_cli(const fs::path& dir, const fs::path& model) {
  const fs::path out = dir / "cli.out", err = dir / "cli.err";
  const std::string command = "QUILL_DEVICE=" + std::string(quill::test::device_spec()) + " '" QUILL_CLI_PATH "' run -m '" +
                              model.string() + "' -n 1 > '" + out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(command.c_str());
  CliResult r;
  r.exited = status != -1 && WIFEXITED(status);
  r.code = r.exited ? WEXITSTATUS(status) : -1;
  r.signal = status != -1 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

void expect_cli_refusal(const fs::path& dir, const fs::path& model, const std::string& what) {
  const auto start = Clock::now();
  const CliResult r = run_cli(dir, model);
  EXPECT_LT(seconds_since(start), kSecondsPerFile) << what;
  // The shell reports a signal-killed child as 128 + signal.
  ASSERT_TRUE(r.exited) << what << ": killed by signal " << r.signal;
  EXPECT_EQ(r.code, 1) << what << "; stderr: " << r.err;
  EXPECT_EQ(r.out, "") << what;
  ASSERT_FALSE(r.err.empty()) << what;
  EXPECT_EQ(r.err.rfind("quill: error: ", 0), 0u) << what << "; stderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << "; stderr: " << r.err;
}

TEST(HostileGguf, CliExitsWithOneLineForEveryCase) {
  ASSERT_TRUE(fs::exists(QUILL_CLI_PATH)) << QUILL_CLI_PATH;
  TempDir dir;
  for (const HostileCase& c : hostile_cases()) expect_cli_refusal(dir.path, dir.write(file_name(c.name), c.bytes), c.name);
  const std::vector<uint8_t> full = tiny_llama();
  for (size_t n : {size_t(0), size_t(5), size_t(24), full.size() / 3, full.size() - 1}) {
    expect_cli_refusal(dir.path, dir.write("cut.gguf", {full.begin(), full.begin() + std::ptrdiff_t(n)}),
                       "truncated to " + std::to_string(n));
  }
  expect_cli_refusal(dir.path, dir.path / "missing.gguf", "missing path");
  expect_cli_refusal(dir.path, dir.path, "directory");
  expect_cli_refusal(dir.path, "/dev/null", "character device");
}
#endif

}  // namespace
}  // namespace quill
