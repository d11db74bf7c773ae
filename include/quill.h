/* quill.h — the public C API of quill, the only header an embedding application needs (C11 or C++).
 *
 * Opaque handles, status codes and *_default_params(); no exceptions or C++ types cross this boundary
 * and the library never exits or aborts the host process.
 *
 *   quill_model    immutable after load; share it between sessions and threads.
 *   quill_session  one conversation (KV cache, position); use each from one thread at a time.
 *                  Sessions on one model are independent and may run on different threads at once.
 *   quill_sampler  token selection state (RNG); one per generation stream, one thread at a time.
 * The tools at the end (quantize, calibrate, perplexity, bandwidth probe, kernel profile) are what the
 * `quill` command-line tool is built from; long ones report through a quill_progress_callback.
 *
 * Errors: every call that can fail returns a quill_status (or a documented sentinel) and records a
 * message for quill_last_error() in the calling thread. Strings returned by the library are owned by it.
 *
 * Minimal use:
 *   quill_model_params mp = quill_model_default_params();
 *   quill_model* model = NULL;
 *   if (quill_model_load("model.gguf", &mp, &model) != QUILL_OK) puts(quill_last_error());
 *   quill_session* s = NULL;  quill_session_create(model, NULL, &s);
 *   int32_t tokens[256];  int32_t n = quill_tokenize(model, "Hello", -1, tokens, 256, true);
 *   quill_sampler_params sp = quill_sampler_default_params();  sp.temp = 0;  // greedy
 *   quill_sampler* sampler = NULL;  quill_sampler_create(&sp, &sampler);
 *   quill_generate(s, sampler, tokens, n, 64, my_callback, my_data, NULL);
 *   quill_sampler_free(sampler);  quill_session_free(s);  quill_model_free(model);
 */
#ifndef QUILL_H
#define QUILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && !defined(QUILL_STATIC)
#if defined(QUILL_BUILD)
#define QUILL_API __declspec(dllexport)
#else
#define QUILL_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define QUILL_API __attribute__((visibility("default")))
#else
#define QUILL_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status, errors, version, logging */

typedef enum quill_status {
  QUILL_OK = 0,
  QUILL_ERR_INVALID_ARGUMENT = 1, /* NULL handle or pointer, bad token id, unknown scheme/device name, ... */
  QUILL_ERR_FILE = 2,             /* missing path, a directory, unreadable file */
  QUILL_ERR_FORMAT = 3,           /* malformed or unsupported model file contents */
  QUILL_ERR_DEVICE = 4,           /* OpenCL error, no platform, kernel build failure (message has the log) */
  QUILL_ERR_OUT_OF_MEMORY = 5,    /* host or device allocation refused */
  QUILL_ERR_CONTEXT_FULL = 6,     /* the session's context length is exhausted */
  QUILL_ERR_INTERNAL = 7,         /* a bug in quill (please report the message) */
  QUILL_ERR_CANCELLED = 8         /* a progress callback returned false */
} quill_status;

/* Sentinel returned by the int32_t-returning calls (tokenize, token_to_piece, ...) on a bad argument;
 * quill_last_error() says what was wrong. */
#define QUILL_INVALID INT32_MIN

/* A short constant name for a status ("ok", "invalid argument", "file error", ...). Never NULL. */
QUILL_API const char* quill_status_string(quill_status status);
/* The message of the most recent failed call in the calling thread ("" if none yet). Valid until the
 * next failing call in this thread. Device errors include the OpenCL build log when a kernel failed. */
QUILL_API const char* quill_last_error(void);
/* "MAJOR.MINOR.PATCH" of the library. */
QUILL_API const char* quill_version(void);

typedef enum quill_log_level {
  QUILL_LOG_ERROR = 0,
  QUILL_LOG_WARN = 1,
  QUILL_LOG_INFO = 2, /* default (or $QUILL_LOG=error|warn|info|debug) */
  QUILL_LOG_DEBUG = 3
} quill_log_level;
/* The library logs progress and warnings to stderr at or below this level (process-wide). */
QUILL_API void quill_log_set_level(quill_log_level level);
QUILL_API quill_log_level quill_log_get_level(void);

/* ---------------------------------------------------------------- devices */

