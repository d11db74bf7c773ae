// WeightSource implementations: GGUF files and synthetic presets, plus the synthetic vocabulary.
#include "engine/weight_source.hpp"

#include <fmt/format.h>

#include "engine/error.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/llama_loader.hpp"

namespace quill {
namespace {

class GgufWeightSource final : public WeightSource {
 public:
  explicit GgufWeightSource(const std::string& path)
      : file_(GgufFile::open(path)), tensors_(find_llama_tensors(file_)), path_(path) {}

  const LlamaConfig& config() const override { return tensors_.config; }
  std::string description() const override { return path_; }
  Tokenizer tokenizer() const override { return Tokenizer::from_gguf(file_); }

  MatrixF32 matrix(int layer, MatmulWeight which) const override { return dequantize_matrix(tensor(layer, which)); }

  std::optional<GgmlBlockMatrix> native_blocks(int layer, MatmulWeight which, QuantScheme scheme) const override {
    const GgufTensor& t = tensor(layer, which);
    const bool same = (scheme == QuantScheme::Q8_0 && t.type == GgmlType::Q8_0) ||
                      (scheme == QuantScheme::Int4 && t.type == GgmlType::Q4_0);
    if (!same) return std::nullopt;
    return from_gguf_blocks(t.type, t.bytes(), t.rows(), t.cols());
  }

  std::vector<float> norm(int layer, NormWeight which) const override {
    switch (which) {
      case NormWeight::kAttn:
        return dequantize_vector(*tensors_.layers.at(size_t(layer)).attn_norm);
      case NormWeight::kFfn:
        return dequantize_vector(*tensors_.layers.at(size_t(layer)).ffn_norm);
      case NormWeight::kOutput:
        return dequantize_vector(*tensors_.output_norm);
    }
    fail(ErrorKind::kInternal, "unexpected norm kind");
  }

 private:
  const GgufTensor& tensor(int layer, MatmulWeight which) const {
    if (which == MatmulWeight::kTokenEmbd) return *tensors_.token_embd;
    if (which == MatmulWeight::kOutput) return *tensors_.output;
    const LlamaLayerTensors& t = tensors_.layers.at(size_t(layer));
    switch (which) {
      case MatmulWeight::kQ:
        return *t.wq;
      case MatmulWeight::kK:
        return *t.wk;
      case MatmulWeight::kV:
        return *t.wv;
      case MatmulWeight::kO:
        return *t.wo;
      case MatmulWeight::kGate:
        return *t.w_gate;
      case MatmulWeight::kUp:
        return *t.w_up;
      case MatmulWeight::kDown:
        return *t.w_down;
      default:
        fail(ErrorKind::kInternal, "unexpected matrix kind");
    }
  }

  GgufFile file_;
  LlamaTensors tensors_;
  std::string path_;
};

class SyntheticWeightSource final : public WeightSource {
 public:
  SyntheticWeightSource(const std::string& preset, uint64_t seed) : spec_(synthetic_preset(preset, seed)) {}

  const LlamaConfig& config() const override { return spec_.config; }
  std::string description() const override { return fmt::format("synthetic:{} (seed {})", spec_.preset, spec_.seed); }
  Tokenizer tokenizer() const override { return synthetic_tokenizer(spec_.config.vocab_size); }
  MatrixF32 matrix(int layer, MatmulWeight which) const override {
    MatrixF32 m;
    synthetic_matrix(spec_, layer, which, m);
    return m;
  }
  std::vector<float> norm(int layer, NormWeight which) const override { return synthetic_norm(spec_, layer, which); }
  std::vector<int32_t> known_outlier_dims() const override {
    const auto dims = synthetic_outlier_dims(spec_);
    return {dims.begin(), dims.end()};
  }

 private:
  SyntheticSpec spec_;
};

}  // namespace

std::unique_ptr<WeightSource> gguf_weight_source(const std::string& path) {
  return std::make_unique<GgufWeightSource>(path);
}

std::unique_ptr<WeightSource> synthetic_weight_source(const std::string& preset, uint64_t seed) {
  return std::make_unique<SyntheticWeightSource>(preset, seed);
}

Tokenizer synthetic_tokenizer(int vocab_size) {
  // <unk> <s> </s>, 256 byte tokens, then pieces; scores favour longer pieces so BPE merges them.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);  // byte
  }
  const std::string space = "\xe2\x96\x81";  // U+2581, SentencePiece's space
  std::vector<std::string> pieces = {space};
  for (char c = 'a'; c <= 'z'; ++c) pieces.push_back(std::string(1, c));
  for (char c = 'A'; c <= 'Z'; ++c) pieces.push_back(std::string(1, c));
  for (const char* p : {".", ",", "!", "?", "'", "\"", "-", ":", ";", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})
    pieces.push_back(p);
  for (const char* w : {"the", "and", "to", "of", "a", "in", "was", "he", "she", "it", "that", "is", "on", "with",
                        "for", "as", "his", "her", "they", "at", "be", "one", "day", "time", "upon", "once", "there",
                        "little", "big", "play", "happy", "said", "friend", "girl", "boy", "dog", "cat", "sun"}) {
    pieces.push_back(space + w);
    pieces.push_back(w);
  }
  const std::string letters = "etaoinshrdlucmwyfgpbvk";
  for (char a : letters)
    for (char b : letters) {
      pieces.push_back(std::string{a, b});
      pieces.push_back(space + std::string{a, b});
    }
  std::vector<float> scores(tokens.size(), 0.0f);
  for (const auto& p : pieces) {
    if (int(tokens.size()) >= vocab_size) break;
    if (std::find(tokens.begin(), tokens.end(), p) != tokens.end()) continue;
    tokens.push_back(p);
    types.push_back(1);  // normal
    scores.push_back(-float(tokens.size()) + 10.0f * float(p.size()));
  }
  for (int i = int(tokens.size()); i < vocab_size; ++i) {
    tokens.push_back(fmt::format("<unused{}>", i));
    types.push_back(5);  // unused
    scores.push_back(-1e9f);
  }
  if (int(tokens.size()) > vocab_size) fail(ErrorKind::kInvalidArgument, "synthetic vocabulary needs >= 259 tokens");
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  return Tokenizer::from_gguf(GgufFile::from_bytes(w.to_bytes(), "synthetic-vocab"));
}

}  // namespace quill
