// The input transforms that the weight-only GEMV kernels (matmul_f16.cl, matmul_lut.cl) apply as they
// load x: which ones a Linear fuses, and the launcher's description of one; and the session scratch of
// the prefill GEMM (host::GemmDequant). Shared by linear_float.cpp and linear_lut.cpp.
#pragma once

#include <optional>

#include "engine/linear.hpp"
#include "host/gemm_dequant.hpp"
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

// Whether a call of n_tok tokens takes the prefill GEMM (when the Linear has one): from min_tokens on,
// and only for untransformed x (the GEMV kernels fuse the transforms; the GEMM does not).
inline bool prefill_gemm_applies(const std::optional<host::GemmDequant>& gemm, int min_tokens, int n_tok,
                                 const host::FusedInput& input) {
  return gemm && n_tok >= min_tokens && input.kind == host::FusedInput::kNone;
}

// The prefill GEMM's scratch for its converted x, shared by every Linear of the session.
inline host::GemmInputScratch gemm_scratch(Workspace& ws, const host::GemmDequant& gemm, int n_tok, int cols,
                                           int row_words) {
  return {&ws.get(nullptr, Workspace::kGemmInputSlot, gemm.input_scratch_bytes(n_tok, cols, row_words)),
          &ws.get(nullptr, Workspace::kGemmInputScaleSlot, gemm.input_scale_bytes(n_tok, cols, row_words))};
}

}  // namespace quill
