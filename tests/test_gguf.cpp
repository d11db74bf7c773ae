// GgufFile and GgufWriter: metadata of every type round trip, tensors and alignment, and broken files (empty,
// truncated at every offset, bad magic/version, huge counts and lengths, bad dims/types/offsets) that must each
// throw quill::Error and never crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/half.hpp"
#include "tests/util.hpp"

namespace quill {
namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& stem) {
  return fs::temp_directory_path() / fmt::format("quill_test_{}_{}.gguf", stem, ::getpid());
}

// Offset of the first occurrence of `needle` in bytes (the tests patch fields that follow a known string).
size_t find_bytes(const std::vector<uint8_t>& bytes, std::string_view needle) {
  const auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  if (it == bytes.end()) throw std::runtime_error(fmt::format("'{}' not in the image", needle));
  return size_t(it - bytes.begin());
}

template <typename T>
void poke(std::vector<uint8_t>& bytes, size_t at, T value) {
  ASSERT_LE(at + sizeof(T), bytes.size());
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

// Parsing must throw quill::Error of kind kFormat whose message contains `expect`.
void expect_format_error(std::vector<uint8_t> bytes, const std::string& expect) {
  try {
    GgufFile::from_bytes(std::move(bytes), "broken.gguf");
    ADD_FAILURE() << "no error; expected one mentioning '" << expect << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat) << e.what();
    EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << "message: " << e.what();
  }
}

std::vector<float> iota_floats(size_t n, float start = 0.0f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + float(i) * 0.25f;
  return v;
}

// A small valid file: a few metadata pairs and two F32 tensors "t.a" [8, 3] and "t.b" [8] (32 bytes, so the file
// ends exactly at the end of the last tensor's data and every shorter prefix is missing something).
std::vector<uint8_t> small_file() {
  GgufWriter w;
  w.set("general.architecture", "test");
  w.set_u32("test.count", 7);
  w.set_f32_array("test.floats", {1.0f, 2.0f});
  w.set_string_array("test.names", {"x", "yz"});
  const auto a = iota_floats(24);
  const auto b = iota_floats(8, 100.0f);
  w.add_tensor_f32("t.a", {8, 3}, a);
  w.add_tensor_f32("t.b", {8}, b);
  return w.to_bytes();
}

GgufValue all_types_array() {
  return GgufValue::array(GgufType::kArray,
                          {GgufValue::array_of<int32_t>({1, -2, 3}), GgufValue::array_of<int32_t>({})});
}

TEST(GgufWriter, EveryMetadataTypeRoundTrips) {
  GgufWriter w;
  const std::vector<std::pair<std::string, GgufValue>> kvs = {
      {"u8", uint8_t{250}},
      {"i8", int8_t{-120}},
      {"u16", uint16_t{65000}},
      {"i16", int16_t{-32000}},
      {"u32", uint32_t{4000000000u}},
      {"i32", int32_t{-2000000000}},
      {"f32", 3.25f},
      {"bool.t", true},
      {"bool.f", false},
      {"str", std::string("h\xc3\xa9llo \xe2\x96\x81 world")},
      {"str.empty", std::string()},
      {"u64", uint64_t{0xfedcba9876543210ull}},
      {"i64", int64_t{-0x7edcba9876543210ll}},
      {"f64", -1.0e300},
      {"arr.u8", GgufValue::array_of<uint8_t>({0, 1, 255})},
      {"arr.i8", GgufValue::array_of<int8_t>({-128, 127})},
      {"arr.u16", GgufValue::array_of<uint16_t>({1, 65535})},
      {"arr.i16", GgufValue::array_of<int16_t>({-1, 2})},
      {"arr.u32", GgufValue::array_of<uint32_t>({1, 2, 3})},
      {"arr.i32", GgufValue::array_of<int32_t>({-1, 0, 1})},
      {"arr.f32", GgufValue::array_of<float>({0.5f, -0.0f})},
      {"arr.bool", GgufValue::array_of<bool>({true, false, true})},
      {"arr.str", GgufValue::string_array({"a", "", "\xe4\xb8\x96\xe7\x95\x8c"})},
      {"arr.u64", GgufValue::array_of<uint64_t>({1ull << 63})},
      {"arr.i64", GgufValue::array_of<int64_t>({-(1ll << 62)})},
      {"arr.f64", GgufValue::array_of<double>({1e-300, 2.5})},
      {"arr.empty", GgufValue::array(GgufType::kFloat32, {})},
      {"arr.nested", all_types_array()},
  };
  for (const auto& [k, v] : kvs) w.set(k, v);
  w.set("u8", uint8_t{250});  // replacing keeps one entry
  const fs::path path = temp_path("roundtrip");
  w.write(path);
  for (int from_file = 0; from_file < 2; ++from_file) {
    const GgufFile f = from_file ? GgufFile::open(path) : GgufFile::from_bytes(w.to_bytes());
    EXPECT_EQ(f.version(), 3u);
    ASSERT_EQ(f.metadata().size(), kvs.size());
    for (size_t i = 0; i < kvs.size(); ++i) {
      EXPECT_EQ(f.metadata()[i].key, kvs[i].first);
      EXPECT_TRUE(f.metadata()[i].value == kvs[i].second) << kvs[i].first;
      EXPECT_EQ(f.metadata()[i].value.type(), kvs[i].second.type()) << kvs[i].first;
    }
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(f.alignment(), 32u);
  }
  fs::remove(path);
}

