// A cgtrain run folder made by hand for cgexport tests, without training: an HF base (random weights), config.yaml,
// model_config.json and one complete checkpoint (checkpoint_dir's save_checkpoint) whose rank file holds LoRA factors
// (or, in full mode, every base weight) in the format trainer/checkpoint.h documents, at tp 1.
#pragma once
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "model/hf_checkpoint.h"
#include "model/llama_config.h"
#include "model/safetensors.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/config.h"

namespace cg::test {

struct ExportRun {
  std::string dir;      // run_dir
  std::string hf_dir;   // base; "" for random init
  std::map<std::string, at::Tensor> params;  // what the checkpoint holds (full tensors, fp32)
  double scale = 0;     // lora alpha / r
};

// The base: every tensor llama_tensor_shapes lists, normal(0, 0.05) (norms around 1), in `dtype`, written with
// write_hf_checkpoint (shards of max_shard bytes).
inline void write_random_hf(const std::string& dir, const model::LlamaConfig& lc, at::ScalarType dtype,
                            int64_t max_shard, uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& [name, shape] : model::llama_tensor_shapes(lc)) {
    at::Tensor x = at::randn(shape, g) * 0.05;
    if (shape.size() == 1) x += 1;
    t.emplace_back(name, x.to(dtype));
  }
  model::write_hf_checkpoint(dir, t, lc, max_shard);
}

// Writes run_dir: config.yaml (overrides on the defaults), model_config.json, checkpoints/step-5 (manifest and all).
// LoRA (lora.enabled true in overrides' result): A (r, in), B (out, r) random for every targeted linear; full mode:
// every base tensor random.
inline ExportRun make_export_run(const std::string& run_dir, const model::LlamaConfig& lc, const std::string& hf_dir,
                                 const std::vector<std::string>& overrides, uint64_t seed = 11) {
  namespace fs = std::filesystem;
  fs::create_directories(run_dir);
  std::vector<std::string> ov = {"model.hf_dir=" + hf_dir, "data.shards_dir=" + run_dir + "/no_shards"};
  ov.insert(ov.end(), overrides.begin(), overrides.end());
  const Config cfg = load_config_string("", ov);
  std::ofstream(run_dir + "/config.yaml") << to_yaml(cfg);
  std::ofstream(run_dir + "/model_config.json") << lc.to_hf_json();

  ExportRun run{run_dir, hf_dir, {}, 0};
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::string> targets = cfg.lora.targets;
  if (targets.size() == 1 && targets[0] == "all-linear")
    targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  for (const auto& [name, shape] : model::llama_tensor_shapes(lc)) {
    if (!cfg.lora.enabled) {
      run.params[name] = at::randn(shape, g);
      continue;
    }
    for (const auto& tgt : targets) {
      const std::string suffix = "." + tgt + ".weight";
      if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const std::string mod = name.substr(0, name.size() - std::string(".weight").size());
      run.params[mod + ".lora_A.weight"] = at::randn({cfg.lora.r, shape[1]}, g) * 0.1;
      run.params[mod + ".lora_B.weight"] = at::randn({shape[0], cfg.lora.r}, g) * 0.1;
    }
  }
  run.scale = cfg.lora.alpha / double(cfg.lora.r);

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json shards = nlohmann::json::object();
  for (const auto& [name, t] : run.params) {
    tensors.emplace_back("param/" + name, t);
    shards[name] = {{"dim", -1}, {"full_shape", t.sizes().vec()}, {"start", 0}, {"len", 0}};
  }
  std::map<std::string, std::string> md = {
      {"format", kRankFileFormat}, {"train_state", "{}"}, {"shards", shards.dump()},
      {"layout", nlohmann::json{{"tp", 1}, {"dp", 1}, {"tp_rank", 0}, {"dp_rank", 0}}.dump()},
      {"config_hash", config_hash(cfg)}, {"mode", cfg.lora.enabled ? "lora" : "full"}};
  save_checkpoint(
      run_dir, 5, 0, {1, 1, 1}, config_hash(cfg),
      [&](const std::string& d) { model::write_safetensors(d + "/" + rank_file_name(0), tensors, md); },
      [](bool ok) { return ok; }, 1);
  return run;
}

}  // namespace cg::test
