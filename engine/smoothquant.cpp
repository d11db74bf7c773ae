// SmoothQuant weight source (see smoothquant.hpp).
#include "engine/smoothquant.hpp"

#include <cmath>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "engine/error.hpp"

namespace quill {

std::vector<float> smoothquant_scales(std::span<const float> act_absmax, std::initializer_list<const MatrixF32*> weights,
                                      float alpha) {
  if (!(alpha >= 0.0f && alpha <= 1.0f)) fail(ErrorKind::kInvalidArgument, "smoothquant: alpha {} outside [0, 1]", alpha);
  const size_t cols = act_absmax.size();
  std::vector<float> wmax(cols, 0.0f);
  for (const MatrixF32* w : weights) {
    if (size_t(w->cols) != cols)
      fail(ErrorKind::kInvalidArgument, "smoothquant: weight has {} columns, stats have {} channels", w->cols, cols);
    for (int64_t r = 0; r < w->rows; ++r) {
      const float* row = w->row(r);
      for (size_t j = 0; j < cols; ++j) wmax[j] = std::max(wmax[j], std::fabs(row[j]));
    }
  }
  std::vector<float> s(cols);
  for (size_t j = 0; j < cols; ++j) {
    const double x = std::max(double(act_absmax[j]), 1e-5), w = std::max(double(wmax[j]), 1e-5);
    s[j] = float(std::max(std::pow(x, double(alpha)) / std::pow(w, 1.0 - double(alpha)), 1e-5));
  }
  return s;
}

namespace {

class SmoothQuantSource final : public WeightSource {
 public:
  SmoothQuantSource(std::shared_ptr<const WeightSource> inner, const CalibrationStats& stats, float alpha)
      : inner_(std::move(inner)), alpha_(alpha) {
    const LlamaConfig& c = inner_->config();
    if (stats.n_layers != c.n_layers)
      fail(ErrorKind::kInvalidArgument, "smoothquant: calibration has {} layers, the model {}", stats.n_layers,
           c.n_layers);
    for (int l = 0; l < c.n_layers; ++l) {
      for (MatmulSite site : {MatmulSite::kQkv, MatmulSite::kGateUp}) {
        const SiteStats& s = stats.at(l, site);
        if (s.dim != c.dim)
          fail(ErrorKind::kInvalidArgument, "smoothquant: calibration layer {} has dim {}, the model {}", l, s.dim,
               c.dim);
        act_absmax_[{l, site}] = s.channel_absmax;
      }
    }
    (void)smoothquant_scales(std::span<const float>(), {}, alpha);  // validates alpha
  }

  const LlamaConfig& config() const override { return inner_->config(); }
  std::string description() const override { return fmt::format("{} +smooth {:g}", inner_->description(), alpha_); }
  Tokenizer tokenizer() const override { return inner_->tokenizer(); }

  MatrixF32 matrix(int layer, MatmulWeight which) const override {
    MatrixF32 m = inner_->matrix(layer, which);
    const MatmulSite site = group_of(which);
    if (site == MatmulSite::kOutput) return m;  // not smoothed
    const std::vector<float>& s = scales(layer, site);
    for (int64_t r = 0; r < m.rows; ++r) {
      float* row = m.row(r);
      for (int64_t j = 0; j < m.cols; ++j) row[j] *= s[size_t(j)];
    }
    return m;
  }

  std::vector<float> norm(int layer, NormWeight which) const override {
    std::vector<float> n = inner_->norm(layer, which);
    if (which == NormWeight::kOutput) return n;
    const std::vector<float>& s = scales(layer, which == NormWeight::kAttn ? MatmulSite::kQkv : MatmulSite::kGateUp);
    for (size_t j = 0; j < n.size(); ++j) n[j] /= s[j];
    return n;
  }

 private:
  // kQkv / kGateUp for the matrices that read a normed input; kOutput (meaning: none) for the others.
  static MatmulSite group_of(MatmulWeight w) {
    switch (w) {
      case MatmulWeight::kQ:
      case MatmulWeight::kK:
      case MatmulWeight::kV:
        return MatmulSite::kQkv;
      case MatmulWeight::kGate:
      case MatmulWeight::kUp:
        return MatmulSite::kGateUp;
      default:
        return MatmulSite::kOutput;
    }
  }

  const std::vector<float>& scales(int layer, MatmulSite site) const {
    std::lock_guard<std::mutex> lock(mutex_);  // Model loads layers on several threads
    auto it = scales_.find({layer, site});
    if (it != scales_.end()) return it->second;
    const std::vector<float>& act = act_absmax_.at({layer, site});
    std::vector<float> s;
    if (site == MatmulSite::kQkv) {
      const MatrixF32 q = inner_->matrix(layer, MatmulWeight::kQ), k = inner_->matrix(layer, MatmulWeight::kK),
                      v = inner_->matrix(layer, MatmulWeight::kV);
      s = smoothquant_scales(act, {&q, &k, &v}, alpha_);
    } else {
      const MatrixF32 g = inner_->matrix(layer, MatmulWeight::kGate), u = inner_->matrix(layer, MatmulWeight::kUp);
      s = smoothquant_scales(act, {&g, &u}, alpha_);
    }
    return scales_.emplace(std::make_pair(layer, site), std::move(s)).first->second;
  }

  std::shared_ptr<const WeightSource> inner_;
  float alpha_;
  std::map<std::pair<int, MatmulSite>, std::vector<float>> act_absmax_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<int, MatmulSite>, std::vector<float>> scales_;
};

}  // namespace

std::unique_ptr<WeightSource> smoothquant_weight_source(std::shared_ptr<const WeightSource> inner,
                                                        const CalibrationStats& stats, float alpha) {
  return std::make_unique<SmoothQuantSource>(std::move(inner), stats, alpha);
}

}  // namespace quill
