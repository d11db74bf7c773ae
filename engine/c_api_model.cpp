// C API: model loading (with calibration, SmoothQuant and fake-quant from quill_model_params), model
// facts and the tokenizer (include/quill.h).
#include <cstring>
#include <string>

#include "engine/c_api_internal.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/perplexity.hpp"
#include "engine/quant_scheme.hpp"
#include "engine/quantized_gguf.hpp"
#include "engine/smoothquant.hpp"

using namespace quill;

namespace {

// -(needed) as the protocol's "too small" answer, saturated to stay distinct from QUILL_INVALID.
int32_t too_small(size_t needed) { return needed >= size_t(INT32_MAX) ? -INT32_MAX : -int32_t(needed); }

bool is_set(const char* s) { return s && *s; }

std::string preset_name(const quill_model_params& p) { return is_set(p.synthetic) ? p.synthetic : "tiny"; }

// The weights of path (NULL = the synthetic preset) quantized and dequantized on the CPU, loaded as f32.
std::shared_ptr<Model> load_fake_quant(const char* path, const quill_model_params& p) {
  if (is_set(p.calib_path) || p.smooth_alpha != 0 || is_set(p.act_scale))
    fail(ErrorKind::kInvalidArgument,
         "--fake-quant simulates weight rounding only: it does not combine with --calib, --smooth or --act-scale");
  ModelOptions options;
  if (p.device) options.device = p.device;
  options.scheme = QuantScheme::F32;
  options.profiling = p.profiling;
  if (p.progress_callback) options.progress = capi::progress_hook(p.progress_callback, p.progress_callback_user_data);
  QuantParams params;
  params.block = p.block;
  params.double_quant = p.double_quant;
  params.int8_threshold = p.int8_threshold;
  const QuantScheme scheme = is_set(p.quant) ? parse_quant_scheme(p.quant) : QuantScheme::F32;
  auto inner = path ? gguf_weight_source(path) : synthetic_weight_source(preset_name(p), p.synthetic_seed);
  return std::make_shared<Model>(*fake_quant_weight_source(std::move(inner), scheme, params), options);
}

}  // namespace

namespace quill::capi {

std::shared_ptr<const CalibrationStats> calibration_of(const quill_model_params& p) {
  if (!(p.smooth_alpha >= 0 && p.smooth_alpha <= 1))
    fail(ErrorKind::kInvalidArgument, "--smooth {} outside (0, 1]", p.smooth_alpha);
  if (!is_set(p.calib_path)) {
    if (p.smooth_alpha > 0) fail(ErrorKind::kInvalidArgument, "--smooth needs --calib STATS.json (quill calibrate)");
    if (is_set(p.act_scale))
      fail(ErrorKind::kInvalidArgument, "--act-scale needs --calib STATS.json (quill calibrate)");
    return nullptr;
  }
  return std::make_shared<CalibrationStats>(load_calibration(p.calib_path));
}

std::shared_ptr<const WeightSource> open_weight_source(const char* path, const quill_model_params& p,
                                                       const CalibrationStats* calibration) {
  if (path && !*path) fail(ErrorKind::kFile, "model path is empty");
  std::shared_ptr<const WeightSource> source =
      path ? std::shared_ptr<const WeightSource>(open_gguf_weight_source(path))
           : std::shared_ptr<const WeightSource>(synthetic_weight_source(preset_name(p), p.synthetic_seed));
  if (p.smooth_alpha > 0) {
    if (dynamic_cast<const QuantizedGgufSource*>(source.get()))
      fail(ErrorKind::kInvalidArgument, "--smooth: {} is already quantized (smooth before quill quantize)",
           path ? path : "");
    if (!calibration) fail(ErrorKind::kInternal, "open_weight_source: smoothing without calibration stats");
    source = smoothquant_weight_source(std::move(source), *calibration, p.smooth_alpha);
  }
  return source;
}

ModelOptions model_options(const quill_model_params& p, const CalibrationStats* calibration) {
  ModelOptions options;
  if (p.device) options.device = p.device;
  if (is_set(p.quant)) options.scheme = parse_quant_scheme(p.quant);
  if (p.block < 0) fail(ErrorKind::kInvalidArgument, "block size {} is negative", p.block);
  options.params.block = p.block;
  options.params.double_quant = p.double_quant;
  options.params.int8_threshold = p.int8_threshold;
  options.quantize_embeddings = p.quantize_embeddings;
  options.profiling = p.profiling;
  if (!calibration) return options;
  if (options.scheme == QuantScheme::LlmInt8) {
    options.outlier_dims = calibration->outlier_dims();
    log_info("calibration {}: llm-int8 keeps fp16 weight columns for {} outlier dims", p.calib_path,
             options.outlier_dims.size());
    if (options.outlier_dims.empty()) log_warn("calibration found no outlier dims: llm-int8 uses the model's known ones");
  }
  if (is_set(p.act_scale)) {
    if (options.scheme != QuantScheme::Int8) fail(ErrorKind::kInvalidArgument, "--act-scale applies to --quant int8 only");
    options.static_act_amax = calibration->site_amax(parse_range_method(p.act_scale));  // per matmul input
  }
  return options;
}

std::shared_ptr<Model> load_model(const char* path, const quill_model_params& p) {
  if (path && !*path) fail(ErrorKind::kFile, "model path is empty");
  if (p.fake_quant) return load_fake_quant(path, p);
  const auto calibration = calibration_of(p);
  ModelOptions options = model_options(p, calibration.get());
  if (p.progress_callback) options.progress = capi::progress_hook(p.progress_callback, p.progress_callback_user_data);
  if (p.smooth_alpha > 0) return std::make_shared<Model>(*open_weight_source(path, p, calibration.get()), options);
  return path ? Model::load_gguf(path, options) : Model::synthetic(preset_name(p), options, p.synthetic_seed);
}

}  // namespace quill::capi

