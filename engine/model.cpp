// Model loading: quantize each matmul of the weight source and upload it (see model.hpp).
#include "engine/model.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "engine/error.hpp"
#include "engine/half.hpp"
#include "engine/log.hpp"
#include "engine/progress.hpp"
#include "engine/quantized_gguf.hpp"

namespace quill {

MatrixF32 stack_rows(std::span<const MatrixF32* const> parts) {
  MatrixF32 out;
  out.cols = parts.front()->cols;
  for (const MatrixF32* p : parts) {
    if (p->cols != out.cols) fail(ErrorKind::kFormat, "cannot fuse matrices with {} and {} columns", out.cols, p->cols);
    out.rows += p->rows;
  }
  out.data.reserve(size_t(out.rows * out.cols));
  for (const MatrixF32* p : parts) out.data.insert(out.data.end(), p->data.begin(), p->data.end());
  return out;
}

GgmlBlockMatrix stack_block_rows(std::span<const GgmlBlockMatrix> parts) {
  GgmlBlockMatrix out = parts.front();
  for (const GgmlBlockMatrix& p : parts.subspan(1)) {
    if (p.cols != out.cols || p.scheme != out.scheme)
      fail(ErrorKind::kFormat, "cannot fuse block matrices with {} and {} columns", out.cols, p.cols);
    out.rows += p.rows;
    out.d.insert(out.d.end(), p.d.begin(), p.d.end());
    out.codes.insert(out.codes.end(), p.codes.begin(), p.codes.end());
  }
  return out;
}

namespace {

struct Accounting {
  double bits = 0;      // sum of bits over the per-layer matmuls
  double weights = 0;   // their element count
};

std::unique_ptr<Linear> upload_quantized(host::Device& device, const QuantizedMatrix& q, QuantScheme scheme,
                                         const QuantParams& params, Accounting* accounting, std::mutex& upload_mutex);

// Quantizes on the calling thread, then uploads under `upload_mutex` (uploads and kernel builds are
// serialized; quantization, the slow part, runs in parallel across layers).
std::unique_ptr<Linear> upload_matrix(host::Device& device, const MatrixF32& w, QuantScheme scheme,
                                      const QuantParams& params, std::span<const int32_t> outliers,
                                      Accounting* accounting, std::mutex& upload_mutex) {
  return upload_quantized(device, quantize(w, scheme, params, outliers), scheme, params, accounting, upload_mutex);
}

// Uploads an already quantized matrix (quantize() output, or stored in a quantized GGUF).
std::unique_ptr<Linear> upload_quantized(host::Device& device, const QuantizedMatrix& q, QuantScheme scheme,
                                         const QuantParams& params, Accounting* accounting, std::mutex& upload_mutex) {
  const MatrixF32* f = std::get_if<MatrixF32>(&q);
  const int64_t rows = f ? f->rows : std::visit([](const auto& m) { return int64_t(m.rows); }, q);
  const int64_t cols = f ? f->cols : std::visit([](const auto& m) { return int64_t(m.cols); }, q);
  std::lock_guard<std::mutex> lock(upload_mutex);
  if (accounting) {
    accounting->bits += bits_per_weight(q) * double(rows * cols);
    accounting->weights += double(rows * cols);
  }
  return make_linear(device, q, scheme, params);
}

host::Buffer upload_floats(host::Device& device, const std::vector<float>& v) { return host::upload(device, v); }

// Refuses a model the device cannot hold before anything is quantized or allocated, from lower bounds: each
// matrix's codes (the integer part of the scheme's bits per weight) against the device's maximum allocation, and
// every weight against its global memory. (Buffer checks each real allocation again.)
void check_fits_device(const host::DeviceInfo& info, const LlamaConfig& c, QuantScheme scheme, QuantScheme side,
                       const QuantParams& params, bool embd_f32, const std::string& what) {
  const auto code_bits = [&](QuantScheme s) {
    if (s == QuantScheme::F32) return 32.0;
    if (s == QuantScheme::F16) return 16.0;
    return double(std::bit_floor(unsigned(nominal_bits_per_weight(s, params))));
  };
  const double dim = c.dim, q_dim = double(c.n_heads) * c.head_dim(), kv = c.kv_dim(), ffn = c.ffn_dim,
               vocab = c.vocab_size, bits = code_bits(scheme), side_bits = code_bits(side);
  struct Part {
    const char* name;
    double rows, cols, bits, copies;
  };
  const double L = c.n_layers;
  const Part parts[] = {{"qkv", q_dim + 2 * kv, dim, bits, L},    {"attn_output", dim, q_dim, bits, L},
                        {"ffn_gate+up", 2 * ffn, dim, bits, L},    {"ffn_down", dim, ffn, bits, L},
                        {"output", vocab, dim, side_bits, 1},      {"token_embd", vocab, dim, embd_f32 ? 32.0 : 16.0, 1}};
  double total = 0;
  for (const Part& p : parts) {
    const double bytes = p.rows * p.cols * p.bits / 8;
    total += bytes * p.copies;
    if (bytes > double(info.max_alloc_bytes)) {
      fail(ErrorKind::kOutOfMemory,
           "{}: the {} matrix [{} x {}] needs at least {:.0f} bytes in one buffer, more than {}'s maximum allocation "
           "of {} bytes",
           what, p.name, uint64_t(p.rows), uint64_t(p.cols), bytes, info.name, info.max_alloc_bytes);
    }
  }
  if (total > double(info.global_mem_bytes)) {
    fail(ErrorKind::kOutOfMemory,
         "{}: the weights need at least {:.0f} bytes ({:.1f} GiB) of device memory, more than {}'s {} bytes "
         "({:.1f} GiB)",
         what, total, total / 1073741824.0, info.name, info.global_mem_bytes, info.global_mem_bytes / 1073741824.0);
  }
}

}  // namespace

Model::Model(const WeightSource& source, const ModelOptions& options)
    : device_(std::make_unique<host::Device>(host::DeviceOptions{options.device, options.profiling})),
      config_(source.config()),
      tokenizer_(source.tokenizer()),
      description_(source.description()) {
  const auto start = std::chrono::steady_clock::now();
  scheme_ = options.scheme.value_or(QuantScheme::F32);
  validate_quant_params(scheme_, options.params);
  outlier_dims_ = options.outlier_dims.empty() ? source.known_outlier_dims() : options.outlier_dims;
  if (tokenizer_.vocab_size() != config_.vocab_size)
    fail(ErrorKind::kFormat, "tokenizer has {} tokens but token_embd has {} rows", tokenizer_.vocab_size(),
         config_.vocab_size);
  host::Device& device = *device_;
  const QuantScheme side_scheme = options.quantize_embeddings ? scheme_
                                  : scheme_ == QuantScheme::F32 ? QuantScheme::F32
                                                                : QuantScheme::F16;
  check_fits_device(device.info(), config_, scheme_, side_scheme, options.params, scheme_ == QuantScheme::F32,
                    description_);
  // A quill-quantized GGUF: upload its stored matrices as they are when they are in this scheme.
  const auto* stored = dynamic_cast<const QuantizedGgufSource*>(&source);
  if (stored && !stored->serves(scheme_, options.params, options.quantize_embeddings)) {
    log_warn("{} is stored as {}: re-quantizing its dequantized weights to {}", description_,
             scheme_name(stored->scheme()), scheme_name(scheme_));
    stored = nullptr;
  }
  if (!options.static_act_amax.empty() && options.static_act_amax.size() != size_t(config_.n_layers) * 4 + 1)
    fail(ErrorKind::kInvalidArgument, "static activation ranges: {} values for {} layers (need 4 per layer + 1)",
         options.static_act_amax.size(), config_.n_layers);
  // The parameters of one matmul: the model's, with its static activation range when calibrated.
  auto params_of = [&](int layer, MatmulSite site) {
    QuantParams p = options.params;
    if (!options.static_act_amax.empty())
      p.static_act_amax = options.static_act_amax[site == MatmulSite::kOutput ? size_t(config_.n_layers) * 4
                                                                              : size_t(layer) * 4 + size_t(site)];
    return p;
  };
  Accounting accounting;
  std::mutex upload_mutex;
  ProgressBar bar(fmt::format("loading {} as {}", description_, scheme_name(scheme_)), config_.n_layers + 1);
  bool progress_threw = false;  // (under upload_mutex) once the hook cancels, it is not called again
  const auto report = [&](int64_t done) {
    if (!options.progress) return bar.update(done);
    if (progress_threw) return;
    try {
      options.progress(done, config_.n_layers + 1);
    } catch (...) {
      progress_threw = true;
      throw;
    }
  };
  int layers_done = 0;
  layers_.resize(size_t(config_.n_layers));
  // One fused matmul of layer l (its parts stacked by rows): uploaded in the file's own blocks when
  // they are already the scheme (GGUF Q8_0 for q8_0, Q4_0 for int4), else quantized from fp32.
  auto upload_site = [&](int l, std::initializer_list<MatmulWeight> parts, MatmulSite site,
                         std::span<const int32_t> outliers) {
    std::vector<GgmlBlockMatrix> native;
    for (MatmulWeight w : parts) {
      std::optional<GgmlBlockMatrix> blocks = source.native_blocks(l, w, scheme_);
      if (!blocks) break;
      native.push_back(std::move(*blocks));
    }
    if (native.size() == parts.size()) {
      ++native_matrices_;
      return upload_quantized(device, QuantizedMatrix(stack_block_rows(native)), scheme_, params_of(l, site),
                              &accounting, upload_mutex);
    }
    std::vector<MatrixF32> matrices;
    for (MatmulWeight w : parts) matrices.push_back(source.matrix(l, w));
    std::vector<const MatrixF32*> pointers;
    for (const MatrixF32& m : matrices) pointers.push_back(&m);
    return upload_matrix(device, stack_rows(pointers), scheme_, params_of(l, site), outliers, &accounting,
                         upload_mutex);
  };
  auto load_layer = [&](int l) {
    ModelLayer& layer = layers_[size_t(l)];
    const std::vector<float> attn_norm = source.norm(l, NormWeight::kAttn), ffn_norm = source.norm(l, NormWeight::kFfn);
    {
      std::lock_guard<std::mutex> lock(upload_mutex);
      layer.attn_norm = upload_floats(device, attn_norm);
      layer.ffn_norm = upload_floats(device, ffn_norm);
    }
    if (stored) {
      for (auto [site, linear] : {std::pair{MatmulSite::kQkv, &layer.qkv}, std::pair{MatmulSite::kWo, &layer.wo},
                                  std::pair{MatmulSite::kGateUp, &layer.gate_up}, std::pair{MatmulSite::kDown, &layer.down}})
        *linear = upload_quantized(device, stored->quantized(l, site), scheme_, params_of(l, site), &accounting,
                                   upload_mutex);
    } else {
      using W = MatmulWeight;
      layer.qkv = upload_site(l, {W::kQ, W::kK, W::kV}, MatmulSite::kQkv, outlier_dims_);
      layer.wo = upload_site(l, {W::kO}, MatmulSite::kWo, {});
      layer.gate_up = upload_site(l, {W::kGate, W::kUp}, MatmulSite::kGateUp, outlier_dims_);
      layer.down = upload_site(l, {W::kDown}, MatmulSite::kDown, {});
    }
    std::lock_guard<std::mutex> lock(upload_mutex);
    report(++layers_done);
  };
  // Layers are independent: quantize them on several threads (each holds one layer's fp32 matrices).
  const int n_threads = int(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1u, 16u));
  std::atomic<int> next_layer{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    for (int l; (l = next_layer.fetch_add(1)) < config_.n_layers;) {
      try {
        load_layer(l);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next_layer = config_.n_layers;  // stop handing out work
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < std::min(n_threads, config_.n_layers); ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  {
    const MatrixF32 embd = source.matrix(0, MatmulWeight::kTokenEmbd);
    embd_f32_ = scheme_ == QuantScheme::F32;
    if (embd_f32_) {
      token_embd_ = host::upload(device, embd.data);
    } else {
      std::vector<uint16_t> half(embd.data.size());
      for (size_t i = 0; i < half.size(); ++i) half[i] = float_to_half(embd.data[i]);
      token_embd_ = host::upload(device, half);
    }
    output_norm_ = upload_floats(device, source.norm(0, NormWeight::kOutput));
    // The head's own scheme gets its own parameters (f16/f32 take no block or double quant).
    const QuantParams head_params =
        side_scheme == scheme_ ? params_of(config_.n_layers, MatmulSite::kOutput) : QuantParams{};
    if (stored) {
      output_ = upload_quantized(device, stored->quantized(config_.n_layers, MatmulSite::kOutput), side_scheme,
                                 head_params, nullptr, upload_mutex);
    } else {
      const MatrixF32 head = config_.tied_output ? embd : source.matrix(0, MatmulWeight::kOutput);
      output_ = upload_matrix(device, head, side_scheme, head_params, outlier_dims_, nullptr, upload_mutex);
    }
  }
  link_l2_prefetch();
  report(config_.n_layers + 1);
  bar.finish();
  bits_ = accounting.weights > 0 ? accounting.bits / accounting.weights : 0;
  load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::shared_ptr<Model> Model::load_gguf(const std::string& path, const ModelOptions& options) {
  const std::unique_ptr<WeightSource> source = open_gguf_weight_source(path);
  if (const auto* stored = dynamic_cast<const QuantizedGgufSource*>(source.get()))
    return std::make_shared<Model>(*source, stored->adopt(options));
  return std::make_shared<Model>(*source, options);
}

std::shared_ptr<Model> Model::synthetic(const std::string& preset, const ModelOptions& options, uint64_t seed) {
  return std::make_shared<Model>(*synthetic_weight_source(preset, seed), options);
}

void Model::link_l2_prefetch() {
  // Default: measured on the H100 (docs/PERFORMANCE.md, session 7); the H100's L2 is 50 MB.
  double mib = 4;
  if (const char* env = std::getenv("QUILL_L2_PREFETCH_MIB"); env && *env) {
    char* end = nullptr;
    mib = std::strtod(env, &end);
    if (end == env || *end != '\0' || !(mib >= 0) || mib > 1024)
      fail(ErrorKind::kInvalidArgument, "QUILL_L2_PREFETCH_MIB={}: want a number of MiB in [0, 1024]", env);
  }
  const size_t bytes = size_t(mib * 1024 * 1024);
  for (size_t l = 0; l < layers_.size(); ++l) {
    ModelLayer& layer = layers_[l];
    Linear& next_qkv = l + 1 < layers_.size() ? *layers_[l + 1].qkv : *output_;
    layer.attention_prefetch = layer.wo->l2_head(bytes);  // attention runs between qkv and wo
    layer.qkv->set_l2_prefetch(layer.attention_prefetch);
    layer.wo->set_l2_prefetch(layer.gate_up->l2_head(bytes));
    layer.gate_up->set_l2_prefetch(layer.down->l2_head(bytes));
    layer.down->set_l2_prefetch(next_qkv.l2_head(bytes));
  }
  if (!layers_.empty()) output_->set_l2_prefetch(layers_[0].qkv->l2_head(bytes));  // the next token's first
}

uint64_t Model::weight_bytes() const {
  uint64_t total = output_->weight_bytes();
  for (const auto& l : layers_)
    total += l.qkv->weight_bytes() + l.wo->weight_bytes() + l.gate_up->weight_bytes() + l.down->weight_bytes();
  return total;
}

double Model::bits_per_weight() const { return bits_; }

}  // namespace quill
