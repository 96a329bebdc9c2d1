#include "model/llama.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/log.h"
#include "common/parallel.h"
#include "model/accounting.h"
#include "model/decode_kernels.h"
#include "model/rope.h"

namespace cg::model {

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens",
                                 Embedding("model.embed_tokens", cfg.vocab_size, cfg.hidden_size, tp, options));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) layers->push_back(DecoderLayer(i, cfg, tp, options));
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, options));
}

LlamaImpl::LlamaImpl(const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options) : cfg_(cfg), tp_(tp) {
  cfg_.validate();
  CG_CHECK(tp.size >= 1 && tp.rank >= 0 && tp.rank < tp.size, "tp rank {} of {} is not a valid tp shape", tp.rank,
           tp.size);
  const int64_t vpad = padded_vocab(cfg.vocab_size, tp.size);
  if (vpad != cfg.vocab_size && tp.rank == 0)
    spdlog::info("vocab_size {} padded to {} (a multiple of tp {}); padded logits are -inf", cfg.vocab_size, vpad,
                 tp.size);
  model = register_module("model", LlamaModel(cfg, tp, options));
  lm_head = register_module("lm_head",
                            Linear("lm_head", cfg.hidden_size, vpad, ParallelStyle::Column, tp, options));
}

at::Tensor LlamaImpl::forward(const at::Tensor& tokens, int64_t start_pos, KVCache* cache) {
  CG_CHECK(tokens.dim() == 2 && tokens.scalar_type() == at::kLong, "Llama::forward wants tokens (B, T) int64, got {} {}",
           c10::str(tokens.sizes()), c10::str(tokens.scalar_type()));
  const int64_t T = tokens.size(1);
  if (cache) CG_CHECK(static_cast<int64_t>(cache->k.size()) == cfg_.num_hidden_layers, "KV cache has {} layers, model {}",
                      cache->k.size(), cfg_.num_hidden_layers);
  auto h = model->embed_tokens(tokens);  // (B, T, d)
  const auto [cos, sin] = rope_cos_sin(start_pos, T, cfg_.head_dim(), cfg_.rope_theta, h.scalar_type(), h.device());
  if (fused_) {  // the residual stream as two tensors, each sum done inside the next norm
    at::Tensor m;
    for (size_t i = 0; i < model->layers->size(); ++i)
      std::tie(h, m) = model->layers[i]->as<DecoderLayerImpl>()->forward_fused(
          h, m, cos, sin, start_pos, cache ? &cache->k[i] : nullptr, cache ? &cache->v[i] : nullptr, nullptr);
    return logits_of(h, m);
  }
  const bool checkpoint = activation_checkpointing && is_training() && !cache && at::GradMode::is_enabled();
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers[i]->as<DecoderLayerImpl>();
    if (checkpoint)
      h = layer->forward_checkpointed(h, cos, sin, recompute_generators);
    else if (cache)
      h = layer->forward(h, cos, sin, start_pos, &cache->k[i], &cache->v[i]);
    else
      h = layer->forward(h, cos, sin, start_pos);
  }
  return logits_of(h);
}

