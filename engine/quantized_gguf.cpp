// Writing and reading quill-quantized GGUF files (see quantized_gguf.hpp).
#include "engine/quantized_gguf.hpp"

#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "engine/error.hpp"
#include "engine/gguf_writer.hpp"
#include "engine/half.hpp"
#include "engine/llama_loader.hpp"
#include "engine/model.hpp"
#include "engine/quantize_ggml.hpp"

namespace quill {
namespace {

constexpr const char* kSiteTensor[] = {"attn_qkv", "attn_output", "ffn_gate_up", "ffn_down", "output"};

std::string site_prefix(int layer, MatmulSite site) {
  if (site == MatmulSite::kOutput) return "output";
  return fmt::format("blk.{}.{}", layer, kSiteTensor[size_t(site)]);
}

// The standard per-matrix tensor names of a fused site (rows in fused order).
std::vector<std::string> native_names(int layer, MatmulSite site) {
  auto n = [&](const char* what) { return llama_layer_tensor_name(layer, what); };
  switch (site) {
    case MatmulSite::kQkv:
      return {n("attn_q"), n("attn_k"), n("attn_v")};
    case MatmulSite::kWo:
      return {n("attn_output")};
    case MatmulSite::kGateUp:
      return {n("ffn_gate"), n("ffn_up")};
    case MatmulSite::kDown:
      return {n("ffn_down")};
    case MatmulSite::kOutput:
      return {"output.weight"};
  }
  fail(ErrorKind::kInternal, "bad site");
}

std::vector<MatmulWeight> site_weights(MatmulSite site) {
  switch (site) {
    case MatmulSite::kQkv:
      return {MatmulWeight::kQ, MatmulWeight::kK, MatmulWeight::kV};
    case MatmulSite::kWo:
      return {MatmulWeight::kO};
    case MatmulSite::kGateUp:
      return {MatmulWeight::kGate, MatmulWeight::kUp};
    case MatmulSite::kDown:
      return {MatmulWeight::kDown};
    case MatmulSite::kOutput:
      return {MatmulWeight::kOutput};
  }
  fail(ErrorKind::kInternal, "bad site");
}

// Whether a scheme's matrix of `cols` columns is stored as a standard ggml type.
bool stored_natively(QuantScheme scheme, int64_t cols) {
  switch (scheme) {
    case QuantScheme::F32:
    case QuantScheme::F16:
      return true;
    case QuantScheme::Q8_0:
    case QuantScheme::Int4:
      return cols % GgmlBlockMatrix::kBlock == 0;
    default:
      return false;
  }
}

template <typename T>
std::span<const uint8_t> bytes_of(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

// ---- writing ----

struct Writer {
  GgufWriter w;
  QuantizeFileSummary summary;

  void tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims, std::span<const uint8_t> data,
              bool native) {
    w.add_tensor(name, type, std::move(dims), data);
    ++(native ? summary.native_tensors : summary.quill_tensors);
  }

  // One rows-of-a-fused-site matrix in a native type (the scheme's ggml type).
  void native(const std::string& name, const MatrixF32& m, QuantScheme scheme) {
    switch (scheme) {
      case QuantScheme::F32:
        tensor(name, GgmlType::F32, {m.cols, m.rows}, bytes_of(m.data), true);
        return;
      case QuantScheme::F16: {
        const HalfMatrix h = quantize_f16(m);
        tensor(name, GgmlType::F16, {m.cols, m.rows}, bytes_of(h.data), true);
        return;
      }
      default: {
        const std::vector<uint8_t> blocks = to_gguf_blocks(quantize_ggml_blocks(m, scheme));
        tensor(name, ggml_type_of(scheme), {m.cols, m.rows}, blocks, true);
        return;
      }
    }
  }

  void quill(const std::string& p, const QuantizedMatrix& q) {
    if (const auto* m = std::get_if<Int8Matrix>(&q)) {
      tensor(p + ".quill_codes", GgmlType::I8, {m->cols, m->rows}, bytes_of(m->cb), false);
      tensor(p + ".quill_scales", GgmlType::F32, {m->rows}, bytes_of(m->scb), false);
      if (!m->outlier_dims.empty()) {
        const int64_t n = int64_t(m->outlier_dims.size());
        tensor(p + ".quill_outlier_dims", GgmlType::I32, {n}, bytes_of(m->outlier_dims), false);
        tensor(p + ".quill_w16", GgmlType::F16, {n, m->rows}, bytes_of(m->w16), false);
      }
    } else if (const auto* b = std::get_if<BlockwiseMatrix>(&q)) {
      tensor(p + ".quill_codes", GgmlType::I8, {b->code_bytes_per_row(), b->rows}, bytes_of(b->codes), false);
      if (b->double_quant) {
        const int64_t n = int64_t(b->dq.codes.size());
        tensor(p + ".quill_dq_codes", GgmlType::I8, {n}, bytes_of(b->dq.codes), false);
        tensor(p + ".quill_dq_absmax2", GgmlType::F32, {int64_t(b->dq.absmax2.size())}, bytes_of(b->dq.absmax2),
               false);
        const std::vector<float> offset = {b->dq.offset};
        tensor(p + ".quill_dq_offset", GgmlType::F32, {1}, bytes_of(offset), false);
      } else {
        tensor(p + ".quill_scales", GgmlType::F32, {b->blocks_per_row(), b->rows}, bytes_of(b->absmax), false);
      }
    } else if (const auto* g = std::get_if<GgmlBlockMatrix>(&q)) {
      tensor(p + ".quill_codes", GgmlType::I8, {g->code_bytes_per_row(), g->rows}, bytes_of(g->codes), false);
      tensor(p + ".quill_scales", GgmlType::F16, {g->blocks_per_row(), g->rows}, bytes_of(g->d), false);
    } else if (const auto* k = std::get_if<KMeansMatrix>(&q)) {
      tensor(p + ".quill_codes", GgmlType::I8, {k->padded_cols / 2, k->rows}, bytes_of(k->codes), false);
      std::vector<int64_t> dims = {KMeansMatrix::kCentroids};
      if (k->per_row) dims.push_back(k->rows);
      tensor(p + ".quill_scales", GgmlType::F16, dims, bytes_of(k->centroids), false);
    } else {
      fail(ErrorKind::kInternal, "quantized GGUF: no quill layout for this matrix");
    }
  }
};

void write_llama_metadata(GgufWriter& w, const LlamaConfig& c) {
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", c.name);
  w.set_u32("llama.embedding_length", uint32_t(c.dim));
  w.set_u32("llama.block_count", uint32_t(c.n_layers));
  w.set_u32("llama.attention.head_count", uint32_t(c.n_heads));
  w.set_u32("llama.attention.head_count_kv", uint32_t(c.n_kv_heads));
  w.set_u32("llama.feed_forward_length", uint32_t(c.ffn_dim));
  w.set_u32("llama.context_length", uint32_t(c.context_length));
  w.set_u32("llama.rope.dimension_count", uint32_t(c.rope_dim));
  w.set_f32("llama.rope.freq_base", c.rope_theta);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
}

// ---- reading ----

class QuantizedGgufSourceImpl final : public QuantizedGgufSource {
 public:
  explicit QuantizedGgufSourceImpl(const std::string& path) : file_(GgufFile::open(path)), path_(path) {
    const uint32_t version = file_.get_u32("quill.format_version");
    if (version != kQuillGgufFormatVersion)
      fail(ErrorKind::kFormat, "{}: quill.format_version {} (this quill reads {})", path, version,
           kQuillGgufFormatVersion);
    scheme_ = parse_quant_scheme(file_.get_string("quill.scheme"));
    params_.block = int(file_.get_u32("quill.block"));
    params_.double_quant = file_.get_bool("quill.double_quant");
    params_.kmeans_per_row = file_.get_bool("quill.kmeans_per_row");
    params_.int8_threshold = file_.get_f32("quill.int8_threshold");
    validate_quant_params(scheme_, params_);
    quantize_embeddings_ = file_.get_bool("quill.quantize_embeddings");
    if (file_.has("quill.act_amax")) act_amax_ = file_.get_f32_array("quill.act_amax");
    config_ = read_llama_config(file_);
    config_.tied_output = !file_.find_tensor("output.weight") && !file_.find_tensor("output.quill_codes");
    synthetic_vocab_ = file_.find_bool("quill.synthetic_vocab").value_or(false);
    if (file_.has("quill.outlier_dims")) outliers_ = file_.get_i32_array("quill.outlier_dims");
  }

