// Checkpoint content: one safetensors file per rank (tensors + JSON metadata), re-sharded on load when tp changed.
#include "trainer/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <nlohmann/json.hpp>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/json_int.h"
#include "common/log.h"
#include "model/safetensors.h"

namespace cg {

using nlohmann::json;


namespace {

at::Generator& cpu_default_gen() {
  static at::Generator g = at::detail::getDefaultCPUGenerator();
  return g;
}

json shards_json(const std::vector<model::ParamSpec>& specs) {
  json j = json::object();
  for (const auto& p : specs)
    j[p.name] = {{"dim", p.shard_dim}, {"full_shape", p.full_shape}, {"start", p.shard_start}, {"len", p.shard_len}};
  return j;
}

// Reseeds the dropout stream deterministically when the saved one cannot be reused (layout changed).
void reseed_dropout(TrainModel& m, uint64_t seed, int dp_rank, int64_t step) {
  if (!m.lora.dropout_gen) return;
  const uint64_t s = model::stable_hash(fmt::format("lora-dropout-resume/{}/{}/{}", seed, dp_rank, step));
  m.lora.dropout_gen->set_current_seed(s);
}

constexpr const char* kDamaged = "the checkpoint is damaged: delete its folder to resume from an older one";

// One rank's file and its metadata (written by write_rank_checkpoint).
struct RankFile {
  std::unique_ptr<model::SafetensorsFile> file;
  json shards;                     // param name -> {dim, full_shape, start, len}
  std::string mode, train_state;   // "lora" | "full"; TrainState JSON
};

RankFile open_rank_file(const std::string& step_dir, int rank) {
  RankFile r;
  r.file = std::make_unique<model::SafetensorsFile>(step_dir + "/" + rank_file_name(rank));
  const auto& md = r.file->metadata();
  auto get = [&](const char* k) -> const std::string& {
    auto it = md.find(k);
    CG_CHECK(it != md.end(), "{}: no '{}' in its metadata; not a cgtrain checkpoint file", r.file->path(), k);
    return it->second;
  };
  CG_CHECK(get("format") == kRankFileFormat, "{}: format {} but this cgtrain reads {}", r.file->path(),
           get("format"), kRankFileFormat);
  r.shards = json::parse(get("shards"), nullptr, /*allow_exceptions=*/false);
  CG_CHECK(r.shards.is_object(), "{}: its 'shards' metadata is not a JSON object; {}", r.file->path(), kDamaged);
  r.mode = get("mode");
  r.train_state = get("train_state");
  return r;
}

// The rank file's TrainState, its errors naming the file (a resume reads several; which one is damaged?).
TrainState train_state_of(const RankFile& r) {
  try {
    return TrainState::from_json(r.train_state);
  } catch (const Error& e) {
    CG_FAIL("{}: {}", r.file->path(), message_of(e));
  }
}

// The full tensor `key` (a "param/<name>" or "optim/<name>.<slot>") from the tp shards of one dp replica, trimmed to
// the parameter's full shape (drops vocab padding).
at::Tensor full_from_shards(const std::vector<RankFile>& shards, const std::string& key, const std::string& name) {
  int64_t dim = -1, full = 0;
  try {
    const json& sh = shards[0].shards.at(name);
    const auto full_shape = sh.at("full_shape").get<std::vector<int64_t>>();
    dim = json_int_at(sh, "dim", shards[0].file->path() + ": shards." + name, -1, int64_t(full_shape.size()) - 1);
    if (dim >= 0) full = full_shape[size_t(dim)];
  } catch (const json::exception& e) {
    CG_FAIL("{}: the 'shards' metadata of {} is not readable ({}); {}", shards[0].file->path(), name, e.what(),
            kDamaged);
  }
  if (dim < 0 || shards.size() == 1) {
    at::Tensor t = shards[0].file->read(key);
    return dim >= 0 ? t.narrow(dim, 0, full) : t;
  }
  std::vector<at::Tensor> parts;
  for (const auto& f : shards) parts.push_back(f.file->read(key));
  return at::cat(parts, dim).narrow(dim, 0, full);
}

}  // namespace

void write_rank_checkpoint(const std::string& dir, const TrainModel& m, const AdamW& opt, const TrainState& state,
                           const dist::ParallelDims& dims, const std::string& config_hash) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : m.trainable) tensors.emplace_back("param/" + p.name, p.param.detach());
  for (const auto& [name, t] : opt.state()) tensors.emplace_back("optim/" + name, t);
  tensors.emplace_back("rng/torch_cpu", cpu_default_gen().get_state());
  if (m.lora.dropout_gen) tensors.emplace_back("rng/dropout", m.lora.dropout_gen->get_state().cpu());
  std::map<std::string, std::string> md;
  md["format"] = kRankFileFormat;
  md["train_state"] = state.to_json();
  md["layout"] = json{{"tp", dims.tp}, {"dp", dims.dp}, {"tp_rank", dims.tp_rank}, {"dp_rank", dims.dp_rank}}.dump();
  md["shards"] = shards_json(m.trainable).dump();
  md["config_hash"] = config_hash;
  md["mode"] = m.full_param ? "full" : "lora";
  model::write_safetensors(dir + "/" + rank_file_name(dims.rank), tensors, md);
}

