// GGUF -> LlamaConfig, shape-checked tensor views, and fp32 weights (see engine/llama_loader.hpp).
#include "engine/llama_loader.hpp"

#include <fmt/ranges.h>

#include <limits>

#include "engine/error.hpp"

namespace quill {

namespace {

// A positive int32 hyper-parameter (required unless a default is given).
int32_t positive_i32(const GgufFile& f, const std::string& key, std::optional<int32_t> fallback = std::nullopt) {
  const std::optional<int32_t> v =
      fallback ? std::optional<int32_t>(f.find_i32(key).value_or(*fallback)) : std::optional<int32_t>(f.get_i32(key));
  if (*v <= 0) fail(ErrorKind::kFormat, "{}: metadata '{}' = {} must be positive", f.path(), key, *v);
  return *v;
}

std::string dims_str(const std::vector<int64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

// The tensor `name` with ne == want (trailing 1s beyond want's rank are ignored); nullptr if absent and optional.
const GgufTensor* expect(const GgufFile& f, const std::string& name, const std::vector<int64_t>& want,
                         bool required = true) {
  const GgufTensor* t = f.find_tensor(name);
  if (!t) {
    if (!required) return nullptr;
    fail(ErrorKind::kFormat, "{}: missing tensor '{}' (expected shape {})", f.path(), name, dims_str(want));
  }
  std::vector<int64_t> got = t->dims;
  while (got.size() > want.size() && got.back() == 1) got.pop_back();
  if (got != want) {
    fail(ErrorKind::kFormat, "{}: tensor '{}' at offset {}: shape mismatch: ne = {} but the config needs {}", f.path(),
         name, t->info_offset, dims_str(t->dims), dims_str(want));
  }
  return t;
}

}  // namespace

std::string llama_layer_tensor_name(int layer, const char* what) {
  return fmt::format("blk.{}.{}.weight", layer, what);
}

LlamaConfig read_llama_config(const GgufFile& f) {
  const std::string& arch = f.get_string("general.architecture");
  if (arch != "llama") {
    fail(ErrorKind::kFormat, "{}: unsupported architecture '{}' (general.architecture); quill reads 'llama'", f.path(),
         arch);
  }
  LlamaConfig c;
  c.name = f.find_string("general.name").value_or("llama");
  c.dim = positive_i32(f, "llama.embedding_length");
  c.n_layers = positive_i32(f, "llama.block_count");
  c.n_heads = positive_i32(f, "llama.attention.head_count");
  c.n_kv_heads = positive_i32(f, "llama.attention.head_count_kv", c.n_heads);
  c.ffn_dim = positive_i32(f, "llama.feed_forward_length");
  c.context_length = positive_i32(f, "llama.context_length");
  if (c.dim % c.n_heads != 0) {
    fail(ErrorKind::kFormat, "{}: embedding_length {} is not a multiple of head_count {}", f.path(), c.dim, c.n_heads);
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    fail(ErrorKind::kFormat, "{}: head_count {} is not a multiple of head_count_kv {}", f.path(), c.n_heads,
         c.n_kv_heads);
  }
  c.rope_dim = positive_i32(f, "llama.rope.dimension_count", c.head_dim());
  if (c.rope_dim > c.head_dim() || c.rope_dim % 2 != 0) {
    fail(ErrorKind::kFormat, "{}: llama.rope.dimension_count {} must be even and at most head_dim {}", f.path(),
         c.rope_dim, c.head_dim());
  }
  c.rope_theta = f.find_f32("llama.rope.freq_base").value_or(10000.0f);
  c.norm_eps = f.get_f32("llama.attention.layer_norm_rms_epsilon");
  if (!(c.rope_theta > 0.0f) || !(c.norm_eps > 0.0f)) {
    fail(ErrorKind::kFormat, "{}: rope.freq_base {} and layer_norm_rms_epsilon {} must be positive", f.path(),
         c.rope_theta, c.norm_eps);
  }
  const GgufTensor& embd = f.tensor("token_embd.weight");
  if (embd.dims.size() < 2 || embd.dims[0] != c.dim || embd.rows() > std::numeric_limits<int32_t>::max()) {
    fail(ErrorKind::kFormat,
         "{}: tensor 'token_embd.weight' at offset {}: shape mismatch: ne = {} but the config "
         "needs [{}, vocab]",
         f.path(), embd.info_offset, dims_str(embd.dims), c.dim);
  }
  c.vocab_size = int32_t(embd.rows());
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  return c;
}

LlamaTensors find_llama_tensors(const GgufFile& f) {
  LlamaTensors t;
  t.config = read_llama_config(f);
  const LlamaConfig& c = t.config;
  const int64_t dim = c.dim, q_dim = int64_t(c.n_heads) * c.head_dim(), kv_dim = c.kv_dim(), ffn = c.ffn_dim;
  t.token_embd = expect(f, "token_embd.weight", {dim, c.vocab_size});
  t.output_norm = expect(f, "output_norm.weight", {dim});
  t.output = c.tied_output ? t.token_embd : expect(f, "output.weight", {dim, c.vocab_size});
  // Each block has 9 tensors: a block_count the file cannot hold is refused before anything is sized by it.
  if (uint64_t(c.n_layers) * 9 > f.tensors().size())
    fail(ErrorKind::kFormat, "{}: llama.block_count = {} needs {} layer tensors but the file has {} tensors", f.path(),
         c.n_layers, uint64_t(c.n_layers) * 9, f.tensors().size());
  t.layers.resize(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LlamaLayerTensors& L = t.layers[size_t(l)];
    const auto name = [l](const char* what) { return llama_layer_tensor_name(l, what); };
    L.attn_norm = expect(f, name("attn_norm"), {dim});
    L.wq = expect(f, name("attn_q"), {dim, q_dim});
    L.wk = expect(f, name("attn_k"), {dim, kv_dim});
    L.wv = expect(f, name("attn_v"), {dim, kv_dim});
    L.wo = expect(f, name("attn_output"), {q_dim, dim});
    L.ffn_norm = expect(f, name("ffn_norm"), {dim});
    L.w_gate = expect(f, name("ffn_gate"), {dim, ffn});
    L.w_up = expect(f, name("ffn_up"), {dim, ffn});
    L.w_down = expect(f, name("ffn_down"), {ffn, dim});
  }
  return t;
}

MatrixF32 dequantize_matrix(const GgufTensor& t) {
  MatrixF32 m;
  m.rows = t.rows();
  m.cols = t.cols();
  m.data.resize(size_t(m.rows * m.cols));
  const int64_t row_bytes = ggml_row_bytes(t.type, m.cols);
  for (int64_t r = 0; r < m.rows; ++r) dequantize_ggml_row(t.type, t.data + r * row_bytes, m.row(r), m.cols);
  return m;
}

std::vector<float> dequantize_vector(const GgufTensor& t) { return std::move(dequantize_matrix(t).data); }

LlamaWeightsF32 load_llama_weights_f32(const GgufFile& f) {
  const LlamaTensors t = find_llama_tensors(f);
  LlamaWeightsF32 w;
  w.config = t.config;
  w.token_embd = dequantize_matrix(*t.token_embd);
  w.output_norm = dequantize_vector(*t.output_norm);
  w.output = t.config.tied_output ? w.token_embd : dequantize_matrix(*t.output);
  w.layers.resize(t.layers.size());
  for (size_t l = 0; l < t.layers.size(); ++l) {
    const LlamaLayerTensors& src = t.layers[l];
    LlamaLayerWeightsF32& dst = w.layers[l];
    dst.attn_norm = dequantize_vector(*src.attn_norm);
    dst.wq = dequantize_matrix(*src.wq);
    dst.wk = dequantize_matrix(*src.wk);
    dst.wv = dequantize_matrix(*src.wv);
    dst.wo = dequantize_matrix(*src.wo);
    dst.ffn_norm = dequantize_vector(*src.ffn_norm);
    dst.w_gate = dequantize_matrix(*src.w_gate);
    dst.w_up = dequantize_matrix(*src.w_up);
    dst.w_down = dequantize_matrix(*src.w_down);
  }
  return w;
}

}  // namespace quill
