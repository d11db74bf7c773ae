// The attention kernels against a CPU fp64 computation, both schedules (keys by work-item / by warp):
// decode (RoPE + KV-cache write + split-K online softmax; GQA shapes, partial RoPE, positions on both
// sides of a split) and prefill (tiles of several tokens, each attending causally to the cache).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/half.hpp"
#include "host/transformer_kernels.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill::host {
namespace {

struct Case {
  int n_heads, n_kv_heads, head_dim, rope_dim, pos;
  bool kv_f32;
  int keys_by_warp = 0;  // the attention schedule (both run on every device)
};

void rope_ref(double* a, double* b, int i, int rope_dim, double theta, int pos) {
  if (i >= rope_dim) return;
  const double angle = pos * std::pow(theta, -double(i) / rope_dim);
  const double ra = *a * std::cos(angle) - *b * std::sin(angle), rb = *a * std::sin(angle) + *b * std::cos(angle);
  *a = ra;
  *b = rb;
}

class AttentionDecodeTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionDecodeTest, MatchesCpuReference) {
  const Case c = GetParam();
  Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(c.pos * 131 + c.head_dim));
  const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim, n_ctx = c.pos + 3;
  const float theta = 10000.0f;
  const auto qkv = test::random_floats(rng, size_t(q_dim + 2 * kv_dim));
  const auto k_old = test::random_floats(rng, size_t(n_ctx) * kv_dim), v_old = test::random_floats(rng, size_t(n_ctx) * kv_dim);
  // Cache contents as the device stores them (fp16-rounded unless f32), and what the reference reads.
  std::vector<uint16_t> k_half(k_old.size()), v_half(v_old.size());
  std::vector<double> k_ref(k_old.size()), v_ref(v_old.size());
  for (size_t i = 0; i < k_old.size(); ++i) {
    k_half[i] = float_to_half(k_old[i]);
    v_half[i] = float_to_half(v_old[i]);
    k_ref[i] = c.kv_f32 ? k_old[i] : half_to_float(k_half[i]);
    v_ref[i] = c.kv_f32 ? v_old[i] : half_to_float(v_half[i]);
  }
  Buffer qkv_b = upload(device, qkv);
  Buffer k_b = c.kv_f32 ? upload(device, k_old) : upload(device, k_half);
  Buffer v_b = c.kv_f32 ? upload(device, v_old) : upload(device, v_half);
  Buffer out_b(device, size_t(q_dim) * 4);
  out_b.fill_bytes(0xff);
  Buffer partial(device, TransformerKernels::decode_partial_bytes(n_ctx, c.n_heads, c.head_dim));
  Buffer done(device, size_t(c.n_heads) * 4);
  done.fill_bytes(0);
  TransformerKernels kernels(device, {.kv_f32 = c.kv_f32, .keys_by_warp = c.keys_by_warp});
  for (int round = 0; round < 2; ++round) {  // twice: the done counters must be left at zero
    kernels.attention_decode(qkv_b, k_b, v_b, out_b, partial, done, c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim,
                             theta, c.pos);
  }
  const auto out = out_b.read_vector<float>(size_t(q_dim));
  EXPECT_EQ(done.read_vector<int32_t>(size_t(c.n_heads)), std::vector<int32_t>(size_t(c.n_heads), 0));

  // Reference: rotate the new k into the cache row pos (v too), then plain softmax attention.
  const int group = c.n_heads / c.n_kv_heads;
  for (int kh = 0; kh < c.n_kv_heads; ++kh)
    for (int i = 0; i < c.head_dim; i += 2) {
      double a = qkv[size_t(q_dim + kh * c.head_dim + i)], b = qkv[size_t(q_dim + kh * c.head_dim + i + 1)];
      rope_ref(&a, &b, i, c.rope_dim, theta, c.pos);
      const size_t at = size_t(c.pos) * kv_dim + size_t(kh * c.head_dim + i);
      k_ref[at] = c.kv_f32 ? double(float(a)) : half_to_float(float_to_half(float(a)));
      k_ref[at + 1] = c.kv_f32 ? double(float(b)) : half_to_float(float_to_half(float(b)));
      for (int j = 0; j < 2; ++j) {
        const float v = qkv[size_t(q_dim + kv_dim + kh * c.head_dim + i + j)];
        v_ref[at + size_t(j)] = c.kv_f32 ? v : half_to_float(float_to_half(v));
      }
    }
  for (int h = 0; h < c.n_heads; ++h) {
    const int kh = h / group;
    std::vector<double> q(size_t(c.head_dim));
    for (int i = 0; i < c.head_dim; i += 2) {
      double a = qkv[size_t(h * c.head_dim + i)], b = qkv[size_t(h * c.head_dim + i + 1)];
      rope_ref(&a, &b, i, c.rope_dim, theta, c.pos);
      q[size_t(i)] = a;
      q[size_t(i) + 1] = b;
    }
    std::vector<double> scores(size_t(c.pos) + 1);
    double m = -1e300;
    for (int p = 0; p <= c.pos; ++p) {
      double s = 0;
      for (int d = 0; d < c.head_dim; ++d) s += q[size_t(d)] * k_ref[size_t(p) * kv_dim + size_t(kh * c.head_dim + d)];
      scores[size_t(p)] = s / std::sqrt(double(c.head_dim));
      m = std::max(m, scores[size_t(p)]);
    }
    double total = 0;
    for (auto& s : scores) total += (s = std::exp(s - m));
    for (int d = 0; d < c.head_dim; ++d) {
      double want = 0;
      for (int p = 0; p <= c.pos; ++p)
        want += scores[size_t(p)] * v_ref[size_t(p) * kv_dim + size_t(kh * c.head_dim + d)];
      want /= total;
      ASSERT_NEAR(out[size_t(h * c.head_dim + d)], want, 2e-4 + 1e-3 * std::fabs(want))
          << "head " << h << " dim " << d << " pos " << c.pos << " seed " << test::test_seed();
    }
  }
  // The new token's k and v landed in the cache at row pos.
  if (!c.kv_f32) {
    const auto k_after = k_b.read_vector<uint16_t>(k_half.size());
    for (int i = 0; i < kv_dim; ++i)
      ASSERT_NEAR(half_to_float(k_after[size_t(c.pos) * kv_dim + size_t(i)]), k_ref[size_t(c.pos) * kv_dim + size_t(i)],
                  1e-3);
  }
}

