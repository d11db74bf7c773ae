// The per-family Linear constructors that make_linear (linear.cpp) dispatches to. Each family
// lives in its own engine/linear_<family>.cpp with its kernels in kernels/ and launcher in host/.
#pragma once

#include <memory>

#include "engine/linear.hpp"

namespace quill {

// f32 / f16 weights: kernels/matmul_f16.cl (the weight type is a build flag).
std::unique_ptr<Linear> make_linear_float(host::Device& device, const MatrixF32& w);
std::unique_ptr<Linear> make_linear_float(host::Device& device, const HalfMatrix& w);
// nf4 / fp4 / dyn8 (bitsandbytes blockwise, optional double quant).
std::unique_ptr<Linear> make_linear_blockwise(host::Device& device, const BlockwiseMatrix& w);
// q8_0 / int4 (GGUF Q8_0 / Q4_0 blocks of 32).
std::unique_ptr<Linear> make_linear_ggml(host::Device& device, const GgmlBlockMatrix& w);
// kmeans4 (4-bit indices into fp16 codebooks).
std::unique_ptr<Linear> make_linear_kmeans(host::Device& device, const KMeansMatrix& w);
// int8 (vector-wise) and llm-int8 (plus fp16 outlier columns; params.int8_threshold).
std::unique_ptr<Linear> make_linear_int8(host::Device& device, const Int8Matrix& w, QuantScheme scheme,
                                         const QuantParams& params);

}  // namespace quill