extern "C" {

QUILL_API quill_model_params quill_model_default_params(void) {
  quill_model_params p;
  p.device = nullptr;
  p.quant = nullptr;
  p.block = 0;
  p.double_quant = false;
  p.int8_threshold = 6.0f;
  p.quantize_embeddings = false;
  p.synthetic = "tiny";
  p.synthetic_seed = 1;
  p.calib_path = nullptr;
  p.smooth_alpha = 0.0f;
  p.act_scale = nullptr;
  p.fake_quant = false;
  p.profiling = false;
  p.progress_callback = nullptr;
  p.progress_callback_user_data = nullptr;
  return p;
}

QUILL_API quill_status quill_model_load(const char* path, const quill_model_params* params, quill_model** out) {
  if (!capi::check_not_null(out, "quill_model_load", "out")) return QUILL_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  const quill_model_params p = params ? *params : quill_model_default_params();
  return capi::guard([&] {
    auto handle = std::make_unique<quill_model>();
    handle->model = capi::load_model(path, p);
    const Model& m = *handle->model;
    handle->description = m.description();
    handle->device_name = m.device().info().name;
    handle->scheme = std::string(scheme_name(m.scheme()));
    *out = handle.release();
    return QUILL_OK;
  });
}

QUILL_API void quill_model_free(quill_model* model) { delete model; }

QUILL_API int32_t quill_model_n_vocab(const quill_model* model) {
  return model ? model->model->config().vocab_size : 0;
}

QUILL_API int32_t quill_model_n_ctx(const quill_model* model) {
  return model ? model->model->config().context_length : 0;
}

QUILL_API int32_t quill_token_bos(const quill_model* model) { return model ? model->model->tokenizer().bos_id() : -1; }
QUILL_API int32_t quill_token_eos(const quill_model* model) { return model ? model->model->tokenizer().eos_id() : -1; }

QUILL_API quill_status quill_model_get_info(const quill_model* model, quill_model_info* out) {
  if (!capi::check_not_null(model, "quill_model_get_info", "model") ||
      !capi::check_not_null(out, "quill_model_get_info", "out"))
    return QUILL_ERR_INVALID_ARGUMENT;
  return capi::guard([&] {
    const Model& m = *model->model;
    const LlamaConfig& c = m.config();
    quill_model_info info{};
    info.description = model->description.c_str();
    info.device_name = model->device_name.c_str();
    info.scheme = model->scheme.c_str();
    info.n_vocab = c.vocab_size;
    info.n_ctx_train = c.context_length;
    info.n_layers = c.n_layers;
    info.dim = c.dim;
    info.n_heads = c.n_heads;
    info.n_kv_heads = c.n_kv_heads;
    info.ffn_dim = c.ffn_dim;
    info.bits_per_weight = m.bits_per_weight();
    info.weight_bytes = m.weight_bytes();
    info.load_seconds = m.load_seconds();
    info.device_bytes = m.device().allocated_bytes();
    info.device_peak_bytes = m.device().peak_allocated_bytes();
    *out = info;
    return QUILL_OK;
  });
}

QUILL_API int32_t quill_tokenize(const quill_model* model, const char* text, int32_t text_len, int32_t* tokens,
                                 int32_t max_tokens, bool add_bos) {
  if (!capi::check_not_null(model, "quill_tokenize", "model") || !capi::check_not_null(text, "quill_tokenize", "text"))
    return QUILL_INVALID;
  if (max_tokens < 0 || (max_tokens > 0 && !tokens)) {
    capi::set_error(QUILL_ERR_INVALID_ARGUMENT, "quill_tokenize: tokens is NULL or max_tokens is negative");
    return QUILL_INVALID;
  }
  int32_t result = QUILL_INVALID;
  capi::guard([&] {
    const size_t len = text_len < 0 ? std::strlen(text) : size_t(text_len);
    const std::vector<int32_t> ids = model->model->tokenizer().encode(std::string_view(text, len), add_bos);
    if (ids.size() > size_t(max_tokens)) {
      result = too_small(ids.size());
    } else {
      if (!ids.empty()) std::memcpy(tokens, ids.data(), ids.size() * sizeof(int32_t));
      result = int32_t(ids.size());
    }
    return QUILL_OK;
  });
  return result;
}

QUILL_API int32_t quill_token_to_piece(const quill_model* model, int32_t token, char* buf, int32_t len) {
  if (!capi::check_not_null(model, "quill_token_to_piece", "model")) return QUILL_INVALID;
  if (len < 0 || (len > 0 && !buf)) {
    capi::set_error(QUILL_ERR_INVALID_ARGUMENT, "quill_token_to_piece: buf is NULL or len is negative");
    return QUILL_INVALID;
  }
  int32_t result = QUILL_INVALID;
  capi::guard([&] {
    const int32_t n_vocab = model->model->tokenizer().vocab_size();
    if (token < 0 || token >= n_vocab)
      fail(ErrorKind::kInvalidArgument, "quill_token_to_piece: token id {} is outside the vocabulary [0, {})", token,
           n_vocab);
    const std::string piece = model->model->tokenizer().piece(token);
    if (piece.size() > size_t(len)) {
      result = too_small(piece.size());
    } else {
      std::memcpy(buf, piece.data(), piece.size());
      if (piece.size() < size_t(len)) buf[piece.size()] = '\0';
      result = int32_t(piece.size());
    }
    return QUILL_OK;
  });
  return result;
}

}  // extern "C"
