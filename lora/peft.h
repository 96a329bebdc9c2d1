// PEFT adapters: write and read Hugging Face PEFT LoRA adapters (what `PeftModel.from_pretrained` loads).
//
//   <dir>/adapter_model.safetensors  full (un-sharded) factors, metadata {"format": "pt"}:
//       base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight   (r, in)
//       base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight   (out, r)
//       base_model.model.model.layers.{i}.mlp.down_proj.lora_A.weight ...  (mlp modules likewise)
//   <dir>/adapter_config.json        peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, bias "none",
//                                    task_type "CAUSAL_LM", base_model_name_or_path, fan_in_fan_out false,
//                                    use_rslora, inference_mode true (+ PEFT's other keys at their defaults).
// In memory, factors are keyed by our module names without the PEFT prefix: "model.layers.0.self_attn.q_proj.
// lora_A.weight" (the keys of LoraSet::gather_full / load_full). Reading returns fp32 tensors whatever the file dtype.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cg {
struct LoraConfig;
}

namespace cg::lora {

struct PeftConfig {
  int64_t r = 8;
  double lora_alpha = 32;
  double lora_dropout = 0.0;
  std::vector<std::string> target_modules;  // concrete module names (all-linear is expanded on write)
  bool use_rslora = false;
  std::string base_model_name_or_path;      // HF id or folder of the base model
  std::string bias = "none";                // only "none" is supported
  std::string task_type = "CAUSAL_LM";

  double scale() const;  // lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
};

// From the config tree (lora.r, lora.alpha, lora.dropout, lora.targets, lora.rslora); all-linear is expanded.
PeftConfig peft_config_from(const LoraConfig& lora, const std::string& base_model_name_or_path);

struct PeftAdapter {
  PeftConfig config;
  std::map<std::string, at::Tensor> factors;  // "model.layers.0.self_attn.q_proj.lora_A.weight" -> fp32 CPU tensor
  // Whole "model.embed_tokens.weight" / "lm_head.weight", in the file's dtype, when PEFT saved them too (it does
  // after a vocabulary resize, save_embedding_layers): never applied; check_embedding_layers says if they may be
  // ignored.
  std::map<std::string, at::Tensor> embedding_layers;
  std::vector<std::string> ignored_targets;   // target_modules entries naming no LLaMA module (PEFT ignores them)
  // target_modules entries with no factors in adapter_model.safetensors, left out of config.target_modules: PEFT
  // loads such an adapter with a missing-keys warning, those modules keeping lora_B = 0 (no update), so they change
  // nothing here either.
  std::vector<std::string> untrained_targets;
  // adapter_model.safetensors keys of factors whose module exclude_modules names, left out of `factors`: PEFT gives
  // an excluded module no LoRA layer, so its loader drops them (unexpected keys of a non-strict load).
  std::vector<std::string> excluded_factors;
};

// The module kinds the factors adapt ("q_proj", "v_proj", ...), sorted: what the tensors say, whatever
// adapter_config.json's target_modules says.
std::vector<std::string> adapted_modules(const PeftAdapter& a);

// "" when every module kind `a` adapts has factors on all num_layers layers; else the refusal, naming `what`
// (adapters on some layers only: layers_to_transform, exclude_modules or target_modules naming some layers).
std::string some_layers_only(const PeftAdapter& a, int64_t num_layers, const std::string& what);
// Warns (naming `what`) of the adapter's ignored_targets, untrained_targets and excluded_factors, if any.
void warn_ignored_targets(const PeftAdapter& a, const std::string& what);
// What cgsample and cgtrain (lora.init_adapter) do with an adapter just read, before its factors are used: its saved
// embedding layers checked against the base hf_dir (check_embedding_layers, which throws), then dropped (never
// applied: their memory back before the model is built); with `log` (rank 0), the info line and the warning of
// ignored targets, both naming `what` ("lora.init_adapter DIR", "PEFT adapter DIR"). `dir`: the adapter folder.
void check_adapter_against_base(PeftAdapter& a, const std::string& dir, const std::string& hf_dir,
                                const std::string& what, bool log);

// "model.layers.0.self_attn.q_proj.lora_A.weight" <-> "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
std::string to_peft_name(const std::string& name);
std::string from_peft_name(const std::string& peft_name);  // throws unless it has the prefix

// Writes both files into dir (created). factors: full tensors keyed by our names, any device/dtype; every lora_A
// needs its lora_B, A (r, in), B (out, r) with r == cfg.r. dtype: at::kFloat | at::kBFloat16 | at::kHalf.
void write_peft_adapter(const std::string& dir, const PeftConfig& cfg, const std::map<std::string, at::Tensor>& factors,
                        at::ScalarType dtype = at::kFloat);

// Reads a PEFT LoRA adapter folder (ours or one saved by PEFT). Errors name the file, what is unsupported
// (adapter_model.bin only, DoRA, QALoRA, rank/alpha patterns that change r or alpha, fan_in_fan_out, bias != none,
// modules_to_save) and what to do. Tensors of a LlamaModel adapter (base_model.model.layers.*) are read as
// LlamaForCausalLM's. target_modules: list entries naming no LLaMA module are left out (ignored_targets), and so are
// those the tensors hold no factors for (untrained_targets) unless the tensors adapt a module the list lacks (the two
// files disagree: the caller's load refuses it); with a regex, dotted entries or exclude_modules, the module kinds the
// tensors hold. exclude_modules is matched as PEFT
// does (a string: a regular expression over the whole module path; a list: an entry equal to the path or ending it
// after a dot), and the factors of modules it names are left out (excluded_factors), as PEFT's loader drops them.
PeftAdapter read_peft_adapter(const std::string& dir);
// read_peft_adapter's first checks alone: `dir` holds adapter_config.json and adapter_model.safetensors (errors name
// what the folder is instead: a cgtrain run, a cgexport --merge folder, a model). For cgtrain to refuse a wrong
// lora.init_adapter before it loads a base model.
void check_peft_adapter_folder(const std::string& dir);

// An adapter's saved embedding layers against its base (HF folder hf_dir, "" for a random init): "" when it saved
// none; an info line (for the caller to prefix with the adapter's name) when their first rows (the base's
// vocabulary) equal the base's, saying whether rows were appended (the reference's [PAD]) or none (saved with
// save_embedding_layers=True): cgtrain then ignores them. Throws, saying what is unsupported (trained embedding
// layers) and what to do, when they differ or there is no base to compare with. `dir`: the adapter, for messages.
std::string check_embedding_layers(const PeftAdapter& a, const std::string& dir, const std::string& hf_dir);

// "fp32" | "bf16" | "fp16" -> scalar type; errors list the allowed names.
at::ScalarType peft_dtype(const std::string& name);

// W + scale · B · A, computed in fp32 and returned in W's dtype. W (out, in), A (r, in), B (out, r).
at::Tensor merge_lora(const at::Tensor& W, const at::Tensor& A, const at::Tensor& B, double scale);

}  // namespace cg::lora
