// kernels/quantize.cl against quantize_activations_int8 bit for bit (codes, row scales, outlier list),
// on fresh random inputs with planted outliers, outputs poisoned first; one- and two-launch paths.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "engine/quantize_int8.hpp"
#include "host/device.hpp"
#include "host/quantize_activations.hpp"
#include "tests/device_util.hpp"
#include "tests/int8_inputs.hpp"
#include "tests/util.hpp"

namespace quill::host {
namespace {

struct QShape {
  int n_tok, cols;
  float threshold;
};

class QuantizeActivationsInt8Test : public ::testing::TestWithParam<QShape> {};

void check_against_cpu(const MatrixF32& x, float threshold, const std::string& what) {
  Device& device = test::test_device();
  const int n_tok = int(x.rows), cols = int(x.cols), kpad = (cols + 63) / 64 * 64;
  Buffer xb = upload(device, x.data);
  Buffer codes(device, size_t(n_tok) * kpad), sca(device, size_t(n_tok) * 4), flags(device, size_t(cols) * 4),
      olist(device, size_t(cols) * 4), ocount(device, 4);
  for (Buffer* b : {&codes, &sca, &olist, &ocount}) b->fill_bytes(0xff);  // poison
  QuantizeActivations q(device);
  q.run(xb, n_tok, cols, kpad, threshold, {&codes, &sca, &flags, &olist, &ocount});
  const Int8Activations ref = quantize_activations_int8(x, threshold);

  const auto got_codes = codes.read_vector<int8_t>(size_t(n_tok) * kpad);
  const auto got_sca = sca.read_vector<float>(size_t(n_tok));
  const int n_out = ocount.read_vector<int32_t>(1)[0];
  ASSERT_EQ(n_out, int(ref.outliers.size())) << what;
  const auto got_list = olist.read_vector<int32_t>(size_t(cols));
  for (int o = 0; o < n_out; ++o) ASSERT_EQ(got_list[size_t(o)], ref.outliers[size_t(o)]) << what << " o=" << o;
  for (int i = 0; i < n_tok; ++i) {
    ASSERT_EQ(std::memcmp(&got_sca[size_t(i)], &ref.sca[size_t(i)], 4), 0)
        << what << " sca i=" << i << " got " << got_sca[size_t(i)] << " want " << ref.sca[size_t(i)];
    for (int j = 0; j < kpad; ++j) {
      const int want = j < cols ? ref.ca[size_t(i) * cols + j] : 0;
      ASSERT_EQ(int(got_codes[size_t(i) * kpad + j]), want) << what << " code i=" << i << " j=" << j;
    }
  }
}

TEST_P(QuantizeActivationsInt8Test, CodesScalesOutliersMatchCpuBitForBit) {
  const QShape s = GetParam();
  std::mt19937_64 rng(test::test_seed() + uint64_t(s.n_tok * 131 + s.cols));
  const auto in = test::make_int8_inputs(rng, s.n_tok, s.cols, s.threshold > 0.0f);
  check_against_cpu(in.x, s.threshold, "seed " + std::to_string(test::test_seed()));
}

// Values that sit exactly on rounding ties (k + 0.5 after scaling): round half to even.
TEST(QuantizeActivationsInt8, TiesRoundHalfEven) {
  MatrixF32 x{2, 8, {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f,  //
                     -254.0f, 1.0f, 3.0f, 5.0f, -1.0f, -3.0f, 7.0f, 0.0f}};
  check_against_cpu(x, 0.0f, "ties");
  const Int8Activations ref = quantize_activations_int8(x, 0.0f);
  EXPECT_EQ(ref.ca[2], 2);   // 1.5 -> 2
  EXPECT_EQ(ref.ca[3], 2);   // 2.5 -> 2
  EXPECT_EQ(ref.ca[8 + 1], 0);  // 1 * 127 / 254 = 0.5 -> 0
}

// Outliers that only late tokens have, in columns past the first 32-column block and in the last partial
// one (quantize_find_outliers splits the tokens over groups of work-items, each stopping early).
TEST(QuantizeActivationsInt8, OutliersOnlyInLateTokens) {
  std::mt19937_64 rng(test::test_seed() + 11);
  MatrixF32 x{300, 1001, test::random_floats(rng, size_t(300) * 1001, -2.0f, 2.0f)};
  x.row(299)[777] = 9.0f;    // the last token only
  x.row(150)[1000] = -6.0f;  // the last column, exactly the threshold
  x.row(131)[33] = 6.5f;
  check_against_cpu(x, 6.0f, "late tokens");
  EXPECT_EQ(quantize_activations_int8(x, 6.0f).outliers, (std::vector<int32_t>{33, 777, 1000}));
}

// Every column is an outlier: SCA 0, all codes 0 (no NaN).
TEST(QuantizeActivationsInt8, AllOutlierRow) {
  MatrixF32 x{1, 17, std::vector<float>(17)};
  std::mt19937_64 rng(test::test_seed());
  for (int j = 0; j < 17; ++j) x.data[size_t(j)] = (j & 1 ? -1.0f : 1.0f) * (6.0f + float(rng() % 100) / 10.0f);
  check_against_cpu(x, 6.0f, "all-outlier");
}

INSTANTIATE_TEST_SUITE_P(Shapes, QuantizeActivationsInt8Test,
                         ::testing::Values(QShape{1, 17, 0}, QShape{1, 17, 6}, QShape{3, 64, 0}, QShape{3, 64, 6},
                                           QShape{17, 172, 6}, QShape{9, 172, 6}, QShape{8, 172, 6},
                                           QShape{64, 4096, 0}, QShape{64, 4096, 6}, QShape{1, 4096, 6},
                                           QShape{300, 1001, 6}, QShape{3, 12288, 0}, QShape{5, 12290, 6}),
                         [](const auto& info) {
                           const QShape& s = info.param;
                           return "t" + std::to_string(s.n_tok) + "_c" + std::to_string(s.cols) +
                                  (s.threshold > 0 ? "_llm" : "_int8");
                         });

}  // namespace
}  // namespace quill::host