/* Number of OpenCL devices over all platforms; -1 on failure (no OpenCL platform: see quill_last_error). */
QUILL_API int32_t quill_device_count(void);
/* Every OpenCL device and the one a spec selects, as a JSON document:
 *   {"devices":[{"index","platform","name","vendor","type","device_version","driver_version",
 *                "opencl_c_version","fp16","inline_ptx","sm_version","compute_units","local_mem_bytes",
 *                "max_alloc_bytes","global_mem_bytes","max_work_group_size","build_options",...}],
 *    "selected": <index>, "spec": "<the spec used>"}
 * spec: as quill_model_params.device (NULL or "" = $QUILL_DEVICE, else the default rule).
 * Returns NULL on failure. The string is owned by the library, valid until the next call in this thread. */
QUILL_API const char* quill_devices_json(const char* spec);

/* Space-separated valid names, for help texts: quantization schemes and synthetic model presets. */
QUILL_API const char* quill_quant_names(void);
QUILL_API const char* quill_synthetic_names(void);
/* The canonical name of a scheme name or alias ("q4_0" -> "int4"); NULL for an unknown name (or NULL). */
QUILL_API const char* quill_quant_scheme_name(const char* name);

/* Progress of long work: done of total units (layers, tokens or windows, as each call documents).
 * Return false to cancel: the call then fails with QUILL_ERR_CANCELLED and leaves no output file. */
typedef bool (*quill_progress_callback)(int64_t done, int64_t total, void* user_data);

/* ---------------------------------------------------------------- model */

typedef struct quill_model quill_model;

typedef struct quill_model_params {
  const char* device;       /* OpenCL device: index, "gpu", "cpu" or part of a name; NULL/"" = $QUILL_DEVICE or
                               the default (first GPU, else first CPU) */
  const char* quant;        /* scheme name (see quill_quant_names()); NULL/"" = as stored (f16, f32 for f32 files) */
  int32_t block;            /* nf4/fp4/dyn8 block size (power of two 32..4096); 0 = the scheme's default */
  bool double_quant;        /* nf4/fp4/dyn8: quantize the block absmax values too (QLoRA) */
  float int8_threshold;     /* llm-int8 activation outlier threshold; 0 = no decomposition (default 6) */
  bool quantize_embeddings; /* quantize the output head too (default: fp16) */
  const char* synthetic;    /* when path is NULL: the built-in synthetic model preset (default "tiny";
                               see quill_synthetic_names()) — deterministic weights, for tests and demos */
  uint64_t synthetic_seed;  /* seed of the synthetic model's weights (default 1) */
  /* Calibration (quill_calibrate writes the stats file). */
  const char* calib_path;   /* stats JSON: llm-int8 keeps fp16 weight columns for its outlier dims; needed by
                               smooth_alpha and act_scale. NULL/"" = none */
  float smooth_alpha;       /* SmoothQuant migration strength in (0, 1] with calib_path; 0 = off (default) */
  const char* act_scale;    /* int8 static per-tensor activation scales from calib_path by method "absmax",
                               "percentile", "mse" or "entropy" (one fixed scale per matmul input, saturating);
                               NULL/"" = per-token absmax (default) */
  bool fake_quant;          /* quantize and dequantize the weights to quant on the CPU and run them in f32
                               (simulates weight rounding only; no calib_path / smooth_alpha / act_scale) */
  bool profiling;           /* event timing on the device queue, for quill_model_profile_begin/end (default off) */
  quill_progress_callback progress_callback; /* quill_model_load and quill_model_quantize: layers done of
                                                n_layers + 1, one call at a time, possibly from a loader
                                                thread; false cancels (QUILL_ERR_CANCELLED). NULL = none
                                                (quill_model_load then draws a bar on a terminal's stderr) */
  void* progress_callback_user_data;
} quill_model_params;

QUILL_API quill_model_params quill_model_default_params(void);

/* Loads a GGUF file (llama architecture), or the synthetic preset params->synthetic when path is NULL,
 * quantizes it to params->quant and uploads it to the device. params NULL = defaults.
 * On failure *out stays NULL. */
QUILL_API quill_status quill_model_load(const char* path, const quill_model_params* params, quill_model** out);
/* Frees the model (NULL is ignored). Free its sessions first. */
QUILL_API void quill_model_free(quill_model* model);

