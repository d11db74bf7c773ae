// The CPU reference forward pass (see reference_forward.hpp): llama2.c's run.c, one token at a time.
#include "engine/reference_forward.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"
#include "engine/half.hpp"

namespace quill {

const char* matmul_site_name(MatmulSite site) {
  switch (site) {
    case MatmulSite::kQkv:
      return "qkv";
    case MatmulSite::kWo:
      return "wo";
    case MatmulSite::kGateUp:
      return "gate_up";
    case MatmulSite::kDown:
      return "down";
    case MatmulSite::kOutput:
      return "output";
  }
  return "?";
}

void reference_matvec(const MatrixF32& w, const float* x, float* y) {
  const int64_t n = w.cols;
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* row = w.row(r);
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;  // four chains: same result every run, 4x the speed
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      a0 += double(row[j]) * x[j];
      a1 += double(row[j + 1]) * x[j + 1];
      a2 += double(row[j + 2]) * x[j + 2];
      a3 += double(row[j + 3]) * x[j + 3];
    }
    for (; j < n; ++j) a0 += double(row[j]) * x[j];
    y[r] = float((a0 + a1) + (a2 + a3));
  }
}

void reference_rmsnorm(const float* x, const float* weight, int n, float eps, float* out) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double scale = 1.0 / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; ++i) out[i] = float(double(x[i]) * scale * weight[i]);
}

namespace {

void check_matrix(const MatrixF32& m, int64_t rows, int64_t cols, const char* name, int layer) {
  if (m.rows != rows || m.cols != cols || int64_t(m.data.size()) != rows * cols) {
    fail(ErrorKind::kInvalidArgument, "reference forward: layer {} {} is [{}, {}] with {} values, expected [{}, {}]",
         layer, name, m.rows, m.cols, m.data.size(), rows, cols);
  }
}

void check_vector(const std::vector<float>& v, int64_t n, const char* name, int layer) {
  if (int64_t(v.size()) != n) {
    fail(ErrorKind::kInvalidArgument, "reference forward: layer {} {} has {} values, expected {}", layer, name,
         v.size(), n);
  }
}

void check_weights(const LlamaWeightsF32& w) {
  const LlamaConfig& c = w.config;
  if (c.dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.ffn_dim <= 0 || c.vocab_size <= 0) {
    fail(ErrorKind::kInvalidArgument,
         "reference forward: bad config (dim {}, layers {}, heads {}, kv heads {}, ffn {}, "
         "vocab {})",
         c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim, c.vocab_size);
  }
  if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0) {
    fail(ErrorKind::kInvalidArgument, "reference forward: dim {} / heads {} / kv heads {} do not divide", c.dim,
         c.n_heads, c.n_kv_heads);
  }
  if (c.rope_dim < 0 || c.rope_dim > c.head_dim() || c.rope_dim % 2 != 0) {
    fail(ErrorKind::kInvalidArgument, "reference forward: rope_dim {} must be even and <= head_dim {}", c.rope_dim,
         c.head_dim());
  }
  const int64_t dim = c.dim, q_dim = int64_t(c.n_heads) * c.head_dim(), kv_dim = c.kv_dim(), ffn = c.ffn_dim;
  check_matrix(w.token_embd, c.vocab_size, dim, "token_embd", -1);
  if (int64_t(w.layers.size()) != c.n_layers) {
    fail(ErrorKind::kInvalidArgument, "reference forward: {} layers, config says {}", w.layers.size(), c.n_layers);
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayerWeightsF32& L = w.layers[l];
    check_vector(L.attn_norm, dim, "attn_norm", l);
    check_matrix(L.wq, q_dim, dim, "wq", l);
    check_matrix(L.wk, kv_dim, dim, "wk", l);
    check_matrix(L.wv, kv_dim, dim, "wv", l);
    check_matrix(L.wo, dim, q_dim, "wo", l);
    check_vector(L.ffn_norm, dim, "ffn_norm", l);
    check_matrix(L.w_gate, ffn, dim, "w_gate", l);
    check_matrix(L.w_up, ffn, dim, "w_up", l);
    check_matrix(L.w_down, dim, ffn, "w_down", l);
  }
  check_vector(w.output_norm, dim, "output_norm", -1);
  if (!(c.tied_output && w.output.data.empty())) check_matrix(w.output, c.vocab_size, dim, "output", -1);
}

}  // namespace

