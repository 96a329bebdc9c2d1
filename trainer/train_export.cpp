// export_run: checkpoint rank files → full tensors → PEFT adapter and/or merged HF checkpoint.
// The HF checkpoint is streamed: one base tensor is read (mmap), merged in fp32, cast, written and dropped at a time,
// so exporting a 70B merge needs a few times its largest tensor in memory, not the model.
#include "trainer/train_export.h"

#include <torch/torch.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
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

// The base model's full tensors by name, one at a time, in the file's dtype: read from the HF folder (checked against
// the shapes model_config.json implies first), or the run's random init (tp 1, same numbers as training; this builds
// the whole model, which only tiny demo models use).
class BaseWeights {
 public:
  BaseWeights(const Config& cfg, const model::LlamaConfig& lc, const model::NamedShapes& shapes) {
    if (cfg.model.hf_dir.empty()) {
      model::Llama base(lc, model::TpShape{}, at::TensorOptions().dtype(at::kFloat));
      model::init_weights(*base, cfg.model.init_seed);
      for (const auto& p : base->param_specs()) init_[p.name] = p.param.detach();
    } else {
      hf_.emplace(cfg.model.hf_dir);
      model::check_hf_tensors(*hf_, shapes);
    }
  }
  // Read once; the tensor's pages (mmap) or its init copy are released.
  at::Tensor take(const std::string& name) {
    if (!hf_) {
      auto it = init_.find(name);
      CG_CHECK(it != init_.end(), "random init has no {}", name);
      at::Tensor t = it->second;
      init_.erase(it);
      return t;
    }
    at::Tensor t = hf_->read(name);
    hf_->drop_pages(name);
    return t;
  }

 private:
  std::optional<model::HfCheckpoint> hf_;
  std::map<std::string, at::Tensor> init_;
};

// HF checkpoint of the tensors `shapes` lists, in that order and in dtype: tensor(name) gives each (any dtype), it is
// cast, written and dropped before the next is asked for.
void stream_hf_checkpoint(const std::string& dir, const model::NamedShapes& shapes, at::ScalarType dtype,
                          const model::LlamaConfig& lc, int64_t max_shard_bytes,
                          const std::function<at::Tensor(const std::string&)>& tensor) {
  std::vector<model::TensorEntry> plan;
  for (const auto& [name, shape] : shapes) plan.push_back({name, dtype, shape});
  model::HfCheckpointWriter w(dir, std::move(plan), lc, max_shard_bytes);
  for (const auto& [name, shape] : shapes) {
    w.write(name, tensor(name).to(dtype));
#ifdef __GLIBC__
    // Freed tensors of a few MB stay in glibc's heap, fragmented, and the resident set would creep up tensor by
    // tensor; hand the free pages back (tensors over 32 MB, most of a 7B-70B model, are mmapped and return anyway).
    ::malloc_trim(0);
#endif
  }
  w.finish();
}

}  // namespace

std::string export_run(const ExportOptions& o) {
  CG_CHECK(!o.out.empty(), "cgexport: give --out DIR");
  CG_CHECK(std::filesystem::is_regular_file(o.run_dir + "/config.yaml"), "cgexport: {} is not a cgtrain run folder "
           "(it has no config.yaml); give the train.run_dir of a training run, e.g. runs/tiny", o.run_dir);
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
  // The config the checkpoint was trained under (LoRA scale, targets, base): its own copy, else (checkpoints of
  // older builds) the run's, which a resume with other settings may have rewritten.
  const bool own = std::filesystem::is_regular_file(ck.path + "/config.yaml");
  const Config cfg = load_config(own ? ck.path + "/config.yaml" : o.run_dir + "/config.yaml", {});
  if (const std::string hash = config_hash(cfg); !own && hash != ck.manifest.config_hash)
    spdlog::warn("{} was written under another config than {}/config.yaml (hash {} vs {}); exporting with the "
                 "latter's lora.* and model.* settings", ck.path, o.run_dir, ck.manifest.config_hash, hash);
  const at::ScalarType dtype = lora::peft_dtype(o.dtype);
  std::map<std::string, at::Tensor> full = read_full_params(ck);  // LoRA factors (small), or a full run's weights
  std::ifstream mc(o.run_dir + "/model_config.json");
  CG_CHECK(mc.good(), "{}/model_config.json is missing (written by cgtrain at start)", o.run_dir);
  std::stringstream text;
  text << mc.rdbuf();
  const model::LlamaConfig lc = model::llama_config_from_json(text.str());
  const model::NamedShapes shapes = model::llama_tensor_shapes(lc);
  if (!cfg.model.hf_dir.empty() && fs::exists(o.out)) {
    std::error_code ec;
    CG_CHECK(!fs::equivalent(o.out, cfg.model.hf_dir, ec), "cgexport: --out {} is the base model folder "
             "(model.hf_dir); choose another output folder", o.out);
  }
  fs::create_directories(o.out);
  const std::string tok_path = tokenizer_path(cfg.data);
  if (fs::exists(tok_path)) fs::copy_file(tok_path, o.out + "/tokenizer.model", fs::copy_options::overwrite_existing);

  if (!cfg.lora.enabled) {  // full-parameter run: the checkpoint holds the whole model (read whole: tiny models)
    stream_hf_checkpoint(o.out, shapes, dtype, lc, o.max_shard_bytes, [&](const std::string& name) {
      auto it = full.find(name);
      CG_CHECK(it != full.end(), "{}: no {} in the checkpoint", ck.path, name);
      at::Tensor t = it->second;
      full.erase(it);
      return t;
    });
    return ck.path;
  }

  const std::string base_name = cfg.model.hf_dir.empty() ? "cgtrain-" + cfg.model.flavor : cfg.model.hf_dir;
  const lora::PeftConfig pc = lora::peft_config_from(cfg.lora, base_name);
  std::optional<BaseWeights> base;
  if (o.merge) base.emplace(cfg, lc, shapes);  // checks the base against model_config.json before writing anything
  lora::write_peft_adapter(o.merge ? o.out + "/adapter" : o.out, pc, full, dtype);
  if (o.merge) {
    std::set<std::string> merged;
    stream_hf_checkpoint(o.out, shapes, dtype, lc, o.max_shard_bytes, [&](const std::string& name) {
      at::Tensor W = base->take(name);  // (out, in) in the file's dtype
      const std::string mod = name.substr(0, name.size() - std::string(".weight").size());
      auto ia = full.find(mod + ".lora_A.weight"), ib = full.find(mod + ".lora_B.weight");
      if (ia == full.end()) return W;
      CG_CHECK(ib != full.end(), "{}: {} has lora_A but no lora_B", ck.path, mod);
      merged.insert(ia->first), merged.insert(ib->first);
      return lora::merge_lora(W.to(at::kFloat), ia->second, ib->second, pc.scale());  // fp32, cast by the writer
    });
    for (const auto& [name, t] : full)
      CG_CHECK(merged.count(name), "{}: LoRA factor {} has no base weight in the model of model_config.json",
               ck.path, name);
    spdlog::info("merged {} LoRA pairs into {} base tensors", merged.size() / 2, shapes.size());
  }
  return ck.path;
}

}  // namespace cg