TEST(GgufFile, TypedGetters) {
  GgufWriter w;
  w.set("small", uint8_t{7});
  w.set("neg", int32_t{-3});
  w.set("big", uint64_t{1ull << 40});
  w.set("f64", 0.5);
  w.set("name", "llama");
  w.set("flag", true);
  w.set_i32_array("ids", {3, 4, 5});
  w.set_f32_array("scores", {0.5f, -1.0f});
  w.set_string_array("toks", {"a", "b"});
  const GgufFile f = GgufFile::from_bytes(w.to_bytes(), "getters.gguf");
  EXPECT_EQ(f.get_u32("small"), 7u);  // integer getters accept any integer type that fits
  EXPECT_EQ(f.get_i32("neg"), -3);
  EXPECT_EQ(f.get_u64("big"), 1ull << 40);
  EXPECT_FLOAT_EQ(f.get_f32("f64"), 0.5f);
  EXPECT_EQ(f.get_string("name"), "llama");
  EXPECT_TRUE(f.get_bool("flag"));
  EXPECT_EQ(f.get_i32_array("ids"), (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(f.get_f32_array("scores"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(f.get_string_array("toks"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.get_array("ids").items.size(), 3u);
  EXPECT_FALSE(f.find_u32("absent").has_value());
  EXPECT_FALSE(f.find_string("absent").has_value());
  EXPECT_EQ(f.find_array("absent"), nullptr);
  EXPECT_EQ(f.find_f32("f64").value(), 0.5f);
  EXPECT_FALSE(f.has("absent"));

  const auto expect_msg = [](auto&& fn, const std::string& part) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected '" << part << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kFormat);
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_msg([&] { f.get_u32("absent"); }, "missing metadata key 'absent'");
  expect_msg([&] { f.get_u32("neg"); }, "'neg' at offset");
  expect_msg([&] { f.get_i32("big"); }, "int32");
  expect_msg([&] { f.get_u32("name"); }, "found string");
  expect_msg([&] { f.find_u32("name"); }, "found string");  // present with the wrong type is an error
  expect_msg([&] { f.get_string("small"); }, "expected string");
  expect_msg([&] { f.get_f32("name"); }, "float");
  expect_msg([&] { f.get_bool("small"); }, "bool");
  expect_msg([&] { f.get_array("name"); }, "expected array");
  expect_msg([&] { f.get_string_array("ids"); }, "array of int32");
  expect_msg([&] { f.get_i32_array("toks"); }, "'toks'");
  expect_msg([&] { f.tensor("nope"); }, "missing tensor 'nope'");
}

TEST(GgufFile, TensorsAndAlignment) {
  for (const uint32_t align : {32u, 64u, 256u}) {
    GgufWriter w(align);
    const auto a = iota_floats(8 * 3);
    std::vector<uint8_t> q8(2 * 2 * 34);  // Q8_0 [64, 2]: 2 rows of 2 blocks
    for (size_t i = 0; i < q8.size(); ++i) q8[i] = uint8_t(i * 7);
    std::vector<uint8_t> f16(5 * 2);
    for (int i = 0; i < 5; ++i) poke(f16, size_t(2 * i), float_to_half(float(i)));
    w.add_tensor_f32("a", {8, 3}, a);
    w.add_tensor("q", GgmlType::Q8_0, {64, 2}, q8);
    w.add_tensor("h", GgmlType::F16, {5, 1, 1, 1}, f16);
    const fs::path path = temp_path("tensors");
    w.write(path);
    GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.alignment(), align);
    EXPECT_EQ(f.data_offset() % align, 0u);
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.tensors()[0].name, "a");  // file order
    const GgufTensor& ta = f.tensor("a");
    EXPECT_EQ(ta.type, GgmlType::F32);
    EXPECT_EQ(ta.dims, (std::vector<int64_t>{8, 3}));
    EXPECT_EQ(ta.cols(), 8);
    EXPECT_EQ(ta.rows(), 3);
    EXPECT_EQ(ta.n_elements(), 24);
    ASSERT_EQ(ta.n_bytes, 96u);
    EXPECT_EQ(std::memcmp(ta.data, a.data(), 96), 0);
    const GgufTensor& tq = f.tensor("q");
    EXPECT_EQ(tq.type, GgmlType::Q8_0);
    EXPECT_EQ(tq.n_bytes, q8.size());
    EXPECT_TRUE(std::equal(tq.bytes().begin(), tq.bytes().end(), q8.begin()));
    const GgufTensor& th = f.tensor("h");
    EXPECT_EQ(th.dims.size(), 4u);
    EXPECT_EQ(th.rows(), 1);
    EXPECT_EQ(th.n_bytes, 10u);
    for (const GgufTensor& t : f.tensors()) {
      EXPECT_EQ(t.offset % align, 0u) << t.name;
      EXPECT_EQ(uint64_t(t.data - f.tensor("a").data) % align, 0u) << t.name;
    }
    EXPECT_EQ(f.find_tensor("zzz"), nullptr);
    GgufFile moved = std::move(f);  // views stay valid across a move
    EXPECT_EQ(std::memcmp(moved.tensor("a").data, a.data(), 96), 0);
    fs::remove(path);
  }
}

TEST(GgufWriter, RejectsBadTensors) {
  GgufWriter w;
  const auto a = iota_floats(8);
  w.add_tensor_f32("a", {8}, a);
  EXPECT_THROW(w.add_tensor_f32("a", {8}, a), Error);                                      // duplicate
  EXPECT_THROW(w.add_tensor_f32("b", {4}, a), Error);                                      // size mismatch
  EXPECT_THROW(w.add_tensor_f32("c", {}, a), Error);                                       // no dims
  EXPECT_THROW(w.add_tensor_f32("d", {2, 2, 1, 1, 2}, a), Error);                          // 5 dims
  EXPECT_THROW(w.add_tensor_f32("e", {8, 0}, a), Error);                                   // zero dim
  EXPECT_THROW(w.add_tensor("f", GgmlType::Q8_0, {16}, std::vector<uint8_t>(17)), Error);  // partial block
  EXPECT_THROW(GgufWriter(48), Error);
}

TEST(GgufFile, OpenErrors) {
  try {
    GgufFile::open("/nonexistent/quill/model.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFile);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/quill/model.gguf"), std::string::npos);
  }
  try {
    GgufFile::open(fs::temp_directory_path());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFile);
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
  const fs::path empty = temp_path("empty");
  std::ofstream(empty).close();
  try {
    GgufFile::open(empty);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
  fs::remove(empty);
  expect_format_error({}, "too short");
}

TEST(GgufFile, TruncatedAtEveryOffsetThrows) {
  const std::vector<uint8_t> full = small_file();
  ASSERT_NO_THROW(GgufFile::from_bytes(full));
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
    EXPECT_THROW(GgufFile::from_bytes(std::move(cut)), Error) << "prefix of " << n << " bytes";
  }
  // The same through the file path for a few cuts (mmap of short files).
  const fs::path path = temp_path("truncated");
  for (const size_t n : {size_t(1), size_t(4), size_t(23), full.size() / 2, full.size() - 1}) {
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(full.data()), std::streamsize(n));
    }
    EXPECT_THROW(GgufFile::open(path), Error) << n;
  }
  fs::remove(path);
}

