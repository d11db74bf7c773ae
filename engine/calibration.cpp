// Calibration statistics, range methods and their JSON form (see calibration.hpp).
#include "engine/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "engine/perplexity.hpp"

namespace quill {

namespace {
constexpr std::array<std::string_view, 4> kMethodNames = {"absmax", "percentile", "mse", "entropy"};
constexpr std::array<std::string_view, 5> kSiteNames = {"qkv", "wo", "gate_up", "down", "output"};
constexpr int kSitesPerLayer = 4;

std::string_view site_json_name(MatmulSite s) { return kSiteNames[size_t(s)]; }
size_t site_index(int n_layers, int layer, MatmulSite site) {
  return site == MatmulSite::kOutput ? size_t(n_layers) * kSitesPerLayer : size_t(layer) * kSitesPerLayer + size_t(site);
}
}  // namespace

RangeMethod parse_range_method(std::string_view name) {
  for (size_t i = 0; i < kMethodNames.size(); ++i)
    if (name == kMethodNames[i]) return RangeMethod(i);
  fail(ErrorKind::kInvalidArgument, "unknown range method '{}' (valid: absmax percentile mse entropy)", name);
}
std::string_view range_method_name(RangeMethod method) { return kMethodNames.at(size_t(method)); }

MatmulSite parse_matmul_site(std::string_view name) {
  for (size_t i = 0; i < kSiteNames.size(); ++i)
    if (name == kSiteNames[i]) return MatmulSite(i);
  fail(ErrorKind::kFormat, "unknown matmul site '{}' (valid: qkv wo gate_up down output)", name);
}

// ---- histogram ----

void AbsHistogram::add(const float* x, int64_t n) {
  const int nb = bins();
  for (int64_t i = 0; i < n; ++i) {
    const double v = std::fabs(double(x[i]));
    if (!std::isfinite(v)) fail(ErrorKind::kInvalidArgument, "calibration: non-finite activation");
    if (v > 0 && range_ == 0) range_ = std::exp2(std::floor(std::log2(v)) + 1);  // v < range
    while (v >= range_ && range_ > 0) {  // double the range, merging bins pairwise
      for (int b = 0; b < nb / 2; ++b) counts_[size_t(b)] = counts_[size_t(2 * b)] + counts_[size_t(2 * b + 1)];
      std::fill(counts_.begin() + nb / 2, counts_.end(), 0);
      range_ *= 2;
    }
    const int b = range_ > 0 ? std::min(nb - 1, int(v / range_ * nb)) : 0;
    ++counts_[size_t(b)];
  }
}

uint64_t AbsHistogram::total() const {
  uint64_t t = 0;
  for (uint64_t c : counts_) t += c;
  return t;
}

double histogram_percentile_amax(const AbsHistogram& h, double percentile) {
  const uint64_t total = h.total();
  if (total == 0) return 0;
  const double target = percentile / 100.0 * double(total);
  uint64_t cum = 0;
  for (int b = 0; b < h.bins(); ++b) {
    cum += h.counts()[size_t(b)];
    if (double(cum) >= target) return double(b + 1) * h.bin_width();  // upper edge of that bin
  }
  return h.range();
}

double histogram_mse_amax(const AbsHistogram& h, int start_bin) {
  const auto& c = h.counts();
  const double w = h.bin_width();
  if (h.total() == 0 || w == 0) return 0;
  std::vector<int> nonzero;
  for (int b = 0; b < h.bins(); ++b)
    if (c[size_t(b)]) nonzero.push_back(b);
  double best = std::numeric_limits<double>::infinity(), best_amax = h.range();
  for (int i = std::min(start_bin, h.bins()); i <= h.bins(); ++i) {
    const double amax = double(i) * w, scale = amax / 127.0;
    double err = 0;
    for (int b : nonzero) {
      const double x = (double(b) + 0.5) * w;
      const double q = std::min(std::nearbyint(x / scale), 127.0) * scale;
      err += double(c[size_t(b)]) * (x - q) * (x - q);
    }
    if (err < best) best = err, best_amax = amax;
  }
  return best_amax;
}

double histogram_entropy_amax(const AbsHistogram& h, int levels, int start_bin) {
  const auto& c = h.counts();
  const int nb = h.bins();
  if (h.total() == 0 || h.bin_width() == 0) return 0;
  std::vector<double> tail(size_t(nb) + 1, 0);  // tail[i] = sum c[i..nb)
  for (int b = nb - 1; b >= 0; --b) tail[size_t(b)] = tail[size_t(b) + 1] + double(c[size_t(b)]);
  std::vector<double> group_sum(static_cast<size_t>(levels)), p(static_cast<size_t>(nb)), q(static_cast<size_t>(nb));
  std::vector<int> group_nonzero(static_cast<size_t>(levels));
  // MXNet / TensorRT smoothing: zeros get eps, the nonzero entries pay for it, so KL stays finite.
  auto smooth = [](std::vector<double>& d, int n) {
    constexpr double eps = 1e-4;
    int zeros = 0;
    for (int b = 0; b < n; ++b) zeros += d[size_t(b)] == 0;
    if (zeros == 0 || zeros == n) return;
    const double eps1 = eps * double(zeros) / double(n - zeros);
    for (int b = 0; b < n; ++b) d[size_t(b)] += d[size_t(b)] == 0 ? eps : -eps1;
  };
  double best = std::numeric_limits<double>::infinity();
  int best_i = nb;
  for (int i = std::min(start_bin, nb); i <= nb; ++i) {
    // P: bins [0, i) with the clipped tail folded into bin i-1 (normalized).
    const double total = tail[0];
    for (int b = 0; b < i; ++b) p[size_t(b)] = double(c[size_t(b)]) + (b == i - 1 ? tail[size_t(i)] : 0.0);
    // Q: the unclipped bins [0, i) merged into `levels` groups, each spread over the group's bins where P is nonzero.
    std::fill(group_sum.begin(), group_sum.end(), 0.0);
    std::fill(group_nonzero.begin(), group_nonzero.end(), 0);
    for (int b = 0; b < i; ++b) {
      const int g = int(int64_t(b) * levels / i);
      group_sum[size_t(g)] += double(c[size_t(b)]);
      if (p[size_t(b)] != 0) ++group_nonzero[size_t(g)];
    }
    double q_total = 0;
    for (int b = 0; b < i; ++b) {
      const int g = int(int64_t(b) * levels / i);
      q[size_t(b)] = p[size_t(b)] != 0 ? group_sum[size_t(g)] / group_nonzero[size_t(g)] : 0.0;
      q_total += q[size_t(b)];
    }
    if (q_total == 0) continue;
    for (int b = 0; b < i; ++b) p[size_t(b)] /= total, q[size_t(b)] /= q_total;
    smooth(p, i);
    smooth(q, i);
    double kl = 0;
    for (int b = 0; b < i; ++b)
      if (p[size_t(b)] > 0 && q[size_t(b)] > 0) kl += p[size_t(b)] * std::log(p[size_t(b)] / q[size_t(b)]);
    if (kl <= best) best = kl, best_i = i;  // ties: the larger clip (TensorRT takes the last argmin)
  }
  return double(best_i) * h.bin_width();
}

// ---- stats ----

const SiteStats* CalibrationStats::find(int layer, MatmulSite site) const {
  for (const SiteStats& s : sites)
    if (s.site == site && (site == MatmulSite::kOutput || s.layer == layer)) return &s;
  return nullptr;
}

const SiteStats& CalibrationStats::at(int layer, MatmulSite site) const {
  const SiteStats* s = find(layer, site);
  if (!s) fail(ErrorKind::kInvalidArgument, "calibration has no stats for layer {} {}", layer, site_json_name(site));
  return *s;
}

std::vector<int32_t> CalibrationStats::outlier_dims(double min_fraction) const {
  std::set<int32_t> dims;
  for (const SiteStats& s : sites) {
    if (s.site != MatmulSite::kQkv && s.site != MatmulSite::kGateUp) continue;
    if (s.tokens == 0) continue;
    for (int j = 0; j < s.dim; ++j)
      if (s.outlier_count[size_t(j)] > 0 && double(s.outlier_count[size_t(j)]) >= min_fraction * double(s.tokens))
        dims.insert(j);
  }
  return {dims.begin(), dims.end()};
}

std::vector<float> CalibrationStats::site_amax(RangeMethod method) const {
  std::vector<float> out(size_t(n_layers) * kSitesPerLayer + 1, 0.0f);
  for (const SiteStats& s : sites) out[site_index(n_layers, s.layer, s.site)] = float(s.range(method));
  return out;
}

void finalize_ranges(CalibrationStats& stats) {
  for (SiteStats& s : stats.sites) {
    double absmax = 0;
    for (float a : s.channel_absmax) absmax = std::max(absmax, double(a));
    s.amax[size_t(RangeMethod::kAbsmax)] = absmax;
    // A histogram clip edge can pass the true max (bin granularity): never clip above it.
    s.amax[size_t(RangeMethod::kPercentile)] = std::min(absmax, histogram_percentile_amax(s.histogram, stats.percentile));
    s.amax[size_t(RangeMethod::kMse)] = std::min(absmax, histogram_mse_amax(s.histogram));
    s.amax[size_t(RangeMethod::kEntropy)] = std::min(absmax, histogram_entropy_amax(s.histogram));
  }
}

LlamaWeightsF32 load_weights_f32(const WeightSource& source) {
  LlamaWeightsF32 w;
  w.config = source.config();
  w.token_embd = source.matrix(0, MatmulWeight::kTokenEmbd);
  w.layers.resize(size_t(w.config.n_layers));
  for (int l = 0; l < w.config.n_layers; ++l) {
    LlamaLayerWeightsF32& L = w.layers[size_t(l)];
    L.attn_norm = source.norm(l, NormWeight::kAttn);
    L.ffn_norm = source.norm(l, NormWeight::kFfn);
    L.wq = source.matrix(l, MatmulWeight::kQ);
    L.wk = source.matrix(l, MatmulWeight::kK);
    L.wv = source.matrix(l, MatmulWeight::kV);
    L.wo = source.matrix(l, MatmulWeight::kO);
    L.w_gate = source.matrix(l, MatmulWeight::kGate);
    L.w_up = source.matrix(l, MatmulWeight::kUp);
    L.w_down = source.matrix(l, MatmulWeight::kDown);
  }
  w.output_norm = source.norm(0, NormWeight::kOutput);
  w.output = w.config.tied_output ? w.token_embd : source.matrix(0, MatmulWeight::kOutput);
  return w;
}

CalibrationStats calibrate(const WeightSource& source, std::span<const int32_t> text_tokens,
                           const CalibrationOptions& options, const CalibrationProgress& progress) {
  const LlamaWeightsF32 weights = load_weights_f32(source);
  const LlamaConfig& c = weights.config;
  const int bos = source.tokenizer().bos_id();
  if (bos < 0) fail(ErrorKind::kInvalidArgument, "calibrate: the model's vocabulary has no BOS token");
  if (options.ctx < 2 || options.ctx > c.context_length)
    fail(ErrorKind::kInvalidArgument, "calibrate: ctx {} outside 2..{}", options.ctx, c.context_length);
  CalibrationStats stats;
  stats.model = source.description();
  stats.ctx = options.ctx;
  stats.int8_threshold = options.int8_threshold;
  stats.percentile = options.percentile;
  stats.n_layers = c.n_layers;
  const int q_dim = c.n_heads * c.head_dim();
  for (int l = 0; l <= c.n_layers; ++l) {
    for (int s = 0; s < kSitesPerLayer; ++s) {
      if (l == c.n_layers) break;
      SiteStats st;
      st.layer = l;
      st.site = MatmulSite(s);
      st.dim = st.site == MatmulSite::kWo ? q_dim : st.site == MatmulSite::kDown ? c.ffn_dim : c.dim;
      stats.sites.push_back(std::move(st));
    }
    if (l == c.n_layers) {
      SiteStats st;
      st.layer = l;
      st.site = MatmulSite::kOutput;
      st.dim = c.dim;
      stats.sites.push_back(std::move(st));
    }
  }
  for (SiteStats& s : stats.sites) {
    s.channel_absmax.assign(size_t(s.dim), 0.0f);
    s.outlier_count.assign(size_t(s.dim), 0);
    s.histogram = AbsHistogram(options.histogram_bins);
  }

  const int64_t n_tokens = options.max_tokens > 0 ? std::min<int64_t>(options.max_tokens, int64_t(text_tokens.size()))
                                                  : int64_t(text_tokens.size());
  ReferenceLlama ref(weights, ReferenceOptions{.max_seq_len = options.ctx});
  const float t = options.int8_threshold;
  ref.set_activation_hook([&](int layer, MatmulSite site, const float* x, int dim) {
    SiteStats& s = stats.sites[site_index(c.n_layers, layer, site)];
    if (dim != s.dim) fail(ErrorKind::kInternal, "calibrate: site {} has dim {}, expected {}", int(site), dim, s.dim);
    ++s.tokens;
    for (int j = 0; j < dim; ++j) {
      const float a = std::fabs(x[j]);
      if (a > s.channel_absmax[size_t(j)]) s.channel_absmax[size_t(j)] = a;
      if (t > 0 && a >= t) ++s.outlier_count[size_t(j)];
    }
    s.histogram.add(x, dim);
  });
  int64_t done = 0;
  for (const PerplexityWindow& w : perplexity_windows(n_tokens, options.ctx)) {
    ref.forward(bos, 0);
    for (int64_t i = 0; i < w.size; ++i) {
      // The last chunk token is never evaluated by the perplexity protocol (it has no target), but its
      // activations are as representative as any: calibration runs every token.
      ref.forward(text_tokens[size_t(w.begin + i)], int(i + 1));
      if (progress && (++done % 16 == 0 || done == n_tokens)) progress(done, n_tokens);
    }
  }
  stats.tokens = n_tokens;
  finalize_ranges(stats);
  return stats;
}

// ---- JSON ----

std::string calibration_to_json(const CalibrationStats& stats, int indent) {
  using nlohmann::json;
  json j = {{"format", "quill-calibration"},
            {"version", 1},
            {"model", stats.model},
            {"tokens", stats.tokens},
            {"ctx", stats.ctx},
            {"int8_threshold", stats.int8_threshold},
            {"percentile", stats.percentile},
            {"n_layers", stats.n_layers},
            {"outlier_dims", stats.outlier_dims()}};
  json sites = json::array();
  for (const SiteStats& s : stats.sites) {
    json outliers = json::array();
    for (int d = 0; d < s.dim; ++d)
      if (s.outlier_count[size_t(d)]) outliers.push_back({{"dim", d}, {"count", s.outlier_count[size_t(d)]}});
    json ranges;
    for (RangeMethod m : kRangeMethods) ranges[std::string(range_method_name(m))] = s.range(m);
    sites.push_back({{"layer", s.layer},
                     {"site", site_json_name(s.site)},
                     {"dim", s.dim},
                     {"tokens", s.tokens},
                     {"ranges", ranges},
                     {"outliers", outliers},
                     {"channel_absmax", s.channel_absmax},
                     {"histogram", {{"range", s.histogram.range()}, {"counts", s.histogram.counts()}}}});
  }
  j["sites"] = std::move(sites);
  return j.dump(indent);
}

CalibrationStats calibration_from_json(std::string_view text) {
  using nlohmann::json;
  try {
    const json j = json::parse(text);
    if (j.at("format") != "quill-calibration") fail(ErrorKind::kFormat, "not a quill calibration file");
    if (j.at("version").get<int>() != 1)
      fail(ErrorKind::kFormat, "unsupported calibration version {}", j.at("version").get<int>());
    CalibrationStats s;
    s.model = j.at("model").get<std::string>();
    s.tokens = j.at("tokens").get<int64_t>();
    s.ctx = j.at("ctx").get<int>();
    s.int8_threshold = j.at("int8_threshold").get<float>();
    s.percentile = j.at("percentile").get<double>();
    s.n_layers = j.at("n_layers").get<int>();
    for (const json& js : j.at("sites")) {
      SiteStats st;
      st.layer = js.at("layer").get<int>();
      st.site = parse_matmul_site(js.at("site").get<std::string>());
      st.dim = js.at("dim").get<int>();
      st.tokens = js.at("tokens").get<int64_t>();
      st.channel_absmax = js.at("channel_absmax").get<std::vector<float>>();
      if (st.dim <= 0 || st.channel_absmax.size() != size_t(st.dim))
        fail(ErrorKind::kFormat, "calibration site {} {}: channel_absmax has {} values for dim {}", st.layer,
             site_json_name(st.site), st.channel_absmax.size(), st.dim);
      st.outlier_count.assign(size_t(st.dim), 0);
      for (const json& o : js.at("outliers")) {
        const int d = o.at("dim").get<int>();
        if (d < 0 || d >= st.dim) fail(ErrorKind::kFormat, "calibration outlier dim {} out of range", d);
        st.outlier_count[size_t(d)] = o.at("count").get<int64_t>();
      }
      const json& h = js.at("histogram");
      st.histogram.assign(h.at("range").get<double>(), h.at("counts").get<std::vector<uint64_t>>());
      if (st.histogram.bins() < 1) fail(ErrorKind::kFormat, "calibration histogram without bins");
      for (RangeMethod m : kRangeMethods) st.amax[size_t(m)] = js.at("ranges").at(std::string(range_method_name(m)));
      if (st.site != MatmulSite::kOutput && (st.layer < 0 || st.layer >= s.n_layers))
        fail(ErrorKind::kFormat, "calibration site layer {} outside 0..{}", st.layer, s.n_layers - 1);
      s.sites.push_back(std::move(st));
    }
    return s;
  } catch (const json::exception& e) {
    fail(ErrorKind::kFormat, "malformed calibration JSON: {}", e.what());
  }
}

void save_calibration(const CalibrationStats& stats, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail(ErrorKind::kFile, "cannot write calibration file '{}'", path);
    out << calibration_to_json(stats) << "\n";
    if (!out) fail(ErrorKind::kFile, "error writing calibration file '{}'", path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(ErrorKind::kFile, "cannot rename '{}' to '{}'", tmp, path);
}

CalibrationStats load_calibration(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::kFile, "cannot open calibration file '{}'", path);
  std::ostringstream s;
  s << in.rdbuf();
  try {
    return calibration_from_json(s.str());
  } catch (const Error& e) {
    fail(ErrorKind::kFormat, "{}: {}", path, e.what());
  }
}

}  // namespace quill
