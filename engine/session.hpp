// Session: one conversation on a shared Model — its KV cache, scratch buffers and position.
// eval(tokens) runs the layer schedule on the device (a prompt as one batch through the GEMM path,
// then one token at a time through the GEMV path) with one host synchronization per call.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/model.hpp"
#include "engine/workspace.hpp"
#include "host/transformer_kernels.hpp"

namespace quill {

struct SessionOptions {
  int n_ctx = 0;          // context length; 0 = the model's (capped at 4096)
  int max_batch = 256;    // tokens per device pass while processing a prompt
  bool kv_f32 = false;    // KV cache in f32 (default fp16; f32 models use f32)
};

class Session {
 public:
  Session(std::shared_ptr<Model> model, const SessionOptions& options = {});

  // Appends tokens to the context and runs them. all_logits: keep the logits of every token
  // (perplexity); otherwise only the last one's. Throws kContextFull past n_ctx, kInvalidArgument
  // for a token id outside the vocabulary (nothing is evaluated then).
  void eval(std::span<const int32_t> tokens, bool all_logits = false);

  // [vocab] logits after the last evaluated token, or [n, vocab] for the last eval with all_logits.
  const std::vector<float>& logits() const { return logits_; }
  int position() const { return pos_; }
  int n_ctx() const { return n_ctx_; }
  void reset() { pos_ = 0; }
  const Model& model() const { return *model_; }

  // Kernel launches of the last single-token eval.
  uint64_t last_launches() const { return last_launches_; }

 private:
  void run_batch(const int32_t* tokens, int n, bool all_logits, float* logits_out);
  void ensure_scratch(int n);
  void check_cache_fits(size_t layer_bytes) const;

  std::shared_ptr<Model> model_;
  host::Device& device_;
  SessionOptions options_;
  int n_ctx_;
  int pos_ = 0;
  host::TransformerKernels kernels_;
  Workspace workspace_;
  std::vector<host::Buffer> k_cache_, v_cache_;  // per layer [n_ctx, kv_dim] fp16 (or f32)
  int scratch_tokens_ = 0;
  host::Buffer tokens_, x_, qkv_, q_, att_, gate_up_, last_, logits_buf_;
  host::Buffer decode_partial_, decode_done_;  // attention_decode scratch
  std::vector<int32_t> token_staging_;  // this eval's tokens, read by the asynchronous uploads
  std::vector<float> logits_;
  uint64_t last_launches_ = 0;
};

}  // namespace quill