/* Vocabulary size and training context length; 0 for a NULL model. */
QUILL_API int32_t quill_model_n_vocab(const quill_model* model);
QUILL_API int32_t quill_model_n_ctx(const quill_model* model);
/* Beginning / end of sequence token ids; -1 when the vocabulary has none (or model is NULL). */
QUILL_API int32_t quill_token_bos(const quill_model* model);
QUILL_API int32_t quill_token_eos(const quill_model* model);

typedef struct quill_model_info {
  const char* description; /* e.g. "stories260K.gguf (llama, f32)"; strings live as long as the model */
  const char* device_name;
  const char* scheme; /* canonical scheme name of the matmul weights */
  int32_t n_vocab, n_ctx_train, n_layers, dim, n_heads, n_kv_heads, ffn_dim;
  double bits_per_weight; /* of the per-layer matmuls */
  uint64_t weight_bytes;  /* device bytes of all matmul weights */
  double load_seconds;
  uint64_t device_bytes;      /* device memory allocated now (this model and its sessions) */
  uint64_t device_peak_bytes; /* peak of the above */
} quill_model_info;

QUILL_API quill_status quill_model_get_info(const quill_model* model, quill_model_info* out);

/* ---------------------------------------------------------------- tokenizer */

/* text (text_len bytes, or NUL-terminated when text_len < 0) -> token ids. add_bos: prepend BOS.
 * Returns the number of tokens written; if max_tokens is too small, nothing useful is written and the
 * result is -(tokens needed). QUILL_INVALID on a bad argument (tokens may be NULL when max_tokens is 0). */
QUILL_API int32_t quill_tokenize(const quill_model* model, const char* text, int32_t text_len, int32_t* tokens,
                                 int32_t max_tokens, bool add_bos);
/* The text of one token (leading space included where the token has one; "" for control tokens).
 * Writes at most len bytes, plus a terminating NUL when there is room; returns the byte count (without the
 * NUL), -(bytes needed) if len is too small, QUILL_INVALID for a bad token id or argument. */
QUILL_API int32_t quill_token_to_piece(const quill_model* model, int32_t token, char* buf, int32_t len);

/* ---------------------------------------------------------------- session */

typedef struct quill_session quill_session;

typedef struct quill_session_params {
  int32_t n_ctx;     /* context length in tokens; 0 = the model's, at most 4096 */
  int32_t max_batch; /* tokens per device pass while evaluating a prompt (default 256) */
  bool kv_f32;       /* KV cache in f32 (default fp16; f32 models always use f32) */
} quill_session_params;

QUILL_API quill_session_params quill_session_default_params(void);
/* A new empty session on a model (params NULL = defaults). The model must outlive the session. */
QUILL_API quill_status quill_session_create(quill_model* model, const quill_session_params* params,
                                            quill_session** out);
QUILL_API void quill_session_free(quill_session* session);

/* Appends tokens to the context and evaluates them; afterwards quill_session_logits() holds the
 * logits after the last one. QUILL_ERR_CONTEXT_FULL past n_ctx and QUILL_ERR_INVALID_ARGUMENT for a token
 * outside the vocabulary (nothing is evaluated then). */
QUILL_API quill_status quill_session_eval(quill_session* session, const int32_t* tokens, int32_t n);
/* As quill_session_eval, but keeps the logits after every one of the n tokens (perplexity): read them
 * with quill_session_logits_ith(session, 0..n-1). */
QUILL_API quill_status quill_session_eval_all(quill_session* session, const int32_t* tokens, int32_t n);
/* [n_vocab] logits after the last evaluated token; NULL before any eval. Valid until the next eval/reset. */
QUILL_API const float* quill_session_logits(const quill_session* session);
/* [n_vocab] logits after token i of the last eval_all (i < 0 counts from the end: -1 = last);
 * NULL when out of range (after a plain eval only -1 is available). */
QUILL_API const float* quill_session_logits_ith(const quill_session* session, int32_t i);
/* Empties the context (position 0); the KV cache memory is kept for reuse. */
QUILL_API quill_status quill_session_reset(quill_session* session);
/* Tokens in the context, and the session's context length; 0 for NULL. */
QUILL_API int32_t quill_session_position(const quill_session* session);
QUILL_API int32_t quill_session_n_ctx(const quill_session* session);
/* Kernel launches of the last single-token eval (diagnostics). */
QUILL_API uint64_t quill_session_last_launches(const quill_session* session);