ReferenceLlama::ReferenceLlama(const LlamaWeightsF32& weights, ReferenceOptions options)
    : w_(weights), options_(options) {
  check_weights(w_);
  const LlamaConfig& c = w_.config;
  max_seq_len_ = options.max_seq_len > 0 ? options.max_seq_len : c.context_length;
  if (max_seq_len_ <= 0) fail(ErrorKind::kInvalidArgument, "reference forward: no context length (config or option)");
  const int q_dim = c.n_heads * c.head_dim(), kv_dim = c.kv_dim();
  x_.resize(c.dim);
  xb_.resize(c.dim);
  q_.resize(q_dim);
  k_.resize(kv_dim);
  v_.resize(kv_dim);
  heads_.resize(q_dim);
  hb_.resize(c.ffn_dim);
  hb2_.resize(c.ffn_dim);
  delta_.resize(c.dim);
  att_.resize(max_seq_len_);
  logits_.resize(c.vocab_size);
  const int rope_dim = c.rope_dim > 0 ? c.rope_dim : c.head_dim();
  inv_freq_.resize(rope_dim / 2);
  for (int i = 0; i < rope_dim / 2; ++i) inv_freq_[i] = std::pow(double(c.rope_theta), -2.0 * i / rope_dim);
  const size_t cache = size_t(c.n_layers) * max_seq_len_ * kv_dim;
  key_cache_.assign(cache, 0.0f);
  value_cache_.assign(cache, 0.0f);
}

void ReferenceLlama::emit(int layer, MatmulSite site, const std::vector<float>& v) {
  if (hook_) hook_(layer, site, v.data(), int(v.size()));
}

std::vector<float> ReferenceLlama::forward(int token, int pos) {
  const LlamaConfig& c = w_.config;
  if (token < 0 || token >= c.vocab_size) {
    fail(ErrorKind::kInvalidArgument, "reference forward: token {} outside the vocabulary [0, {})", token,
         c.vocab_size);
  }
  if (pos < 0 || pos >= max_seq_len_) {
    fail(ErrorKind::kContextFull, "reference forward: position {} outside the context [0, {})", pos, max_seq_len_);
  }
  std::copy_n(w_.token_embd.row(token), c.dim, x_.begin());

  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayerWeightsF32& L = w_.layers[l];
    reference_rmsnorm(x_.data(), L.attn_norm.data(), c.dim, c.norm_eps, xb_.data());
    emit(l, MatmulSite::kQkv, xb_);
    attention(l, pos);

    reference_rmsnorm(x_.data(), L.ffn_norm.data(), c.dim, c.norm_eps, xb_.data());
    emit(l, MatmulSite::kGateUp, xb_);
    feed_forward(l);
  }

  reference_rmsnorm(x_.data(), w_.output_norm.data(), c.dim, c.norm_eps, xb_.data());
  emit(c.n_layers, MatmulSite::kOutput, xb_);
  const MatrixF32& head = (c.tied_output && w_.output.data.empty()) ? w_.token_embd : w_.output;
  reference_matvec(head, xb_.data(), logits_.data());
  return logits_;
}