  const LlamaConfig& config() const override { return config_; }
  std::string description() const override { return path_; }
  Tokenizer tokenizer() const override {
    return synthetic_vocab_ ? synthetic_tokenizer(config_.vocab_size) : Tokenizer::from_gguf(file_);
  }
  std::vector<int32_t> known_outlier_dims() const override { return outliers_; }
  QuantScheme scheme() const override { return scheme_; }
  const QuantParams& params() const override { return params_; }
  bool quantize_embeddings() const override { return quantize_embeddings_; }
  std::vector<float> act_amax() const override { return act_amax_; }

  MatrixF32 matrix(int layer, MatmulWeight which) const override {
    if (which == MatmulWeight::kTokenEmbd) return dequantize_matrix(file_.tensor("token_embd.weight"));
    if (which == MatmulWeight::kOutput && config_.tied_output) return matrix(0, MatmulWeight::kTokenEmbd);
    MatmulSite site;
    int64_t skip = 0, rows = 0;
    const int64_t q_dim = int64_t(config_.n_heads) * config_.head_dim(), kv = config_.kv_dim(),
                  ffn = config_.ffn_dim;
    switch (which) {
      case MatmulWeight::kQ: site = MatmulSite::kQkv, skip = 0, rows = q_dim; break;
      case MatmulWeight::kK: site = MatmulSite::kQkv, skip = q_dim, rows = kv; break;
      case MatmulWeight::kV: site = MatmulSite::kQkv, skip = q_dim + kv, rows = kv; break;
      case MatmulWeight::kO: site = MatmulSite::kWo, rows = config_.dim; break;
      case MatmulWeight::kGate: site = MatmulSite::kGateUp, skip = 0, rows = ffn; break;
      case MatmulWeight::kUp: site = MatmulSite::kGateUp, skip = ffn, rows = ffn; break;
      case MatmulWeight::kDown: site = MatmulSite::kDown, rows = config_.dim; break;
      default: site = MatmulSite::kOutput, rows = config_.vocab_size; break;
    }
    const MatrixF32 full = dequantize(quantized(site == MatmulSite::kOutput ? config_.n_layers : layer, site));
    MatrixF32 m;
    m.rows = rows;
    m.cols = full.cols;
    m.data.assign(full.row(skip), full.row(skip) + rows * full.cols);
    return m;
  }

