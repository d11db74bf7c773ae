// `quill bench`: llama-bench-like throughput per scheme — prompt processing (pp) and text
// generation (tg) tokens/s (median of repetitions after a warm-up), weight bytes read per token,
// achieved GB/s, floor_pct (the tg time floor from a streaming-read probe in the same run over the
// measured tg time per token), kernel launches per token, peak device memory. As in llama-bench, tg
// generates from an empty context (so the floor, which counts the weights alone, is what tg reads);
// --tg-after-prompt generates right after the pp prompt instead. Uses only include/quill.h.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_flags.hpp"
#include "cli/util.hpp"

namespace quill::cli {
namespace {

struct BenchOptions {
  ModelFlags model;
  std::string quant_list = "f16";
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 3;
  bool json = false;
  bool profile = false;
  bool tg_after_prompt = false;  // tg continues the pp prompt's context (attention over n_prompt + tokens)
};

// Per-kernel device time of `f` on the model's device, printed to stderr (each kernel's share, per call).
template <typename F>
void print_profile(quill_model* model, const char* label, int calls, F&& f) {
  check(quill_model_profile_begin(model));
  f();
  const char* report_json = quill_model_profile_end(model);
  if (!report_json) check(QUILL_ERR_INTERNAL);
  const nlohmann::json report = nlohmann::json::parse(report_json)["kernels"];
  uint64_t total = 0;
  for (const auto& k : report) total += k["total_ns"].get<uint64_t>();
  std::fprintf(stderr, "%s: %.1f us of kernel time per call\n", label, total * 1e-3 / calls);
  for (const auto& k : report) {
    const double ns = k["total_ns"].get<double>();
    const std::string name = k["name"].get<std::string>() + " [" + k["grid"].get<std::string>() + "]";
    std::fprintf(stderr, "  %-36s %6.1f%% %10.1f us %8.1f launches\n", name.c_str(), 100.0 * ns / total,
                 ns * 1e-3 / calls, k["launches"].get<double>() / calls);
  }
}

// The name of the device a spec selects (quill_devices_json).
std::string device_name(const std::string& spec) {
  const char* text = quill_devices_json(spec.c_str());
  if (!text) check(QUILL_ERR_DEVICE);
  const nlohmann::json doc = nlohmann::json::parse(text);
  for (const auto& d : doc["devices"])
    if (d["index"] == doc["selected"]) return d["name"].get<std::string>();
  return "";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

template <typename F>
double time_seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int run_bench(BenchOptions o) {
  const std::vector<std::string> schemes = split_list(o.quant_list);
  if (schemes.empty()) fail("--quant needs at least one scheme");
  for (const auto& s : schemes)  // reject bad names before any work
    if (!quill_quant_scheme_name(s.c_str())) check(QUILL_ERR_INVALID_ARGUMENT);
  double bandwidth = 0;
  check(quill_device_read_bandwidth(o.model.device.c_str(), uint64_t(1) << 30, 10, &bandwidth));
  if (!o.json) {
    std::printf("device: %s, streaming read %.1f GB/s; pp%d, tg%d (%s), %d reps (median)\n",
                device_name(o.model.device).c_str(), bandwidth * 1e-9, o.n_prompt, o.n_gen,
                o.tg_after_prompt ? "after the prompt" : "from an empty context", o.reps);
    std::printf("%-9s %7s %10s %10s %10s %9s %8s %9s %10s\n", "scheme", "bits/w", "weight_MiB", "pp_tok/s", "tg_tok/s",
                "tg_GB/s", "floor%", "launches", "peak_MiB");
  }
  for (const auto& scheme : schemes) {
    ModelFlags flags = o.model;
    flags.quant = scheme;
    quill_model_params params = model_params(flags);
    params.profiling = o.profile;
    model_ptr model = load_model(flags, params);
    const int32_t n_vocab = quill_model_n_vocab(model.get());
    quill_session_params sp = quill_session_default_params();
    sp.n_ctx = o.n_prompt + o.n_gen + 2;
    sp.max_batch = std::max(1, o.n_prompt);
    quill_status status = QUILL_OK;
    session_ptr session = create_session(model.get(), &sp, &status);
    check(status);
    std::mt19937_64 rng(42);
    std::vector<int32_t> prompt(size_t(std::max(1, o.n_prompt)));
    for (auto& t : prompt) t = int32_t(rng() % uint64_t(n_vocab));
    auto eval = [&](const int32_t* tokens, size_t n) { check(quill_session_eval(session.get(), tokens, int32_t(n))); };
    std::vector<double> pp, tg;
    for (int r = 0; r <= o.reps; ++r) {  // repetition 0 is the warm-up
      check(quill_session_reset(session.get()));
      const double t_pp = time_seconds([&] { eval(prompt.data(), prompt.size()); });
      if (!o.tg_after_prompt) check(quill_session_reset(session.get()));
      int32_t token = int32_t(rng() % uint64_t(n_vocab));
      const double t_tg = time_seconds([&] {
        for (int i = 0; i < o.n_gen; ++i) {
          eval(&token, 1);
          token = int32_t((token * 7 + 13) % n_vocab);
        }
      });
      if (r > 0) {
        pp.push_back(prompt.size() / t_pp);
        tg.push_back(o.n_gen / t_tg);
      }
    }
    if (o.profile) {
      check(quill_session_reset(session.get()));
      print_profile(model.get(), "profile pp", 1, [&] { eval(prompt.data(), prompt.size()); });
      const int n_tg = std::max(1, std::min(o.n_gen, 16));
      print_profile(model.get(), "profile tg (per token)", n_tg, [&] {
        for (int i = 0; i < n_tg; ++i) {
          const int32_t one = int32_t(i % n_vocab);
          eval(&one, 1);
        }
      });
    }
    quill_model_info info{};
    check(quill_model_get_info(model.get(), &info));
    const double pp_tps = median(pp), tg_tps = median(tg);
    const double bytes = double(info.weight_bytes);
    const double floor_pct = 100.0 * (bytes / bandwidth) * tg_tps;
    const double peak_mib = info.device_peak_bytes / 1048576.0;
    const uint64_t launches = quill_session_last_launches(session.get());
    if (o.json) {
      nlohmann::json out = {{"scheme", scheme},
                            {"model", info.description},
                            {"bits_per_weight", info.bits_per_weight},
                            {"weight_bytes", info.weight_bytes},
                            {"n_prompt", o.n_prompt},
                            {"n_gen", o.n_gen},
                            {"tg_after_prompt", o.tg_after_prompt},
                            {"pp_tok_s", pp_tps},
                            {"tg_tok_s", tg_tps},
                            {"tg_gbps", bytes * tg_tps * 1e-9},
                            {"read_gbps", bandwidth * 1e-9},
                            {"floor_pct", floor_pct},
                            {"launches_per_token", launches},
                            {"peak_device_mib", peak_mib},
                            {"device", info.device_name}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("%-9s %7.3f %10.1f %10.1f %10.2f %9.1f %7.1f%% %9llu %10.1f\n", scheme.c_str(), info.bits_per_weight,
                  bytes / 1048576.0, pp_tps, tg_tps, bytes * tg_tps * 1e-9, floor_pct, (unsigned long long)launches,
                  peak_mib);
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "Prompt-processing and generation throughput per quantization scheme");
  add_model_flags(*sub, o->model);
  sub->get_option("--quant")->description("Comma-separated schemes: " + std::string(quill_quant_names()));
  sub->get_option("--quant")->default_str("f16");
  sub->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens (pp)")->capture_default_str();
  sub->add_option("-n,--n-gen", o->n_gen, "Generated tokens (tg)")->capture_default_str();
  sub->add_option("-r,--reps", o->reps, "Timed repetitions (median reported)")->capture_default_str();
  sub->add_flag("--json", o->json, "One JSON object per scheme per line on stdout");
  sub->add_flag("--tg-after-prompt", o->tg_after_prompt,
                "Generate right after the pp prompt (default: from an empty context, as llama-bench's tg)");
  sub->add_flag("--profile", o->profile, "Also print per-kernel device time of one pp and 16 tg tokens (stderr)");
  return [o] {
    BenchOptions options = *o;
    options.quant_list = options.model.quant.empty() ? "f16" : options.model.quant;
    return run_bench(options);
  };
}

}  // namespace quill::cli
