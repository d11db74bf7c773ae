// Launcher for kernels/decode_layer.cl (see decode_layer.hpp).
#include "host/decode_layer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <cstdlib>

#include "engine/error.hpp"
#include "engine/log.hpp"
#include "host/device.hpp"

namespace quill::host {
namespace {

constexpr int kGridBarriers = 4;  // per launch (decode_layer.cl)
constexpr int kStampGroups = 1024, kStamps = 10;  // DL_STAMPS: (work-group, phase edge) global-timer stamps

// $QUILL_DECODE_LAYER_DEFS: extra build flags for measurements (-DDL_STAMPS=1, -DGRID_SYNC_LOCAL_FENCE=1).
std::string extra_defs() {
  const char* v = std::getenv("QUILL_DECODE_LAYER_DEFS");
  return v ? v : "";
}

// The grid: one work-group per compute unit; $QUILL_DECODE_LAYER_GROUPS asks for fewer (tests: more
// rows and attention tasks than warps and work-groups in every phase).
size_t grid_groups(const Device& device) {
  const size_t cus = std::max<size_t>(1, device.info().compute_units);
  const char* env = std::getenv("QUILL_DECODE_LAYER_GROUPS");
  const int asked = env && *env ? std::atoi(env) : 0;
  return asked > 0 ? std::min<size_t>(cus, size_t(asked)) : cus;
}

void require(bool ok, const char* what) {
  if (!ok) fail(ErrorKind::kInternal, "decode_layer: {}", what);
}

// DL_WEIGHT_PARAMS in decode_layer.cl.
void push_weights(Kernel& k, const LutWeights& w, const Buffer& dummy) {
  const auto or_dummy = [&](const Buffer* b) -> const Buffer& { return b && !b->empty() ? *b : dummy; };
  k.more_args(*w.codes, int32_t(w.row_words), or_dummy(w.lut), or_dummy(w.scales), or_dummy(w.absmax2),
              or_dummy(w.dq_lut), w.dq_offset, int32_t(w.blocks_per_row),
              int32_t(std::countr_zero(unsigned(std::max(w.block, 1)))), int32_t(w.rows), int32_t(w.cols));
}

}  // namespace

bool DecodeLayer::available(const Device& device) {
  const char* env = std::getenv("QUILL_DECODE_LAYER");
  return device.info().inline_ptx && !(env && std::string(env) == "0");
}

DecodeLayer::DecodeLayer(Device& device, const MatmulLut& format, const TransformerKernels& attention)
    : device_(device),
      program_(device.program("decode_layer.cl", format.stream_program_options(kWorkGroup) + " " +
                                                     attention.attention_decode_options(kWorkGroup) + " " +
                                                     extra_defs())),
      stamps_(extra_defs().find("DL_STAMPS") != std::string::npos),
      sync_count_(device, sizeof(uint32_t)),
      sync_failed_(device, stamps_ ? 256 + size_t(kStampGroups) * 16 * 8 : sizeof(uint32_t)),
      groups_(std::min<size_t>(grid_groups(device), kStampGroups)),
      kv_elem_(attention.kv_f32() ? 4 : 2),
      dummy_(device, 1024) {
  sync_count_.fill_bytes(0);
  sync_failed_.fill_bytes(0);
  Kernel(program_, "decode_layer");  // the program's kernel exists (errors surface here, not mid-decode)
}

// Argument indices of the per-token arguments (decode_layer.cl): after 4 x 11 weight arguments, x ..
// theta (16), then pos, n_splits, scale, sync_count, sync_base.
constexpr uint32_t kPosArg = 4 * 11 + 16, kSplitsArg = kPosArg + 1, kSyncBaseArg = kPosArg + 4;

size_t DecodeLayer::signature(const DecodeLayerStep& s) const {
  size_t h = 1469598103934665603ull;
  const auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  for (const LutWeights* w : {s.qkv, s.wo, s.gate_up, s.down})
    for (const Buffer* b : {w->codes, w->lut, w->scales, w->absmax2, w->dq_lut}) mix(uint64_t(uintptr_t(b ? b->mem() : nullptr)));
  for (const Buffer* b : {static_cast<const Buffer*>(s.x), static_cast<const Buffer*>(s.qkv_out),
                          static_cast<const Buffer*>(s.att), static_cast<const Buffer*>(s.gate_up_out), s.attn_norm,
                          s.ffn_norm, static_cast<const Buffer*>(s.k_cache), static_cast<const Buffer*>(s.v_cache),
                          static_cast<const Buffer*>(s.partial), static_cast<const Buffer*>(s.done), s.next.buffer})
    mix(uint64_t(uintptr_t(b ? b->mem() : nullptr)));
  for (int v : {s.n_heads, s.n_kv_heads, s.head_dim, s.rope_dim, s.next.arg_bytes()}) mix(uint64_t(uint32_t(v)));
  mix(std::bit_cast<uint32_t>(s.eps));
  mix(std::bit_cast<uint32_t>(s.theta));
  mix(s.prefetch_bytes);
  return h | 1;  // never 0
}

void DecodeLayer::run(int layer, const DecodeLayerStep& s) {
  require(s.head_dim <= 128 && s.head_dim % 2 == 0 && s.rope_dim % 2 == 0 && s.rope_dim <= s.head_dim,
          "head_dim must be even and <= 128");
  require(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0, "n_heads must be a multiple of n_kv_heads");
  const int q_dim = s.n_heads * s.head_dim, kv_dim = s.n_kv_heads * s.head_dim, dim = s.qkv->cols;
  require(s.qkv->rows == q_dim + 2 * kv_dim && s.wo->rows == dim && s.wo->cols == q_dim && s.gate_up->cols == dim &&
              s.down->rows == dim && s.gate_up->rows == 2 * s.down->cols,
          "the four matrices' shapes do not chain");
  require(s.x->bytes() >= size_t(dim) * 4 && s.qkv_out->bytes() >= size_t(s.qkv->rows) * 4 &&
              s.att->bytes() >= size_t(q_dim) * 4 && s.gate_up_out->bytes() >= size_t(s.gate_up->rows) * 4 &&
              s.attn_norm->bytes() >= size_t(dim) * 4 && s.ffn_norm->bytes() >= size_t(dim) * 4,
          "activation buffers too small");
  require(s.k_cache->bytes() >= size_t(s.pos + 1) * kv_dim * kv_elem_ && s.v_cache->bytes() == s.k_cache->bytes(),
          "cache too small for the position");
  const int n_splits = (s.pos + 1 + TransformerKernels::kDecodeSplit - 1) / TransformerKernels::kDecodeSplit;
  require(s.partial->bytes() >= size_t(n_splits) * s.n_heads * (s.head_dim + 2) * sizeof(float) &&
              s.done->bytes() >= size_t(s.n_heads) * sizeof(int32_t),
          "attention scratch too small");
  if (layers_.size() <= size_t(layer)) layers_.resize(size_t(layer) + 1);
  LayerKernel& lk = layers_[size_t(layer)];
  if (!lk.kernel.valid()) lk.kernel = Kernel(program_, "decode_layer");
  if (const size_t sig = signature(s); sig != lk.signature) {
    set_all_args(lk.kernel, s);
    lk.signature = sig;
  }
  lk.kernel.set_arg(kPosArg, int32_t(s.pos));
  lk.kernel.set_arg(kSplitsArg, int32_t(n_splits));
  lk.kernel.set_arg(kSyncBaseArg, sync_base_);
  lk.kernel.launch(device_, Range(groups_ * kWorkGroup), Range(kWorkGroup));
  sync_base_ += uint32_t(kGridBarriers * groups_);
}

void DecodeLayer::set_all_args(Kernel& k, const DecodeLayerStep& s) {
  k.args();
  for (const LutWeights* w : {s.qkv, s.wo, s.gate_up, s.down}) push_weights(k, *w, dummy_);
  k.more_args(*s.x, *s.qkv_out, *s.att, *s.gate_up_out, *s.attn_norm, *s.ffn_norm, s.eps, *s.k_cache, *s.v_cache,
              *s.partial, *s.done, int32_t(s.n_heads), int32_t(s.n_kv_heads), int32_t(s.head_dim), int32_t(s.rope_dim),
              s.theta);
  if (k.next_arg() != kPosArg) fail(ErrorKind::kInternal, "decode_layer: argument {} is not pos", k.next_arg());
  k.more_args(int32_t(s.pos), int32_t(1), 1.0f / std::sqrt(float(s.head_dim)), sync_count_, sync_base_, sync_failed_,
              int32_t(std::min<size_t>(s.prefetch_bytes, INT32_MAX)), s.next.arg_buffer(dummy_), s.next.arg_bytes());
}

DecodeLayer::~DecodeLayer() {
  if (!stamps_) return;
  try {  // the last launch's phase times, over the work-groups (measurement builds only)
    std::vector<uint64_t> t(size_t(kStampGroups) * 16);
    sync_failed_.read(t.data(), t.size() * 8, 256);
    const char* names[kStamps - 1] = {"qkv", "sync", "attention", "sync", "wo", "sync", "gate_up", "sync", "down"};
    std::string line = "decode_layer phases (us, mean / max over work-groups):";
    const uint64_t t0 = t[0];
    for (int i = 0; i + 1 < kStamps; ++i) {
      double sum = 0, top = 0;
      for (size_t g = 0; g < groups_; ++g) {
        const double d = double(t[g * 16 + i + 1] - t[g * 16 + i]) / 1000.0;
        sum += d;
        top = std::max(top, d);
      }
      line += fmt::format(" {} {:.2f}/{:.2f}", names[i], sum / groups_, top);
    }
    uint64_t last = 0;
    for (size_t g = 0; g < groups_; ++g) last = std::max(last, t[g * 16 + kStamps - 1]);
    log_info("{}; layer {:.2f} us", line, double(last - t0) / 1000.0);
  } catch (...) {
  }
}

void DecodeLayer::fetch_failure_flag() { sync_failed_.read_async(&failed_, sizeof(failed_)); }

void DecodeLayer::check_barriers() const {
  if (failed_)
    fail(ErrorKind::kDevice,
         "decode_layer: a grid barrier waited past 50 ms (the device did not run all {} work-groups at once); "
         "this decode is wrong. Set QUILL_DECODE_LAYER=0 to decode with one launch per kernel",
         groups_);
}

}  // namespace quill::host