TEST(GgufFile, RandomDamageNeverCrashes) {
  const std::vector<uint8_t> full = small_file();
  uint64_t state = 0x9e3779b97f4a7c15ull;
  const auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> bytes = full;
    const int flips = 1 + int(next() % 4);
    for (int k = 0; k < flips; ++k) bytes[size_t(next() % bytes.size())] ^= uint8_t(1u << (next() % 8));
    try {
      GgufFile::from_bytes(std::move(bytes));  // either parses or throws quill::Error
    } catch (const Error&) {
    }
  }
}

TEST(GgufFile, HeaderErrors) {
  const std::vector<uint8_t> full = small_file();
  auto b = full;
  b[0] = 'X';
  expect_format_error(b, "bad magic at offset 0");
  for (const uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    b = full;
    poke(b, 4, v);
    expect_format_error(b, fmt::format("version at offset 4: {}", v));
  }
  b = full;
  poke<uint32_t>(b, 4, 2);  // version 2 has the same layout
  EXPECT_EQ(GgufFile::from_bytes(b).version(), 2u);
  b = full;
  poke<uint64_t>(b, 8, uint64_t(1) << 62);
  expect_format_error(b, "tensor count at offset 8");
  b = full;
  poke<uint64_t>(b, 16, uint64_t(1) << 62);
  expect_format_error(b, "metadata count at offset 16");
  b = full;
  poke<uint64_t>(b, 8, 3);  // one more tensor than written: the info runs into the data
  EXPECT_THROW(GgufFile::from_bytes(b), Error);
}

