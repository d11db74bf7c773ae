// Synthetic Llama weights (see synthetic_model.hpp). The recipe, with D = dim, L = n_layers,
// z = an approximately N(0, 1) value hashed from (seed, layer, matrix, element index), O = the
// planted outlier dims with fixed signs s_d, A = outlier_residual, G = outlier_norm_gain:
//
//   token_embd [V, D]   z, except column d in O: s_d * A * (1 + 0.01 z)   -> residual carries +-A in O
//   attn/ffn/output norm  1 + 0.1 z, except d in O: G * (1 + 0.05 z)       -> normed inputs ~ A*G/rms in O
//                       (output_norm has no gain when the head is tied: it reads token_embd's big columns)
//   wq wk wv gate up output [out, D]  z / sqrt(D), columns in O times 1/(A*G): an outlier channel
//                       contributes like any other one, as trained weights arrange (LLM.int8())
//   wo [D, Q], w_down [D, F]  z / sqrt(in) / sqrt(L), rows in O times 0.1: the residual's outliers
//                       persist through every layer and the residual's scale stays ~1 at any depth
//
// Every element is mix64(key + index * golden) for a key derived from (seed, layer, matrix), so a
// matrix is generated alone, in any order, on any number of threads, with identical bits.
#include "engine/synthetic_model.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <thread>

#include "engine/error.hpp"
#include "engine/rng.hpp"