/* ---------------------------------------------------------------- sampler */

typedef struct quill_sampler quill_sampler;

typedef struct quill_sampler_params {
  float temp;            /* temperature; 0 = greedy (argmax after the penalty; ties -> lowest id). default 0.8 */
  int32_t top_k;         /* keep the k most likely; 0 = off. default 40 */
  float top_p;           /* nucleus: smallest prefix reaching p; 1 = off. default 0.95 */
  float min_p;           /* keep p >= min_p * p_max; 0 = off. default 0.05 */
  float repeat_penalty;  /* 1 = off. default 1 */
  int32_t repeat_last_n; /* penalty window; 0 = off, -1 = the whole history. default 64 */
  uint64_t seed;         /* RNG seed: the same seed gives the same tokens on every platform. default 0 */
} quill_sampler_params;

QUILL_API quill_sampler_params quill_sampler_default_params(void);
/* QUILL_ERR_INVALID_ARGUMENT for out-of-range parameters (temp < 0, top_p outside (0, 1], ...). */
QUILL_API quill_status quill_sampler_create(const quill_sampler_params* params, quill_sampler** out);
QUILL_API void quill_sampler_free(quill_sampler* sampler);
/* Picks a token from logits [n_vocab]; history (n_history tokens, may be NULL when 0) feeds the penalty. */
QUILL_API quill_status quill_sampler_sample(quill_sampler* sampler, const float* logits, int32_t n_vocab,
                                            const int32_t* history, int32_t n_history, int32_t* out_token);

/* ---------------------------------------------------------------- streaming generation */

/* Called once per generated token with its text (piece_len bytes, NUL-terminated; the leading space of the
 * first word after BOS is dropped, as in `quill run`). Return false to stop generating. */
typedef bool (*quill_token_callback)(int32_t token, const char* piece, int32_t piece_len, void* user_data);

/* Evaluates prompt (n_prompt tokens; 0 = continue from the session's current logits), then samples up to
 * max_tokens tokens, calling callback (may be NULL) for each and evaluating it into the context.
 * Stops early at the end-of-sequence token (not delivered), when the callback returns false, or when the
 * context is full. The repetition penalty sees every token of the session since its last reset.
 * *n_generated (may be NULL) = tokens delivered. Returns QUILL_OK for all of these stops except a full
 * context: then QUILL_ERR_CONTEXT_FULL, with the tokens delivered so far still valid. */
QUILL_API quill_status quill_generate(quill_session* session, quill_sampler* sampler, const int32_t* prompt,
                                      int32_t n_prompt, int32_t max_tokens, quill_token_callback callback,
                                      void* user_data, int32_t* n_generated);

/* ---------------------------------------------------------------- tools: quantize, calibrate, perplexity, bench */

typedef struct quill_quantize_result {
  const char* description;      /* the source model, e.g. "stories260K.gguf (llama, f32)" */
  const char* scheme;           /* canonical scheme written */
  double bits_per_weight;       /* of the per-layer matmuls, as quill_model_info */
  int64_t weights;              /* elements of the per-layer matmuls */
  int64_t file_bytes;
  int32_t native_tensors;       /* matmul tensors stored as standard ggml types */
  int32_t quill_tensors;        /* stored as quill_* tensors */
  const int32_t* outlier_dims;  /* llm-int8: the outlier dims from calib_path (NULL when none) */
  int32_t n_outlier_dims;
} quill_quantize_result;

/* Quantizes a model once and writes it as a GGUF that quill_model_load reads without re-quantizing
 * (like llama_model_quantize). in_path NULL = params->synthetic. params->quant is required; block,
 * double_quant, int8_threshold, quantize_embeddings, calib_path, smooth_alpha and act_scale are baked into
 * the file; device is unused. The file is written atomically. result (may be NULL): strings and arrays are
 * owned by the library, valid until the next call in this thread. */
QUILL_API quill_status quill_model_quantize(const char* in_path, const char* out_path, const quill_model_params* params,
                                            quill_quantize_result* result);

typedef struct quill_calibrate_params {
  int32_t ctx;              /* windows of [BOS] + ctx-1 text tokens, as perplexity (default 512) */
  int64_t max_tokens;       /* use only the first N text tokens; 0 = all (default) */
  double percentile;        /* of the "percentile" range method (default 99.99) */
  double outlier_fraction;  /* summary: a dim is an outlier when it reaches the int8 threshold in this fraction
                               of the tokens at a qkv/gate_up input (default 0.01) */
  quill_progress_callback progress_callback; /* text tokens done of those used; NULL = none */
  void* progress_callback_user_data;
} quill_calibrate_params;

