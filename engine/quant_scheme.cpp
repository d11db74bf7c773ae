// Scheme names, parameter defaults and validation (see quant_scheme.hpp).
#include "engine/quant_scheme.hpp"

#include <array>
#include <cmath>
#include <utility>

#include "engine/error.hpp"

namespace quill {
namespace {

constexpr std::array<std::pair<std::string_view, QuantScheme>, 11> kNames = {{
    {"f32", QuantScheme::F32},
    {"f16", QuantScheme::F16},
    {"q8_0", QuantScheme::Q8_0},
    {"int8", QuantScheme::Int8},
    {"llm-int8", QuantScheme::LlmInt8},
    {"dyn8", QuantScheme::Dyn8},
    {"nf4", QuantScheme::NF4},
    {"fp4", QuantScheme::FP4},
    {"int4", QuantScheme::Int4},
    {"q4_0", QuantScheme::Int4},  // alias
    {"kmeans4", QuantScheme::KMeans4},
}};

bool is_bnb_blockwise(QuantScheme s) {
  return s == QuantScheme::NF4 || s == QuantScheme::FP4 || s == QuantScheme::Dyn8;
}
bool is_ggml_block(QuantScheme s) { return s == QuantScheme::Q8_0 || s == QuantScheme::Int4; }

}  // namespace

QuantScheme parse_quant_scheme(std::string_view name) {
  for (const auto& [n, s] : kNames) {
    if (n == name) return s;
  }
  fail(ErrorKind::kInvalidArgument, "unknown quantization scheme '{}'; valid names: {}", name, quant_scheme_names());
}

std::string_view scheme_name(QuantScheme scheme) {
  for (const auto& [n, s] : kNames) {
    if (s == scheme) return n;  // the first name of a scheme is its canonical one
  }
  fail(ErrorKind::kInternal, "scheme_name: unknown QuantScheme value {}", static_cast<int>(scheme));
}

std::string quant_scheme_names() {
  std::string out;
  for (const auto& [n, s] : kNames) {
    if (!out.empty()) out += ' ';
    out += n;
  }
  return out;
}

void validate_quant_params(QuantScheme scheme, const QuantParams& params) {
  const int b = params.block;
  if (is_bnb_blockwise(scheme)) {
    if (b != 0 && (b < 32 || b > 4096 || (b & (b - 1)) != 0)) {
      fail(ErrorKind::kInvalidArgument, "{}: block size {} is not a power of two in 32..4096", scheme_name(scheme), b);
    }
  } else if (is_ggml_block(scheme)) {
    if (b != 0 && b != 32)
      fail(ErrorKind::kInvalidArgument, "{}: block size is fixed at 32 (got {})", scheme_name(scheme), b);
  } else if (b != 0) {
    fail(ErrorKind::kInvalidArgument, "{}: this scheme has no blocks (got block size {})", scheme_name(scheme), b);
  }
  if (params.double_quant && !is_bnb_blockwise(scheme)) {
    fail(ErrorKind::kInvalidArgument, "{}: double quantization applies to nf4, fp4 and dyn8 only", scheme_name(scheme));
  }
  if (!std::isfinite(params.int8_threshold) || params.int8_threshold < 0.0f) {
    fail(ErrorKind::kInvalidArgument, "int8 outlier threshold must be finite and >= 0 (got {})", params.int8_threshold);
  }
}

int resolved_block(QuantScheme scheme, const QuantParams& params) {
  validate_quant_params(scheme, params);
  switch (scheme) {
    case QuantScheme::NF4:
    case QuantScheme::FP4:
      return params.block ? params.block : 64;
    case QuantScheme::Dyn8:
      return params.block ? params.block : 256;
    case QuantScheme::Q8_0:
    case QuantScheme::Int4:
      return 32;
    default:
      return 0;
  }
}

double nominal_bits_per_weight(QuantScheme scheme, const QuantParams& params) {
  const double block = resolved_block(scheme, params);
  switch (scheme) {
    case QuantScheme::F32:
      return 32.0;
    case QuantScheme::F16:
      return 16.0;
    case QuantScheme::Q8_0:
      return 8.0 + 16.0 / block;
    case QuantScheme::Int4:
      return 4.0 + 16.0 / block;
    case QuantScheme::Int8:
    case QuantScheme::LlmInt8:
      return 8.0;
    case QuantScheme::KMeans4:
      return 4.0;
    case QuantScheme::Dyn8:
    case QuantScheme::NF4:
    case QuantScheme::FP4: {
      const double code_bits = scheme == QuantScheme::Dyn8 ? 8.0 : 4.0;
      // double quant: one 8-bit code per block plus one fp32 absmax2 per 256 blocks
      const double scale_bits = params.double_quant ? 8.0 / block + 32.0 / (block * 256.0) : 32.0 / block;
      return code_bits + scale_bits;
    }
  }
  fail(ErrorKind::kInternal, "nominal_bits_per_weight: unknown QuantScheme value {}", static_cast<int>(scheme));
}

}  // namespace quill
