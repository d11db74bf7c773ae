// The tools of the public C API (include/quill.h), used only through that header: the calibration,
// SmoothQuant and fake-quant model params, quill_model_quantize, quill_calibrate, quill_perplexity (against
// scoring through quill_session_eval_all), the read-bandwidth probe and the kernel profile — each with its
// success path, error statuses with messages, NULL arguments and progress cancellation. Then the `quill`
// CLI built on them: every --help, the --json keys of bench / perplexity / calibrate / quantize, and the
// --act-scale refusal.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "quill.hpp"
#include "tests/device_util.hpp"
#include "tests/progress_recorder.hpp"
#include "tests/util.hpp"

namespace {

namespace fs = std::filesystem;

quill_model_params cpu_params() {
  quill_model_params p = quill_model_default_params();
  p.device = quill::test::device_spec();
  return p;
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("quill_c_api_tools_" + std::to_string(::getpid()) + "_" +
                                      std::to_string(quill::test::test_seed()) + "_" + name);
}

std::string last_error() { return quill_last_error(); }
bool error_has(const std::string& what) { return last_error().find(what) != std::string::npos; }

const std::string kText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She ran to get it and kicked it very high. The ball flew over the trees and the birds sang.";

using Progress = quill::test::ProgressRecorder;

// Calibration stats of the synthetic tiny model (written once), and the model itself loaded with profiling.
class CApiTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    calib_ = new fs::path(temp_path("calib.json"));
    quill_calibrate_params cp = quill_calibrate_default_params();
    cp.ctx = 32;
    cp.max_tokens = 48;
    const char* summary = nullptr;
    ASSERT_EQ(quill_calibrate(nullptr, nullptr, kText.c_str(), -1, &cp, calib_->c_str(), &summary), QUILL_OK)
        << last_error();
    summary_ = new nlohmann::json(nlohmann::json::parse(summary));
    quill_model_params p = cpu_params();
    p.profiling = true;
    ASSERT_EQ(quill_model_load(nullptr, &p, &model_), QUILL_OK) << last_error();
  }
  static void TearDownTestSuite() {
    quill_model_free(model_);
    model_ = nullptr;
    fs::remove(*calib_);
    delete calib_;
    delete summary_;
  }
  static quill_model* model_;
  static fs::path* calib_;
  static nlohmann::json* summary_;
};
quill_model* CApiTools::model_ = nullptr;
fs::path* CApiTools::calib_ = nullptr;
nlohmann::json* CApiTools::summary_ = nullptr;

// ---------------------------------------------------------------- names, defaults, statuses

TEST(CApiToolsBasics, DefaultsOfTheNewParams) {
  const quill_model_params p = quill_model_default_params();
  EXPECT_EQ(p.calib_path, nullptr);
  EXPECT_EQ(p.smooth_alpha, 0.0f);
  EXPECT_EQ(p.act_scale, nullptr);
  EXPECT_FALSE(p.fake_quant);
  EXPECT_FALSE(p.profiling);
  EXPECT_EQ(p.progress_callback, nullptr);
  EXPECT_EQ(p.progress_callback_user_data, nullptr);
  const quill_calibrate_params c = quill_calibrate_default_params();
  EXPECT_EQ(c.ctx, 512);
  EXPECT_EQ(c.max_tokens, 0);
  EXPECT_DOUBLE_EQ(c.percentile, 99.99);
  EXPECT_DOUBLE_EQ(c.outlier_fraction, 0.01);
  EXPECT_EQ(c.progress_callback, nullptr);
  const quill_perplexity_params pp = quill_perplexity_default_params();
  EXPECT_EQ(pp.ctx, 512);
  EXPECT_EQ(pp.max_tokens, 0);
  EXPECT_EQ(pp.max_batch, 256);
  EXPECT_EQ(pp.reference, nullptr);
  EXPECT_EQ(pp.progress_callback, nullptr);
  EXPECT_STREQ(quill_status_string(QUILL_ERR_CANCELLED), "cancelled");
}

TEST(CApiToolsBasics, QuantSchemeNameIsCanonicalOrNull) {
  EXPECT_STREQ(quill_quant_scheme_name("q4_0"), "int4");
  EXPECT_STREQ(quill_quant_scheme_name("llm-int8"), "llm-int8");
  EXPECT_EQ(quill_quant_scheme_name("bogus"), nullptr);
  EXPECT_TRUE(error_has("bogus")) << last_error();
  EXPECT_EQ(quill_quant_scheme_name(nullptr), nullptr);
  EXPECT_TRUE(error_has("name is NULL")) << last_error();
}