TrainState read_checkpoint_train_state(const CheckpointInfo& ckpt) {
  return train_state_of(open_rank_file(ckpt.path, 0));
}

TrainState load_rank_checkpoint(const CheckpointInfo& ckpt, TrainModel& m, AdamW& opt,
                                const dist::ParallelDims& dims, uint64_t seed) {
  const CheckpointLayout& old = ckpt.manifest.layout;
  const bool same_tp = old.tp == dims.tp, same_dp = old.dp == dims.dp;
  // dp replicas hold identical trainable tensors: read our own replica when it exists, else replica 0.
  const int replica = same_dp ? dims.dp_rank : 0;
  std::vector<RankFile> files;  // the tp shards we need, in tp order
  if (same_tp) {
    files.push_back(open_rank_file(ckpt.path, replica * old.tp + dims.tp_rank));
  } else {
    for (int k = 0; k < old.tp; ++k) files.push_back(open_rank_file(ckpt.path, replica * old.tp + k));
  }
  const std::string& mode = files[0].mode;
  CG_CHECK(mode == (m.full_param ? "full" : "lora"), "{} was written in {} mode but this run has lora.enabled={}; "
           "use the same lora.enabled or a fresh train.run_dir", ckpt.path, mode, m.full_param ? "false" : "true");
  TrainState st = train_state_of(files[0]);

  for (const auto& p : m.trainable)
    CG_CHECK(files[0].shards.contains(p.name), "{} has no tensor {}: it was written with other lora.targets / "
             "lora.r or another model; use the same settings or a fresh train.run_dir", ckpt.path, p.name);
  CG_CHECK(files[0].shards.size() == m.trainable.size(), "{} holds {} trainable tensors, this run has {}: "
           "lora.targets or the model differ from the checkpoint's", ckpt.path, files[0].shards.size(),
           m.trainable.size());

  at::NoGradGuard no_grad;
  std::vector<std::pair<std::string, at::Tensor>> optim;
  for (const auto& p : m.trainable) {
    auto local = [&](const std::string& key) {
      if (same_tp) return files[0].file->read(key);
      return p.slice_of(full_from_shards(files, key, p.name));
    };
    at::Tensor v = local("param/" + p.name);
    CG_CHECK(v.sizes() == p.param.sizes(), "{}: {} has shape {} in the checkpoint, {} here (lora.r or the model "
             "changed?)", ckpt.path, p.name, c10::str(v.sizes()), c10::str(p.param.sizes()));
    p.param.copy_(v);
    optim.emplace_back(p.name + ".exp_avg", local("optim/" + p.name + ".exp_avg"));
    optim.emplace_back(p.name + ".exp_avg_sq", local("optim/" + p.name + ".exp_avg_sq"));
    optim.emplace_back(p.name + ".step", files[0].file->read("optim/" + p.name + ".step"));
  }
  opt.load_state(optim);

  // Every tp rank of a dp replica draws the same (full-width) dropout masks, so the replica's stream carries over
  // to any tp; only a dp change needs new streams.
  bool reseeded = !same_dp;
  if (same_dp) {
    cpu_default_gen().set_state(files[0].file->read("rng/torch_cpu"));
    if (m.lora.dropout_gen) {
      CG_CHECK(files[0].file->contains("rng/dropout"), "{}: no dropout generator state", ckpt.path);
      const at::Tensor saved = files[0].file->read("rng/dropout");
      // A CPU generator's state is 5056 bytes, a CUDA one's 16: a checkpoint written on the other device type
      // (a CPU rehearsal resumed on GPUs, or back) continues with a fresh stream, as a dp change does.
      if (saved.numel() == m.lora.dropout_gen->get_state().numel()) m.lora.dropout_gen->set_state(saved);
      else reseeded = true;
    }
  }
  if (reseeded) reseed_dropout(m, seed, dims.dp_rank, st.step);
  if ((!same_tp || reseeded) && dims.rank == 0)
    spdlog::info("resuming {} written at tp {} x dp {} on tp {} x dp {}{}{}", ckpt.path, old.tp, old.dp, dims.tp,
                 dims.dp, same_tp ? "" : ": tensors re-sharded",
                 !reseeded ? "" : same_dp ? ", dropout re-seeded (its stream was drawn on another device type)"
                                          : ", dropout re-seeded");
  return st;
}