std::vector<Case> decode_cases() {
  std::vector<Case> out;
  for (int by_warp : {0, 1})
    for (Case c : {Case{8, 4, 8, 8, 0, true}, Case{8, 4, 8, 8, 17, false}, Case{6, 2, 16, 8, 255, false},
                   Case{6, 2, 16, 8, 256, true}, Case{4, 4, 64, 64, 700, false}, Case{32, 8, 128, 128, 300, false},
                   Case{2, 1, 96, 64, 129, false}}) {
      c.keys_by_warp = by_warp;
      out.push_back(c);
    }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionDecodeTest, ::testing::ValuesIn(decode_cases()),
                         [](const auto& info) {
                           const Case& c = info.param;
                           return "h" + std::to_string(c.n_heads) + "kv" + std::to_string(c.n_kv_heads) + "d" +
                                  std::to_string(c.head_dim) + "r" + std::to_string(c.rope_dim) + "_pos" +
                                  std::to_string(c.pos) + (c.kv_f32 ? "_f32" : "_f16") +
                                  (c.keys_by_warp ? "_by_warp" : "_by_item");
                         });

// Prefill attention (attention.cl, rope already applied): tokens pos0 .. pos0 + n_tok - 1 attend to the
// cache rows 0 .. their own position, against an fp64 softmax over the same (fp16-rounded) cache.
// A work-group takes TOK_TILE (default 4) consecutive tokens: the shapes put tiles' causal ends on both
// sides of a chunk of 128 keys, and leave partial last tiles (n_tok not a multiple of the tile).
struct PrefillCase {
  int n_heads, n_kv_heads, head_dim, pos0, n_tok;
  bool kv_f32 = false;
  int keys_by_warp = 0;
  int prefill_mma = 0;  // -1: the tensor-core kernel where the device has it (head_dim % 16 == 0, fp16 cache)
};