  std::vector<float> norm(int layer, NormWeight which) const override {
    switch (which) {
      case NormWeight::kAttn:
        return dequantize_vector(file_.tensor(llama_layer_tensor_name(layer, "attn_norm")));
      case NormWeight::kFfn:
        return dequantize_vector(file_.tensor(llama_layer_tensor_name(layer, "ffn_norm")));
      case NormWeight::kOutput:
        return dequantize_vector(file_.tensor("output_norm.weight"));
    }
    fail(ErrorKind::kInternal, "unexpected norm kind");
  }

  QuantizedMatrix quantized(int layer, MatmulSite site) const override {
    if (site != MatmulSite::kOutput && (layer < 0 || layer >= config_.n_layers))
      fail(ErrorKind::kInvalidArgument, "quantized GGUF: layer {} outside 0..{}", layer, config_.n_layers - 1);
    const QuantScheme scheme = site != MatmulSite::kOutput || quantize_embeddings_ ? scheme_
                               : scheme_ == QuantScheme::F32                       ? QuantScheme::F32
                                                                                   : QuantScheme::F16;
    const auto [rows, cols] = shape(site);
    if (site == MatmulSite::kOutput && config_.tied_output) {
      if (scheme == QuantScheme::F32) return matrix(0, MatmulWeight::kTokenEmbd);
      if (scheme == QuantScheme::F16) return quantize_f16(matrix(0, MatmulWeight::kTokenEmbd));
    }
    const std::string p = site_prefix(layer, site);
    if (const GgufTensor* codes = file_.find_tensor(p + ".quill_codes")) return read_quill(p, *codes, scheme, rows, cols);
    return read_native(layer, site, scheme, rows, cols);
  }