at::Tensor LlamaImpl::decode_step(const at::Tensor& tokens, const std::vector<int64_t>& positions, KVCache* cache,
                                  const KVCache* prefix, int64_t max_chunks, int64_t chunk_cost,
                                  int64_t* positions_read) {
  const int64_t B = tokens.size(0);
  CG_CHECK(tokens.dim() == 2 && tokens.size(1) == 1 && tokens.scalar_type() == at::kLong,
           "Llama::decode_step wants tokens (B, 1) int64, got {} {}", c10::str(tokens.sizes()),
           c10::str(tokens.scalar_type()));
  CG_CHECK(static_cast<int64_t>(positions.size()) == B && B > 0, "{} positions for {} rows", positions.size(), B);
  CG_CHECK(cache && static_cast<int64_t>(cache->k.size()) == cfg_.num_hidden_layers && cache->batch() == B,
           "Llama::decode_step needs a KV cache of {} layers and batch {}", cfg_.num_hidden_layers, B);
  const int64_t P = prefix ? prefix->max_len : 0;
  const auto [lo, hi] = std::minmax_element(positions.begin(), positions.end());
  CG_CHECK(*lo >= P && *hi < cache->max_len, "decode positions [{}, {}] outside [{}, {}) (shared prefix, KV cache "
           "length); make the cache longer (max_len)", *lo, *hi, P, cache->max_len);
  RowPositions rows;
  rows.prefix = P;
  rows.pos = at::tensor(positions, at::TensorOptions().dtype(at::kLong)).to(device());  // (B)
  const bool one_pass = one_pass_decode();  // (every row reads its own positions: no chunks)
  if (!one_pass) {
    std::vector<int64_t> past_prefix(positions);
    for (auto& p : past_prefix) p -= P;
    rows.chunks = decode_chunks(past_prefix, max_chunks, chunk_cost + P);  // a chunk also reads the P shared ones
  }
  if (positions_read) {
    *positions_read = 0;
    if (one_pass)  // every row its own positions, the prefix's included
      for (const int64_t p : positions) *positions_read += p + 1;
    else
      for (const auto& c : rows.chunks) *positions_read += P + c.rows * c.span;
  }
  return decode_rows(tokens, rows, cache, prefix);
}

at::Tensor LlamaImpl::decode_step_on_device(const at::Tensor& tokens, const at::Tensor& positions, int64_t span,
                                            KVCache* cache, const KVCache* prefix) {
  const int64_t B = tokens.size(0);
  CG_CHECK(tokens.dim() == 2 && tokens.size(1) == 1 && positions.dim() == 1 && positions.size(0) == B &&
               positions.scalar_type() == at::kLong,
           "Llama::decode_step_on_device wants tokens (B, 1) and positions (B) int64, got {} and {}",
           c10::str(tokens.sizes()), c10::str(positions.sizes()));
  CG_CHECK(cache && static_cast<int64_t>(cache->k.size()) == cfg_.num_hidden_layers && cache->batch() == B,
           "Llama::decode_step_on_device needs a KV cache of {} layers and batch {}", cfg_.num_hidden_layers, B);
  const int64_t P = prefix ? prefix->max_len : 0;
  CG_CHECK(span >= 1 && P + span <= cache->max_len, "decode span {} after a shared prefix of {} exceeds the KV "
           "cache's {} positions", span, P, cache->max_len);
  RowPositions rows;
  rows.prefix = P;
  rows.pos = positions;
  DecodeChunk c;
  c.rows = B, c.span = span;
  rows.chunks.push_back(c);
  return decode_rows(tokens, rows, cache, prefix);
}

