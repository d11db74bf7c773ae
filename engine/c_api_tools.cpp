// C API: the tools the `quill` command-line tool is built from (include/quill.h) — writing a quantized
// GGUF, calibration, perplexity, the device's read bandwidth and the per-kernel profile. Each wraps one
// engine entry point; the math stays in engine/ (quantized_gguf, calibration, perplexity, host/).
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/c_api_internal.hpp"
#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/log.hpp"
#include "engine/perplexity.hpp"
#include "engine/quantized_gguf.hpp"
#include "host/bandwidth_probe.hpp"

using namespace quill;

namespace {

// Library-owned results, valid until the next call of the same function in this thread.
struct QuantizeStorage {
  std::string description, scheme;
  std::vector<int32_t> outlier_dims;
};
thread_local QuantizeStorage t_quantize;
thread_local std::string t_calibrate_summary;
thread_local std::string t_profile_json;

bool is_set(const char* s) { return s && *s; }

std::string_view text_view(const char* text, int64_t text_len) {
  return std::string_view(text, text_len < 0 ? std::strlen(text) : size_t(text_len));
}

nlohmann::json calibration_summary(const CalibrationStats& stats, double outlier_fraction) {
  nlohmann::json sites = nlohmann::json::array();
  for (const SiteStats& s : stats.sites) {
    nlohmann::json ranges = nlohmann::json::object();
    for (RangeMethod m : kRangeMethods) ranges[std::string(range_method_name(m))] = s.range(m);
    sites.push_back({{"layer", s.layer}, {"site", matmul_site_name(s.site)}, {"dim", s.dim}, {"ranges", ranges}});
  }
  return {{"model", stats.model},
          {"tokens", stats.tokens},
          {"ctx", stats.ctx},
          {"int8_threshold", stats.int8_threshold},
          {"percentile", stats.percentile},
          {"outlier_fraction", outlier_fraction},
          {"outlier_dims", stats.outlier_dims(outlier_fraction)},
          {"sites", sites}};
}

}  // namespace

