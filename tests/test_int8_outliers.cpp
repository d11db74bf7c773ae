// kernels/int8_outliers.cl (the gather that puts LLM.int8()'s fallback outlier columns on the int8 tensor
// cores) against what it must write, on fresh random inputs: the two-digit x within amax / 64516 and its
// scales, the gathered weight columns (kept fp16 columns zero), zero k-tile tails, and the side list of
// the columns left to the fp32 path (kept ones, and every one past the capacity). Runs on every device
// (the GEMM that reads these is NVIDIA-only; MatmulInt8 tests cover it there).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "host/buffer.hpp"
#include "host/device.hpp"
#include "host/kernel.hpp"
#include "tests/device_util.hpp"
#include "tests/util.hpp"

namespace quill::host {
namespace {

constexpr int kWg = 256, kRowsPerGroup = kWg / 32, kTile = 64;

struct GatherCase {
  int n_tok, cols, rows_pad, n_out, cap;
};

void check_gather(const GatherCase& c) {
  Device& device = test::test_device();
  std::mt19937_64 rng(test::test_seed() + uint64_t(c.n_tok * 131 + c.n_out * 7 + c.cap));
  const int kpad = (c.cols + kTile - 1) / kTile * kTile;
  // Outlier columns: n_out distinct ones, ascending; every third kept in fp16 (slot >= 0).
  std::vector<int32_t> perm(size_t(c.cols));
  for (int j = 0; j < c.cols; ++j) perm[size_t(j)] = j;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> olist(perm.begin(), perm.begin() + c.n_out);
  std::sort(olist.begin(), olist.end());
  olist.resize(size_t(c.cols), -7);  // entries past the count are never read as columns
  std::vector<int32_t> slot(size_t(c.cols), -1);
  for (int o = 0; o < c.n_out; o += 3) slot[size_t(olist[size_t(o)])] = o / 3;
  std::vector<float> x = test::random_floats(rng, size_t(c.n_tok) * c.cols, -40.0f, 40.0f);
  if (c.n_tok > 1) std::fill(x.begin() + c.cols, x.begin() + 2 * c.cols, 0.0f);  // token 1: all zero
  std::vector<int8_t> cb(size_t(c.rows_pad) * kpad);
  for (auto& b : cb) b = int8_t(int(rng() % 255) - 127);

  Buffer xb = upload(device, x), olist_b = upload(device, olist),
         ocount_b = upload(device, std::vector<int32_t>{c.n_out});
  Buffer slot_b = upload(device, slot), cb_b = upload(device, cb);
  Buffer xd(device, 2 * size_t(c.n_tok) * c.cap), xds(device, 2 * size_t(c.n_tok) * 4);
  Buffer cbo(device, size_t(c.rows_pad) * c.cap), slist(device, size_t(c.cols) * 4), scount(device, 3 * 4);
  for (Buffer* b : {&xd, &xds, &cbo, &slist, &scount}) b->fill_bytes(0x5a);  // poison
  Kernel k(device.program("int8_outliers.cl", "-DOG_WG=" + std::to_string(kWg)), "int8_outlier_gather");
  k.args(xb, int32_t(c.n_tok), int32_t(c.cols), olist_b, ocount_b, slot_b, cb_b, int32_t(kpad), int32_t(c.rows_pad),
         int32_t(c.cap), xd, xds, cbo, slist, scount);
  const size_t groups = size_t(c.n_tok) + size_t(c.rows_pad / kRowsPerGroup) + 1;
  k.launch(device, Range(groups * kWg), Range(kWg));

  const int n_dig = std::min(c.n_out, c.cap), n_pad = (n_dig + kTile - 1) / kTile * kTile;
  const auto d = xd.read_vector<int8_t>(2 * size_t(c.n_tok) * c.cap);
  const auto s = xds.read_vector<float>(2 * size_t(c.n_tok));
  for (int t = 0; t < c.n_tok; ++t) {
    double amax = 0;
    for (int o = 0; o < n_dig; ++o) amax = std::max(amax, std::fabs(double(x[size_t(t) * c.cols + olist[size_t(o)]])));
    const double sh = s[size_t(t)] / 127.0, sl = s[size_t(c.n_tok + t)] / 127.0;
    ASSERT_NEAR(sh, amax / 127.0, 1e-6 * amax) << "token " << t;
    ASSERT_NEAR(sl, sh / 254.0, 1e-6 * sh) << "token " << t;
    for (int o = 0; o < n_pad; ++o) {
      const int h = d[size_t(t) * c.cap + o], l = d[(size_t(c.n_tok) + t) * c.cap + o];
      ASSERT_TRUE(h >= -127 && h <= 127 && l >= -127 && l <= 127) << "token " << t << " o " << o;
      const double want = o < n_dig ? x[size_t(t) * c.cols + olist[size_t(o)]] : 0.0;
      ASSERT_NEAR(h * sh + l * sl, want, amax / 64516.0 * 1.01 + 1e-30) << "token " << t << " o " << o;
      if (o >= n_dig) {
        ASSERT_TRUE(h == 0 && l == 0) << "tail o " << o;
      }
    }
  }
  const auto w = cbo.read_vector<int8_t>(size_t(c.rows_pad) * c.cap);
  for (int r = 0; r < c.rows_pad; ++r)
    for (int o = 0; o < n_pad; ++o) {
      const int j = o < n_dig ? olist[size_t(o)] : -1;
      const int want = j >= 0 && slot[size_t(j)] < 0 ? cb[size_t(r) * kpad + j] : 0;
      ASSERT_EQ(int(w[size_t(r) * c.cap + o]), want) << "row " << r << " o " << o;
    }
  std::vector<int32_t> side;
  for (int o = 0; o < c.n_out; ++o)
    if (o >= c.cap || slot[size_t(olist[size_t(o)])] >= 0) side.push_back(olist[size_t(o)]);
  const auto counts = scount.read_vector<int32_t>(3);
  ASSERT_EQ(counts, (std::vector<int32_t>{int32_t(side.size()), c.n_out, c.n_out - int32_t(side.size())}));
  const auto got = slist.read_vector<int32_t>(size_t(c.cols));
  EXPECT_EQ(std::vector<int32_t>(got.begin(), got.begin() + ptrdiff_t(side.size())), side);
}

TEST(Int8OutlierGather, MatchesExpectedOperands) {
  for (const GatherCase& c :
       {GatherCase{3, 172, 128, 43, 1024}, GatherCase{17, 300, 256, 150, 64}, GatherCase{1, 64, 128, 64, 128},
        GatherCase{5, 4096, 128, 0, 1024}, GatherCase{9, 1000, 128, 1000, 1024}}) {
    SCOPED_TRACE("n_tok " + std::to_string(c.n_tok) + " cols " + std::to_string(c.cols) + " outliers " +
                 std::to_string(c.n_out) + " cap " + std::to_string(c.cap));
    check_gather(c);
  }
}

}  // namespace
}  // namespace quill::host