void ReferenceLlama::attention(int layer, int pos) {
  const LlamaConfig& c = w_.config;
  const LlamaLayerWeightsF32& L = w_.layers[layer];
  const int head_dim = c.head_dim(), kv_dim = c.kv_dim(), group = c.n_heads / c.n_kv_heads;
  reference_matvec(L.wq, xb_.data(), q_.data());
  reference_matvec(L.wk, xb_.data(), k_.data());
  reference_matvec(L.wv, xb_.data(), v_.data());

  // RoPE on interleaved pairs (2i, 2i+1) of each head; dims at and past rope_dim are untouched.
  for (int i = 0; i < int(inv_freq_.size()); ++i) {
    const double angle = pos * inv_freq_[i];
    const double cs = std::cos(angle), sn = std::sin(angle);
    auto rotate = [&](std::vector<float>& v, int n_heads) {
      for (int h = 0; h < n_heads; ++h) {
        float* p = v.data() + size_t(h) * head_dim + 2 * i;
        const double a = p[0], b = p[1];
        p[0] = float(a * cs - b * sn);
        p[1] = float(a * sn + b * cs);
      }
    };
    rotate(q_, c.n_heads);
    rotate(k_, c.n_kv_heads);
  }

  float* key_cache = key_cache_.data() + size_t(layer) * max_seq_len_ * kv_dim;      // [max_seq_len, kv_dim]
  float* value_cache = value_cache_.data() + size_t(layer) * max_seq_len_ * kv_dim;  // [max_seq_len, kv_dim]
  for (int i = 0; i < kv_dim; ++i) {
    key_cache[size_t(pos) * kv_dim + i] = options_.fp16_kv_cache ? round_to_half(k_[i]) : k_[i];
    value_cache[size_t(pos) * kv_dim + i] = options_.fp16_kv_cache ? round_to_half(v_[i]) : v_[i];
  }

  const double inv_sqrt_hd = 1.0 / std::sqrt(double(head_dim));
  for (int h = 0; h < c.n_heads; ++h) {
    const float* q = q_.data() + size_t(h) * head_dim;
    const size_t kv_off = size_t(h / group) * head_dim;  // grouped-query: heads share kv head h / group
    double max_score = -INFINITY;
    for (int t = 0; t <= pos; ++t) {
      const float* k = key_cache + size_t(t) * kv_dim + kv_off;
      double s = 0;
      for (int i = 0; i < head_dim; ++i) s += double(q[i]) * k[i];
      att_[t] = s * inv_sqrt_hd;
      max_score = std::max(max_score, att_[t]);
    }
    double sum = 0;
    for (int t = 0; t <= pos; ++t) sum += (att_[t] = std::exp(att_[t] - max_score));
    float* out = heads_.data() + size_t(h) * head_dim;
    for (int i = 0; i < head_dim; ++i) {
      double acc = 0;
      for (int t = 0; t <= pos; ++t) acc += att_[t] * value_cache[size_t(t) * kv_dim + kv_off + i];
      out[i] = float(acc / sum);
    }
  }
  emit(layer, MatmulSite::kWo, heads_);
  reference_matvec(L.wo, heads_.data(), delta_.data());
  for (int i = 0; i < c.dim; ++i) x_[i] += delta_[i];
}

void ReferenceLlama::feed_forward(int layer) {
  const LlamaConfig& c = w_.config;
  const LlamaLayerWeightsF32& L = w_.layers[layer];
  reference_matvec(L.w_gate, xb_.data(), hb_.data());
  reference_matvec(L.w_up, xb_.data(), hb2_.data());
  for (int i = 0; i < c.ffn_dim; ++i) {  // SwiGLU: silu(gate) * up
    const double g = hb_[i];
    hb_[i] = float(g / (1.0 + std::exp(-g)) * hb2_[i]);
  }
  emit(layer, MatmulSite::kDown, hb_);
  reference_matvec(L.w_down, hb_.data(), delta_.data());
  for (int i = 0; i < c.dim; ++i) x_[i] += delta_[i];
}

std::vector<float> ReferenceLlama::forward_batch(std::span<const int> tokens, int start_pos) {
  const size_t vocab = size_t(w_.config.vocab_size);
  if (start_pos < 0 || int64_t(start_pos) + int64_t(tokens.size()) > max_seq_len_) {
    fail(ErrorKind::kContextFull, "reference forward: positions [{}, {}) exceed the context {}", start_pos,
         int64_t(start_pos) + int64_t(tokens.size()), max_seq_len_);
  }
  std::vector<float> all(tokens.size() * vocab);  // [n_tokens, vocab]
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::vector<float>& logits = forward(tokens[i], start_pos + int(i));
    std::copy(logits.begin(), logits.end(), all.begin() + i * vocab);
  }
  return all;
}

}  // namespace quill