 private:
  std::pair<int64_t, int64_t> shape(MatmulSite site) const {
    const int64_t q_dim = int64_t(config_.n_heads) * config_.head_dim(), kv = config_.kv_dim();
    switch (site) {
      case MatmulSite::kQkv: return {q_dim + 2 * kv, config_.dim};
      case MatmulSite::kWo: return {config_.dim, q_dim};
      case MatmulSite::kGateUp: return {2 * int64_t(config_.ffn_dim), config_.dim};
      case MatmulSite::kDown: return {config_.dim, config_.ffn_dim};
      case MatmulSite::kOutput: return {config_.vocab_size, config_.dim};
    }
    fail(ErrorKind::kInternal, "bad site");
  }

  const GgufTensor& expect(const std::string& name, GgmlType type, std::vector<int64_t> dims) const {
    const GgufTensor& t = file_.tensor(name);
    if (t.type != type || t.dims != dims)
      fail(ErrorKind::kFormat, "{}: tensor {} is {} [{}], expected {} [{}]", path_, name, ggml_type_name(t.type),
           fmt::join(t.dims, ", "), ggml_type_name(type), fmt::join(dims, ", "));
    return t;
  }
  template <typename T>
  std::vector<T> copy(const GgufTensor& t) const {
    std::vector<T> v(size_t(t.n_bytes / sizeof(T)));
    std::memcpy(v.data(), t.data, v.size() * sizeof(T));
    return v;
  }

