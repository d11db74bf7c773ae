// Perplexity and KL divergence over a text by the windowed protocol (see perplexity.hpp).
#include "engine/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/quantize_matrix.hpp"
#include "engine/session.hpp"

namespace quill {

std::vector<PerplexityWindow> perplexity_windows(int64_t n_tokens, int ctx) {
  if (ctx < 2) fail(ErrorKind::kInvalidArgument, "perplexity: ctx must be at least 2 (BOS + one token), got {}", ctx);
  std::vector<PerplexityWindow> windows;
  const int64_t chunk = ctx - 1;
  for (int64_t begin = 0; begin < n_tokens; begin += chunk)
    windows.push_back({begin, std::min(chunk, n_tokens - begin)});
  return windows;
}

double PerplexityResult::ppl() const { return std::exp(nll()); }
double PerplexityResult::reference_ppl() const { return std::exp(reference_nll()); }

double PerplexityResult::nll_stderr() const {
  if (tokens < 2) return 0.0;
  const double n = double(tokens), mean = nll_sum / n;
  const double var = std::max(0.0, (nll_sq_sum / n - mean * mean) * n / (n - 1));
  return std::sqrt(var / n);
}

namespace {

// log sum exp(logits) in double, max subtracted. [n]
double log_sum_exp(const float* logits, int n) {
  double max = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) max = std::max(max, double(logits[i]));
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - max);
  return max + std::log(sum);
}

int argmax(const float* v, int n) { return int(std::max_element(v, v + n) - v); }

}  // namespace

double token_nll(const float* logits, int n, int target) { return log_sum_exp(logits, n) - double(logits[target]); }

