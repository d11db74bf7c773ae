// Linear for int8 (vector-wise) and llm-int8 (LLM.int8(): + fp16 outlier columns) weights. Decode
// (n_tok <= 8): one launch of kernels/matmul_int8_fused.cl (input transform + outlier split + activation
// quantization + dp4a GEMV + outlier part). Otherwise kernels/quantize.cl quantizes the activations (with
// the outlier split) and kernels/matmul_int8.cl runs the exact int32 matmul with the dequantize + outlier
// recombination (+ residual add) epilogue. With a static activation range (QuantParams::static_act_amax,
// int8 only) both paths quantize with the fixed scale amax / 127 instead of per token, no outlier split.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/error.hpp"
#include "engine/linear_factories.hpp"
#include "engine/log.hpp"
#include "engine/quantize_int8.hpp"
#include "host/env.hpp"
#include "host/matmul_int8.hpp"
#include "host/quantize_activations.hpp"

namespace quill {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

class LinearInt8 final : public Linear {
 public:
  LinearInt8(host::Device& device, const Int8Matrix& w, QuantScheme scheme, const host::Int8ActScale& act)
      : Linear(w.rows, w.cols, scheme), act_(act), quantize_(device), matmul_(device) {
    if (w.rows <= 0 || w.cols <= 0 || int64_t(w.cb.size()) != w.rows * w.cols || int64_t(w.scb.size()) != w.rows ||
        int64_t(w.w16.size()) != w.rows * int64_t(w.outlier_dims.size()))
      fail(ErrorKind::kInvalidArgument, "make_linear_int8: inconsistent Int8Matrix {}x{}", w.rows, w.cols);
    rows_pad_ = round_up(w.rows, host::MatmulInt8::kRowAlign);
    kpad_ = round_up(w.cols, host::MatmulInt8::kColAlign);
    n16_ = int64_t(w.outlier_dims.size());
    // cb: [rows_pad, kpad] int8, each row zero padded; padding rows all zero.
    std::vector<int8_t> cb(size_t(rows_pad_ * kpad_), 0);
    for (int64_t k = 0; k < w.rows; ++k) std::memcpy(&cb[size_t(k * kpad_)], &w.cb[size_t(k * w.cols)], size_t(w.cols));
    // scb: [rows_pad] f32; slot: [cols] int (-1 or the kept column's index); w16: [rows_pad, max(n16, 1)] fp16.
    std::vector<float> scb(size_t(rows_pad_), 0.0f);
    std::copy(w.scb.begin(), w.scb.end(), scb.begin());
    std::vector<int32_t> slot(size_t(w.cols), -1);
    for (int64_t o = 0; o < n16_; ++o) {
      const int32_t j = w.outlier_dims[size_t(o)];
      if (j < 0 || j >= w.cols)
        fail(ErrorKind::kInvalidArgument, "make_linear_int8: outlier dim {} outside [0, {})", j, w.cols);
      slot[size_t(j)] = int32_t(o);
    }
    std::vector<uint16_t> w16(size_t(rows_pad_ * std::max<int64_t>(n16_, 1)), 0);
    std::copy(w.w16.begin(), w.w16.end(), w16.begin());
    cb_ = host::upload(device, cb);
    scb_ = host::upload(device, scb);
    slot_ = host::upload(device, slot);
    w16_ = host::upload(device, w16);
  }

  // Decode (one token): one launch, the input transform fused (kernels/matmul_int8_fused.cl). Otherwise,
  // without an outlier split (int8, static scales), quantize.cl applies it as it loads x: the outlier
  // columns are what need the transformed x in memory.
  bool fuses(const InputTransform& transform, int n_tok) const override {
    return host::MatmulInt8::fused_preferred(n_tok, int(cols()), int(kpad_)) || !act_.splits_outliers();
  }

