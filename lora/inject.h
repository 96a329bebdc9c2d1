// LoRA injection: walk a model's model::Linear layers by HF name, attach a LoraAdapter (sharded like the layer) to
// each target through the layer's `delta` hook, freeze everything else, merge the adapters back into the weights.
// Order (fixed): build → load base weights → apply TP → inject LoRA → freeze → build optimizer.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lora/lora_linear.h"
#include "model/linear.h"
#include "model/llama.h"

namespace cg::lora {

// The module names LoRA may target (last component of the HF name). "all-linear" = all of them (PEFT: every linear
// but the output layer, lm_head).
const std::vector<std::string>& known_targets();
// True when `hf_name` ("model.layers.3.self_attn.q_proj") ends with one of `targets` (or targets = {"all-linear"}).
bool is_target(const std::string& hf_name, const std::vector<std::string>& targets);

struct LoraEntry {
  model::Linear linear;  // the frozen base layer
  LoraAdapter adapter;   // registered as its child module "lora"
};

// All adapters of one model, in model order.
class LoraSet {
 public:
  std::vector<LoraEntry> entries;
  DropoutGen dropout_gen;  // shared by every adapter: its state goes into checkpoints

  // lora_A then lora_B of every adapter, named "<hf_name>.lora_A.weight" / "<hf_name>.lora_B.weight", with their
  // tp layout (shard_dim -1: replicated) as model::ParamSpec, the same description the base parameters have.
  std::vector<model::ParamSpec> params() const;
  // Full (r, in) / (out, r) factors keyed by the names above, all-gathered over tp (collective over tp).
  std::map<std::string, at::Tensor> gather_full() const;
  // Load full factors keyed as above (e.g. from a PEFT adapter): every adapter must be present, except those of the
  // module kinds in `fresh` ("o_proj"), which keep their fresh init when `full` has neither factor; keeps this
  // rank's slices. Errors name the missing or extra keys, `source` (where the factors come from) and end with `fix`;
  // a factor of another shape (another r, or a layer of another base model) ends with `shape_fix` (empty: `fix`).
  void load_full(const std::map<std::string, at::Tensor>& full, const std::string& source = "the adapter",
                 const std::string& fix = "set lora.targets to what the adapter was trained with",
                 const std::string& shape_fix = "", const std::set<std::string>& fresh = {});
  const LoraEntry* find(const std::string& hf_name) const;
  size_t size() const { return entries.size(); }
};

// Attach an adapter to every target Linear under `model` (module names are walked; each Linear is matched by its
// hf_name). Adapters live on `device` in fp32; `tp` is the model's tp group. Throws when nothing matches or a target
// is unknown; errors name `targets_from`, the setting the targets came from.
LoraSet inject_lora(torch::nn::Module& model, const LoraSpec& spec, const std::vector<std::string>& targets,
                    const dist::CommPtr& tp, const c10::Device& device, DropoutGen dropout_gen,
                    const std::string& targets_from = "lora.targets");

// Freeze the base: requires_grad = false on every parameter of `model`, then true on the LoRA params of `lora`.
void freeze_base(torch::nn::Module& model, const LoraSet& lora);

// W_local += scale · B_local · A_local on every adapted layer (local, no collective), then detach the adapters
// (delta hook cleared). The model then computes what base + LoRA computed, with no LoRA in it.
void merge_lora(LoraSet& lora);

}  // namespace cg::lora
