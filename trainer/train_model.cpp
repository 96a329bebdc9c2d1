// TrainModel: build → load → TP → LoRA → freeze, in that order and nowhere else.
#include "trainer/train_model.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <spdlog/fmt/ranges.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "common/error.h"
#include "common/log.h"
#include "common/sha256.h"
#include "data/sp_model.h"
#include "data/tokenizer.h"
#include "dist/nccl_comm.h"
#include "dist/parallel_dims.h"
#include "dist/runtime.h"
#include "dist/tp_plan.h"
#include "lora/peft.h"
#include "model/base_sample.h"
#include "model/llama_config.h"
#include "trainer/train_export.h"

namespace cg {

namespace fs = std::filesystem;

int64_t TrainModel::vocab_start() const { return llama->model->embed_tokens->vocab_start; }

at::Device resolve_device(const std::string& name, const dist::Runtime& rt) {
  if (name == "cpu") return at::kCPU;
  const bool have_cuda = torch::cuda::is_available();
  if (name == "auto" && !have_cuda) return at::kCPU;
  CG_CHECK(name == "auto" || name == "cuda", "model.device {} is unknown; use auto, cpu or cuda", name);
  CG_CHECK(have_cuda, "model.device=cuda but this libtorch sees no GPU; set model.device=cpu (and parallel.backend=mpi or auto "
           "where it is nccl)");
  const int gpu = dist::gpu_for_local_rank(rt.local_rank, rt.local_size, int(torch::cuda::device_count()));
  dist::check_node_gpus_distinct(dist::cuda_device_pci_bus_id(gpu));  // collective over the node's ranks
  const at::Device d(at::kCUDA, c10::DeviceIndex(gpu));
  // This rank's GPU becomes current with every backend (NCCL's setup does it again): what follows the current
  // device (pinned-memory contexts, synchronize(), kernels launched without a guard) stays on it instead of GPU 0.
  c10::impl::getDeviceGuardImpl(at::kCUDA)->setDevice(d);
  return d;
}

void check_ranks_agree(const Config& cfg, const std::string& tool) {
  // The tool's name first: ranks of one job running different tools would wait in different collectives forever.
  dist::check_same_as_rank0(tool + "\n" + to_yaml(cfg), "config", [](const std::string& first, const std::string& mine) {
    const size_t a = first.find('\n'), b = mine.find('\n');
    if (first.substr(0, a) != mine.substr(0, b))
      return fmt::format("rank 0 runs {}, this rank {}: a job runs one tool", first.substr(0, a), mine.substr(0, b));
    const auto diff = config_differences(load_config_string(first.substr(a + 1)), load_config_string(mine.substr(b + 1)));
    return fmt::format("{} (rank 0's value -> this rank's)", fmt::join(diff, ", "));
  });
}

void check_ranks_agree(const model::LlamaConfig& lc) {
  dist::check_same_as_rank0(lc.to_hf_json(), "model shape (model.hf_dir's config.json)",
                            [](const std::string& first, const std::string& mine) {
    const auto a = nlohmann::json::parse(first), b = nlohmann::json::parse(mine);
    std::vector<std::string> diff;
    for (const auto& [key, value] : a.items())
      if (!b.contains(key) || b[key] != value) diff.push_back(fmt::format("{} {} -> {}", key, value.dump(),
                                                                          b.contains(key) ? b[key].dump() : "none"));
    return fmt::format("{} (rank 0's -> this rank's)", fmt::join(diff, ", "));
  });
}

std::string agreed_base_sample(const std::string& hf_dir) {
  const std::string mine = hf_dir.empty() ? "" : model::sample_base(hf_dir).to_json();
  dist::check_same_as_rank0(mine, "copy of the base weights (model.hf_dir " + hf_dir + ")",
                            [&](const std::string& first, const std::string& here) {
    return model::base_sample_difference(model::BaseSample::from_json(first, "rank 0's base sample"),
                                         model::BaseSample::from_json(here, "this rank's base sample"), "rank 0's copy",
                                         "this rank's");
  });
  return mine;
}

// Compared piece by piece, not by bytes: a converted copy of the same vocabulary (cgtok llama-js) is not byte for
// byte Meta's file. A handful of differing pieces (control piece names) is said; more stop. A base folder with only
// Hugging Face's tokenizer.json is compared by its model.vocab (added tokens past it, such as a <pad> row, are ids the
// data never holds).
void check_base_tokenizer(const std::string& hf_dir, const std::string& tok_path, const std::string& whose,
                          const std::function<std::string(const std::string&)>& fix, bool warn_if_none) {
  if (hf_dir.empty()) return;
  std::string base_path = hf_dir + "/tokenizer.model";
  std::vector<std::string> base;
  if (fs::exists(base_path)) {
    if (sha256_file(base_path) == sha256_file(tok_path)) return;
    const Tokenizer t = Tokenizer::load(base_path);
    for (int i = 0; i < t.vocab_size(); ++i) base.push_back(t.piece(i));
  } else {
    base_path = hf_dir + "/tokenizer.json";
    if (!fs::exists(base_path)) {
      if (warn_if_none)
        spdlog::warn("model.hf_dir {} has no tokenizer.model or tokenizer.json, so nothing checks that {} {} is the "
                     "base model's: a tokenizer of another model would feed it other ids for the same text", hf_dir,
                     whose, tok_path);
      return;
    }
    base = hf_tokenizer_json_vocab(base_path);
  }
  const Tokenizer ours = Tokenizer::load(tok_path);
  const int n_base = int(base.size());
  std::vector<int> differ;
  for (int i = 0; i < std::min(n_base, ours.vocab_size()); ++i)
    if (base[size_t(i)] != ours.piece(i)) differ.push_back(i);
  if (differ.empty() && n_base == ours.vocab_size()) return;
  const std::string first = differ.empty() ? "" : fmt::format("; e.g. id {} is '{}' there, '{}' here", differ[0],
                                                              base[size_t(differ[0])], ours.piece(differ[0]));
  const bool json = base_path.size() > 5 && base_path.compare(base_path.size() - 5, 5, ".json") == 0;
  CG_CHECK(differ.size() <= 8 && n_base == ours.vocab_size(), "the base model's tokenizer {} ({} pieces) and {} {} "
           "({} pieces) differ in {} piece(s){}: the base would read other ids than the text means; {}", base_path,
           n_base, whose, tok_path, ours.vocab_size(), differ.size(), first,
           fix(json ? "OUT.model (made by cgtok hf-json " + base_path + " OUT.model)" : base_path));
  spdlog::warn("{} {} differs from the base model's {} in {} piece(s){}", whose, tok_path, base_path, differ.size(),
               first);
}

model::LlamaConfig train_llama_config(const Config& cfg, int64_t vocab_size) {
  return model::resolve_llama_config(cfg.model.flavor, cfg.model.hf_dir, cfg.model.hf_dir.empty() ? vocab_size : 0);
}

void check_full_param_base(const Config& cfg, at::ScalarType dtype) {
  if (cfg.lora.enabled) return;
  CG_CHECK(dtype == at::kFloat, "full-parameter training (lora.enabled=false) keeps fp32 weights and AdamW state; set "
           "model.dtype=fp32 or enable LoRA");
  // A tied base's lm_head is its embed_tokens: trained as the two matrices cgtrain holds, they would part, and
  // transformers would load the export tied again (the trained lm_head lost). LoRA leaves both frozen: fine.
  CG_CHECK(cfg.model.hf_dir.empty() || !model::hf_ties_word_embeddings(cfg.model.hf_dir),
           "model.hf_dir {} ties lm_head to embed_tokens (config.json tie_word_embeddings true), and full-parameter "
           "training (lora.enabled=false) would train them apart, which a tied model cannot hold: train with LoRA "
           "(lora.enabled=true; both stay frozen), or untie the base first and give that: in Python m = "
           "AutoModelForCausalLM.from_pretrained(DIR); m.config.tie_word_embeddings = False; m.lm_head.weight = "
           "torch.nn.Parameter(m.model.embed_tokens.weight.clone()); m.save_pretrained(OUT)", cfg.model.hf_dir);
}

// lora.init_adapter's factors into the LoRA layers just injected (m.lora), checked against this run's settings and
// base. cgtrain calls build_train_model under every_rank_alike: every rank reads the same adapter at the same
// point, after the same base, so its errors are said once.
namespace {
void load_init_adapter(TrainModel& m, const Config& cfg, const lora::LoraSpec& spec, const model::LlamaConfig& lc,
                       const dist::ParallelDims& dims) {
  lora::PeftAdapter a = lora::read_peft_adapter(cfg.lora.init_adapter);
  std::set<std::string> injected;  // the module kinds lora.targets gave a LoRA layer
  for (const auto& e : m.lora.entries) {
    const std::string& name = e.adapter->hf_name();  // "model.layers.0.self_attn.q_proj"
    injected.insert(name.substr(name.rfind('.') + 1));
  }
  // Modules adapter_config.json lists without factors in the file (untrained_targets) that lora.targets adapts
  // start fresh, lora_A random and lora_B zero, as PEFT's is_trainable load gives them (and cgsample loads such
  // an adapter, those modules without update): said below. The others it lists keep no update (said by
  // check_adapter_against_base); a module it does not list at all is refused by the load.
  const std::vector<std::string> listed_untrained = a.untrained_targets;
  const auto fresh_begin = std::stable_partition(a.untrained_targets.begin(), a.untrained_targets.end(),
                                                 [&](const std::string& t) { return !injected.count(t); });
  const std::vector<std::string> fresh(fresh_begin, a.untrained_targets.end());  // in adapter_config.json's order
  a.untrained_targets.erase(fresh_begin, a.untrained_targets.end());
  lora::check_adapter_against_base(a, cfg.lora.init_adapter, cfg.model.hf_dir,
                                   "lora.init_adapter " + cfg.lora.init_adapter, dims.rank == 0);
  if (!cfg.model.hf_dir.empty()) {
    const std::string twice = merged_twice(cfg.model.hf_dir, peft_adapter_source(cfg.lora.init_adapter),
                                           "lora.init_adapter " + cfg.lora.init_adapter);
    CG_CHECK(twice.empty(), "{}", twice);
    const std::string recorded = recorded_base_sample(cfg.lora.init_adapter);
    const std::string other = other_base(recorded, m.base_sample, "lora.init_adapter " + cfg.lora.init_adapter,
                                         cfg.model.hf_dir);
    CG_CHECK(other.empty(), "{}; set model.hf_dir to the base it was trained on (its adapter_config.json "
             "base_model_name_or_path: {})", other, a.config.base_model_name_or_path);
    // No sample to compare (an adapter of another tool, or its cgtrain_source.json removed): the folder it names,
    // where that still exists, is all there is to go by, as cgsample does.
    const std::string& trained = a.config.base_model_name_or_path;
    std::error_code ec;
    if (recorded.empty() && dims.rank == 0 && !trained.empty() && fs::is_directory(trained, ec) &&
        !fs::equivalent(trained, cfg.model.hf_dir, ec))
      spdlog::warn("lora.init_adapter {} names the base {} (base_model_name_or_path), but model.hf_dir is {}: fine "
                   "if that is a copy of the same weights, wrong otherwise", cfg.lora.init_adapter, trained,
                   cfg.model.hf_dir);
  }
  const std::string partial = lora::some_layers_only(a, lc.num_hidden_layers,
                                                     "lora.init_adapter " + cfg.lora.init_adapter);
  CG_CHECK(partial.empty(), "{}", partial);
  CG_CHECK(a.config.r == spec.r, "lora.init_adapter {} has r {} but lora.r is {}; set lora.r={}",
           cfg.lora.init_adapter, a.config.r, spec.r, a.config.r);
  // The factors only mean the adapter's update under its own scale (alpha / r or alpha / sqrt(r)).
  // Equal scales (e.g. alpha 8 with rsLoRA at r 16 and alpha 32 without) give the same update.
  CG_CHECK(std::fabs(a.config.scale() - lora::lora_scale(spec)) <= 1e-12 * std::fabs(lora::lora_scale(spec)),
           "lora.init_adapter {} was trained with lora_alpha {} and use_rslora {}, but this run has lora.alpha={} "
           "lora.rslora={}: its update would be scaled by {} instead of {}; set lora.alpha={} lora.rslora={}",
           cfg.lora.init_adapter, a.config.lora_alpha, a.config.use_rslora, spec.alpha, spec.rslora,
           lora::lora_scale(spec), a.config.scale(), a.config.lora_alpha, a.config.use_rslora);
  // Which fix fits depends on what differs. Keys: the fix names the modules the tensors adapt (where
  // adapter_config.json's target_modules lists others, "set lora.targets to its target_modules" would name the
  // setting that just failed); when lora.targets already adapts those, the tensors are for layers this model
  // lacks: another base. Shapes: r equals lora.r (checked above), so a factor of another shape is another base's.
  const std::vector<std::string> adapted = lora::adapted_modules(a);
  std::vector<std::string> listed = a.config.target_modules;
  std::sort(listed.begin(), listed.end());
  std::set<std::string> loaded = injected;  // the module kinds that take the adapter's factors
  for (const std::string& f : fresh) loaded.erase(f);
  std::vector<std::string> allowed = adapted;  // what lora.targets may name
  allowed.insert(allowed.end(), listed_untrained.begin(), listed_untrained.end());
  std::sort(allowed.begin(), allowed.end());
  const std::string trained_on = a.config.base_model_name_or_path.empty()
                                     ? ""
                                     : " (its adapter_config.json base_model_name_or_path: " +
                                           a.config.base_model_name_or_path + ")";
  const std::string key_fix =
      adapted != listed
          ? fmt::format("its tensors adapt [{}] but its adapter_config.json target_modules are [{}], so the two "
                        "files disagree: set lora.targets=[{}] to load the tensors as they are, or copy both "
                        "files from one export", fmt::join(adapted, ","), fmt::join(a.config.target_modules, ","),
                        fmt::join(adapted, ","))
      : std::vector<std::string>(loaded.begin(), loaded.end()) != adapted
          ? listed_untrained.empty()
                ? fmt::format("set lora.targets=[{}], the modules its tensors adapt", fmt::join(adapted, ","))
                : fmt::format("set lora.targets to modules its adapter_config.json target_modules lists, [{}] "
                              "([{}] without factors start fresh)", fmt::join(allowed, ","),
                              fmt::join(listed_untrained, ","))
          : "an adapter of a base model with other layers: set model.hf_dir to the base it was trained on" +
                trained_on;
  const std::string shape_fix = fmt::format("its r is lora.r's ({}), so its factors are shaped for another base "
                                            "model: set model.hf_dir to the base it was trained on{}", spec.r,
                                            trained_on);
  m.lora.load_full(a.factors, "lora.init_adapter " + cfg.lora.init_adapter, key_fix, shape_fix,
                   std::set<std::string>(fresh.begin(), fresh.end()));
  spdlog::info("lora.init_adapter: starting from {} ({} LoRA factors, r {}, lora_alpha {})", cfg.lora.init_adapter,
               a.factors.size(), a.config.r, a.config.lora_alpha);
  if (dims.rank == 0 && !fresh.empty())
    spdlog::warn("lora.init_adapter {}: adapter_config.json target_modules lists [{}], but "
                 "adapter_model.safetensors holds no factors for {}: lora.targets adapts {}, so {} fresh (lora_A "
                 "random, lora_B zero) and {} from there, as PEFT's is_trainable load does; [{}] start from the "
                 "adapter's factors", cfg.lora.init_adapter, fmt::join(fresh, ","),
                 fresh.size() == 1 ? "it" : "them", fresh.size() == 1 ? "it" : "them",
                 fresh.size() == 1 ? "that module starts" : "those modules start",
                 fresh.size() == 1 ? "trains" : "train", fmt::join(adapted, ","));
  if (cfg.model.hf_dir.empty())
    spdlog::warn("lora.init_adapter {} goes on a random base (model.hf_dir is empty), not the one it was trained "
                 "on{}: set model.hf_dir to that base", cfg.lora.init_adapter,
                 a.config.base_model_name_or_path.empty() ? ""
                                                          : " (" + a.config.base_model_name_or_path + ")");
}

}  // namespace

TrainModel build_train_model(const Config& cfg, const dist::ParallelDims& dims, int64_t vocab_size,
                             const at::Device& device, bool resuming, const std::string* base_sample) {
  TrainModel m;
  m.device = device;
  m.full_param = !cfg.lora.enabled;
  const model::LlamaConfig lc = train_llama_config(cfg, vocab_size);
  check_ranks_agree(lc);
  m.base_sample = base_sample ? *base_sample : agreed_base_sample(cfg.model.hf_dir);
  CG_CHECK(cfg.model.dtype != "fp16" && cfg.model.dtype != "float16", "model.dtype={} cannot train: cgtrain does no "
           "loss scaling, and without it fp16's range loses small activation gradients; train with model.dtype=bf16 "
           "(fp16 checkpoints such as Meta's load into it) and keep fp16 for cgsample if you like", cfg.model.dtype);
  const at::ScalarType dtype = model::resolve_dtype(cfg.model.dtype, device);
  check_full_param_base(cfg, dtype);

  dist::ModelBuildOptions bo;
  bo.config = lc;
  bo.hf_dir = cfg.model.hf_dir;
  bo.init_seed = cfg.model.init_seed;
  bo.dtype = dtype;
  bo.device = device;
  bo.activation_checkpointing = cfg.model.activation_checkpointing;
  bo.train_base = m.full_param;

  lora::LoraSpec spec;
  spec.r = cfg.lora.r;
  spec.alpha = cfg.lora.alpha;
  spec.dropout = cfg.lora.dropout;
  spec.rslora = cfg.lora.rslora;
  spec.seed = cfg.train.seed;
  // One dropout stream per dp replica, shared by its tp ranks (masks are drawn at full width, then sliced).
  const uint64_t drop_seed = model::stable_hash("lora-dropout") ^ (cfg.train.seed * 1000003ull + uint64_t(dims.dp_rank));

  // build → load base weights → apply TP → [inject LoRA] → freeze the base (dist::build_llama owns the order).
  auto inject = [&](model::Llama& llama) {
    m.lora = lora::inject_lora(*llama, spec, cfg.lora.targets, dims.tp_comm, device,
                               lora::make_dropout_gen(drop_seed, device));
    // The recompute of a checkpointed layer rewinds this generator, so it redraws the same dropout masks.
    if (m.lora.dropout_gen) llama->recompute_generators.push_back(*m.lora.dropout_gen);
    if (!cfg.lora.init_adapter.empty() && !resuming) load_init_adapter(m, cfg, spec, lc, dims);
  };
  m.llama = m.full_param ? dist::build_llama(bo, dims) : dist::build_llama(bo, dims, inject);
  if (m.full_param) {
    m.trainable = m.llama->param_specs();
  } else {
    lora::freeze_base(*m.llama, m.lora);  // (idempotent with build_llama's freeze) only LoRA factors train
    m.trainable = m.lora.params();
  }
  return m;
}

AdamW make_optimizer(const TrainModel& m, const TrainConfig& t) {
  std::vector<NamedParam> named;
  for (const auto& p : m.trainable) {
    CG_CHECK(p.param.scalar_type() == at::kFloat, "{} is {}, but trainable parameters must be fp32", p.name,
             c10::toString(p.param.scalar_type()));
    named.push_back({p.name, p.param, p.param.dim() >= 2});
  }
  AdamWOptions o;
  o.beta1 = t.beta1;
  o.beta2 = t.beta2;
  o.eps = t.eps;
  o.weight_decay = t.weight_decay;
  return AdamW(std::move(named), o);
}

}  // namespace cg
