// Llama: LLaMA-2 for causal LM written for one device, built at its tp-local sizes (TpShape: numbers only).
// Module and parameter names equal the HF checkpoint keys ("model.layers.0.self_attn.q_proj.weight", "lm_head.weight"),
// so loading needs no translation table. Parallelism is applied afterwards by dist::apply_tensor_parallel.
#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "model/decode_kernels.h"
#include "model/decoder_layer.h"
#include "model/embedding.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/llama_config.h"
#include "model/rms_norm.h"

namespace cg::model {

// The decoder stack: HF's LlamaModel, registered as "model".
class LlamaModelImpl : public torch::nn::Module {
 public:
  LlamaModelImpl(const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

// One base parameter and how this rank's tensor relates to the full (checkpoint) tensor.
struct ParamSpec {
  std::string name;                 // HF key, "model.layers.0.mlp.down_proj.weight"
  at::Tensor param;                 // this rank's parameter
  std::vector<int64_t> full_shape;  // the checkpoint's shape
  int64_t shard_dim = -1;           // -1: replicated; else the dim split over tp
  int64_t shard_start = 0;          // first full index along shard_dim held here
  int64_t shard_len = 0;            // full indices held here; the local size may be larger (zero vocab padding)
  ParallelStyle style = ParallelStyle::None;

  // This rank's local tensor cut from a full tensor: narrow along shard_dim, zero-pad vocab rows.
  at::Tensor slice_of(const at::Tensor& full) const;
};

// decode_step's attention split: at most this many chunks, each priced (decode_chunk_cost) as a number of cached
// positions read per layer.
constexpr int64_t kDecodeMaxChunks = 4;
// The default price when none is given.
constexpr int64_t kDecodeChunkCost = 1024;

// What one more attention chunk costs, in cached positions of one row read per layer: its extra kernels per layer
// (bench_sampler --profile: 9 with a shared prompt, 2 without) at a launch each (~4 us on a GPU, ~10 us for a CPU
// operator call), over the time one position's keys and values take to read (bytes per position per layer at
// ~3 TB/s on a GPU, ~10 GB/s on CPU). 7B bf16 on a GPU: ~6,600 positions with the shared prompt, ~1,500 without; the
// tiny flavor on CPU: ~880 / ~200. Estimates, to be checked against a GPU run (bench/gpu/sample_7b.sh).
int64_t decode_chunk_cost(const LlamaConfig& cfg, int64_t tp, at::ScalarType dtype, at::Device device,
                          bool shared_prefix);


class LlamaImpl : public torch::nn::Module {
 public:
  // options: dtype and device of the base weights (fp32 on CPU, bf16 on GPU). Weights are uninitialised until
  // init_weights or load_hf_weights. A vocabulary not divisible by tp is padded (and logged).
  explicit LlamaImpl(const LlamaConfig& cfg, TpShape tp = {}, const at::TensorOptions& options = {});

  // tokens (B, T) int64 at positions [start_pos, start_pos + T) -> logits_local (B, T, vocab_local) fp32.
  // Padded vocabulary columns are -inf. With a cache, keys/values are stored and earlier ones attended to.
  at::Tensor forward(const at::Tensor& tokens, int64_t start_pos = 0, KVCache* cache = nullptr);

  // One decode step of B sequences each at its own position (continuous batching): tokens (B, 1) int64, row b at
  // position positions[b], its key/value written there in row b of `cache` (batch B) and positions [0, positions[b]]
  // attended to -> logits_local (B, 1, vocab_local) fp32. Equals forward(tokens[b], positions[b], cache row b) per row.
  // Attention runs over up to max_chunks contiguous row ranges (decode_chunks): rows kept in order of position read
  // few positions they do not attend to.
  // prefix (optional, batch 1): the keys/values of tokens every row starts with, positions [0, prefix->max_len);
  // the rows' own cache entries there are then not read.
  // positions_read (optional): set to the cached positions the step's attention reads per layer (the shared prefix
  // once per chunk plus rows x span), for GenerationStats. With one_pass_decode() there are no chunks: every row
  // reads exactly [0, positions[b]] (max_chunks and chunk_cost unused).
  at::Tensor decode_step(const at::Tensor& tokens, const std::vector<int64_t>& positions, KVCache* cache,
                         const KVCache* prefix = nullptr, int64_t max_chunks = kDecodeMaxChunks,
                         int64_t chunk_cost = kDecodeChunkCost, int64_t* positions_read = nullptr);

  // decode_step without reading anything on the host, so that it can be captured as a CUDA graph (sampler/
  // decode_graph.h): positions (B) int64 on the model's device, one attention chunk of `span` positions past the
  // shared prefix for every row (span >= 1 + the largest position - prefix, which the caller checks); masks, RoPE
  // tables and the cache writes are computed on the device. Same logits as decode_step.
  at::Tensor decode_step_on_device(const at::Tensor& tokens, const at::Tensor& positions, int64_t span,
                                   KVCache* cache, const KVCache* prefix = nullptr);

  // A zeroed cache for `batch` sequences of up to `max_len` positions, in the model's dtype and device.
  KVCache make_cache(int64_t batch, int64_t max_len) const;

  // Every Linear of the decoder (q,k,v,o,gate,up,down per layer; not lm_head), for LoRA injection and the TP plan.
  std::vector<Linear> linears() const;
  // Every base parameter (embed_tokens, layers, norm, lm_head) with its sharding, in checkpoint order.
  std::vector<ParamSpec> param_specs() const;
  // Inference only (after LoRA is merged; cgsample / cgeval's model): each layer's q/k/v and gate/up projections
  // fused into one matmul each and the norms computed in fewer kernels (DecoderLayer::fuse_for_inference,
  // RMSNorm::forward_fused): on a GPU a decode step is mostly kernel launches (bench_sampler --profile counts them).
  // Same results (bf16 to the last bit: the norms round once, after their weight); parameters stay the same tensors
  // (views). Fails with a LoRA hook present.
  void fuse_for_inference();
  // Whether decode steps take the one-pass attention (decode_kernels, resolved for this model's device).
  bool one_pass_decode() const;
  // Which decoding kernels to use (default Auto); passed on to the layers' norms and MLPs.
  void set_decode_kernels(DecodeKernels mode);
  DecodeKernels decode_kernels() const { return decode_kernels_; }
  // Base parameters trainable (full fine-tuning) or frozen (LoRA). Hook parameters are untouched.
  void set_base_trainable(bool trainable);

  const LlamaConfig& config() const { return cfg_; }
  TpShape tp() const { return tp_; }
  at::ScalarType dtype() const { return lm_head->weight.scalar_type(); }
  at::Device device() const { return lm_head->weight.device(); }

  LlamaModel model{nullptr};
  Linear lm_head{nullptr};  // (vocab_local, d): column-parallel on the (padded) vocabulary
  bool activation_checkpointing = false;  // recompute each decoder layer in backward (training only)
  // Generators that hooks draw from (LoRA dropout's): rewound for the recompute so it draws the same masks. The
  // default CPU/device generators are always handled.
  std::vector<at::Generator> recompute_generators;

 private:
  // decode_step's work once the rows' positions (on the device) and attention chunks are planned: masks, RoPE
  // tables, the layers, the logits.
  at::Tensor decode_rows(const at::Tensor& tokens, RowPositions& rows, KVCache* cache, const KVCache* prefix);
  // final norm (of h + residual after fuse_for_inference), lm_head, padded vocabulary -inf
  at::Tensor logits_of(const at::Tensor& h, const at::Tensor& residual = {});

  LlamaConfig cfg_;
  TpShape tp_;
  bool fused_ = false;  // fuse_for_inference: the final norm through RMSNorm::forward_fused
  DecodeKernels decode_kernels_ = DecodeKernels::Auto;
};
TORCH_MODULE(Llama);

// Random initialisation, identical full model for any tp: each parameter is drawn in full (normal(0, std); norms 1)
// from a CPU generator seeded by (seed, hash(name)) and then sliced. Fine for tiny/test sizes; real 7B-70B runs load
// weights instead (drawing the full 70B tensors on every rank would be slow).
void init_weights(LlamaImpl& model, uint64_t seed, double std = 0.02);

// Stable 64-bit FNV-1a of a name (seeds, hashes that must not change between builds).
uint64_t stable_hash(const std::string& s);

// "fp32" | "bf16" | "fp16" | "auto" (bf16 on cuda, fp32 on cpu) -> dtype; errors list the choices.
at::ScalarType resolve_dtype(const std::string& name, at::Device device);

}  // namespace cg::model