class AttentionPrefillTest : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(AttentionPrefillTest, MatchesCpuReference) {
  const PrefillCase c = GetParam();
  Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(c.pos0 * 31 + c.n_tok * 7 + c.head_dim));
  const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim, n_ctx = c.pos0 + c.n_tok + 2;
  const auto q = test::random_floats(rng, size_t(c.n_tok) * q_dim);
  const auto k = test::random_floats(rng, size_t(n_ctx) * kv_dim), v = test::random_floats(rng, size_t(n_ctx) * kv_dim);
  // The cache as the device stores it (fp16 unless f32) and the values the reference reads.
  std::vector<uint16_t> k_half(k.size()), v_half(v.size());
  std::vector<double> k_ref(k.size()), v_ref(v.size());
  for (size_t i = 0; i < k.size(); ++i) {
    k_half[i] = float_to_half(k[i]);
    v_half[i] = float_to_half(v[i]);
    k_ref[i] = c.kv_f32 ? k[i] : half_to_float(k_half[i]);
    v_ref[i] = c.kv_f32 ? v[i] : half_to_float(v_half[i]);
  }
  Buffer q_b = upload(device, q);
  Buffer k_b = c.kv_f32 ? upload(device, k) : upload(device, k_half);
  Buffer v_b = c.kv_f32 ? upload(device, v) : upload(device, v_half);
  Buffer out_b(device, q.size() * 4);
  out_b.fill_bytes(0xff);
  TransformerKernels kernels(device, {.kv_f32 = c.kv_f32, .keys_by_warp = c.keys_by_warp, .prefill_mma = c.prefill_mma});
  kernels.attention(q_b, k_b, v_b, out_b, c.n_tok, c.n_heads, c.n_kv_heads, c.head_dim, c.pos0);
  const auto out = out_b.read_vector<float>(q.size());
  const int group = c.n_heads / c.n_kv_heads;
  for (int t = 0; t < c.n_tok; ++t)
    for (int h = 0; h < c.n_heads; ++h) {
      const int kh = h / group, n_pos = c.pos0 + t + 1;
      std::vector<double> scores(static_cast<size_t>(n_pos));
      double m = -1e300;
      for (int p = 0; p < n_pos; ++p) {
        double s = 0;
        for (int d = 0; d < c.head_dim; ++d)
          s += double(q[size_t(t) * q_dim + size_t(h * c.head_dim + d)]) *
               k_ref[size_t(p) * kv_dim + size_t(kh * c.head_dim + d)];
        scores[size_t(p)] = s / std::sqrt(double(c.head_dim));
        m = std::max(m, scores[size_t(p)]);
      }
      double total = 0;
      for (auto& s : scores) total += (s = std::exp(s - m));
      for (int d = 0; d < c.head_dim; ++d) {
        double want = 0;
        for (int p = 0; p < n_pos; ++p)
          want += scores[size_t(p)] * v_ref[size_t(p) * kv_dim + size_t(kh * c.head_dim + d)];
        want /= total;
        ASSERT_NEAR(out[size_t(t) * q_dim + size_t(h * c.head_dim + d)], want, 2e-4 + 1e-3 * std::fabs(want))
            << "token " << t << " head " << h << " dim " << d << " seed " << test::test_seed();
      }
    }
}

// Schedules: by work-item, by warp, and (where the device has it) the tensor-core kernel, whose
// work-groups take 64 tokens and 64-position key tiles: the shapes also cross those boundaries.
std::vector<PrefillCase> prefill_cases() {
  std::vector<PrefillCase> out;
  for (int schedule : {0, 1, 2})
    for (PrefillCase c : {PrefillCase{8, 4, 8, 0, 5}, PrefillCase{6, 2, 16, 250, 9}, PrefillCase{32, 8, 128, 100, 17},
                          PrefillCase{2, 1, 96, 0, 130},
                          // one token (a tile of one real token), a whole number of tiles
                          PrefillCase{4, 4, 64, 0, 1}, PrefillCase{4, 2, 128, 7, 8, true},
                          // a tile whose tokens end on both sides of the chunk boundary at 128
                          PrefillCase{8, 2, 96, 125, 3}, PrefillCase{4, 1, 128, 126, 7},
                          // several chunks, every token offset within a tile, partial last tile, f32 cache
                          PrefillCase{3, 1, 16, 300, 66, true}, PrefillCase{2, 2, 8, 1, 255},
                          // several 64-token work-groups and key tiles, first tile off a tile boundary
                          PrefillCase{4, 2, 128, 37, 200}, PrefillCase{2, 1, 32, 63, 65}}) {
      c.keys_by_warp = schedule == 0 ? 0 : 1;
      c.prefill_mma = schedule == 2 ? -1 : 0;
      out.push_back(c);
    }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionPrefillTest, ::testing::ValuesIn(prefill_cases()),
                         [](const auto& info) {
                           const PrefillCase& c = info.param;
                           return "h" + std::to_string(c.n_heads) + "kv" + std::to_string(c.n_kv_heads) + "d" +
                                  std::to_string(c.head_dim) + "_pos" + std::to_string(c.pos0) + "_t" +
                                  std::to_string(c.n_tok) + (c.kv_f32 ? "_f32" : "_f16") +
                                  (c.prefill_mma ? "_mma" : c.keys_by_warp ? "_by_warp" : "_by_item");
                         });

}  // namespace
}  // namespace quill::host
