// norm.cl: RMSNorm, out = x * w / sqrt(mean(x^2) + eps), one work-group per token.
#include "common.cl"

// x: [n_tok, dim] f32   w: [dim] f32   out: [n_tok, dim] f32. NDRange: (n_tok * WG), local (WG).
__kernel void rmsnorm(__global const float* x, __global const float* w, __global float* out, int dim, float eps,
                      __local float* scratch) {
  const int t = get_group_id(0);
  const int lid = get_local_id(0);
  const int n = get_local_size(0);
  __global const float* xt = x + (size_t)t * dim;
  float ss = 0.0f;
  for (int i = lid; i < dim; i += n) ss += xt[i] * xt[i];
  ss = work_group_sum(ss, scratch);
  const float inv = rsqrt(ss / dim + eps);
  __global float* ot = out + (size_t)t * dim;
  for (int i = lid; i < dim; i += n) ot[i] = xt[i] * inv * w[i];
}
