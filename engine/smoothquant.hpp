// SmoothQuant (Xiao et al. 2022; QUANT_SPEC.md 6) as a WeightSource wrapper: migrates activation
// outliers into the weights before int8 quantization. Per input channel j of the linears that share
// one normalized input (q/k/v: the attn-norm output; gate/up: the ffn-norm output),
//   s_j = max|X_j|^a / max|W[:, j]|^(1-a)   (both maxima clamped at 1e-5, s clamped at 1e-5),
// with max|X_j| from the calibration stats (site kQkv / kGateUp) and max|W[:, j]| over the rows of
// all linears of the group. Folded offline: norm weight /= s, weight columns *= s, so the f32 model
// computes the same function (up to rounding) and the int8 activations lose their outlier channels.
// wo, down and the output head are untouched (no norm in front of them to fold into).
#pragma once

#include <memory>
#include <vector>

#include "engine/calibration.hpp"
#include "engine/weight_source.hpp"

namespace quill {

// s for one group: act_absmax [cols], weights: the group's matrices (same cols). alpha in [0, 1].
std::vector<float> smoothquant_scales(std::span<const float> act_absmax, std::initializer_list<const MatrixF32*> weights,
                                      float alpha);

// `inner` smoothed with the stats (which must come from the unsmoothed inner weights). known_outlier_dims()
// is empty: smoothing is what removes them.
std::unique_ptr<WeightSource> smoothquant_weight_source(std::shared_ptr<const WeightSource> inner,
                                                        const CalibrationStats& stats, float alpha);

}  // namespace quill
