// TrainModel: the model a training run optimises, built in the one fixed order (dist::build_llama)
//   build (tp-local sizes) → load base weights (this rank's slices, or random init) → apply TP → inject LoRA
//   → freeze → (the caller builds the optimizer over `trainable`: make_optimizer).
// With lora.enabled = false every base parameter is trainable (full-parameter mode, small models from scratch).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "dist/parallel_dims.h"
#include "dist/runtime.h"
#include "lora/inject.h"
#include "model/llama.h"
#include "trainer/adamw.h"
#include "trainer/config.h"

namespace cg {

struct TrainModel {
  model::Llama llama{nullptr};
  lora::LoraSet lora;                        // empty in full-parameter mode
  std::vector<model::ParamSpec> trainable;   // LoRA factors, or every base parameter; with their tp layout
  bool full_param = false;
  at::Device device = at::kCPU;
  std::string base_sample;                   // model::BaseSample JSON of model.hf_dir's weights; "" for a random base

  int64_t vocab_start() const;               // first vocabulary id of this rank's logits columns
};

// "auto" (cuda when available) | "cpu" | "cuda" -> this rank's device (cuda: dist::gpu_for_local_rank's GPU).
at::Device resolve_device(const std::string& name, const dist::Runtime& rt);

// The LLaMA shape for this config: model.hf_dir's config.json, else model.flavor with `vocab_size` (the tokenizer's;
// <= 0 keeps the flavor's).
model::LlamaConfig train_llama_config(const Config& cfg, int64_t vocab_size);

// What full-parameter training (lora.enabled=false) cannot train, refused before any weight is read (the launch, and
// cgtrain --plan): weights of another dtype than fp32 (`dtype`, resolved), a base whose lm_head is tied to
// embed_tokens.
void check_full_param_base(const Config& cfg, at::ScalarType dtype);

// Collective over all ranks: throws on every rank, naming the settings, when a rank runs another tool or its resolved
// config (the YAML file and overrides it was started with) or model shape (model.hf_dir's config.json as that node reads it) is not rank
// 0's. Ranks started apart would otherwise crash inside a collective, hang, or train replicas that drift apart.
void check_ranks_agree(const Config& cfg, const std::string& tool);  // tool: "cgtrain", "cgsample", ...
void check_ranks_agree(const model::LlamaConfig& lc);
// The base model's own tokenizer (hf_dir's tokenizer.model, else its tokenizer.json's vocabulary), when its folder
// has one, against the tokenizer `tok_path` (`whose`: "the shards' tokenizer", ...): one of another vocabulary would
// feed the base other ids for the same text. Throws, ending with fix(the base's tokenizer file); a handful of
// differing pieces is warned about. Without a tokenizer in hf_dir: a warning when `warn_if_none`.
void check_base_tokenizer(const std::string& hf_dir, const std::string& tok_path, const std::string& whose,
                          const std::function<std::string(const std::string&)>& fix, bool warn_if_none = true);
// model::sample_base(hf_dir) as JSON, the same on every rank or an error on every rank naming the first whose copy
// of the base (under the same path on its node) holds other weights. "" for an empty hf_dir. Collective. Every rank
// reads the same folder at the same point, so a caller runs it under every_rank_alike (common/input_error.h) for a
// folder that is not there, or another copy, to be said once (cgtrain's read_train_inputs, the sampler's
// check_base_folder).
std::string agreed_base_sample(const std::string& hf_dir);

// Builds the model on `device` in the fixed order above. lora.init_adapter (a PEFT folder) is loaded into the fresh
// adapters unless `resuming` (the checkpoint replaces them, and the folder need not exist any more). Collective over
// the world (the ranks' bases are compared: agreed_base_sample, unless the caller did and gives its result as
// `base_sample`) and tp (TP hooks, adapter loading).
TrainModel build_train_model(const Config& cfg, const dist::ParallelDims& dims, int64_t vocab_size,
                             const at::Device& device, bool resuming = false,
                             const std::string* base_sample = nullptr);

// AdamW over `trainable` (fp32 only): weight decay on matrices, none on norms and other 1-D tensors.
AdamW make_optimizer(const TrainModel& m, const TrainConfig& t);

}  // namespace cg
