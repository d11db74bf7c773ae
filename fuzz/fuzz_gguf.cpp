// libFuzzer target: any bytes through GgufFile::from_bytes, then (when they parse) the Llama reader, the tokenizer
// reader, every typed getter and the tensors' dequantization — each may only return or throw quill::Error.
// Seeds: fuzz/corpus/gguf (a tiny valid Llama model and its tokenizer; see docs/RELIABILITY.md).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/error.hpp"
#include "engine/gguf.hpp"
#include "engine/llama_loader.hpp"
#include "engine/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quill;
  try {
    const GgufFile f = GgufFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
    for (const GgufKv& kv : f.metadata()) {
      try {
        f.find_u32(kv.key);
      } catch (const Error&) {
      }
      try {
        f.get_string_array(kv.key);
      } catch (const Error&) {
      }
    }
    for (const GgufTensor& t : f.tensors()) {
      if (t.n_elements() <= 4096) dequantize_matrix(t);  // reads exactly t.n_bytes inside the image
    }
    try {
      const Tokenizer tok = Tokenizer::from_gguf(f);
      const std::vector<int32_t> ids = tok.encode("Hello world, \xe2\x96\x81 caf\xc3\xa9 \xff!");
      tok.decode(ids);
    } catch (const Error&) {
    }
    const LlamaTensors t = find_llama_tensors(f);
    (void)t;
  } catch (const Error&) {
  }
  return 0;
}