// ---------------------------------------------------------------- model params: calibration, SmoothQuant, fake-quant

TEST_F(CApiTools, LoadsWithCalibrationSmoothingAndFakeQuant) {
  quill_model_params p = cpu_params();
  p.calib_path = calib_->c_str();
  p.quant = "f16";
  p.smooth_alpha = 0.5f;
  quill_model* model = nullptr;
  ASSERT_EQ(quill_model_load(nullptr, &p, &model), QUILL_OK) << last_error();
  quill_model_info info{};
  ASSERT_EQ(quill_model_get_info(model, &info), QUILL_OK);
  EXPECT_NE(std::string(info.description).find("smooth"), std::string::npos) << info.description;
  quill_model_free(model);

  p = cpu_params();
  p.quant = "nf4";
  p.fake_quant = true;
  ASSERT_EQ(quill_model_load(nullptr, &p, &model), QUILL_OK) << last_error();
  ASSERT_EQ(quill_model_get_info(model, &info), QUILL_OK);
  EXPECT_STREQ(info.scheme, "f32");
  EXPECT_NE(std::string(info.description).find("fake-quant nf4"), std::string::npos) << info.description;
  quill_model_free(model);
}

TEST_F(CApiTools, LoadRefusesCalibrationMisuse) {
  struct Case {
    const char* what;
    quill_status status;
    const char* message;
    void (*set)(quill_model_params&, const char* calib);
  };
  const Case cases[] = {
      {"smooth without calib", QUILL_ERR_INVALID_ARGUMENT, "--smooth needs --calib",
       [](quill_model_params& p, const char*) { p.smooth_alpha = 0.5f; }},
      {"act_scale without calib", QUILL_ERR_INVALID_ARGUMENT, "--act-scale needs --calib",
       [](quill_model_params& p, const char*) { p.act_scale = "mse"; }},
      {"smooth out of range", QUILL_ERR_INVALID_ARGUMENT, "outside (0, 1]",
       [](quill_model_params& p, const char* c) {
         p.calib_path = c;
         p.smooth_alpha = 1.5f;
       }},
      {"smooth NaN", QUILL_ERR_INVALID_ARGUMENT, "outside (0, 1]",
       [](quill_model_params& p, const char* c) {
         p.calib_path = c;
         p.smooth_alpha = std::numeric_limits<float>::quiet_NaN();
       }},
      {"missing stats file", QUILL_ERR_FILE, "/nonexistent/quill/calib.json",
       [](quill_model_params& p, const char*) { p.calib_path = "/nonexistent/quill/calib.json"; }},
      {"act_scale on f16", QUILL_ERR_INVALID_ARGUMENT, "--act-scale applies to --quant int8 only",
       [](quill_model_params& p, const char* c) {
         p.calib_path = c;
         p.quant = "f16";
         p.act_scale = "mse";
       }},
      {"act_scale bad method", QUILL_ERR_INVALID_ARGUMENT, "unknown range method",
       [](quill_model_params& p, const char* c) {
         p.calib_path = c;
         p.quant = "int8";
         p.act_scale = "median";
       }},
      {"fake_quant with calib", QUILL_ERR_INVALID_ARGUMENT, "--fake-quant simulates weight rounding only",
       [](quill_model_params& p, const char* c) {
         p.calib_path = c;
         p.fake_quant = true;
       }},
  };
  for (const Case& c : cases) {
    quill_model_params p = cpu_params();
    c.set(p, calib_->c_str());
    quill_model* model = reinterpret_cast<quill_model*>(0x1);
    EXPECT_EQ(quill_model_load(nullptr, &p, &model), c.status) << c.what << ": " << last_error();
    EXPECT_EQ(model, nullptr) << c.what;
    EXPECT_TRUE(error_has(c.message)) << c.what << ": " << last_error();
  }
}

// ---------------------------------------------------------------- quill_calibrate

