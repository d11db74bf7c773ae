// kv_common.cl: the KV-cache element type (fp16, or f32 with -DKV_F32=1) and the RoPE rotation
// shared by rope.cl and attention_decode.cl (GGUF llama convention: interleaved pairs (2i, 2i+1)
// of each head, freq = theta^(-2i / rope_dim), dims past rope_dim untouched).
#ifndef QUILL_KV_COMMON_CL
#define QUILL_KV_COMMON_CL

#ifndef KV_F32
#define KV_F32 0
#endif
#if KV_F32
#define KV_T float
#define KV_LOAD(i, p) ((p)[i])
#define KV_LOAD2(i, p) vload2(0, (p) + (i))  // elements i, i + 1 (i even)
#define KV_STORE(v, i, p) ((p)[i] = (v))
#else
#define KV_T half
#define KV_LOAD(i, p) vload_half((i), (p))
#define KV_LOAD2(i, p) vload_half2(0, (p) + (i))  // elements i, i + 1 (i even)
#define KV_STORE(v, i, p) vstore_half_rte((v), (i), (p))
#endif

// Rotates the pair (*a, *b) at even in-head index i for position pos.
inline void rope_pair(float* a, float* b, int i, int rope_dim, float theta, int pos) {
  if (i >= rope_dim) return;
  const float angle = pos * pow(theta, -(float)i / (float)rope_dim);
  const float c = cos(angle), s = sin(angle);
  const float ra = *a * c - *b * s;
  const float rb = *a * s + *b * c;
  *a = ra;
  *b = rb;
}

#endif  // QUILL_KV_COMMON_CL