  QuantizedMatrix read_quill(const std::string& p, const GgufTensor& codes, QuantScheme scheme, int64_t rows,
                             int64_t cols) const {
    switch (scheme) {
      case QuantScheme::Int8:
      case QuantScheme::LlmInt8: {
        Int8Matrix m;
        m.rows = rows, m.cols = cols;
        m.cb = copy<int8_t>(expect(p + ".quill_codes", GgmlType::I8, {cols, rows}));
        m.scb = copy<float>(expect(p + ".quill_scales", GgmlType::F32, {rows}));
        if (const GgufTensor* od = file_.find_tensor(p + ".quill_outlier_dims")) {
          if (od->type != GgmlType::I32 || od->dims.size() != 1) fail(ErrorKind::kFormat, "{}: bad {}", path_, od->name);
          m.outlier_dims = copy<int32_t>(*od);
          for (size_t i = 0; i < m.outlier_dims.size(); ++i)
            if (m.outlier_dims[i] < 0 || m.outlier_dims[i] >= cols || (i && m.outlier_dims[i] <= m.outlier_dims[i - 1]))
              fail(ErrorKind::kFormat, "{}: {} is not sorted distinct columns", path_, od->name);
          m.w16 = copy<uint16_t>(expect(p + ".quill_w16", GgmlType::F16, {od->dims[0], rows}));
        }
        return m;
      }
      case QuantScheme::NF4:
      case QuantScheme::FP4:
      case QuantScheme::Dyn8: {
        BlockwiseMatrix b;
        b.scheme = scheme, b.rows = rows, b.cols = cols, b.block = resolved_block(scheme, params_);
        b.padded_cols = (cols + b.block - 1) / b.block * b.block;
        b.codes = copy<uint8_t>(expect(p + ".quill_codes", GgmlType::I8, {b.code_bytes_per_row(), rows}));
        b.double_quant = params_.double_quant;
        const int64_t n = rows * b.blocks_per_row();
        if (b.double_quant) {
          b.dq.codes = copy<uint8_t>(expect(p + ".quill_dq_codes", GgmlType::I8, {n}));
          b.dq.absmax2 = copy<float>(expect(p + ".quill_dq_absmax2", GgmlType::F32, {(n + 255) / 256}));
          b.dq.offset = copy<float>(expect(p + ".quill_dq_offset", GgmlType::F32, {1}))[0];
        } else {
          b.absmax = copy<float>(expect(p + ".quill_scales", GgmlType::F32, {b.blocks_per_row(), rows}));
        }
        return b;
      }
      case QuantScheme::Q8_0:
      case QuantScheme::Int4: {
        GgmlBlockMatrix g;
        g.scheme = scheme, g.rows = rows, g.cols = cols;
        g.padded_cols = (cols + GgmlBlockMatrix::kBlock - 1) / GgmlBlockMatrix::kBlock * GgmlBlockMatrix::kBlock;
        g.codes = copy<uint8_t>(expect(p + ".quill_codes", GgmlType::I8, {g.code_bytes_per_row(), rows}));
        g.d = copy<uint16_t>(expect(p + ".quill_scales", GgmlType::F16, {g.blocks_per_row(), rows}));
        return g;
      }
      case QuantScheme::KMeans4: {
        KMeansMatrix k;
        k.rows = rows, k.cols = cols, k.per_row = params_.kmeans_per_row;
        k.padded_cols = (cols + KMeansMatrix::kRowAlign - 1) / KMeansMatrix::kRowAlign * KMeansMatrix::kRowAlign;
        k.codes = copy<uint8_t>(expect(p + ".quill_codes", GgmlType::I8, {k.padded_cols / 2, rows}));
        std::vector<int64_t> dims = {KMeansMatrix::kCentroids};
        if (k.per_row) dims.push_back(rows);
        k.centroids = copy<uint16_t>(expect(p + ".quill_scales", GgmlType::F16, dims));
        return k;
      }
      default:
        fail(ErrorKind::kFormat, "{}: {} has quill codes but the scheme {} has no quill layout", path_, codes.name,
             scheme_name(scheme));
    }
  }

  QuantizedMatrix read_native(int layer, MatmulSite site, QuantScheme scheme, int64_t rows, int64_t cols) const {
    std::vector<const GgufTensor*> parts;
    int64_t total = 0;
    for (const std::string& name : native_names(layer, site)) {
      parts.push_back(&file_.tensor(name));
      if (parts.back()->cols() != cols) fail(ErrorKind::kFormat, "{}: {} has {} columns, expected {}", path_, name,
                                             parts.back()->cols(), cols);
      total += parts.back()->rows();
    }
    if (total != rows) fail(ErrorKind::kFormat, "{}: {} has {} rows, expected {}", path_, site_prefix(layer, site), total, rows);
    const GgmlType want = scheme == QuantScheme::F32   ? GgmlType::F32
                          : scheme == QuantScheme::F16 ? GgmlType::F16
                                                       : ggml_type_of(scheme);
    for (const GgufTensor* t : parts)
      if (t->type != want)
        fail(ErrorKind::kFormat, "{}: {} is {}, the file's scheme {} stores {}", path_, t->name,
             ggml_type_name(t->type), scheme_name(scheme), ggml_type_name(want));
    if (scheme == QuantScheme::F32) {
      MatrixF32 m;
      m.rows = rows, m.cols = cols;
      for (const GgufTensor* t : parts) {
        const MatrixF32 part = dequantize_matrix(*t);
        m.data.insert(m.data.end(), part.data.begin(), part.data.end());
      }
      return m;
    }
    if (scheme == QuantScheme::F16) {
      HalfMatrix h;
      h.rows = rows, h.cols = cols;
      for (const GgufTensor* t : parts) {
        const auto v = copy<uint16_t>(*t);
        h.data.insert(h.data.end(), v.begin(), v.end());
      }
      return h;
    }
    GgmlBlockMatrix g;
    for (const GgufTensor* t : parts) {
      const GgmlBlockMatrix part = from_gguf_blocks(want, t->bytes(), t->rows(), t->cols());
      if (g.rows == 0) g = part;
      else {
        g.rows += part.rows;
        g.d.insert(g.d.end(), part.d.begin(), part.d.end());
        g.codes.insert(g.codes.end(), part.codes.begin(), part.codes.end());
      }
    }
    return g;
  }