TEST_F(CApiTools, CalibrateWritesStatsAndASummary) {
  const nlohmann::json& s = *summary_;
  EXPECT_EQ(s["tokens"].get<int64_t>(), 48);
  EXPECT_EQ(s["ctx"].get<int>(), 32);
  EXPECT_EQ(s["int8_threshold"].get<double>(), 6.0);
  EXPECT_TRUE(s["outlier_dims"].is_array());
  EXPECT_NE(s["model"].get<std::string>().find("tiny"), std::string::npos) << s["model"];
  ASSERT_EQ(s["sites"].size(), size_t(4 * 4 + 1));  // tiny: 4 layers x (qkv, wo, gate_up, down) + the head
  for (const auto& site : s["sites"]) {
    for (const char* m : {"absmax", "percentile", "mse", "entropy"}) EXPECT_GT(site["ranges"][m].get<double>(), 0);
    EXPECT_GE(site["ranges"]["absmax"].get<double>(), site["ranges"]["percentile"].get<double>());
  }
  std::ifstream f(*calib_);
  const nlohmann::json stats = nlohmann::json::parse(f);
  EXPECT_EQ(stats["format"], "quill-calibration");
}

TEST_F(CApiTools, CalibrateReportsProgressAndCanBeCancelled) {
  const fs::path out = temp_path("progress.json");
  Progress progress;
  quill_calibrate_params cp = quill_calibrate_default_params();
  cp.ctx = 16;
  cp.max_tokens = 30;
  cp.progress_callback = Progress::callback;
  cp.progress_callback_user_data = &progress;
  ASSERT_EQ(quill_calibrate(nullptr, nullptr, kText.data(), int64_t(kText.size()), &cp, out.c_str(), nullptr),
            QUILL_OK)
      << last_error();
  progress.expect_complete();
  EXPECT_EQ(progress.calls.back().second, 30);
  fs::remove(out);

  Progress cancel;
  cancel.stop_after = 1;
  cp.progress_callback_user_data = &cancel;
  const char* summary = "stale";
  EXPECT_EQ(quill_calibrate(nullptr, nullptr, kText.c_str(), -1, &cp, out.c_str(), &summary), QUILL_ERR_CANCELLED);
  EXPECT_EQ(summary, nullptr);
  EXPECT_TRUE(error_has("cancelled")) << last_error();
  EXPECT_EQ(cancel.calls.size(), 1u);
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CApiTools, CalibrateErrors) {
  const fs::path out = temp_path("bad.json");
  const char* summary = "stale";
  EXPECT_EQ(quill_calibrate(nullptr, nullptr, nullptr, -1, nullptr, out.c_str(), &summary), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("text is NULL")) << last_error();
  EXPECT_EQ(summary, nullptr);
  EXPECT_EQ(quill_calibrate(nullptr, nullptr, kText.c_str(), -1, nullptr, nullptr, nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("out_path is NULL")) << last_error();
  EXPECT_EQ(quill_calibrate(nullptr, nullptr, kText.c_str(), -1, nullptr, "", nullptr), QUILL_ERR_FILE);
  EXPECT_EQ(quill_calibrate("/nonexistent/quill/model.gguf", nullptr, kText.c_str(), -1, nullptr, out.c_str(), nullptr),
            QUILL_ERR_FILE);
  EXPECT_TRUE(error_has("/nonexistent/quill/model.gguf")) << last_error();
  quill_calibrate_params cp = quill_calibrate_default_params();
  cp.ctx = 1;
  EXPECT_EQ(quill_calibrate(nullptr, nullptr, kText.c_str(), -1, &cp, out.c_str(), nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("ctx 1")) << last_error();
  cp = quill_calibrate_default_params();
  cp.outlier_fraction = 2;
  EXPECT_EQ(quill_calibrate(nullptr, nullptr, kText.c_str(), -1, &cp, out.c_str(), nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("outlier_fraction")) << last_error();
  quill_model_params mp = quill_model_default_params();
  mp.smooth_alpha = 0.5f;  // without calib_path
  EXPECT_EQ(quill_calibrate(nullptr, &mp, kText.c_str(), -1, nullptr, out.c_str(), nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("--smooth needs --calib")) << last_error();
  EXPECT_FALSE(fs::exists(out));
}

// ---------------------------------------------------------------- quill_model_quantize

TEST_F(CApiTools, QuantizeWritesAFileThatLoadsWithoutRequantizing) {
  const fs::path out = temp_path("nf4.gguf");
  quill_model_params p = cpu_params();
  p.quant = "nf4";
  Progress progress;
  p.progress_callback = Progress::callback;
  p.progress_callback_user_data = &progress;
  quill_quantize_result r{};
  ASSERT_EQ(quill_model_quantize(nullptr, out.c_str(), &p, &r), QUILL_OK) << last_error();
  progress.expect_complete();
  EXPECT_EQ(progress.calls.back().second, 4 + 1);  // tiny: 4 layers, then the head
  EXPECT_STREQ(r.scheme, "nf4");
  EXPECT_NE(std::string(r.description).find("tiny"), std::string::npos) << r.description;
  EXPECT_GT(r.bits_per_weight, 4.0);
  EXPECT_LT(r.bits_per_weight, 5.0);
  EXPECT_GT(r.weights, 0);
  EXPECT_EQ(r.file_bytes, int64_t(fs::file_size(out)));
  EXPECT_GT(r.native_tensors + r.quill_tensors, 0);
  EXPECT_EQ(r.n_outlier_dims, 0);
  EXPECT_EQ(r.outlier_dims, nullptr);

  quill_model_params load = cpu_params();
  quill_model* model = nullptr;
  ASSERT_EQ(quill_model_load(out.c_str(), &load, &model), QUILL_OK) << last_error();
  quill_model_info info{};
  ASSERT_EQ(quill_model_get_info(model, &info), QUILL_OK);
  EXPECT_STREQ(info.scheme, "nf4");
  EXPECT_DOUBLE_EQ(info.bits_per_weight, r.bits_per_weight);
  quill_model_free(model);

  const fs::path again = temp_path("again.gguf");
  EXPECT_EQ(quill_model_quantize(out.c_str(), again.c_str(), &p, &r), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("already quantized")) << last_error();
  EXPECT_EQ(r.scheme, nullptr);  // zeroed on failure
  EXPECT_FALSE(fs::exists(again));
  fs::remove(out);
}

TEST_F(CApiTools, QuantizeLlmInt8TakesTheCalibratedOutlierDims) {
  const fs::path out = temp_path("llm-int8.gguf");
  quill_model_params p = cpu_params();
  p.quant = "llm-int8";
  p.calib_path = calib_->c_str();
  quill_quantize_result r{};
  ASSERT_EQ(quill_model_quantize(nullptr, out.c_str(), &p, &r), QUILL_OK) << last_error();
  EXPECT_STREQ(r.scheme, "llm-int8");
  const std::vector<int32_t> dims(r.outlier_dims, r.outlier_dims + r.n_outlier_dims);
  EXPECT_EQ(dims, (*summary_)["outlier_dims"].get<std::vector<int32_t>>());
  fs::remove(out);
}

TEST_F(CApiTools, QuantizeErrorsAndCancellation) {
  const fs::path out = temp_path("bad.gguf");
  quill_model_params p = cpu_params();
  p.quant = "int8";
  quill_quantize_result r{};
  EXPECT_EQ(quill_model_quantize(nullptr, nullptr, &p, &r), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("out_path is NULL")) << last_error();
  EXPECT_EQ(quill_model_quantize(nullptr, out.c_str(), nullptr, nullptr), QUILL_ERR_INVALID_ARGUMENT);  // no scheme
  EXPECT_TRUE(error_has("params->quant")) << last_error();
  EXPECT_EQ(quill_model_quantize(nullptr, "", &p, nullptr), QUILL_ERR_FILE);
  EXPECT_EQ(quill_model_quantize("/nonexistent/quill/model.gguf", out.c_str(), &p, nullptr), QUILL_ERR_FILE);
  quill_model_params bad = p;
  bad.quant = "bogus";
  EXPECT_EQ(quill_model_quantize(nullptr, out.c_str(), &bad, nullptr), QUILL_ERR_INVALID_ARGUMENT);
  bad = p;
  bad.fake_quant = true;
  EXPECT_EQ(quill_model_quantize(nullptr, out.c_str(), &bad, nullptr), QUILL_ERR_INVALID_ARGUMENT);
  bad = p;
  bad.quant = "nf4";
  bad.calib_path = calib_->c_str();
  bad.act_scale = "mse";
  EXPECT_EQ(quill_model_quantize(nullptr, out.c_str(), &bad, nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("--act-scale applies to --quant int8 only")) << last_error();

  Progress cancel;
  cancel.stop_after = 2;
  p.progress_callback = Progress::callback;
  p.progress_callback_user_data = &cancel;
  EXPECT_EQ(quill_model_quantize(nullptr, out.c_str(), &p, &r), QUILL_ERR_CANCELLED);
  EXPECT_EQ(cancel.calls.size(), 2u);
  EXPECT_FALSE(fs::exists(out));
}

// ---------------------------------------------------------------- quill_perplexity

std::vector<int32_t> text_tokens(const quill_model* model) {
  quill_status status = QUILL_OK;
  std::vector<int32_t> tokens = quill::tokenize(model, kText, /*add_bos=*/false, &status);
  EXPECT_EQ(status, QUILL_OK) << last_error();
  return tokens;
}

// -log softmax(logits)[target] in double.
double nll_of(const float* logits, int n, int target) {
  double max = logits[0];
  for (int i = 1; i < n; ++i) max = std::max(max, double(logits[i]));
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - max);
  return max + std::log(sum) - double(logits[target]);
}

TEST_F(CApiTools, PerplexityMatchesScoringThroughEvalAll) {
  const std::vector<int32_t> tokens = text_tokens(model_);
  ASSERT_GT(tokens.size(), 40u);
  const int ctx = 24;
  quill_perplexity_params pp = quill_perplexity_default_params();
  pp.ctx = ctx;
  Progress progress;
  pp.progress_callback = Progress::callback;
  pp.progress_callback_user_data = &progress;
  quill_perplexity_result r{};
  ASSERT_EQ(quill_perplexity(model_, tokens.data(), int64_t(tokens.size()), &pp, &r), QUILL_OK) << last_error();
  const int64_t windows = (int64_t(tokens.size()) + ctx - 2) / (ctx - 1);
  EXPECT_EQ(r.tokens, int64_t(tokens.size()));
  EXPECT_EQ(r.windows, windows);
  EXPECT_EQ(r.ctx, ctx);
  EXPECT_FALSE(r.has_reference);
  progress.expect_complete();
  EXPECT_EQ(progress.calls.back().second, windows);

  // The protocol by hand: each chunk of ctx-1 tokens as [BOS] + chunk in a fresh session.
  quill_session_params sp = quill_session_default_params();
  sp.n_ctx = ctx;
  quill::session_ptr session = quill::create_session(model_, &sp);
  ASSERT_NE(session, nullptr) << last_error();
  const int n_vocab = quill_model_n_vocab(model_);
  double nll_sum = 0;
  for (size_t begin = 0; begin < tokens.size(); begin += ctx - 1) {
    const size_t size = std::min(size_t(ctx - 1), tokens.size() - begin);
    std::vector<int32_t> input{quill_token_bos(model_)};
    input.insert(input.end(), tokens.begin() + std::ptrdiff_t(begin), tokens.begin() + std::ptrdiff_t(begin + size - 1));
    ASSERT_EQ(quill_session_reset(session.get()), QUILL_OK);
    ASSERT_EQ(quill_session_eval_all(session.get(), input.data(), int32_t(input.size())), QUILL_OK) << last_error();
    for (size_t i = 0; i < size; ++i)
      nll_sum += nll_of(quill_session_logits_ith(session.get(), int32_t(i)), n_vocab, tokens[begin + i]);
  }
  const double nll = nll_sum / double(tokens.size());
  EXPECT_NEAR(r.nll, nll, 1e-9 * std::max(1.0, nll));
  EXPECT_NEAR(r.ppl, std::exp(nll), 1e-9 * std::exp(nll));
  EXPECT_GT(r.nll_stderr, 0);

  pp.max_tokens = 10;
  pp.progress_callback = nullptr;
  ASSERT_EQ(quill_perplexity(model_, tokens.data(), int64_t(tokens.size()), &pp, &r), QUILL_OK) << last_error();
  EXPECT_EQ(r.tokens, 10);
  EXPECT_EQ(r.windows, 1);
}

TEST_F(CApiTools, PerplexityAgainstItselfHasZeroKl) {
  const std::vector<int32_t> tokens = text_tokens(model_);
  quill_perplexity_params pp = quill_perplexity_default_params();
  pp.ctx = 32;
  pp.reference = model_;
  quill_perplexity_result r{};
  ASSERT_EQ(quill_perplexity(model_, tokens.data(), int64_t(tokens.size()), &pp, &r), QUILL_OK) << last_error();
  EXPECT_TRUE(r.has_reference);
  EXPECT_LT(r.kl_mean, 1e-9);
  EXPECT_LT(r.kl_max, 1e-9);
  EXPECT_DOUBLE_EQ(r.top1_agree, 1.0);
  EXPECT_NEAR(r.ref_nll, r.nll, 1e-12 * r.nll);  // the same logits, summed in another order
  EXPECT_NEAR(r.ref_ppl, r.ppl, 1e-12 * r.ppl);
}

TEST_F(CApiTools, PerplexityErrorsAndCancellation) {
  const std::vector<int32_t> tokens = text_tokens(model_);
  const int64_t n = int64_t(tokens.size());
  quill_perplexity_result r{};
  EXPECT_EQ(quill_perplexity(nullptr, tokens.data(), n, nullptr, &r), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("model is NULL")) << last_error();
  EXPECT_EQ(quill_perplexity(model_, tokens.data(), n, nullptr, nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("out is NULL")) << last_error();
  EXPECT_EQ(quill_perplexity(model_, nullptr, n, nullptr, &r), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(quill_perplexity(model_, tokens.data(), -1, nullptr, &r), QUILL_ERR_INVALID_ARGUMENT);
  quill_perplexity_params pp = quill_perplexity_default_params();
  pp.ctx = 1;
  EXPECT_EQ(quill_perplexity(model_, tokens.data(), n, &pp, &r), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("ctx")) << last_error();
  pp.ctx = quill_model_n_ctx(model_) + 1;
  EXPECT_EQ(quill_perplexity(model_, tokens.data(), n, &pp, &r), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("context length")) << last_error();
  const int32_t bad[3] = {1, quill_model_n_vocab(model_), 2};
  EXPECT_EQ(quill_perplexity(model_, bad, 3, nullptr, &r), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("outside the vocabulary")) << last_error();

  pp = quill_perplexity_default_params();
  pp.ctx = 8;
  Progress cancel;
  cancel.stop_after = 1;
  pp.progress_callback = Progress::callback;
  pp.progress_callback_user_data = &cancel;
  r.ppl = 42;
  EXPECT_EQ(quill_perplexity(model_, tokens.data(), n, &pp, &r), QUILL_ERR_CANCELLED);
  EXPECT_EQ(cancel.calls.size(), 1u);
  EXPECT_EQ(r.ppl, 0.0);  // zeroed on failure
}

// ---------------------------------------------------------------- bench: bandwidth probe, kernel profile

TEST(CApiToolsBench, ReadBandwidthProbe) {
  double bandwidth = -1;
  ASSERT_EQ(quill_device_read_bandwidth(quill::test::device_spec(), uint64_t(1) << 22, 2, &bandwidth), QUILL_OK) << last_error();
  EXPECT_GT(bandwidth, 0);
  EXPECT_EQ(quill_device_read_bandwidth(quill::test::device_spec(), 1 << 22, 2, nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("out_bytes_per_second is NULL")) << last_error();
  EXPECT_EQ(quill_device_read_bandwidth(quill::test::device_spec(), 0, 2, &bandwidth), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(bandwidth, 0);
  EXPECT_EQ(quill_device_read_bandwidth(quill::test::device_spec(), 1 << 22, 0, &bandwidth), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(quill_device_read_bandwidth("no-such-device-xyz", 1 << 22, 2, &bandwidth), QUILL_OK);
  EXPECT_TRUE(error_has("no-such-device-xyz")) << last_error();
}

TEST_F(CApiTools, ProfileReportsTheKernelsOfTheWorkInBetween) {
  quill::session_ptr session = quill::create_session(model_);
  ASSERT_NE(session, nullptr) << last_error();
  const std::vector<int32_t> tokens = {quill_token_bos(model_), 5, 6, 7};
  ASSERT_EQ(quill_model_profile_begin(model_), QUILL_OK) << last_error();
  ASSERT_EQ(quill_session_eval(session.get(), tokens.data(), int32_t(tokens.size())), QUILL_OK) << last_error();
  const char* json = quill_model_profile_end(model_);
  ASSERT_NE(json, nullptr) << last_error();
  const nlohmann::json report = nlohmann::json::parse(json);
  ASSERT_FALSE(report["kernels"].empty()) << json;
  std::set<std::string> names;
  uint64_t previous = UINT64_MAX;
  for (const auto& k : report["kernels"]) {
    names.insert(k["name"].get<std::string>());
    EXPECT_FALSE(k["grid"].get<std::string>().empty()) << json;
    EXPECT_GT(k["launches"].get<uint64_t>(), 0u);
    EXPECT_LE(k["total_ns"].get<uint64_t>(), previous);  // most time first
    previous = k["total_ns"].get<uint64_t>();
  }
  EXPECT_TRUE(names.count("embed")) << json;  // every eval starts with the embedding lookup

  EXPECT_EQ(quill_model_profile_end(model_), nullptr);  // not recording any more
  EXPECT_TRUE(error_has("no quill_model_profile_begin")) << last_error();
  EXPECT_EQ(quill_model_profile_begin(nullptr), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(quill_model_profile_end(nullptr), nullptr);
  EXPECT_TRUE(error_has("model is NULL")) << last_error();
}

TEST(CApiToolsBench, ProfileNeedsAModelLoadedWithProfiling) {
  quill_model_params p = cpu_params();
  quill_model* model = nullptr;
  ASSERT_EQ(quill_model_load(nullptr, &p, &model), QUILL_OK) << last_error();
  EXPECT_EQ(quill_model_profile_begin(model), QUILL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(error_has("profiling")) << last_error();
  quill_model_free(model);
}

// ---------------------------------------------------------------- the CLI, built on these calls only

#ifdef QUILL_CLI_PATH
struct CliRun {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

CliRun run_cli(const std::string& args) {
  const fs::path out = temp_path("cli.out"), err = temp_path("cli.err");
  const std::string command = "QUILL_DEVICE=" + std::string(quill::test::device_spec()) + " '" QUILL_CLI_PATH "' " + args + " > '" +
                              out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(command.c_str());
  CliRun r;
  r.code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

// The keys of the last line of stdout, a JSON object.
std::set<std::string> json_keys(const std::string& out) {
  const size_t end = out.find_last_not_of('\n');
  const size_t begin = out.rfind('\n', end);
  const nlohmann::json j = nlohmann::json::parse(out.substr(begin == std::string::npos ? 0 : begin + 1));
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  return keys;
}

TEST(CApiToolsCli, HelpOfEveryCommand) {
  for (const char* command : {"", "devices", "run", "bench", "perplexity", "calibrate", "quantize"}) {
    const CliRun r = run_cli(std::string(command) + " --help");
    EXPECT_EQ(r.code, 0) << command << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: quill"), std::string::npos) << command << ": " << r.out;
  }
}

TEST(CApiToolsCli, JsonOutputsKeepTheirKeys) {
  const fs::path text = temp_path("text.txt"), stats = temp_path("stats.json"), model = temp_path("model.gguf");
  std::ofstream(text) << kText;

  CliRun r = run_cli("calibrate -f '" + text.string() + "' -o '" + stats.string() + "' -c 16 --max-tokens 20 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json_keys(r.out), (std::set<std::string>{"stats", "model", "tokens", "ctx", "outlier_dims", "sites"}));

  r = run_cli("quantize -q llm-int8 --calib '" + stats.string() + "' -o '" + model.string() + "' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json_keys(r.out),
            (std::set<std::string>{"output", "model", "scheme", "bits_per_weight", "weights", "native_tensors",
                                   "quill_tensors", "file_bytes", "outlier_dims", "smooth", "act_scale", "seconds"}));

  r = run_cli("perplexity -m '" + model.string() + "' -f '" + text.string() + "' -c 16 --kl-divergence --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json_keys(r.out), (std::set<std::string>{"ppl", "nll", "nll_stderr", "tokens", "windows", "ctx", "scheme",
                                                     "bits_per_weight", "double_quant", "fake_quant", "model", "device",
                                                     "seconds", "kl_mean", "kl_max", "top1_agree", "ref_ppl",
                                                     "ref_nll"}));

  r = run_cli("bench -q f16 -p 4 -n 2 -r 1 --profile --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json_keys(r.out), (std::set<std::string>{"scheme", "model", "bits_per_weight", "weight_bytes", "n_prompt",
                                                     "n_gen", "tg_after_prompt", "pp_tok_s", "tg_tok_s", "tg_gbps",
                                                     "read_gbps",
                                                     "floor_pct", "launches_per_token", "peak_device_mib", "device"}));
  EXPECT_NE(r.err.find("profile tg (per token)"), std::string::npos) << r.err;
  for (const fs::path& p : {text, stats, model}) fs::remove(p);
}

TEST_F(CApiTools, CliRunsInt8WithStaticActivationScales) {
  const CliRun r = run_cli("run -q int8 --calib '" + calib_->string() + "' --act-scale mse -n 2 --temp 0 -p Hello");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out, "");
}
#endif

}  // namespace