TEST(GgufFile, MetadataErrors) {
  const std::vector<uint8_t> full = small_file();
  auto b = full;
  poke<uint64_t>(b, 24, uint64_t(1) << 63);  // first key's length
  expect_format_error(b, "string length 9223372036854775808");
  b = full;
  const size_t names = find_bytes(b, "test.names");
  poke<uint64_t>(b, names + 10 + 4 + 4, uint64_t(1) << 60);  // array count of test.names
  expect_format_error(b, "metadata 'test.names' at offset");
  b = full;
  poke<uint64_t>(b, names + 10 + 4 + 4 + 8, uint64_t(1) << 63);  // first string element's length
  expect_format_error(b, "string length");
  b = full;
  poke<uint32_t>(b, names + 10, 13);  // value type
  expect_format_error(b, "unknown value type 13");
  b = full;
  poke<uint32_t>(b, names + 10 + 4, 77);  // element type
  expect_format_error(b, "unknown array element type 77");
  b = full;
  const size_t count = find_bytes(b, "test.count");
  std::memcpy(b.data() + count, "test.names", 10);  // same length: a duplicate key
  expect_format_error(b, "duplicate metadata key");

  GgufWriter w;
  w.set("flag", true);
  auto fb = w.to_bytes();
  fb[find_bytes(fb, "flag") + 4 + 4] = 2;
  expect_format_error(fb, "bool value 2");

  GgufValue deep = GgufValue::array_of<uint8_t>({1});
  for (int i = 0; i < 12; ++i) deep = GgufValue::array(GgufType::kArray, {deep});
  GgufWriter wd;
  wd.set("deep", deep);
  expect_format_error(wd.to_bytes(), "nested deeper");

  for (const GgufValue& bad : {GgufValue(uint32_t{48}), GgufValue(uint32_t{0}), GgufValue("32")}) {
    GgufWriter wa;
    wa.set("general.alignment", bad);
    expect_format_error(wa.to_bytes(), "general.alignment");
  }
  GgufWriter w64;
  w64.set("general.alignment", uint32_t{64});
  EXPECT_EQ(GgufFile::from_bytes(w64.to_bytes()).alignment(), 64u);
}