  GgufFile file_;
  std::string path_;
  LlamaConfig config_;
  QuantScheme scheme_ = QuantScheme::F32;
  QuantParams params_;
  bool quantize_embeddings_ = false;
  bool synthetic_vocab_ = false;
  std::vector<int32_t> outliers_;
  std::vector<float> act_amax_;
};

}  // namespace

bool QuantizedGgufSource::serves(QuantScheme scheme, const QuantParams& p, bool quantize_embeddings) const {
  const QuantParams& s = params();
  return scheme == this->scheme() && resolved_block(scheme, p) == resolved_block(scheme, s) &&
         p.double_quant == s.double_quant && (scheme != QuantScheme::KMeans4 || p.kmeans_per_row == s.kmeans_per_row) &&
         quantize_embeddings == this->quantize_embeddings();
}

ModelOptions QuantizedGgufSource::adopt(const ModelOptions& options) const {
  if (options.scheme && *options.scheme != scheme()) return options;  // re-quantized from the dequantized weights
  ModelOptions o = options;
  o.scheme = scheme();
  const float threshold = options.params.int8_threshold;
  o.params = params();
  o.params.int8_threshold = threshold;
  o.quantize_embeddings = quantize_embeddings();
  o.outlier_dims = known_outlier_dims();
  if (o.static_act_amax.empty()) o.static_act_amax = act_amax();
  return o;
}

bool is_quill_quantized_gguf(const GgufFile& file) { return file.has("quill.format_version"); }

std::unique_ptr<QuantizedGgufSource> quantized_gguf_source(const std::string& path) {
  return std::make_unique<QuantizedGgufSourceImpl>(path);
}

std::unique_ptr<WeightSource> open_gguf_weight_source(const std::string& path) {
  if (is_quill_quantized_gguf(GgufFile::open(path))) return quantized_gguf_source(path);
  return gguf_weight_source(path);
}

QuantizeFileSummary write_quantized_gguf(const WeightSource& source, const QuantizeFileOptions& o,
                                         const std::string& path,
                                         const std::function<void(int done, int total)>& progress) {
  validate_quant_params(o.scheme, o.params);
  const LlamaConfig& c = source.config();
  if (!o.act_amax.empty() && o.act_amax.size() != size_t(c.n_layers) * 4 + 1)
    fail(ErrorKind::kInvalidArgument, "quantize: {} static ranges for {} layers", o.act_amax.size(), c.n_layers);
  Writer out;
  // Metadata: the source file's own keys first (alignment and earlier quill.* keys dropped).
  if (o.metadata_from) {
    for (const GgufKv& kv : o.metadata_from->metadata())
      if (kv.key != "general.alignment" && !kv.key.starts_with("quill.")) out.w.set(kv.key, kv.value);
  } else {
    write_llama_metadata(out.w, c);
    out.w.set_bool("quill.synthetic_vocab", true);
  }
  out.w.set_u32("quill.format_version", kQuillGgufFormatVersion);
  out.w.set_string("quill.scheme", std::string(scheme_name(o.scheme)));
  out.w.set_u32("quill.block", uint32_t(resolved_block(o.scheme, o.params)));
  out.w.set_bool("quill.double_quant", o.params.double_quant);
  out.w.set_bool("quill.kmeans_per_row", o.params.kmeans_per_row);
  out.w.set_bool("quill.quantize_embeddings", o.quantize_embeddings);
  out.w.set_f32("quill.int8_threshold", o.params.int8_threshold);
  out.w.set_f32("quill.smooth_alpha", o.smooth_alpha);
  out.w.set_string("quill.calibration", o.calibration);
  const std::vector<int32_t> outliers = o.outlier_dims.empty() ? source.known_outlier_dims() : o.outlier_dims;
  out.w.set_i32_array("quill.outlier_dims", o.scheme == QuantScheme::LlmInt8 ? outliers : std::vector<int32_t>{});
  if (!o.act_amax.empty()) {
    out.w.set_string("quill.act_scale_method", o.act_scale_method);
    out.w.set_f32_array("quill.act_amax", o.act_amax);
  }

  double bits = 0;
  // One fused site: natively per matrix, or quill tensors of the fused matrix (exactly Model's quantize call).
  auto site = [&](int layer, MatmulSite s, QuantScheme scheme, const QuantParams& params,
                  std::span<const int32_t> site_outliers, bool count) {
    std::vector<MatrixF32> parts;
    for (MatmulWeight w : site_weights(s)) parts.push_back(source.matrix(layer, w));
    const int64_t cols = parts[0].cols;
    if (stored_natively(scheme, cols)) {
      const auto names = native_names(layer, s);
      for (size_t i = 0; i < parts.size(); ++i) {
        out.native(names[i], parts[i], scheme);
        if (count) {
          bits += bits_per_weight(quantize(parts[i], scheme, params)) * double(parts[i].rows * cols);
          out.summary.weights += parts[i].rows * cols;
        }
      }
      return;
    }
    MatrixF32 fused;
    if (parts.size() == 1) {
      fused = std::move(parts[0]);
    } else {
      fused.cols = cols;
      for (const MatrixF32& m : parts) {
        fused.rows += m.rows;
        fused.data.insert(fused.data.end(), m.data.begin(), m.data.end());
      }
    }
    const QuantizedMatrix q = quantize(fused, scheme, params, site_outliers);
    out.quill(site_prefix(layer, s), q);
    if (count) {
      bits += bits_per_weight(q) * double(fused.rows * fused.cols);
      out.summary.weights += fused.rows * fused.cols;
    }
  };
  const bool f32 = o.scheme == QuantScheme::F32;
  for (int l = 0; l < c.n_layers; ++l) {
    out.w.add_tensor_f32(llama_layer_tensor_name(l, "attn_norm"), {c.dim}, source.norm(l, NormWeight::kAttn));
    out.w.add_tensor_f32(llama_layer_tensor_name(l, "ffn_norm"), {c.dim}, source.norm(l, NormWeight::kFfn));
    site(l, MatmulSite::kQkv, o.scheme, o.params, outliers, true);
    site(l, MatmulSite::kWo, o.scheme, o.params, {}, true);
    site(l, MatmulSite::kGateUp, o.scheme, o.params, outliers, true);
    site(l, MatmulSite::kDown, o.scheme, o.params, {}, true);
    if (progress) progress(l + 1, c.n_layers + 1);
  }
  {
    const MatrixF32 embd = source.matrix(0, MatmulWeight::kTokenEmbd);
    out.native("token_embd.weight", embd, f32 ? QuantScheme::F32 : QuantScheme::F16);
    out.w.add_tensor_f32("output_norm.weight", {c.dim}, source.norm(0, NormWeight::kOutput));
    const QuantScheme side = o.quantize_embeddings ? o.scheme : f32 ? QuantScheme::F32 : QuantScheme::F16;
    // A tied head in f16/f32 is token_embd itself; anything else is stored (as Model's upload would quantize it).
    if (!(c.tied_output && !o.quantize_embeddings))
      site(c.n_layers, MatmulSite::kOutput, side, side == o.scheme ? o.params : QuantParams{}, outliers, false);
    if (progress) progress(c.n_layers + 1, c.n_layers + 1);
  }
  out.summary.bits_per_weight = out.summary.weights ? bits / double(out.summary.weights) : 0;
  out.w.write(path);
  out.summary.file_bytes = int64_t(std::filesystem::file_size(path));
  return out.summary;
}

}  // namespace quill
