// Scheme names, parameter validation, defaults and nominal bits per weight.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "engine/error.hpp"
#include "engine/quant_scheme.hpp"

namespace quill {
namespace {

TEST(QuantScheme, ParsesEveryNameAndRoundTrips) {
  const std::pair<const char*, QuantScheme> names[] = {
      {"f32", QuantScheme::F32},   {"f16", QuantScheme::F16},          {"q8_0", QuantScheme::Q8_0},
      {"int8", QuantScheme::Int8}, {"llm-int8", QuantScheme::LlmInt8}, {"dyn8", QuantScheme::Dyn8},
      {"nf4", QuantScheme::NF4},   {"fp4", QuantScheme::FP4},          {"int4", QuantScheme::Int4},
      {"q4_0", QuantScheme::Int4}, {"kmeans4", QuantScheme::KMeans4}};
  for (const auto& [name, scheme] : names) {
    EXPECT_EQ(parse_quant_scheme(name), scheme) << name;
    EXPECT_EQ(parse_quant_scheme(scheme_name(scheme)), scheme) << name;
  }
  EXPECT_EQ(scheme_name(QuantScheme::Int4), "int4");
  EXPECT_EQ(scheme_name(QuantScheme::LlmInt8), "llm-int8");
}

TEST(QuantScheme, UnknownNameListsValidOnes) {
  for (const char* bad : {"", "NF4", "int3", "q4_k", "llm_int8"}) {
    try {
      parse_quant_scheme(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      const std::string msg = e.what();
      for (const char* valid :
           {"f32", "f16", "q8_0", "int8", "llm-int8", "dyn8", "nf4", "fp4", "int4", "q4_0", "kmeans4"}) {
        EXPECT_NE(msg.find(valid), std::string::npos) << msg;
      }
    }
  }
}

TEST(QuantScheme, ValidatesBlocks) {
  for (QuantScheme s : {QuantScheme::NF4, QuantScheme::FP4, QuantScheme::Dyn8}) {
    for (int ok : {0, 32, 64, 128, 256, 1024, 4096}) EXPECT_NO_THROW(validate_quant_params(s, {.block = ok}));
    for (int bad : {-64, 1, 16, 48, 96, 8192}) EXPECT_THROW(validate_quant_params(s, {.block = bad}), Error) << bad;
  }
  for (QuantScheme s : {QuantScheme::Q8_0, QuantScheme::Int4}) {
    EXPECT_NO_THROW(validate_quant_params(s, {.block = 32}));
    EXPECT_THROW(validate_quant_params(s, {.block = 64}), Error);
  }
  for (QuantScheme s :
       {QuantScheme::F32, QuantScheme::F16, QuantScheme::Int8, QuantScheme::LlmInt8, QuantScheme::KMeans4}) {
    EXPECT_THROW(validate_quant_params(s, {.block = 64}), Error);
  }
}

TEST(QuantScheme, ValidatesDoubleQuantAndThreshold) {
  EXPECT_NO_THROW(validate_quant_params(QuantScheme::NF4, {.double_quant = true}));
  EXPECT_NO_THROW(validate_quant_params(QuantScheme::FP4, {.double_quant = true}));
  EXPECT_THROW(validate_quant_params(QuantScheme::Int4, {.double_quant = true}), Error);
  EXPECT_THROW(validate_quant_params(QuantScheme::KMeans4, {.double_quant = true}), Error);
  EXPECT_NO_THROW(validate_quant_params(QuantScheme::LlmInt8, {.int8_threshold = 0.0f}));
  EXPECT_THROW(validate_quant_params(QuantScheme::LlmInt8, {.int8_threshold = -1.0f}), Error);
  EXPECT_THROW(validate_quant_params(QuantScheme::LlmInt8, {.int8_threshold = std::nanf("")}), Error);
}

TEST(QuantScheme, DefaultsAndNominalBits) {
  EXPECT_EQ(resolved_block(QuantScheme::NF4, {}), 64);
  EXPECT_EQ(resolved_block(QuantScheme::FP4, {}), 64);
  EXPECT_EQ(resolved_block(QuantScheme::Dyn8, {}), 256);
  EXPECT_EQ(resolved_block(QuantScheme::Int4, {}), 32);
  EXPECT_EQ(resolved_block(QuantScheme::Q8_0, {}), 32);
  EXPECT_EQ(resolved_block(QuantScheme::NF4, {.block = 128}), 128);
  EXPECT_EQ(resolved_block(QuantScheme::KMeans4, {}), 0);
  EXPECT_DOUBLE_EQ(nominal_bits_per_weight(QuantScheme::NF4, {}), 4.5);
  EXPECT_NEAR(nominal_bits_per_weight(QuantScheme::NF4, {.double_quant = true}), 4.127, 0.0005);
  EXPECT_DOUBLE_EQ(nominal_bits_per_weight(QuantScheme::Int4, {}), 4.5);
  EXPECT_DOUBLE_EQ(nominal_bits_per_weight(QuantScheme::Q8_0, {}), 8.5);
  EXPECT_DOUBLE_EQ(nominal_bits_per_weight(QuantScheme::Dyn8, {}), 8.125);
  EXPECT_DOUBLE_EQ(nominal_bits_per_weight(QuantScheme::F16, {}), 16.0);
}

}  // namespace
}  // namespace quill