  void run(const host::Buffer& x, host::Buffer& y, int n_tok, bool accumulate, Workspace& ws,
           const InputTransform& transform) override {
    std::lock_guard<std::mutex> lock(launch_mutex_);
    if (host::MatmulInt8::fused_preferred(n_tok, int(cols()), int(kpad_))) {
      const auto kind = transform.kind == InputTransform::Kind::kRmsNorm  ? host::FusedTransform::kRmsNorm
                        : transform.kind == InputTransform::Kind::kSwiGlu ? host::FusedTransform::kSwiGlu
                                                                          : host::FusedTransform::kNone;
      matmul_.run_fused(weights(), x, kind, transform.norm_weight, transform.eps, act_, y, n_tok, accumulate, nullptr,
                        nullptr, l2_prefetch_);
      return;
    }
    const host::Int8ActivationBuffers a{
        &ws.get(this, 0, size_t(n_tok) * size_t(kpad_)),  // codes [n_tok, kpad] int8
        &ws.get(this, 1, size_t(n_tok) * 4),              // sca [n_tok] f32
        &ws.get(this, 2, size_t(cols()) * 4),             // flags [cols] int
        &ws.get(this, 3, size_t(cols()) * 4),             // olist [cols] int
        &ws.get(this, 4, 4),                              // ocount [1] int
    };
    const host::QuantizeInput input{transform.kind == InputTransform::Kind::kRmsNorm  ? 1
                                    : transform.kind == InputTransform::Kind::kSwiGlu ? 2
                                                                                      : 0,
                                    transform.norm_weight, transform.eps};
    quantize_.run(x, n_tok, int(cols()), int(kpad_), act_, a, nullptr, input);
    if (act_.threshold > 0.0f && log_level() >= LogLevel::kDebug) {  // a sync per call: debugging only
      int32_t count = 0;
      a.ocount->read(&count, sizeof(count));
      log_debug("llm-int8 [{} x {}], {} tokens: {} outlier columns ({} kept in fp16)", rows(), cols(), n_tok, count,
                n16_);
    }
    if (outlier_digits(n_tok)) {  // the fallback outlier columns on the int8 tensor cores
      const auto bytes = host::MatmulInt8::outlier_bytes(weights(), n_tok);
      auto get = [&](int i) { return &ws.get(nullptr, Workspace::kInt8OutlierSlot + i, bytes[size_t(i)]); };
      const host::Int8OutlierScratch scratch{get(0), get(1), get(2), get(3), get(4)};
      matmul_.run(weights(), x, a, y, n_tok, accumulate, nullptr, &scratch);
      return;
    }
    matmul_.run(weights(), x, a, y, n_tok, accumulate);
  }

  uint64_t weight_bytes() const override { return cb_.bytes() + scb_.bytes() + (n16_ > 0 ? w16_.bytes() : 0); }
  host::L2Prefetch l2_head(size_t bytes) const override { return {&cb_, std::min(bytes, cb_.bytes())}; }
  int launches_per_forward(int n_tok) const override {
    if (host::MatmulInt8::fused_preferred(n_tok, int(cols()), int(kpad_))) return 1;
    const int digits = outlier_digits(n_tok) ? 2 : 0;  // int8_outlier_gather, matmul_int8_digits
    return host::QuantizeActivations::launches(n_tok, act_) + 1 + digits;
  }

 private:
  // llm-int8 prefill on the tensor cores: the fallback outlier columns as int8 digits (host::MatmulInt8::run);
  // $QUILL_INT8_DIGITS=0 keeps them on the fp32 side GEMM (A/B measurements).
  bool outlier_digits(int n_tok) const {
    return act_.splits_outliers() && matmul_.uses_mma(n_tok) && !host::env_is("QUILL_INT8_DIGITS", "0");
  }

  host::Int8WeightBuffers weights() const {
    return {&cb_, &scb_, &slot_, &w16_, int(rows()), int(cols()), int(rows_pad_), int(kpad_), int(n16_)};
  }

  host::Int8ActScale act_;  // llm-int8: per token with its threshold; int8: per token, or static when calibrated
  int64_t rows_pad_ = 0, kpad_ = 0, n16_ = 0;
  host::Buffer cb_;    // [rows_pad, kpad] int8
  host::Buffer scb_;   // [rows_pad] f32
  host::Buffer slot_;  // [cols] int
  host::Buffer w16_;   // [rows_pad, max(n16, 1)] fp16
  host::QuantizeActivations quantize_;
  host::MatmulInt8 matmul_;
};

}  // namespace

std::unique_ptr<Linear> make_linear_int8(host::Device& device, const Int8Matrix& w, QuantScheme scheme,
                                         const QuantParams& params) {
  if (scheme != QuantScheme::Int8 && scheme != QuantScheme::LlmInt8)
    fail(ErrorKind::kInvalidArgument, "make_linear_int8: scheme is neither int8 nor llm-int8");
  const float amax = params.static_act_amax;
  if (!(amax >= 0.0f) || !std::isfinite(amax))
    fail(ErrorKind::kInvalidArgument, "make_linear_int8: static activation amax {} is not finite and >= 0", amax);
  if (amax > 0.0f && scheme != QuantScheme::Int8)
    fail(ErrorKind::kInvalidArgument,
         "static activation scales apply to int8 only (llm-int8 splits outliers per call)");
  const host::Int8ActScale act = scheme == QuantScheme::LlmInt8 ? host::Int8ActScale(params.int8_threshold)
                                 : amax > 0.0f                  ? host::Int8ActScale::fixed(amax)
                                                                : host::Int8ActScale();
  return std::make_unique<LinearInt8>(device, w, scheme, act);
}

}  // namespace quill
