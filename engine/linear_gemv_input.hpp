// The input transforms that the weight-only GEMV kernels (matmul_f16.cl, matmul_lut.cl) apply as they
// load x: which ones a Linear fuses, and the launcher's description of one. Shared by linear_float.cpp
// and linear_lut.cpp.
#pragma once

#include "engine/linear.hpp"
#include "host/matmul_lut.hpp"

namespace quill {

// SwiGLU always; RMSNorm when fuse_norm (host::fuse_rmsnorm); up to host::kMaxFusedTokens tokens.
inline bool gemv_fuses(const InputTransform& transform, int n_tok, bool fuse_norm) {
  if (n_tok > host::kMaxFusedTokens) return false;
  return transform.kind == InputTransform::Kind::kSwiGlu ||
         (transform.kind == InputTransform::Kind::kRmsNorm && fuse_norm);
}

inline host::FusedInput fused_input(const InputTransform& t) {
  host::FusedInput f;
  if (t.kind == InputTransform::Kind::kRmsNorm) f = {host::FusedInput::kRmsNorm, t.norm_weight, t.eps};
  if (t.kind == InputTransform::Kind::kSwiGlu) f.kind = host::FusedInput::kSwiGlu;
  return f;
}

}  // namespace quill