TEST(GgufFile, TensorInfoErrors) {
  const std::vector<uint8_t> full = small_file();
  const size_t info_b = find_bytes(full, "t.b");  // name bytes; the record starts 8 bytes earlier
  const size_t ndims = info_b + 3, dim0 = ndims + 4, type = dim0 + 8, offset = type + 4;
  const std::string where = fmt::format("tensor 't.b' at offset {}", info_b - 8);

  auto b = full;
  poke<uint32_t>(b, ndims, 0);
  expect_format_error(b, where + ": n_dims 0");
  b = full;
  poke<uint32_t>(b, ndims, 5);
  expect_format_error(b, where + ": n_dims 5");
  b = full;
  poke<uint64_t>(b, dim0, 0);
  expect_format_error(b, "ne[0] = 0");
  b = full;
  poke<uint64_t>(b, dim0, ~uint64_t(0));
  expect_format_error(b, "is not a positive int64");
  b = full;
  poke<uint32_t>(b, type, 99);
  expect_format_error(b, where + ": unknown or unsupported ggml type id 99");
  b = full;
  poke<uint32_t>(b, type, uint32_t(GgmlType::Q8_0));  // ne[0] = 8 is not a multiple of 32
  expect_format_error(b, "not a multiple of the Q8_0 block size 32");
  b = full;
  poke<uint64_t>(b, offset, 4);
  expect_format_error(b, where + ": data offset 4 is not a multiple of the alignment 32");
  b = full;
  poke<uint64_t>(b, offset, 1 << 20);
  expect_format_error(b, where + ": data [");
  expect_format_error(b, fmt::format("lies past end of file (size {})", full.size()));
  b = full;
  poke<uint64_t>(b, offset, ~uint64_t(31));  // offset + size wraps around 2^64
  expect_format_error(b, "lies past end of file");
  b = full;
  poke<uint64_t>(b, offset, 0);  // t.b's data now overlaps t.a's
  expect_format_error(b, "overlaps tensor 't.a'");
  b = full;
  std::memcpy(b.data() + info_b, "t.a", 3);
  expect_format_error(b, "duplicate tensor name");

  // Two dims whose product overflows int64.
  const size_t info_a = find_bytes(full, "t.a");
  b = full;
  poke<uint64_t>(b, info_a + 3 + 4, uint64_t(1) << 40);
  poke<uint64_t>(b, info_a + 3 + 4 + 8, uint64_t(1) << 40);
  expect_format_error(b, "overflows");
  b = full;
  poke<uint64_t>(b, info_a + 3 + 4 + 8, uint64_t(1) << 40);  // huge but representable: past the end
  expect_format_error(b, "tensor 't.a'");
}

// Rewriting a real file (llama.cpp's converter output) with GgufWriter reproduces it byte for byte.
TEST(GgufWriter, RewritesStories260KByteForByte) {
  QUILL_REQUIRE_SHARED_FILE(path, "stories260K/stories260K.gguf");
  const GgufFile f = GgufFile::open(path);
  GgufWriter w(f.alignment());
  for (const GgufKv& kv : f.metadata()) w.set(kv.key, kv.value);
  for (const GgufTensor& t : f.tensors()) w.add_tensor(t.name, t.type, t.dims, t.bytes());
  const std::vector<uint8_t> bytes = w.to_bytes();
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.size(), original.size());
  EXPECT_TRUE(bytes == original);
}

}  // namespace
}  // namespace quill
