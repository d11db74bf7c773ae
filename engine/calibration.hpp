// Calibration (QUANT_SPEC.md 6): statistics of every matmul input over calibration text, collected
// from the CPU reference forward in fp32 (exact, device-independent), and the static activation
// ranges derived from them. Per site (layer x MatmulSite): per-channel absmax, a 2048-bin histogram
// of |x| over every element, how often each channel reaches the int8 outlier threshold, and the
// per-tensor range by four methods (TensorRT / pytorch-quantization conventions):
//   absmax      the largest |x| seen;
//   percentile  the upper edge of the bin where the cumulative count reaches p (99.99%);
//   mse         the clip edge (from bin 128 on) minimizing the histogram's squared error of symmetric
//               int8 fake quantization (bin centers, scale = amax / 127, clipped values at amax);
//   entropy     TensorRT / MXNet KL calibration: for each clip bin i >= 128, P = hist[0..i) with the tail
//               folded into bin i-1, Q = P's bins merged into 128 levels and spread back over their
//               nonzero bins (P nonzero), both smoothed (eps 1e-4, as MXNet); the clip edge of the smallest KL(P || Q).
// Stats serialize to JSON (nlohmann/json) so `quill calibrate` runs once and run/perplexity/quantize
// reuse it through --calib.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/llama_weights.hpp"
#include "engine/reference_forward.hpp"
#include "engine/weight_source.hpp"

namespace quill {

enum class RangeMethod { kAbsmax, kPercentile, kMse, kEntropy };
// "absmax", "percentile", "mse", "entropy"; kInvalidArgument listing them for anything else.
RangeMethod parse_range_method(std::string_view name);
std::string_view range_method_name(RangeMethod method);
inline constexpr std::array<RangeMethod, 4> kRangeMethods = {RangeMethod::kAbsmax, RangeMethod::kPercentile,
                                                             RangeMethod::kMse, RangeMethod::kEntropy};
// "qkv", "wo", "gate_up", "down", "output" -> MatmulSite (the JSON spelling).
MatmulSite parse_matmul_site(std::string_view name);

// A histogram of |x| over [0, range) in `bins` equal bins. It grows by doubling its range and merging
// neighbouring bins pairwise, so every count stays exact and the range is the first nonzero |x|
// times a power of two.
class AbsHistogram {
 public:
  explicit AbsHistogram(int bins = 2048) : counts_(size_t(bins), 0) {}
  void add(const float* x, int64_t n);
  int bins() const { return int(counts_.size()); }
  double range() const { return range_; }
  double bin_width() const { return range_ / double(counts_.size()); }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const;
  // For deserialization.
  void assign(double range, std::vector<uint64_t> counts) {
    range_ = range;
    counts_ = std::move(counts);
  }

 private:
  std::vector<uint64_t> counts_;
  double range_ = 0;  // 0 until the first nonzero value
};

// Per-tensor clip values from a histogram (amax; scale = amax / 127). absmax is taken as given
// (the exact max, not a bin edge). start_bin: the first clip bin mse/entropy consider (128).
double histogram_percentile_amax(const AbsHistogram& h, double percentile);
double histogram_mse_amax(const AbsHistogram& h, int start_bin = 128);
double histogram_entropy_amax(const AbsHistogram& h, int levels = 128, int start_bin = 128);

struct SiteStats {
  int layer = 0;  // n_layers for kOutput
  MatmulSite site = MatmulSite::kQkv;
  int dim = 0;
  int64_t tokens = 0;                  // activation vectors seen
  std::vector<float> channel_absmax;   // [dim] max |x_j|
  AbsHistogram histogram;              // |x| of every element
  std::vector<int64_t> outlier_count;  // [dim] tokens with |x_j| >= threshold
  std::array<double, 4> amax{};        // by RangeMethod (filled by finalize)

  double range(RangeMethod m) const { return amax[size_t(m)]; }
};

struct CalibrationStats {
  std::string model;                // description of the calibrated weights
  int64_t tokens = 0;               // text tokens evaluated (BOS excluded)
  int ctx = 0;
  float int8_threshold = 6.0f;      // outlier threshold the counts use (|x| >= t)
  double percentile = 99.99;
  int n_layers = 0;
  std::vector<SiteStats> sites;     // layer-major: per layer kQkv, kWo, kGateUp, kDown; then kOutput

  const SiteStats* find(int layer, MatmulSite site) const;
  const SiteStats& at(int layer, MatmulSite site) const;  // kInvalidArgument when absent
  // Hidden dimensions that reach the threshold in at least min_fraction of the tokens at any qkv or
  // gate_up input (the inputs llm-int8 splits; they share the residual stream's dimensions), ascending.
  std::vector<int32_t> outlier_dims(double min_fraction = 0.01) const;
  // Per-site static activation absmax (kQkv, kWo, kGateUp, kDown per layer, then kOutput), [4 n_layers + 1].
  std::vector<float> site_amax(RangeMethod method) const;
};

struct CalibrationOptions {
  int ctx = 512;            // windows of [BOS] + ctx-1 text tokens, as the perplexity protocol
  int64_t max_tokens = 0;   // 0 = the whole text
  float int8_threshold = 6.0f;
  double percentile = 99.99;
  int histogram_bins = 2048;
};

// Every weight of the source in fp32 (for the reference forward). output = token_embd when tied.
LlamaWeightsF32 load_weights_f32(const WeightSource& source);

using CalibrationProgress = std::function<void(int64_t tokens_done, int64_t tokens_total)>;

// Runs the CPU reference forward over text_tokens (tokenized without BOS) and collects the stats.
CalibrationStats calibrate(const WeightSource& source, std::span<const int32_t> text_tokens,
                           const CalibrationOptions& options, const CalibrationProgress& progress = {});

// Fills every site's amax from its histogram and channel absmax.
void finalize_ranges(CalibrationStats& stats);

std::string calibration_to_json(const CalibrationStats& stats, int indent = -1);
CalibrationStats calibration_from_json(std::string_view json);  // kFormat on malformed input
void save_calibration(const CalibrationStats& stats, const std::string& path);
CalibrationStats load_calibration(const std::string& path);  // kFile / kFormat

}  // namespace quill