at::Tensor LlamaImpl::decode_rows(const at::Tensor& tokens, RowPositions& rows, KVCache* cache,
                                  const KVCache* prefix) {
  const int64_t B = tokens.size(0), P = rows.prefix;
  if (prefix)
    CG_CHECK(static_cast<int64_t>(prefix->k.size()) == cfg_.num_hidden_layers && prefix->batch() == 1,
             "Llama::decode_step: the shared prefix must be a KV cache of {} layers and batch 1",
             cfg_.num_hidden_layers);
  rows.one_pass = one_pass_decode();
  const auto& attn = *model->layers->ptr<DecoderLayerImpl>(0)->self_attn;
  if (!rows.one_pass)  // (one pass: every row reads exactly its own positions, no chunk masks)
    for (auto& c : rows.chunks) {
      // Additive (0 / -inf, the model's dtype), built once for every layer: SDPA turns a bool mask into this per call.
      const auto future = at::arange(P, P + c.span, rows.pos.options()).view({1, 1, 1, c.span}) >
                          rows.pos.narrow(0, c.start, c.rows).view({c.rows, 1, 1, 1});  // (rows, 1, 1, span)
      // Rows padded to a multiple of 8 elements: SDPA's memory-efficient kernel (CUDA) copies a mask whose strides are
      // not, in every layer; a view of the first span columns of a padded buffer is aligned.
      const int64_t padded = (c.span + 7) / 8 * 8;
      c.mask = at::zeros({c.rows, 1, 1, padded}, at::TensorOptions().dtype(dtype()).device(device()))
                   .narrow(-1, 0, c.span)
                   .masked_fill_(future, -std::numeric_limits<double>::infinity());
    }
  auto h = model->embed_tokens(tokens);  // (B, 1, d)
  auto [cos, sin] = rope_cos_sin_at(rows.pos, cfg_.head_dim(), cfg_.rope_theta, h.scalar_type());  // (B, hd)
  if (rows.one_pass) {
    rows.cos = cos, rows.sin = sin;  // the layers' attention takes them from rows
  } else if (fused_) {
    // Per-head tables over the fused q|k|v heads (built once per step), v's the identity (cos 1, sin 0: the rotation
    // leaves v exact), so one RoPE call yields q, k and v with k and v adjacent for one cache scatter.
    const int64_t Hq = attn.n_heads_local, Hkv = attn.n_kv_heads_local, hd = cfg_.head_dim();
    const auto per_head = [&](const at::Tensor& t, double v_value) {
      return at::cat({t.unsqueeze(1).expand({B, Hq + Hkv, hd}), at::full({B, Hkv, hd}, v_value, t.options())}, 1)
          .unsqueeze(2);  // (B, Hq + 2 Hkv, 1, hd)
    };
    cos = per_head(cos, 1.0);
    sin = per_head(sin, 0.0);
  } else {
    cos = cos.view({B, 1, 1, -1});  // broadcast over (B, heads, 1, hd)
    sin = sin.view({B, 1, 1, -1});
  }
  at::Tensor m;  // fuse_for_inference: the residual stream is h + m
  for (size_t i = 0; i < model->layers->size(); ++i) {
    if (prefix) rows.prefix_k = prefix->k[i], rows.prefix_v = prefix->v[i];
    if (!cache->kv.empty()) rows.kv = cache->kv[i];
    auto* layer = model->layers[i]->as<DecoderLayerImpl>();
    if (fused_)
      std::tie(h, m) = layer->forward_fused(h, m, cos, sin, 0, &cache->k[i], &cache->v[i], &rows);
    else
      h = layer->forward(h, cos, sin, 0, &cache->k[i], &cache->v[i], &rows);
  }
  return logits_of(h, m);
}

at::Tensor LlamaImpl::logits_of(const at::Tensor& hidden, const at::Tensor& residual) {
  const auto h = fused_ ? model->norm->forward_fused(hidden, residual) : model->norm(hidden);
  auto logits = lm_head(h).to(at::kFloat);  // (B, T, vocab_local)
  const auto& emb = *model->embed_tokens;
  if (emb.vocab_start + emb.vocab_local > cfg_.vocab_size) {
    // Padded rows are zero, but their logit must never win nor take softmax mass.
    const auto ids = at::arange(emb.vocab_start, emb.vocab_start + emb.vocab_local,
                                at::TensorOptions().dtype(at::kLong).device(logits.device()));
    logits = logits.masked_fill(ids >= cfg_.vocab_size, -std::numeric_limits<float>::infinity());
  }
  return logits;
}

KVCache LlamaImpl::make_cache(int64_t batch, int64_t max_len) const {
  const auto& attn = *model->layers->ptr<DecoderLayerImpl>(0)->self_attn;
  KVCache c;
  c.max_len = max_len;
  const auto opts = at::TensorOptions().dtype(dtype()).device(device());
  const int64_t n_kv = attn.n_kv_heads_local;
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    c.kv.push_back(at::zeros({2, batch, n_kv, max_len, attn.head_dim}, opts));  // k and v each contiguous
    c.k.push_back(c.kv.back().select(0, 0));
    c.v.push_back(c.kv.back().select(0, 1));
  }
  return c;
}

std::vector<Linear> LlamaImpl::linears() const {
  std::vector<Linear> out;
  for (const auto& m : *model->layers) {
    auto* layer = m->as<DecoderLayerImpl>();
    const auto& a = layer->self_attn;
    const auto& f = layer->mlp;
    for (const auto& l : {a->q_proj, a->k_proj, a->v_proj, a->o_proj, f->gate_proj, f->up_proj, f->down_proj})
      out.push_back(l);
  }
  return out;
}

