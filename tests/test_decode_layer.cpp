// The one-launch-per-layer decode (host/decode_layer.hpp, kernels/decode_layer.cl) against the
// five-launch schedule on the same synthetic model, for every format it takes: a prompt long enough for
// two attention splits per head, then decode steps with the same tokens in both sessions. Runs with the
// full grid and with 3 work-groups (more rows, and attention tasks, than the grid has warps and
// work-groups). NVIDIA only: elsewhere the session keeps the five launches, which the test checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine/session.hpp"
#include "host/decode_layer.hpp"

namespace quill {
namespace {

ModelOptions options(QuantScheme scheme) {
  ModelOptions o;
  o.device = "cpu";
  if (const char* env = std::getenv("QUILL_TEST_DEVICE"); env && *env) o.device = env;
  o.scheme = scheme;
  return o;
}

std::unique_ptr<Session> session_with_decode_layer(const std::shared_ptr<Model>& model, bool on) {
  if (!on) setenv("QUILL_DECODE_LAYER", "0", 1);
  auto s = std::make_unique<Session>(model);
  unsetenv("QUILL_DECODE_LAYER");
  return s;
}

TEST(DecodeLayer, MatchesTheFiveLaunchSchedule) {
  for (QuantScheme scheme : {QuantScheme::Int4, QuantScheme::Q8_0, QuantScheme::NF4, QuantScheme::FP4}) {
    auto model = Model::synthetic("tiny", options(scheme));
    const LlamaConfig& c = model->config();
    if (!host::DecodeLayer::available(model->device())) {
      EXPECT_FALSE(Session(model).decodes_by_layer());
      GTEST_SKIP() << "no decode_layer on " << model->device().info().name << " (NVIDIA path only)";
    }
    for (const char* groups : {"", "3"}) {
      setenv("QUILL_DECODE_LAYER_GROUPS", groups, 1);
      auto ref = session_with_decode_layer(model, false);
      auto fast = session_with_decode_layer(model, true);
      unsetenv("QUILL_DECODE_LAYER_GROUPS");
      const std::string what = std::string(scheme_name(scheme)) + ", groups '" + groups + "'";
      ASSERT_FALSE(ref->decodes_by_layer()) << what;
      ASSERT_TRUE(fast->decodes_by_layer()) << what;
      std::vector<int32_t> prompt(140);  // > TransformerKernels::kDecodeSplit: two splits per head
      for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 37 + 11) % size_t(c.vocab_size));
      ref->eval(prompt);
      fast->eval(prompt);
      for (int step = 0; step < 6; ++step) {
        const std::vector<float>& want = ref->logits();
        const int32_t next = int32_t(std::max_element(want.begin(), want.end()) - want.begin());
        ref->eval(std::span<const int32_t>(&next, 1));
        fast->eval(std::span<const int32_t>(&next, 1));
        EXPECT_EQ(fast->last_launches(), uint64_t(c.n_layers + 2)) << what;  // embed, layers, head
        float max_abs = 0;
        for (float v : ref->logits()) max_abs = std::max(max_abs, std::fabs(v));
        for (int i = 0; i < c.vocab_size; ++i)  // the attention sums in another order; the GEMVs are the same
          ASSERT_NEAR(fast->logits()[size_t(i)], ref->logits()[size_t(i)], 1e-4f * max_abs + 1e-6f)
              << what << ", step " << step << ", logit " << i;
      }
    }
  }
}

}  // namespace
}  // namespace quill
