// GGUF / ggml tensor types: ids, block geometry, and CPU dequantization of a row, following
// ggml's reference dequantize_row_* (same float operations in the same order).
#include "engine/ggml_types.hpp"

#include <cstring>

#include "engine/error.hpp"
#include "engine/half.hpp"

namespace quill {
namespace {

uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }  // little-endian
float load_half(const uint8_t* p) { return half_to_float(load_u16(p)); }

// Q4_0: half d; uint8 qs[16]. Element j in the low nibble of qs[j], element j+16 in the high one.
void dequantize_q4_0(const uint8_t* b, float* y) {
  const float d = load_half(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = float((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = float((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1: half d, m; uint8 qs[16]; nibbles as Q4_0.
void dequantize_q4_1(const uint8_t* b, float* y) {
  const float d = load_half(b);
  const float m = load_half(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = float(qs[j] & 0x0F) * d + m;
    y[j + 16] = float(qs[j] >> 4) * d + m;
  }
}

// Q8_0: half d; int8 qs[32].
void dequantize_q8_0(const uint8_t* b, float* y) {
  const float d = load_half(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = float(qs[j]) * d;
}

// Q4_K: half d, dmin; uint8 scales[12]; uint8 qs[128]. Sub-block j's 6-bit scale and min.
void q4_k_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void dequantize_q4_k(const uint8_t* b, float* y) {
  const float d = load_half(b);
  const float dmin = load_half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int c = 0; c < 4; ++c) {  // 4 chunks of 64 values; chunk c reads qs[32c .. 32c+31]
    uint8_t sc, m;
    q4_k_scale_min(2 * c, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    q4_k_scale_min(2 * c + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[64 * c + l] = d1 * float(q[32 * c + l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[64 * c + 32 + l] = d2 * float(q[32 * c + l] >> 4) - m2;
  }
}

// Q6_K: uint8 ql[128], qh[64]; int8 scales[16]; half d. Two halves of 128 values.
void dequantize_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_half(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int8_t((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int8_t((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int8_t((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[n + l] = d * float(sc[is + 0]) * float(q1);
      y[n + l + 32] = d * float(sc[is + 2]) * float(q2);
      y[n + l + 64] = d * float(sc[is + 4]) * float(q3);
      y[n + l + 96] = d * float(sc[is + 6]) * float(q4);
    }
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

std::optional<GgmlType> ggml_type_from_id(uint32_t id) {
  switch (id) {
    case 0:
      return GgmlType::F32;
    case 1:
      return GgmlType::F16;
    case 2:
      return GgmlType::Q4_0;
    case 3:
      return GgmlType::Q4_1;
    case 8:
      return GgmlType::Q8_0;
    case 12:
      return GgmlType::Q4_K;
    case 14:
      return GgmlType::Q6_K;
    case 24:
      return GgmlType::I8;
    case 25:
      return GgmlType::I16;
    case 26:
      return GgmlType::I32;
    case 30:
      return GgmlType::BF16;
    default:
      return std::nullopt;
  }
}

std::string_view ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return "F32";
    case GgmlType::F16:
      return "F16";
    case GgmlType::Q4_0:
      return "Q4_0";
    case GgmlType::Q4_1:
      return "Q4_1";
    case GgmlType::Q8_0:
      return "Q8_0";
    case GgmlType::Q4_K:
      return "Q4_K";
    case GgmlType::Q6_K:
      return "Q6_K";
    case GgmlType::BF16:
      return "BF16";
    case GgmlType::I8:
      return "I8";
    case GgmlType::I16:
      return "I16";
    case GgmlType::I32:
      return "I32";
  }
  fail(ErrorKind::kInternal, "ggml_type_name: unknown GgmlType {}", static_cast<uint32_t>(type));
}

int64_t ggml_block_elements(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::I8:
    case GgmlType::I16:
    case GgmlType::I32:
      return 1;
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q8_0:
      return 32;
    case GgmlType::Q4_K:
    case GgmlType::Q6_K:
      return 256;
  }
  fail(ErrorKind::kInternal, "ggml_block_elements: unknown GgmlType {}", static_cast<uint32_t>(type));
}

int64_t ggml_block_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::I32:
      return 4;
    case GgmlType::I8:
      return 1;
    case GgmlType::I16:
      return 2;
    case GgmlType::F16:
    case GgmlType::BF16:
      return 2;
    case GgmlType::Q4_0:
      return 18;
    case GgmlType::Q4_1:
      return 20;
    case GgmlType::Q8_0:
      return 34;
    case GgmlType::Q4_K:
      return 144;
    case GgmlType::Q6_K:
      return 210;
  }
  fail(ErrorKind::kInternal, "ggml_block_bytes: unknown GgmlType {}", static_cast<uint32_t>(type));
}

void dequantize_ggml_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const int64_t block = ggml_block_elements(type);
  if (n < 0 || n % block != 0) {
    fail(ErrorKind::kInvalidArgument, "dequantize_ggml_row: {} elements is not a multiple of the {} block ({})", n,
         ggml_type_name(type), block);
  }
  const auto* p = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, p, size_t(n) * sizeof(float));
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(load_u16(p + 2 * i));
      return;
    case GgmlType::I8:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(int8_t(p[i]));
      return;
    case GgmlType::I16:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(int16_t(load_u16(p + 2 * i)));
      return;
    case GgmlType::I32:
      for (int64_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, p + 4 * i, sizeof v);
        dst[i] = float(v);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = uint32_t(load_u16(p + 2 * i)) << 16;
        std::memcpy(dst + i, &bits, sizeof bits);
      }
      return;
    default:
      break;
  }
  void (*block_fn)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case GgmlType::Q4_0:
      block_fn = dequantize_q4_0;
      break;
    case GgmlType::Q4_1:
      block_fn = dequantize_q4_1;
      break;
    case GgmlType::Q8_0:
      block_fn = dequantize_q8_0;
      break;
    case GgmlType::Q4_K:
      block_fn = dequantize_q4_k;
      break;
    case GgmlType::Q6_K:
      block_fn = dequantize_q6_k;
      break;
    default:
      fail(ErrorKind::kInternal, "dequantize_ggml_row: unhandled type {}", ggml_type_name(type));
  }
  const int64_t bytes = ggml_block_bytes(type);
  for (int64_t i = 0; i < n / block; ++i) block_fn(p + i * bytes, dst + i * block);
}

}  // namespace quill