QUILL_API quill_calibrate_params quill_calibrate_default_params(void);
/* Runs the model's weights in f32 on the CPU reference forward (exact, no device) over text (text_len bytes,
 * or NUL-terminated when < 0; tokenized as a whole without BOS) and writes the statistics of every matmul
 * input as JSON to out_path, for quill_model_params.calib_path. model_path NULL = model_params->synthetic;
 * of model_params (NULL = defaults) the weights, int8_threshold (outlier counting) and smooth_alpha +
 * calib_path (calibrate smoothed weights) are used. summary_json (may be NULL) receives
 *   {"model","tokens","ctx","int8_threshold","percentile","outlier_fraction","outlier_dims":[...],
 *    "sites":[{"layer","site","dim","ranges":{"absmax","percentile","mse","entropy"}}]}
 * owned by the library, valid until the next call in this thread (NULL on failure). */
QUILL_API quill_status quill_calibrate(const char* model_path, const quill_model_params* model_params,
                                       const char* text, int64_t text_len, const quill_calibrate_params* params,
                                       const char* out_path, const char** summary_json);

typedef struct quill_perplexity_params {
  int32_t ctx;                 /* window length including the BOS: chunks of ctx-1 text tokens (default 512) */
  int64_t max_tokens;          /* score only the first N text tokens; 0 = all (default) */
  int32_t max_batch;           /* tokens per device pass (default 256) */
  quill_model* reference;      /* NULL, or a model with the same vocabulary (typically the weights in f32):
                                  adds KL(reference || model) and top-1 agreement */
  quill_progress_callback progress_callback; /* windows done of all; NULL = none */
  void* progress_callback_user_data;
} quill_perplexity_params;

typedef struct quill_perplexity_result {
  double ppl, nll, nll_stderr; /* exp(mean NLL); mean NLL in nats/token and its standard error */
  int64_t tokens;              /* text tokens scored */
  int32_t windows, ctx;
  bool has_reference;          /* the fields below are set only with a reference model */
  double ref_ppl, ref_nll, kl_mean, kl_max, top1_agree;
} quill_perplexity_result;

QUILL_API quill_perplexity_params quill_perplexity_default_params(void);
/* Perplexity of model on text tokens (tokenized as a whole without BOS: quill_tokenize(..., false)) by the
 * windowed protocol of docs/QUALITY.md: consecutive chunks of ctx-1 tokens, each evaluated as [BOS] + chunk
 * in a fresh session, every token predicted once; log-softmax, NLL and KL in double. tokens may be NULL when
 * n_tokens is 0. QUILL_ERR_INVALID_ARGUMENT for ctx < 2 or past the model's context, a model without BOS, a
 * token outside the vocabulary or a reference with another vocabulary. */
QUILL_API quill_status quill_perplexity(quill_model* model, const int32_t* tokens, int64_t n_tokens,
                                        const quill_perplexity_params* params, quill_perplexity_result* out);

/* Streaming read bandwidth of a device (spec as quill_model_params.device), in bytes per second: reads
 * `bytes` (capped at the device's largest allocation and at 1 GiB) with coalesced loads, the median of reps
 * timed runs after two warm-ups. The floor that decode timings are compared against. */
QUILL_API quill_status quill_device_read_bandwidth(const char* device, uint64_t bytes, int32_t reps,
                                                   double* out_bytes_per_second);

/* Per-kernel device time of the work between begin and end on the model's device (its sessions). Needs a
 * model loaded with params.profiling; diagnostics: launches from every session of the model are counted.
 * end waits for the recorded kernels and returns
 *   {"kernels":[{"name","grid","launches","total_ns"}, ...]}  (one entry per kernel and work-group grid,
 *   grid as "768x1", most time first)
 * owned by the library, valid until the next call in this thread; NULL on failure (not recording, ...). */
QUILL_API quill_status quill_model_profile_begin(quill_model* model);
QUILL_API const char* quill_model_profile_end(quill_model* model);

#ifdef __cplusplus
}
#endif

#endif /* QUILL_H */
