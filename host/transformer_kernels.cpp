// Launchers for the non-matmul Llama kernels (see transformer_kernels.hpp).
#include "host/transformer_kernels.hpp"

#include <cmath>
#include <cstdlib>
#include <string>

#include "engine/error.hpp"
#include "host/device.hpp"
#include "host/env.hpp"

namespace quill::host {
namespace {

constexpr int kAttentionWg = 128;
constexpr int kDecodeSplit = 128;   // positions per work-group in decode attention (one chunk of WG keys)
constexpr int kPrefillTokTile = 4;  // tokens per work-group in prefill attention (TOK_TILE in attention.cl)
constexpr int kAttentionMmaThreads = 128, kAttentionMmaQueries = 64;  // attention_mma.cl: AM_THREADS, AM_QUERIES
constexpr int kAttentionMmaMaxHeadDim = 128;                          // AM_HD
constexpr int kSwigluWg = 256;                                        // swiglu work-items per work-group (x)

// Prefill's TOK_TILE: kPrefillTokTile, or QUILL_ATTENTION_TOK_TILE (1..16) for sweeps. Read once: the
// program's build flag and the launch geometry must agree (so not through QUILL_ATTENTION_FLAGS).
int prefill_tok_tile() {
  static const int tile = [] {
    const int t = env_int("QUILL_ATTENTION_TOK_TILE", kPrefillTokTile);
    return t >= 1 && t <= 16 ? t : kPrefillTokTile;
  }();
  return tile;
}

std::string kv_flag(bool f32) { return f32 ? "-DKV_F32=1" : ""; }

std::string attention_flags(const TransformerKernelOptions& o) {
  std::string f = fmt::format("-DWG={} {}", kAttentionWg, kv_flag(o.kv_f32));
  if (o.keys_by_warp >= 0) f += fmt::format(" -DKEYS_BY_WARP={}", o.keys_by_warp ? 1 : 0);
  if (const std::string extra = env_string("QUILL_ATTENTION_FLAGS"); !extra.empty())  // benchmarking: -DKEY_BATCH=16
    f += " " + extra;
  return f;
}

void require(bool ok, const char* what) {
  if (!ok) fail(ErrorKind::kInternal, "transformer kernel launch: {}", what);
}

}  // namespace

TransformerKernels::TransformerKernels(Device& device, const TransformerKernelOptions& options)
    : device_(device),
      options_(options),
      // RMSNorm of one token is one work-group: on a GPU a wide one (a 4096 row at 4 values per item).
      norm_wg_(std::min<size_t>(device.info().inline_ptx ? 1024 : 256, device.info().max_work_group_size)),
      embed_(device.program("elementwise.cl", options.embd_f32 ? "-DEMBD_F32=1" : ""), "embed"),
      rmsnorm_(device.program("norm.cl"), "rmsnorm"),
      rope_kv_(device.program("rope.cl", kv_flag(options.kv_f32)), "rope_kv"),
      attention_(
          device.program("attention.cl", fmt::format("-DTOK_TILE={} {}", prefill_tok_tile(), attention_flags(options))),
          "attention"),
      attention_decode_(
          device.program("attention_decode.cl", fmt::format("-DSPLIT={} {}", kDecodeSplit, attention_flags(options))),
          "attention_decode"),
      swiglu_(device.program("elementwise.cl", options.embd_f32 ? "-DEMBD_F32=1" : ""), "swiglu") {
  const bool wanted = options.prefill_mma != 0 && !env_is("QUILL_ATTENTION_MMA", "0");
  if (wanted && !options.kv_f32 && device.info().inline_ptx && device.info().sm_version >= 80)
    attention_mma_ = Kernel(device.program("attention_mma.cl"), "attention_mma");
}

bool TransformerKernels::prefill_on_tensor_cores(int head_dim) const {
  return attention_mma_.valid() && head_dim % 16 == 0 && head_dim <= kAttentionMmaMaxHeadDim;
}

size_t TransformerKernels::decode_partial_bytes(int n_ctx, int n_heads, int head_dim) {
  const size_t max_splits = (size_t(n_ctx) + kDecodeSplit - 1) / kDecodeSplit;
  return std::max<size_t>(1, max_splits) * size_t(n_heads) * size_t(head_dim + 2) * sizeof(float);
}

void TransformerKernels::attention_decode(const Buffer& qkv, Buffer& k_cache, Buffer& v_cache, Buffer& out,
                                          Buffer& partial, Buffer& done, int n_heads, int n_kv_heads, int head_dim,
                                          int rope_dim, float theta, int pos, const L2Prefetch& prefetch) {
  const size_t elem = options_.kv_f32 ? 4 : 2;
  const int kv_dim = n_kv_heads * head_dim;
  require(head_dim <= kAttentionWg && head_dim % 2 == 0 && rope_dim % 2 == 0 && rope_dim <= head_dim,
          "attention_decode: head_dim must be even and <= 128");
  require(n_kv_heads > 0 && n_heads % n_kv_heads == 0, "attention_decode: n_heads must be a multiple of n_kv_heads");
  require(k_cache.bytes() >= size_t(pos + 1) * kv_dim * elem && v_cache.bytes() == k_cache.bytes(),
          "attention_decode: cache too small for the position");
  const int n_splits = (pos + 1 + kDecodeSplit - 1) / kDecodeSplit;
  require(partial.bytes() >= size_t(n_splits) * n_heads * (head_dim + 2) * sizeof(float) &&
              done.bytes() >= size_t(n_heads) * sizeof(int32_t),
          "attention_decode: scratch too small");
  const float scale = 1.0f / std::sqrt(float(head_dim));
  attention_decode_.args(qkv, k_cache, v_cache, out, partial, done, int32_t(n_heads), int32_t(n_kv_heads),
                         int32_t(head_dim), int32_t(rope_dim), theta, int32_t(pos), int32_t(n_splits), scale,
                         prefetch.arg_buffer(out), prefetch.arg_bytes());
  attention_decode_.launch(device_, Range(size_t(n_heads) * n_splits * kAttentionWg), Range(kAttentionWg));
}

void TransformerKernels::embed(const Buffer& tokens, const Buffer& table, Buffer& x, int n_tok, int dim) {
  require(tokens.bytes() >= size_t(n_tok) * 4 && x.bytes() >= size_t(n_tok) * dim * 4, "embed: buffer sizes");
  embed_.args(tokens, table, x, int32_t(dim));
  embed_.launch(device_, Range(size_t(dim), size_t(n_tok)), Range(std::min(64, dim), 1));
}

void TransformerKernels::rmsnorm(const Buffer& x, const Buffer& w, Buffer& out, int n_tok, int dim, float eps) {
  require(
      x.bytes() >= size_t(n_tok) * dim * 4 && out.bytes() >= size_t(n_tok) * dim * 4 && w.bytes() >= size_t(dim) * 4,
      "rmsnorm: buffer sizes");
  rmsnorm_.args(x, w, out, int32_t(dim), eps, LocalBytes{norm_wg_ * sizeof(float)});
  rmsnorm_.launch(device_, Range(norm_wg_ * n_tok), Range(norm_wg_));
}

void TransformerKernels::rope_kv(const Buffer& qkv, Buffer& q, Buffer& k_cache, Buffer& v_cache, int n_tok, int q_dim,
                                 int kv_dim, int head_dim, int rope_dim, float theta, int pos0) {
  const size_t elem = options_.kv_f32 ? 4 : 2;
  require(qkv.bytes() >= size_t(n_tok) * (q_dim + 2 * kv_dim) * 4 && q.bytes() >= size_t(n_tok) * q_dim * 4,
          "rope_kv: activation sizes");
  require(k_cache.bytes() >= size_t(pos0 + n_tok) * kv_dim * elem && v_cache.bytes() == k_cache.bytes(),
          "rope_kv: cache too small for the position");
  require(head_dim % 2 == 0 && rope_dim % 2 == 0 && rope_dim <= head_dim, "rope_kv: head/rope dims must be even");
  rope_kv_.args(qkv, q, k_cache, v_cache, int32_t(q_dim), int32_t(kv_dim), int32_t(head_dim), int32_t(rope_dim), theta,
                int32_t(pos0));
  const size_t pairs = size_t(q_dim / 2 + kv_dim / 2);
  rope_kv_.launch(device_, Range(pairs, size_t(n_tok)), Range(std::min<size_t>(64, pairs), 1));
}

void TransformerKernels::attention(const Buffer& q, const Buffer& k_cache, const Buffer& v_cache, Buffer& out,
                                   int n_tok, int n_heads, int n_kv_heads, int head_dim, int pos0) {
  require(head_dim <= kAttentionWg && head_dim % 2 == 0, "attention: head_dim must be even and <= 128");
  require(n_kv_heads > 0 && n_heads % n_kv_heads == 0, "attention: n_heads must be a multiple of n_kv_heads");
  require(out.bytes() >= size_t(n_tok) * n_heads * head_dim * 4, "attention: output size");
  const float scale = 1.0f / std::sqrt(float(head_dim));
  if (prefill_on_tensor_cores(head_dim)) {
    attention_mma_.args(q, k_cache, v_cache, out, int32_t(n_tok), int32_t(n_heads), int32_t(n_kv_heads),
                        int32_t(head_dim), int32_t(pos0), scale);
    attention_mma_.launch(device_,
                          Range(size_t(n_heads) * kAttentionMmaThreads,
                                (size_t(n_tok) + kAttentionMmaQueries - 1) / kAttentionMmaQueries),
                          Range(kAttentionMmaThreads, 1));
    return;
  }
  const size_t n_tiles = (size_t(n_tok) + prefill_tok_tile() - 1) / prefill_tok_tile();
  attention_.args(q, k_cache, v_cache, out, int32_t(n_tok), int32_t(n_heads), int32_t(n_kv_heads), int32_t(head_dim),
                  int32_t(pos0), scale);
  attention_.launch(device_, Range(size_t(n_heads) * kAttentionWg, n_tiles), Range(kAttentionWg, 1));
}

void TransformerKernels::swiglu(const Buffer& gate_up, Buffer& h, int n_tok, int ffn) {
  require(gate_up.bytes() >= size_t(n_tok) * 2 * ffn * 4 && h.bytes() >= size_t(n_tok) * ffn * 4, "swiglu: sizes");
  swiglu_.args(gate_up, h, int32_t(ffn));
  const int quads = (ffn + 3) / 4;  // elementwise.cl swiglu: 4 columns per work-item
  swiglu_.launch(device_, Range(size_t(quads), size_t(n_tok)), Range(std::min(kSwigluWg, quads), 1));
}

}  // namespace quill::host