bool LlamaImpl::one_pass_decode() const {
  if (!fused_ || decode_kernels_ == DecodeKernels::Off) return false;
  return decode_kernels_ == DecodeKernels::On || (device().is_cuda() && decode_kernels_built());
}

void LlamaImpl::set_decode_kernels(DecodeKernels mode) {
  decode_kernels_ = model->norm->kernels = mode;
  for (const auto& m : *model->layers) {
    auto* layer = m->as<DecoderLayerImpl>();
    layer->input_layernorm->kernels = layer->post_attention_layernorm->kernels = layer->mlp->kernels = mode;
  }
}

void LlamaImpl::fuse_for_inference() {
  for (const auto& m : *model->layers) m->as<DecoderLayerImpl>()->fuse_for_inference();
  model->norm->fuse_for_inference();
  fused_ = true;
}

namespace {
ParamSpec replicated(const std::string& name, const at::Tensor& p) {
  return {name, p, p.sizes().vec(), -1, 0, 0, ParallelStyle::None};
}
ParamSpec from_linear(const LinearImpl& l) {
  ParamSpec s{l.hf_name + ".weight", l.weight, {l.out_features, l.in_features}, -1, 0, 0, l.style};
  if (l.style == ParallelStyle::Column) s.shard_dim = 0, s.shard_start = l.tp.rank * l.out_features_local,
                                        s.shard_len = l.out_features_local;
  if (l.style == ParallelStyle::Row) s.shard_dim = 1, s.shard_start = l.tp.rank * l.in_features_local,
                                     s.shard_len = l.in_features_local;
  return s;
}
ParamSpec vocab_sharded(const std::string& name, const at::Tensor& p, int64_t vocab, int64_t start) {
  const int64_t local = p.size(0);
  return {name, p, {vocab, p.size(1)}, 0, start, std::max<int64_t>(0, std::min(local, vocab - start)),
          ParallelStyle::Vocab};
}
}  // namespace

at::Tensor ParamSpec::slice_of(const at::Tensor& full) const {
  CG_CHECK(full.sizes().vec() == full_shape, "{}: full tensor has shape {} but the model expects {}", name,
           c10::str(full.sizes()), c10::str(at::IntArrayRef(full_shape)));
  if (shard_dim < 0) return full;
  auto part = full.narrow(shard_dim, shard_start, shard_len);
  const int64_t pad = param.size(shard_dim) - shard_len;
  if (pad > 0) {
    auto shape = part.sizes().vec();
    shape[shard_dim] = pad;
    part = at::cat({part, at::zeros(shape, part.options())}, shard_dim);
  }
  return part;
}

std::vector<ParamSpec> LlamaImpl::param_specs() const {
  std::vector<ParamSpec> s;
  const auto& emb = *model->embed_tokens;
  s.push_back(vocab_sharded("model.embed_tokens.weight", emb.weight, cfg_.vocab_size, emb.vocab_start));
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers->ptr<DecoderLayerImpl>(i);
    const std::string p = "model.layers." + std::to_string(i);
    const auto& a = layer->self_attn;
    const auto& f = layer->mlp;
    for (const auto& l : {a->q_proj, a->k_proj, a->v_proj, a->o_proj, f->gate_proj, f->up_proj, f->down_proj})
      s.push_back(from_linear(*l));
    s.push_back(replicated(p + ".input_layernorm.weight", layer->input_layernorm->weight));
    s.push_back(replicated(p + ".post_attention_layernorm.weight", layer->post_attention_layernorm->weight));
  }
  s.push_back(replicated("model.norm.weight", model->norm->weight));
  s.push_back(vocab_sharded("lm_head.weight", lm_head->weight, cfg_.vocab_size, emb.vocab_start));
  return s;
}

void LlamaImpl::set_base_trainable(bool trainable) {
  for (auto& s : param_specs()) s.param.set_requires_grad(trainable);
}

