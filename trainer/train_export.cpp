// export_run: checkpoint rank files → full tensors → PEFT adapter and/or merged HF checkpoint.
#include "trainer/train_export.h"

#include <torch/torch.h>

#include <filesystem>

#include "common/error.h"
#include <fstream>
#include <sstream>
#include "lora/lora_linear.h"
#include "lora/peft.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/config.h"
#include "trainer/train_loop.h"
#include "trainer/train_model.h"

namespace cg {

namespace fs = std::filesystem;

namespace {

// The base model's full tensors in checkpoint order: the HF folder's, or the run's random init (tp 1, same numbers).
std::vector<std::pair<std::string, at::Tensor>> base_tensors(const Config& cfg, const model::LlamaConfig& lc) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  model::Llama base(lc, model::TpShape{}, at::TensorOptions().dtype(at::kFloat));
  if (cfg.model.hf_dir.empty()) {
    model::init_weights(*base, cfg.model.init_seed);
    for (const auto& p : base->param_specs()) out.emplace_back(p.name, p.param.detach());
  } else {
    model::HfCheckpoint ck(cfg.model.hf_dir);
    for (const auto& p : base->param_specs()) out.emplace_back(p.name, ck.read(p.name));
  }
  return out;
}

}  // namespace

std::string export_run(const ExportOptions& o) {
  CG_CHECK(!o.out.empty(), "cgexport: give --out DIR");
  const Config cfg = load_config(o.run_dir + "/config.yaml", {});
  CheckpointInfo ck;
  if (o.step >= 0) {
    ck.step = o.step;
    ck.path = fmt::format("{}/checkpoints/step-{}", o.run_dir, o.step);
    const std::string why = verify_checkpoint(ck.path, &ck.manifest);
    CG_CHECK(why.empty(), "{} is not a usable checkpoint: {}", ck.path, why);
  } else {
    auto found = find_latest_complete(o.run_dir);
    CG_CHECK(found.has_value(), "{} has no complete checkpoint under checkpoints/; train first", o.run_dir);
    ck = *found;
  }
  const at::ScalarType dtype = lora::peft_dtype(o.dtype);
  const std::map<std::string, at::Tensor> full = read_full_params(ck);
  std::ifstream mc(o.run_dir + "/model_config.json");
  CG_CHECK(mc.good(), "{}/model_config.json is missing (written by cgtrain at start)", o.run_dir);
  std::stringstream text;
  text << mc.rdbuf();
  const model::LlamaConfig lc = model::llama_config_from_json(text.str());
  fs::create_directories(o.out);
  const std::string tok_path = tokenizer_path(cfg.data);
  if (fs::exists(tok_path)) fs::copy_file(tok_path, o.out + "/tokenizer.model", fs::copy_options::overwrite_existing);

  if (!cfg.lora.enabled) {  // full-parameter run: the checkpoint holds the whole model
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (auto& [name, t] : base_tensors(cfg, lc)) {
      auto it = full.find(name);
      CG_CHECK(it != full.end(), "{}: no {} in the checkpoint", ck.path, name);
      tensors.emplace_back(name, it->second.to(dtype));
    }
    model::write_hf_checkpoint(o.out, tensors, lc);
    return ck.path;
  }

  const std::string base_name = cfg.model.hf_dir.empty() ? "cgtrain-" + cfg.model.flavor : cfg.model.hf_dir;
  const lora::PeftConfig pc = lora::peft_config_from(cfg.lora, base_name);
  lora::write_peft_adapter(o.merge ? o.out + "/adapter" : o.out, pc, full, dtype);
  if (o.merge) {
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (auto& [name, W] : base_tensors(cfg, lc)) {
      const std::string mod = name.substr(0, name.size() - std::string(".weight").size());
      auto ia = full.find(mod + ".lora_A.weight"), ib = full.find(mod + ".lora_B.weight");
      at::Tensor w = ia == full.end() ? W : lora::merge_lora(W, ia->second, ib->second, pc.scale());
      tensors.emplace_back(name, w.to(dtype));
    }
    model::write_hf_checkpoint(o.out, tensors, lc);
  }
  return ck.path;
}

}  // namespace cg
