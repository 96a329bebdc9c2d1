// The tensor-parallel plan for LLaMA, applied to a model built at its tp-local sizes (model/ knows no comms):
// q, k, v, gate, up column-parallel (pre = copy_to_tp); o, down row-parallel (post = reduce_from_tp);
// embed_tokens vocab-parallel; lm_head column-parallel on the vocabulary, giving local logits (never gathered);
// the loss is vocab_parallel_cross_entropy. Also the one place the build order is written down.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>

#include "dist/parallel_dims.h"
#include "model/llama.h"

namespace cg::dist {

// Install the TP hooks on every Linear and the embedding. The model must have been built with
// TpShape{dims.tp_rank, dims.tp}; identity (nothing installed) at tp 1.
void apply_tensor_parallel(model::Llama& model, const ParallelDims& dims);

// The model's TpShape for this grid position.
inline model::TpShape tp_shape(const ParallelDims& dims) { return {dims.tp_rank, dims.tp}; }

// Per-token cross-entropy (B, T) from logits_local (B, T, V_local) and global targets (B, T) (kIgnoreIndex = -100
// ignored, 0 loss), over the model's vocabulary shard; collective over tp.
at::Tensor token_cross_entropy(const model::LlamaImpl& model, const at::Tensor& logits_local, const at::Tensor& targets,
                               const ParallelDims& dims);

struct ModelBuildOptions {
  model::LlamaConfig config;
  std::string hf_dir;                    // base weights; empty: random init from init_seed (tiny/test sizes)
  std::string config_from = "the model config";  // where `config` came from, for hf_dir/config.json's mismatch error
  uint64_t init_seed = 1234;
  at::ScalarType dtype = at::kFloat;     // base weights (model::resolve_dtype)
  at::Device device = at::Device(at::kCPU);
  bool activation_checkpointing = false;
  bool train_base = false;               // true: full fine-tuning; false: base weights frozen (LoRA)
};

// The fixed build order, written once: build (tp-local sizes) -> load base weights (this rank's slices) or random
// init -> apply TP -> inject LoRA (callback, may be empty) -> freeze the base. The caller builds the optimizer next.
model::Llama build_llama(const ModelBuildOptions& options, const ParallelDims& dims,
                         const std::function<void(model::Llama&)>& inject_lora = {});

}  // namespace cg::dist