uint64_t stable_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

namespace {

// The full tensor of one parameter, drawn into `buf` (a reused host fp32 buffer, grown as needed: fresh pages cost
// more to fault in than the draws themselves) from a generator of its own, seeded from the seed and the parameter's
// name, so the values depend on neither the tp degree nor the order of drawing.
at::Tensor draw_full(const ParamSpec& s, uint64_t seed, double std, at::Tensor& buf) {
  const int64_t numel = c10::multiply_integers(s.full_shape);
  if (!buf.defined() || buf.numel() < numel) buf = at::empty({numel}, at::kFloat);
  at::Tensor full = buf.narrow(0, 0, numel).view(s.full_shape);
  if (s.full_shape.size() == 1) return full.fill_(1.0);  // RMSNorm scales
  // splitmix-style mixing so nearby seeds give unrelated streams.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stable_hash(s.name) | 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(z ^ (z >> 31));
  return full.normal_(0.0, std, gen);
}

}  // namespace

void init_weights(LlamaImpl& m, uint64_t seed, double std) {
  at::NoGradGuard no_grad;
  // The normal draws are serial per generator (~190 M/s on one core: 7B's 6.7e9 values took 81 s with the casts
  // and copies), so they run on plain threads, one parameter each, in waves of at most as many as torch has intra-op
  // threads, each thread drawing into a buffer of its own reused across waves (host memory: the wave's full tensors
  // in fp32, capped at ~8 GiB); parallel_chunks, not at::parallel_for, which is serial in GPU builds. This thread
  // then slices, casts and copies each parameter (torch parallelises those copies itself, and does host -> device
  // copies). The same values at any thread count.
  const std::vector<ParamSpec> specs = m.param_specs();
  const int64_t n = static_cast<int64_t>(specs.size());
  int64_t largest = 1;
  for (const auto& s : specs) largest = std::max<int64_t>(largest, c10::multiply_integers(s.full_shape));
  const int64_t cap = std::max<int64_t>(1, (int64_t(8) << 30) / (4 * largest));
  const int64_t wave = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), cap));
  std::vector<at::Tensor> raw(wave), full(wave);
  for (int64_t w0 = 0; w0 < n; w0 += wave) {
    const int64_t w1 = std::min(n, w0 + wave);
    parallel_chunks(w0, w1, 1, static_cast<int>(wave), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) full[i - w0] = draw_full(specs[i], seed, std, raw[i - w0]);
    });
    for (int64_t i = w0; i < w1; ++i) {
      specs[i].param.copy_(specs[i].slice_of(full[i - w0]));
      full[i - w0] = at::Tensor();
    }
  }
}

int64_t decode_chunk_cost(const LlamaConfig& cfg, int64_t tp, at::ScalarType dtype, at::Device device,
                          bool shared_prefix) {
  const double kernels = shared_prefix ? 9 : 2;
  const bool gpu = !device.is_cpu();
  const double launch_s = gpu ? 4e-6 : 10e-6, bytes_per_s = gpu ? 3e12 : 1e10;
  // One position of one layer on one tp rank, keys and values.
  const double bytes = double(kv_cache_bytes_per_position(cfg, c10::elementSize(dtype))) /
                       double(cfg.num_hidden_layers * std::max<int64_t>(tp, 1));
  return std::max<int64_t>(1, std::llround(kernels * launch_s * bytes_per_s / bytes));
}

at::ScalarType resolve_dtype(const std::string& name, at::Device device) {
  if (name == "auto") return device.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (name == "fp32" || name == "float32") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16") {
    // libtorch's CPU kernels lack fp16 for layer norm (and matmul is slow): a GPU precision only.
    CG_CHECK(device.is_cuda(), "model.dtype={} needs a GPU (model.device=cuda); on {} use fp32 (or bf16)", name,
             device.str());
    return at::kHalf;
  }
  CG_FAIL("model.dtype {} is unknown; use auto, fp32, bf16 or fp16", name);
}

}  // namespace cg::model