extern "C" {

QUILL_API quill_status quill_model_quantize(const char* in_path, const char* out_path, const quill_model_params* params,
                                            quill_quantize_result* result) {
  if (result) *result = quill_quantize_result{};
  if (!capi::check_not_null(out_path, "quill_model_quantize", "out_path")) return QUILL_ERR_INVALID_ARGUMENT;
  const quill_model_params p = params ? *params : quill_model_default_params();
  return capi::guard([&] {
    if (!is_set(p.quant)) fail(ErrorKind::kInvalidArgument, "quill_model_quantize: params->quant (the scheme) is required");
    if (p.fake_quant) fail(ErrorKind::kInvalidArgument, "quill_model_quantize: fake_quant does not apply");
    if (!*out_path) fail(ErrorKind::kFile, "quill_model_quantize: out_path is empty");
    const auto calibration = capi::calibration_of(p);
    const auto source = capi::open_weight_source(in_path, p, calibration.get());
    if (dynamic_cast<const QuantizedGgufSource*>(source.get()))
      fail(ErrorKind::kInvalidArgument, "quantize: {} is already quantized by quill", in_path);
    const ModelOptions model = capi::model_options(p, calibration.get());
    QuantizeFileOptions options;
    options.scheme = *model.scheme;
    options.params = model.params;
    options.quantize_embeddings = model.quantize_embeddings;
    options.outlier_dims = model.outlier_dims;
    options.act_amax = model.static_act_amax;
    options.act_scale_method = is_set(p.act_scale) ? p.act_scale : "";
    options.smooth_alpha = p.smooth_alpha;
    options.calibration = is_set(p.calib_path) ? p.calib_path : "";
    std::optional<GgufFile> original;
    if (in_path) original.emplace(GgufFile::open(in_path));
    options.metadata_from = original ? &*original : nullptr;
    const auto hook = capi::progress_hook(p.progress_callback, p.progress_callback_user_data);
    const QuantizeFileSummary s =
        write_quantized_gguf(*source, options, out_path, [&](int done, int total) { hook(done, total); });
    if (result) {
      t_quantize = {source->description(), std::string(scheme_name(options.scheme)), options.outlier_dims};
      result->description = t_quantize.description.c_str();
      result->scheme = t_quantize.scheme.c_str();
      result->bits_per_weight = s.bits_per_weight;
      result->weights = s.weights;
      result->file_bytes = s.file_bytes;
      result->native_tensors = s.native_tensors;
      result->quill_tensors = s.quill_tensors;
      result->outlier_dims = t_quantize.outlier_dims.empty() ? nullptr : t_quantize.outlier_dims.data();
      result->n_outlier_dims = int32_t(t_quantize.outlier_dims.size());
    }
    return QUILL_OK;
  });
}

QUILL_API quill_calibrate_params quill_calibrate_default_params(void) {
  const CalibrationOptions d;
  quill_calibrate_params p;
  p.ctx = d.ctx;
  p.max_tokens = d.max_tokens;
  p.percentile = d.percentile;
  p.outlier_fraction = 0.01;
  p.progress_callback = nullptr;
  p.progress_callback_user_data = nullptr;
  return p;
}

QUILL_API quill_status quill_calibrate(const char* model_path, const quill_model_params* model_params,
                                       const char* text, int64_t text_len, const quill_calibrate_params* params,
                                       const char* out_path, const char** summary_json) {
  if (summary_json) *summary_json = nullptr;
  if (!capi::check_not_null(text, "quill_calibrate", "text") ||
      !capi::check_not_null(out_path, "quill_calibrate", "out_path"))
    return QUILL_ERR_INVALID_ARGUMENT;
  const quill_model_params mp = model_params ? *model_params : quill_model_default_params();
  const quill_calibrate_params p = params ? *params : quill_calibrate_default_params();
  return capi::guard([&] {
    if (!*out_path) fail(ErrorKind::kFile, "quill_calibrate: out_path is empty");
    if (!(p.outlier_fraction >= 0 && p.outlier_fraction <= 1))
      fail(ErrorKind::kInvalidArgument, "quill_calibrate: outlier_fraction {} outside [0, 1]", p.outlier_fraction);
    const auto calibration = capi::calibration_of(mp);
    const auto source = capi::open_weight_source(model_path, mp, calibration.get());
    const std::vector<int32_t> tokens = source->tokenizer().encode(text_view(text, text_len), /*add_bos=*/false);
    const int64_t n =
        p.max_tokens > 0 ? std::min<int64_t>(p.max_tokens, int64_t(tokens.size())) : int64_t(tokens.size());
    log_info("calibrating {} in f32 (CPU reference) on {} of {} tokens, windows of ctx {}", source->description(), n,
             tokens.size(), p.ctx);
    const CalibrationOptions options{
        .ctx = p.ctx, .max_tokens = p.max_tokens, .int8_threshold = mp.int8_threshold, .percentile = p.percentile};
    const CalibrationStats stats =
        calibrate(*source, tokens, options, capi::progress_hook(p.progress_callback, p.progress_callback_user_data));
    save_calibration(stats, out_path);
    if (summary_json) {
      t_calibrate_summary = calibration_summary(stats, p.outlier_fraction).dump();
      *summary_json = t_calibrate_summary.c_str();
    }
    return QUILL_OK;
  });
}

QUILL_API quill_perplexity_params quill_perplexity_default_params(void) {
  const PerplexityOptions d;
  quill_perplexity_params p;
  p.ctx = d.ctx;
  p.max_tokens = d.max_tokens;
  p.max_batch = d.max_batch;
  p.reference = nullptr;
  p.progress_callback = nullptr;
  p.progress_callback_user_data = nullptr;
  return p;
}

QUILL_API quill_status quill_perplexity(quill_model* model, const int32_t* tokens, int64_t n_tokens,
                                        const quill_perplexity_params* params, quill_perplexity_result* out) {
  if (out) *out = quill_perplexity_result{};
  if (!capi::check_not_null(model, "quill_perplexity", "model") ||
      !capi::check_not_null(out, "quill_perplexity", "out"))
    return QUILL_ERR_INVALID_ARGUMENT;
  if (n_tokens < 0 || (n_tokens > 0 && !tokens))
    return capi::set_error(QUILL_ERR_INVALID_ARGUMENT, "quill_perplexity: tokens is NULL or n_tokens is negative");
  const quill_perplexity_params p = params ? *params : quill_perplexity_default_params();
  return capi::guard([&] {
    const PerplexityOptions options{.ctx = p.ctx, .max_tokens = p.max_tokens, .max_batch = p.max_batch};
    const auto hook = capi::progress_hook(p.progress_callback, p.progress_callback_user_data);
    const PerplexityResult r =
        compute_perplexity(model->model, std::span<const int32_t>(tokens, size_t(n_tokens)), options,
                           p.reference ? p.reference->model : nullptr, [&](int done, int total) { hook(done, total); });
    quill_perplexity_result o{};
    o.ppl = r.ppl();
    o.nll = r.nll();
    o.nll_stderr = r.nll_stderr();
    o.tokens = r.tokens;
    o.windows = r.windows;
    o.ctx = r.ctx;
    o.has_reference = r.has_reference;
    if (r.has_reference) {
      o.ref_ppl = r.reference_ppl();
      o.ref_nll = r.reference_nll();
      o.kl_mean = r.kl_mean();
      o.kl_max = r.kl_max;
      o.top1_agree = r.top1_agree();
    }
    *out = o;
    return QUILL_OK;
  });
}

QUILL_API quill_status quill_device_read_bandwidth(const char* device, uint64_t bytes, int32_t reps,
                                                   double* out_bytes_per_second) {
  if (!capi::check_not_null(out_bytes_per_second, "quill_device_read_bandwidth", "out_bytes_per_second"))
    return QUILL_ERR_INVALID_ARGUMENT;
  *out_bytes_per_second = 0;
  if (bytes < 16 || reps < 1)
    return capi::set_error(QUILL_ERR_INVALID_ARGUMENT,
                           "quill_device_read_bandwidth: needs bytes >= 16 and at least one repetition");
  return capi::guard([&] {
    host::Device probe({.spec = device ? device : "", .profiling = true});
    *out_bytes_per_second = host::measure_read_bandwidth(probe, size_t(bytes), reps);
    return QUILL_OK;
  });
}

QUILL_API quill_status quill_model_profile_begin(quill_model* model) {
  if (!capi::check_not_null(model, "quill_model_profile_begin", "model")) return QUILL_ERR_INVALID_ARGUMENT;
  return capi::guard([&] {
    host::Device& device = model->model->device();
    if (!device.profiling())
      fail(ErrorKind::kInvalidArgument, "quill_model_profile_begin: the model was not loaded with params.profiling");
    device.finish();  // earlier work stays out of the report
    device.profile_report();
    device.set_profile_recording(true);
    return QUILL_OK;
  });
}

QUILL_API const char* quill_model_profile_end(quill_model* model) {
  if (!capi::check_not_null(model, "quill_model_profile_end", "model")) return nullptr;
  const quill_status status = capi::guard([&] {
    host::Device& device = model->model->device();
    if (!device.profile_recording())
      fail(ErrorKind::kInvalidArgument, "quill_model_profile_end: no quill_model_profile_begin on this model");
    device.finish();
    device.set_profile_recording(false);
    nlohmann::json kernels = nlohmann::json::array();
    for (const auto& k : device.profile_report())
      kernels.push_back({{"name", k.name}, {"grid", k.grid}, {"launches", k.launches}, {"total_ns", k.total_ns}});
    t_profile_json = nlohmann::json{{"kernels", kernels}}.dump();
    return QUILL_OK;
  });
  return status == QUILL_OK ? t_profile_json.c_str() : nullptr;
}

}  // extern "C"
