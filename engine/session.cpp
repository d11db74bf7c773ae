// Session: the Llama layer schedule on the device (see session.hpp).
#include "engine/session.hpp"

#include <algorithm>

#include "engine/error.hpp"

namespace quill {

Session::Session(std::shared_ptr<Model> model, const SessionOptions& options)
    : model_(std::move(model)),
      device_(model_->device()),
      options_(options),
      n_ctx_(options.n_ctx > 0 ? options.n_ctx : std::min(model_->config().context_length, 4096)),
      kernels_(device_,
               {.kv_f32 = options.kv_f32 || model_->scheme() == QuantScheme::F32, .embd_f32 = model_->embd_f32()}),
      workspace_(device_) {
  const LlamaConfig& c = model_->config();
  if (n_ctx_ <= 0) fail(ErrorKind::kInvalidArgument, "context length must be positive");
  if (options_.max_batch <= 0) fail(ErrorKind::kInvalidArgument, "max_batch must be positive");
  const size_t cache_bytes = size_t(n_ctx_) * c.kv_dim() * (kernels_.kv_f32() ? 4 : 2);
  check_cache_fits(cache_bytes);
  for (int l = 0; l < c.n_layers; ++l) {
    k_cache_.emplace_back(device_, cache_bytes);
    v_cache_.emplace_back(device_, cache_bytes);
  }
  decode_partial_ =
      host::Buffer(device_, host::TransformerKernels::decode_partial_bytes(n_ctx_, c.n_heads, c.head_dim()));
  decode_done_ = host::Buffer(device_, size_t(c.n_heads) * sizeof(int32_t));
  decode_done_.fill_bytes(0);
  ensure_scratch(1);
}

// Refuses (kOutOfMemory, with the sizes) a KV cache the device cannot hold next to what is already
// allocated, before allocating any of it: OpenCL allocates lazily, so an oversized cache would
// otherwise fail in the middle of the first eval.
void Session::check_cache_fits(size_t layer_bytes) const {
  const host::DeviceInfo& info = device_.info();
  const LlamaConfig& c = model_->config();
  const double total = 2.0 * double(layer_bytes) * c.n_layers;
  if (layer_bytes > info.max_alloc_bytes)
    fail(ErrorKind::kOutOfMemory,
         "KV cache of {} tokens: {} bytes per layer and tensor exceed {}'s maximum allocation of {} bytes "
         "(use a shorter context)",
         n_ctx_, layer_bytes, info.name, info.max_alloc_bytes);
  const double free_bytes = double(info.global_mem_bytes) - double(device_.allocated_bytes());
  if (total > free_bytes)
    fail(ErrorKind::kOutOfMemory,
         "KV cache of {} tokens needs {:.0f} MiB but {} has {:.0f} MiB left of {:.0f} MiB (use a shorter context)",
         n_ctx_, total / 1048576.0, info.name, free_bytes / 1048576.0, double(info.global_mem_bytes) / 1048576.0);
}

void Session::ensure_scratch(int n) {
  if (n <= scratch_tokens_) return;
  const LlamaConfig& c = model_->config();
  const size_t f = sizeof(float);
  const size_t q_dim = size_t(c.n_heads) * c.head_dim();
  tokens_ = host::Buffer(device_, size_t(n) * sizeof(int32_t));            // [n] token ids
  x_ = host::Buffer(device_, size_t(n) * c.dim * f);                       // [n, dim] residual stream
  qkv_ = host::Buffer(device_, size_t(n) * (q_dim + 2 * c.kv_dim()) * f);  // [n, q_dim + 2 kv_dim]
  q_ = host::Buffer(device_, size_t(n) * q_dim * f);                       // [n, q_dim] rotated queries
  att_ = host::Buffer(device_, size_t(n) * q_dim * f);                     // [n, q_dim] attention output
  gate_up_ = host::Buffer(device_, size_t(n) * 2 * c.ffn_dim * f);         // [n, 2 ffn]
  last_ = host::Buffer(device_, size_t(c.dim) * f);                        // [1, dim] last token's residual
  logits_buf_ = host::Buffer(device_, size_t(n) * c.vocab_size * f);       // [n, vocab]
  scratch_tokens_ = n;
}

void Session::eval(std::span<const int32_t> tokens, bool all_logits) {
  const LlamaConfig& c = model_->config();
  if (tokens.empty()) fail(ErrorKind::kInvalidArgument, "eval needs at least one token");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      fail(ErrorKind::kInvalidArgument, "token id {} at index {} is outside the vocabulary [0, {})", tokens[i], i,
           c.vocab_size);
  if (pos_ + int64_t(tokens.size()) > n_ctx_)
    fail(ErrorKind::kContextFull, "context full: {} tokens in context + {} new > n_ctx {}", pos_, tokens.size(),
         n_ctx_);
  logits_.assign(all_logits ? tokens.size() * size_t(c.vocab_size) : size_t(c.vocab_size), 0.0f);
  const uint64_t launches_before = device_.launch_count();
  // Each batch's token upload is asynchronous and reads from this staging copy, so it must not change
  // until the eval's final blocking read (a later batch overwriting it raced with a backed-up queue).
  token_staging_.assign(tokens.begin(), tokens.end());
  for (size_t start = 0; start < tokens.size(); start += size_t(options_.max_batch)) {
    const int n = int(std::min(tokens.size() - start, size_t(options_.max_batch)));
    const bool last_batch = start + size_t(n) == tokens.size();
    float* out = all_logits ? logits_.data() + start * size_t(c.vocab_size) : (last_batch ? logits_.data() : nullptr);
    run_batch(token_staging_.data() + start, n, all_logits, out);
  }
  if (tokens.size() == 1) last_launches_ = device_.launch_count() - launches_before;
}

void Session::run_batch(const int32_t* tokens, int n, bool all_logits, float* logits_out) {
  const LlamaConfig& c = model_->config();
  ensure_scratch(n);
  const int q_dim = c.n_heads * c.head_dim();
  tokens_.write_async(tokens, size_t(n) * sizeof(int32_t));  // tokens: token_staging_, stable until eval returns
  kernels_.embed(tokens_, model_->token_embd(), x_, n, c.dim);
  using Kind = InputTransform::Kind;
  for (int l = 0; l < c.n_layers; ++l) {
    const ModelLayer& layer = model_->layers()[size_t(l)];
    layer.qkv->forward(x_, qkv_, n, false, workspace_, {Kind::kRmsNorm, &layer.attn_norm, c.norm_eps});
    const int rope_dim = c.rope_dim > 0 ? c.rope_dim : c.head_dim();
    if (n == 1) {  // decode: RoPE + cache write + attention in one launch
      kernels_.attention_decode(qkv_, k_cache_[size_t(l)], v_cache_[size_t(l)], att_, decode_partial_, decode_done_,
                                c.n_heads, c.n_kv_heads, c.head_dim(), rope_dim, c.rope_theta, pos_,
                                layer.attention_prefetch);
    } else {
      kernels_.rope_kv(qkv_, q_, k_cache_[size_t(l)], v_cache_[size_t(l)], n, q_dim, c.kv_dim(), c.head_dim(), rope_dim,
                       c.rope_theta, pos_);
      kernels_.attention(q_, k_cache_[size_t(l)], v_cache_[size_t(l)], att_, n, c.n_heads, c.n_kv_heads, c.head_dim(),
                         pos_);
    }
    layer.wo->forward(att_, x_, n, true, workspace_);
    const InputTransform ffn_norm{Kind::kRmsNorm, &layer.ffn_norm, c.norm_eps};
    if (layer.gate_up->fuses_swiglu_output(n)) {  // gate_up_ holds h = silu(gate) * up: [n, ffn]
      layer.gate_up->forward_swiglu(x_, gate_up_, n, workspace_, ffn_norm);
      layer.down->forward(gate_up_, x_, n, true, workspace_);
    } else {  // gate_up_ holds gate | up: [n, 2 ffn]; SwiGLU goes with down's input
      layer.gate_up->forward(x_, gate_up_, n, false, workspace_, ffn_norm);
      layer.down->forward(gate_up_, x_, n, true, workspace_, {Kind::kSwiGlu});
    }
  }
  pos_ += n;
  if (!logits_out) return;
  const InputTransform final_norm{Kind::kRmsNorm, &model_->output_norm(), c.norm_eps};
  const size_t row = size_t(c.vocab_size) * sizeof(float);
  if (all_logits) {
    model_->output().forward(x_, logits_buf_, n, false, workspace_, final_norm);
    logits_buf_.read(logits_out, size_t(n) * row);
  } else {
    last_.copy_from(x_, size_t(c.dim) * sizeof(float), size_t(n - 1) * c.dim * sizeof(float));
    model_->output().forward(last_, logits_buf_, 1, false, workspace_, final_norm);
    logits_buf_.read(logits_out, row);
  }
}

}  // namespace quill