double kl_divergence(const float* p_logits, const float* q_logits, int n) {
  const double lse_p = log_sum_exp(p_logits, n), lse_q = log_sum_exp(q_logits, n);
  double kl = 0;
  for (int i = 0; i < n; ++i) {
    const double log_p = double(p_logits[i]) - lse_p, log_q = double(q_logits[i]) - lse_q;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(kl, 0.0);  // rounding can leave -1e-17 for identical distributions
}

PerplexityResult compute_perplexity(const std::shared_ptr<Model>& model, std::span<const int32_t> text_tokens,
                                    const PerplexityOptions& options, const std::shared_ptr<Model>& reference,
                                    const PerplexityProgress& progress) {
  const int vocab = model->config().vocab_size;
  const int32_t bos = model->tokenizer().bos_id();
  if (bos < 0) fail(ErrorKind::kInvalidArgument, "perplexity: the model's vocabulary has no BOS token");
  if (options.ctx > model->config().context_length)
    fail(ErrorKind::kInvalidArgument, "perplexity: ctx {} is past the model's context length {}", options.ctx,
         model->config().context_length);
  if (reference && reference->config().vocab_size != vocab)
    fail(ErrorKind::kInvalidArgument, "perplexity: the reference model has {} tokens, the model {}",
         reference->config().vocab_size, vocab);
  if (options.max_tokens > 0 && int64_t(text_tokens.size()) > options.max_tokens)
    text_tokens = text_tokens.first(size_t(options.max_tokens));
  for (int32_t t : text_tokens)
    if (t < 0 || t >= vocab) fail(ErrorKind::kInvalidArgument, "perplexity: token id {} outside the vocabulary", t);

  PerplexityResult r;
  r.ctx = options.ctx;
  r.has_reference = reference != nullptr;
  const std::vector<PerplexityWindow> windows = perplexity_windows(int64_t(text_tokens.size()), options.ctx);
  r.windows = int(windows.size());
  const SessionOptions session_options{.n_ctx = options.ctx, .max_batch = options.max_batch};
  Session session(model, session_options);
  std::unique_ptr<Session> ref_session = reference ? std::make_unique<Session>(reference, session_options) : nullptr;

  std::vector<int32_t> input;  // [BOS] + chunk minus its last token: position i predicts chunk[i]
  for (size_t w = 0; w < windows.size(); ++w) {
    const PerplexityWindow& win = windows[w];
    const std::span<const int32_t> chunk = text_tokens.subspan(size_t(win.begin), size_t(win.size));
    input.assign(1, bos);
    input.insert(input.end(), chunk.begin(), chunk.end() - 1);
    session.reset();
    session.eval(input, /*all_logits=*/true);
    const float* logits = session.logits().data();  // [size, vocab]
    const float* ref_logits = nullptr;
    if (ref_session) {
      ref_session->reset();
      ref_session->eval(input, /*all_logits=*/true);
      ref_logits = ref_session->logits().data();  // [size, vocab]
    }
    double window_sum = 0;
    for (int64_t i = 0; i < win.size; ++i) {
      const float* row = logits + i * vocab;
      const double nll = token_nll(row, vocab, chunk[size_t(i)]);
      window_sum += nll;
      r.nll_sq_sum += nll * nll;
      if (ref_logits) {
        const float* ref_row = ref_logits + i * vocab;
        r.reference_nll_sum += token_nll(ref_row, vocab, chunk[size_t(i)]);
        const double kl = kl_divergence(ref_row, row, vocab);
        r.kl_sum += kl;
        r.kl_max = std::max(r.kl_max, kl);
        r.top1_agree_count += argmax(ref_row, vocab) == argmax(row, vocab);
      }
    }
    r.nll_sum += window_sum;
    r.tokens += win.size;
    r.window_nll.push_back(window_sum / double(win.size));
    if (progress) progress(int(w + 1), r.windows);
  }
  return r;
}

namespace {

class FakeQuantSource : public WeightSource {
 public:
  FakeQuantSource(std::unique_ptr<WeightSource> inner, QuantScheme scheme, const QuantParams& params)
      : inner_(std::move(inner)), scheme_(scheme), params_(params), outliers_(inner_->known_outlier_dims()) {
    validate_quant_params(scheme, params);
  }
  const LlamaConfig& config() const override { return inner_->config(); }
  std::string description() const override {
    return fmt::format("{} (fake-quant {})", inner_->description(), scheme_name(scheme_));
  }
  MatrixF32 matrix(int layer, MatmulWeight which) const override {
    MatrixF32 m = inner_->matrix(layer, which);
    if (scheme_ == QuantScheme::F32) return m;
    if (which == MatmulWeight::kTokenEmbd || which == MatmulWeight::kOutput) {  // stored fp16 by Model
      for (float& v : m.data) v = round_to_half(v);
      return m;
    }
    // Model quantizes q|k|v and gate|up as one stacked matrix: the same per-row result for every
    // scheme whose scales are per row or per block within a row (all but a per-tensor k-means).
    const bool with_outliers = which == MatmulWeight::kQ || which == MatmulWeight::kK ||
                               which == MatmulWeight::kV || which == MatmulWeight::kGate ||
                               which == MatmulWeight::kUp;
    return dequantize(quantize(m, scheme_, params_, with_outliers ? std::span<const int32_t>(outliers_)
                                                                  : std::span<const int32_t>()));
  }
  std::vector<float> norm(int layer, NormWeight which) const override { return inner_->norm(layer, which); }
  Tokenizer tokenizer() const override { return inner_->tokenizer(); }
  std::vector<int32_t> known_outlier_dims() const override { return outliers_; }

 private:
  std::unique_ptr<WeightSource> inner_;
  QuantScheme scheme_;
  QuantParams params_;
  std::vector<int32_t> outliers_;
};

}  // namespace

std::unique_ptr<WeightSource> fake_quant_weight_source(std::unique_ptr<WeightSource> inner, QuantScheme scheme,
                                                       const QuantParams& params) {
  return std::make_unique<FakeQuantSource>(std::move(inner), scheme, params);
}

}  // namespace quill