std::map<std::string, at::Tensor> read_full_params(const CheckpointInfo& ckpt) {
  const int tp = ckpt.manifest.layout.tp;
  std::vector<RankFile> files;
  for (int k = 0; k < tp; ++k) files.push_back(open_rank_file(ckpt.path, k));
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, sh] : files[0].shards.items()) out[name] = full_from_shards(files, "param/" + name, name);
  return out;
}

std::string checkpoint_tokenizer_sha(const CheckpointInfo& ckpt) {
  for (const auto& f : ckpt.manifest.files)
    if (f.path == kCheckpointTokenizer) return f.sha256;
  return "";
}

std::string checkpoint_tokenizer_path(const CheckpointInfo& ckpt) {
  return checkpoint_tokenizer_sha(ckpt).empty() ? "" : ckpt.path + "/" + kCheckpointTokenizer;
}

CheckpointConfigs read_checkpoint_configs(const std::string& run_dir, const CheckpointInfo& ckpt) {
  namespace fs = std::filesystem;
  auto own = [&](const char* name) { return fs::is_regular_file(ckpt.path + "/" + name); };
  auto pick = [&](const char* name) { return (own(name) ? ckpt.path : run_dir) + "/" + name; };
  CheckpointConfigs out;
  const std::string cfg_path = pick("config.yaml"), mc_path = pick("model_config.json");
  out.config = load_saved_config(cfg_path);
  if (const std::string hash = config_hash(out.config); !own("config.yaml") && hash != ckpt.manifest.config_hash)
    spdlog::warn("{} was written under another config than {} (hash {} vs {}); using the latter's lora.* and model.* "
                 "settings", ckpt.path, cfg_path, ckpt.manifest.config_hash, hash);
  CG_CHECK(fs::is_regular_file(mc_path), "{} is missing (cgtrain writes the model's shape into every checkpoint and "
           "its run folder)", mc_path);
  out.llama = model::llama_config_from_json(read_file(mc_path, "model shape"), mc_path);
  return out;
}

}  // namespace cg