namespace quill {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

LlamaConfig make_config(const char* name, int dim, int layers, int heads, int kv_heads, int ffn, int vocab, int ctx,
                        float theta, bool tied) {
  LlamaConfig c;
  c.name = name;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.ffn_dim = ffn;
  c.vocab_size = vocab;
  c.context_length = ctx;
  c.rope_dim = dim / heads;
  c.rope_theta = theta;
  c.norm_eps = 1e-5f;
  c.tied_output = tied;
  return c;
}

struct Preset {
  std::string_view name;
  LlamaConfig config;
  int n_outliers;
};

const std::array<Preset, 4>& presets() {
  // tiny: the default model of `quill run` — GQA (8 heads on 4 kv heads), head_dim 32, and an FFN of 672
  // (a multiple of 32 for block formats, not of 64 or 128).
  static const std::array<Preset, 4> table = {{
      {"tiny", make_config("synthetic-tiny", 256, 4, 8, 4, 672, 512, 1024, 10000.0f, false), 5},
      {"stories260k-shape", make_config("synthetic-stories260k-shape", 64, 5, 8, 4, 172, 512, 512, 10000.0f, true), 3},
      {"llama-2-7b", make_config("synthetic-llama-2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, false), 6},
      {"llama-3-8b", make_config("synthetic-llama-3-8b", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, false), 6},
  }};
  return table;
}

const std::array<std::string_view, 4> kPresetNames = {"tiny", "stories260k-shape", "llama-2-7b", "llama-3-8b"};

uint64_t tensor_key(uint64_t seed, int layer, uint64_t tag) {
  return mix64(mix64(seed ^ 0x51e7c0de5eedull) + (tag << 32) + uint64_t(uint32_t(layer + 1)) * kGolden);
}

// Tags of the hashed tensors (part of the recipe: changing one changes every synthetic model).
constexpr uint64_t kTagOutlierDims = 100, kTagNorm = 200;
uint64_t matrix_tag(MatmulWeight which) { return uint64_t(which) + 1; }

void check_spec(const SyntheticSpec& spec) {
  const LlamaConfig& c = spec.config;
  if (c.dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.ffn_dim <= 0 || c.vocab_size <= 0 ||
      c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0) {
    fail(ErrorKind::kInvalidArgument,
         "synthetic model '{}': bad shape (dim {}, layers {}, heads {}, kv heads {}, "
         "ffn {}, vocab {})",
         spec.preset, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim, c.vocab_size);
  }
  if (spec.n_outliers < 0 || spec.n_outliers > c.dim / 4) {
    fail(ErrorKind::kInvalidArgument, "synthetic model '{}': {} outlier dims for dim {} (at most dim/4)", spec.preset,
         spec.n_outliers, c.dim);
  }
  if (!(spec.outlier_residual > 0.0f) || !(spec.outlier_norm_gain > 0.0f)) {
    fail(ErrorKind::kInvalidArgument, "synthetic model '{}': outlier scales must be > 0", spec.preset);
  }
}

// Fills rows [r0, r1) of out with z * row_scale[r] * col_scale[c], except the (column, value) pairs of
// `fixed`, which get value * (1 + 0.01 z).
void fill_rows(MatrixF32& out, uint64_t key, const std::vector<float>& row_scale, const std::vector<float>& col_scale,
               const std::vector<std::pair<int, float>>& fixed, int64_t r0, int64_t r1) {
  const int64_t cols = out.cols;
  for (int64_t r = r0; r < r1; ++r) {
    float* row = out.row(r);
    const uint64_t base = key + uint64_t(r * cols) * kGolden;
    const float rs = row_scale[r];
    for (int64_t c = 0; c < cols; ++c)
      row[c] = u64_to_normalish(mix64(base + uint64_t(c) * kGolden)) * rs * col_scale[c];
    for (const auto& [c, value] : fixed) {
      row[c] = value * (1.0f + 0.01f * u64_to_normalish(mix64(base + uint64_t(c) * kGolden)));
    }
  }
}

}  // namespace

std::span<const std::string_view> synthetic_preset_names() { return kPresetNames; }

SyntheticSpec synthetic_preset(std::string_view name, uint64_t seed) {
  for (const Preset& p : presets()) {
    if (p.name == name) {
      SyntheticSpec spec;
      spec.preset = std::string(p.name);
      spec.config = p.config;
      spec.seed = seed;
      spec.n_outliers = p.n_outliers;
      return spec;
    }
  }
  std::string valid;
  for (std::string_view n : kPresetNames) valid += (valid.empty() ? "" : ", ") + std::string(n);
  fail(ErrorKind::kInvalidArgument, "unknown synthetic model '{}' (valid: {})", name, valid);
}

std::vector<int> synthetic_outlier_dims(const SyntheticSpec& spec) {
  check_spec(spec);
  std::vector<int> dims;
  const uint64_t key = tensor_key(spec.seed, -1, kTagOutlierDims);
  for (uint64_t k = 0; int(dims.size()) < spec.n_outliers; ++k) {
    const int d = int(mix64(key + k * kGolden) % uint64_t(spec.config.dim));
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) dims.push_back(d);
  }
  std::sort(dims.begin(), dims.end());
  return dims;
}

std::pair<int64_t, int64_t> synthetic_matrix_shape(const LlamaConfig& c, MatmulWeight which) {
  const int64_t dim = c.dim, q_dim = int64_t(c.n_heads) * c.head_dim(), kv_dim = c.kv_dim(), ffn = c.ffn_dim;
  switch (which) {
    case MatmulWeight::kTokenEmbd:
      return {c.vocab_size, dim};
    case MatmulWeight::kQ:
      return {q_dim, dim};
    case MatmulWeight::kK:
      return {kv_dim, dim};
    case MatmulWeight::kV:
      return {kv_dim, dim};
    case MatmulWeight::kO:
      return {dim, q_dim};
    case MatmulWeight::kGate:
      return {ffn, dim};
    case MatmulWeight::kUp:
      return {ffn, dim};
    case MatmulWeight::kDown:
      return {dim, ffn};
    case MatmulWeight::kOutput:
      return {c.vocab_size, dim};
  }
  fail(ErrorKind::kInvalidArgument, "synthetic_matrix_shape: bad MatmulWeight {}", int(which));
}

void synthetic_matrix(const SyntheticSpec& spec, int layer, MatmulWeight which, MatrixF32& out) {
  check_spec(spec);
  const LlamaConfig& c = spec.config;
  const bool global = which == MatmulWeight::kTokenEmbd || which == MatmulWeight::kOutput;
  if (!global && (layer < 0 || layer >= c.n_layers)) {
    fail(ErrorKind::kInvalidArgument, "synthetic model '{}': layer {} outside [0, {})", spec.preset, layer, c.n_layers);
  }
  if (which == MatmulWeight::kOutput && c.tied_output) which = MatmulWeight::kTokenEmbd;
  if (global) layer = -1;

  const auto [rows, cols] = synthetic_matrix_shape(c, which);
  out.rows = rows;
  out.cols = cols;
  out.data.resize(size_t(rows * cols));

  const std::vector<int> outliers = synthetic_outlier_dims(spec);
  const uint64_t key = tensor_key(spec.seed, layer, matrix_tag(which));
  std::vector<float> row_scale(rows, 1.0f), col_scale(cols, 1.0f);
  std::vector<std::pair<int, float>> fixed;  // (column, value) of the token_embd outlier columns
  switch (which) {
    case MatmulWeight::kTokenEmbd: {
      const uint64_t sign_key = tensor_key(spec.seed, -1, kTagOutlierDims + 1);
      for (int d : outliers)
        fixed.emplace_back(d, (mix64(sign_key + uint64_t(d)) & 1 ? -1.0f : 1.0f) * spec.outlier_residual);
      break;
    }
    case MatmulWeight::kQ:
    case MatmulWeight::kK:
    case MatmulWeight::kV:
    case MatmulWeight::kGate:
    case MatmulWeight::kUp:
    case MatmulWeight::kOutput: {
      std::fill(col_scale.begin(), col_scale.end(), float(1.0 / std::sqrt(double(cols))));
      for (int d : outliers) col_scale[d] /= spec.outlier_residual * spec.outlier_norm_gain;
      break;
    }
    case MatmulWeight::kO:
    case MatmulWeight::kDown: {
      std::fill(col_scale.begin(), col_scale.end(), float(1.0 / std::sqrt(double(cols) * c.n_layers)));
      for (int d : outliers) row_scale[d] = 0.1f;
      break;
    }
  }

  // Split rows over threads for large matrices; every element depends only on its index.
  const int64_t elements = rows * cols;
  const int64_t n_threads =
      std::clamp<int64_t>(std::min<int64_t>(std::thread::hardware_concurrency(), elements >> 20), 1, 32);
  if (n_threads == 1) {
    fill_rows(out, key, row_scale, col_scale, fixed, 0, rows);
    return;
  }
  std::vector<std::jthread> threads;
  for (int64_t t = 0; t < n_threads; ++t) {
    const int64_t r0 = rows * t / n_threads, r1 = rows * (t + 1) / n_threads;
    threads.emplace_back([&, r0, r1] { fill_rows(out, key, row_scale, col_scale, fixed, r0, r1); });
  }
}

std::vector<float> synthetic_norm(const SyntheticSpec& spec, int layer, NormWeight which) {
  check_spec(spec);
  const LlamaConfig& c = spec.config;
  if (which == NormWeight::kOutput) {
    layer = -1;
  } else if (layer < 0 || layer >= c.n_layers) {
    fail(ErrorKind::kInvalidArgument, "synthetic model '{}': layer {} outside [0, {})", spec.preset, layer, c.n_layers);
  }
  const uint64_t key = tensor_key(spec.seed, layer, kTagNorm + uint64_t(which));
  std::vector<float> w(c.dim);  // [dim]
  for (int i = 0; i < c.dim; ++i) w[i] = 1.0f + 0.1f * u64_to_normalish(mix64(key + uint64_t(i) * kGolden));
  // A tied head reads token_embd, whose outlier columns are large: no gain there, or every logit would
  // carry a huge common offset (harmless for softmax, hostile to absolute-tolerance tests).
  if (which == NormWeight::kOutput && c.tied_output) return w;
  for (int d : synthetic_outlier_dims(spec)) {
    w[d] = spec.outlier_norm_gain * (1.0f + 0.05f * u64_to_normalish(mix64(key + uint64_t(d) * kGolden)));
  }
  return w;
}

LlamaWeightsF32 make_synthetic_llama(const SyntheticSpec& spec) {
  check_spec(spec);
  LlamaWeightsF32 w;
  w.config = spec.config;
  if (w.config.rope_dim == 0) w.config.rope_dim = w.config.head_dim();
  synthetic_matrix(spec, -1, MatmulWeight::kTokenEmbd, w.token_embd);
  w.layers.resize(spec.config.n_layers);
  for (int l = 0; l < spec.config.n_layers; ++l) {
    LlamaLayerWeightsF32& L = w.layers[l];
    L.attn_norm = synthetic_norm(spec, l, NormWeight::kAttn);
    synthetic_matrix(spec, l, MatmulWeight::kQ, L.wq);
    synthetic_matrix(spec, l, MatmulWeight::kK, L.wk);
    synthetic_matrix(spec, l, MatmulWeight::kV, L.wv);
    synthetic_matrix(spec, l, MatmulWeight::kO, L.wo);
    L.ffn_norm = synthetic_norm(spec, l, NormWeight::kFfn);
    synthetic_matrix(spec, l, MatmulWeight::kGate, L.w_gate);
    synthetic_matrix(spec, l, MatmulWeight::kUp, L.w_up);
    synthetic_matrix(spec, l, MatmulWeight::kDown, L.w_down);
  }
  w.output_norm = synthetic_norm(spec, -1, NormWeight::kOutput);
  if (spec.config.tied_output) {
    w.output = w.token_embd;
  } else {
    synthetic_matrix(spec, -1, MatmulWeight::kOutput, w.output);
  }
  return w;
}

}  // namespace quill
