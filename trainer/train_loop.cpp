// train(): setup, resume, and the thin step / log / validate / save loop. Rank 0 speaks.
#include "trainer/train_loop.h"

#include <torch/torch.h>
#include <spdlog/fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/blas_threads.h"
#include "common/durable_file.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/input_error.h"
#include "common/log.h"
#include "common/path_note.h"
#include "common/sha256.h"
#include "data/loader.h"
#include "data/mp20.h"
#include "data/shard.h"
#include "data/shard_settings.h"
#include "data/sp_model.h"
#include "data/tokenizer.h"
#include "dist/cpu_threads.h"
#include "dist/nccl_comm.h"
#include "dist/runtime.h"
#include "model/accounting.h"
#include "model/base_sample.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "lora/inject.h"
#include "lora/peft.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/metrics.h"
#include "trainer/schedule.h"
#include "trainer/signals.h"
#include "trainer/train_export.h"
#include "trainer/train_model.h"
#include "trainer/train_step.h"

namespace cg {

namespace fs = std::filesystem;

LoaderOptions train_loader_options(const Config& cfg, int64_t dp_rank, int64_t dp_size) {
  LoaderOptions lo;
  lo.micro_batch = cfg.train.micro_batch;
  lo.seq_len = cfg.train.seq_len;
  lo.dp_rank = dp_rank;
  lo.dp_size = dp_size;
  lo.grad_accum = cfg.train.grad_accum;
  lo.seed = cfg.train.seed;
  lo.loss_on_completion = cfg.data.loss_on == "completion";
  return lo;
}

std::string tokenizer_path(const DataConfig& d) {
  return d.tokenizer == "train" ? d.shards_dir + "/tokenizer.model" : d.tokenizer;
}

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Dense bf16 peak of one GPU by the name its driver reports (CG_PEAK_TFLOPS overrides, for GPUs not listed); 0 on
// a CPU or an unknown GPU: MFU is then not shown.
double peak_flops(const at::Device& dev, bool lead) {
  if (!dev.is_cuda()) return 0;
  if (const char* e = std::getenv("CG_PEAK_TFLOPS")) return std::atof(e) * 1e12;
  const std::string name = dist::cuda_device_name(dev.has_index() ? dev.index() : 0);
  const double peak = model::gpu_peak_bf16_flops(name);
  if (peak == 0 && lead)
    spdlog::info("MFU not shown: no bf16 peak known for GPU '{}'; set CG_PEAK_TFLOPS to its dense bf16 peak", name);
  return peak;
}

// The largest of every rank's v (a host all-reduce over the world).
int max_over_ranks(int v, const dist::ParallelDims& dims) {
  at::Tensor t = at::tensor({double(v)}, at::kDouble);
  if (dims.world > 1) dims.host_world_comm->all_reduce(t, dist::ReduceOp::Max);
  return int(t.item<double>());
}

// Agree over the world: true if any rank saw the flag.
bool any_rank(bool flag, const dist::ParallelDims& dims) { return max_over_ranks(flag ? 1 : 0, dims) > 0; }

// The stop every rank agrees on at a step boundary: 0 (go on), kExitPreempted when any rank was preempted (requeue
// wins), else kExitInterrupted when any had a Ctrl-C.
int agreed_stop(const dist::ParallelDims& dims) {
  const int own = stop_exit_code();
  const int v = max_over_ranks(own == kExitPreempted ? 2 : own == kExitInterrupted ? 1 : 0, dims);
  return v == 2 ? kExitPreempted : v == 1 ? kExitInterrupted : 0;
}

// The data.* settings cgprep recorded in the shards against this config's: the samples are the shards', so a config
// that says otherwise would make config.yaml misdescribe the run; data.loss_on is the one cgtrain applies itself.
void warn_data_settings(const Config& cfg, const ShardMeta& meta) {
  std::vector<std::string> diff = settings_differences(meta.settings_json, settings_json(cfg.data,
                                                                                          text_options(cfg.data)));
  const auto loss_on = std::find_if(diff.begin(), diff.end(), [](const std::string& d) {
    return d.rfind("data.loss_on:", 0) == 0;
  });
  if (loss_on != diff.end()) {
    spdlog::warn("data.loss_on is {} here, but the shards' cgprep config said otherwise ({}): cgtrain applies {} "
                 "(the shards hold what either needs)", cfg.data.loss_on, *loss_on, cfg.data.loss_on);
    diff.erase(loss_on);
  }
  if (!diff.empty())
    spdlog::warn("the shards in {} were made with other data settings than this config's ({}): training reads the "
                 "samples the shards hold, and config.yaml would misdescribe them; set these keys to the shards' "
                 "values, or run cgprep again with this config", cfg.data.shards_dir, fmt::join(diff, "; "));
}

// The config with data.columns as the shards were made with it. cgtrain reads no CSV, but the run's config.yaml is
// what cgsample and cgeval are given, and they read data.*_csv with its mapping: the one cgprep read them with, not a
// config's that left it out (given to cgprep alone) or says another. Said where they differ; every rank adopts it.
Config with_shards_columns(const Config& cfg, bool lead) {
  const std::optional<ShardsColumns> shards = shards_columns(cfg.data.shards_dir);
  if (!shards || parse_columns(shards->columns).renamed == parse_columns(cfg.data.columns).renamed) return cfg;
  if (lead)
    spdlog::warn("the shards in {} were made with {}, but this config says {}: training reads the samples the "
                 "shards hold, and config.yaml records {} (cgsample and cgeval read data.*_csv with it); set it in "
                 "this config, or run cgprep again with this config", cfg.data.shards_dir,
                 columns_setting(shards->columns), columns_setting(cfg.data.columns),
                 columns_setting(shards->columns));
  Config out = cfg;
  out.data.columns = shards->columns;
  return out;
}

// The file or folder the shards' samples came from against the one the config names (data.train_csv, data.val_csv):
// config.yaml records the config's, and cgeval and cgsweep take data.train_csv as the novelty reference, so another
// source there would misdescribe the run. Shards of older builds recorded none.
void warn_data_source(const Config& cfg, const ShardMeta& meta, const char* key, const std::string& value) {
  if (meta.source_sha256.empty()) return;
  const std::string path = value.empty() ? "" : resolve_csv(value, cfg);
  std::error_code ec;
  const bool exists = !path.empty() && fs::exists(path, ec);
  if (exists && source_sha256(path) == meta.source_sha256) return;
  spdlog::warn("the {} shards in {} were made from {}, {}: training reads the shards, but the run's config.yaml "
               "records {}{}; set {}={}, or run cgprep again with this config", meta.split, cfg.data.shards_dir,
               meta.source_path,
               path.empty() ? fmt::format("and {} is empty here", key)
               : !exists    ? fmt::format("and {} ({}) does not exist here", key, path)
                            : fmt::format("not {} ({}, whose bytes differ: other data, or the same in another "
                                          "encoding such as gzip)", key, path),
               key, std::string(key) == "data.train_csv" ? " (and cgeval and cgsweep take it as the novelty reference)"
                                                         : "",
               key, meta.source_path);
}

// The tokenizer is identified by the sha256 of its model bytes (what cgprep stores in every shard); cgtrain needs
// no more of it than that and the vocabulary size.
void check_shards(const std::string& tok_hash, const ShardMeta& meta, const ShardMeta& train_meta,
                  const std::string& tok_path, const Config& cfg) {
  CG_CHECK(meta.tokenizer_sha256 == tok_hash, "the {} shards in {} were made with another tokenizer (sha256 {}) than "
           "{} ({}); run cgprep again with this data.tokenizer, or point data.tokenizer at the shards' tokenizer",
           meta.split, cfg.data.shards_dir, meta.tokenizer_sha256.substr(0, 12), tok_path, tok_hash.substr(0, 12));
  CG_CHECK(meta.vocab_size == train_meta.vocab_size, "the {} shards have vocab_size {} but the train shards {}; "
           "run cgprep again", meta.split, meta.vocab_size, train_meta.vocab_size);
  CG_CHECK(meta.settings_json == train_meta.settings_json, "the {} shards in {} were made by another cgprep run than "
           "the train shards (other settings); run cgprep again into a clean data.shards_dir", meta.split,
           cfg.data.shards_dir);
}

// Digests that count as these shards' on resume: a run trained on shards an older cgprep made resumes on the same
// shards made again (their settings spelled otherwise), and shards made again with only cgprep's data.loss_on
// changed hold the same samples.
std::vector<std::string> equivalent_shards_digests(const Loader& loader, const DataConfig& d) {
  std::vector<std::string> spellings = legacy_settings_jsons(loader.meta().settings_json, d), out;
  spellings.push_back(loader.meta().settings_json);
  for (const std::string& s : spellings) {
    if (s != loader.meta().settings_json) out.push_back(loader.shards_digest(s));
    for (const std::string& other : other_loss_on_settings(s)) out.push_back(loader.shards_digest(other));
  }
  return out;
}

// Resuming under other settings is allowed (a longer run, another lr, another layout) but said, key by key, against
// the checkpoint's own config.yaml; where and how a run is launched and logged is left out. Another base is refused.
// A LoRA adapter belongs to the weights it was trained on: model.hf_dir must hold them (a copy anywhere, in any
// dtype, is fine; a fine-tune of them, or other weights put in the same folder, is not). Returns true when the
// checkpoint's record of its base (none in older builds' checkpoints) matched.
bool check_resume_base(const CheckpointInfo& ck, const Config& cfg, const std::string& base_sample) {
  if (!cfg.lora.enabled) return false;  // the checkpoint holds every weight
  const std::string recorded = recorded_base_sample(ck.path);
  if (recorded.empty() || base_sample.empty()) return false;
  const std::string why = other_base(recorded, base_sample, ck.path, cfg.model.hf_dir);
  CG_CHECK(why.empty(), "{}: the trained adapter would sit on another base; resume with the base it was trained on "
           "(its config.yaml names model.hf_dir={}) or start a new train.run_dir", why,
           fs::is_regular_file(ck.path + "/config.yaml") ? load_saved_config(ck.path + "/config.yaml").model.hf_dir
                                                          : std::string("?"));
  return true;
}

// Settings that decide the trainable tensors (which there are, and their shapes): a checkpoint cannot go on under
// others. Refused on every rank before the model is built, naming the keys, rather than by the load's first
// mismatched tensor after it. Targets are compared as the modules they pick (all-linear = the seven listed).
// The projections lora.targets picks: all-linear, the seven names, or them reordered are one choice.
std::vector<std::string> picked_targets(const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (const auto& k : lora::known_targets())
    if (lora::is_target("x." + k, targets)) out.push_back(k);
  return out;
}

// The config a checkpoint was trained under (its config.yaml; none in older builds' checkpoints).
std::optional<Config> checkpoint_config(const CheckpointInfo& ck) {
  const std::string path = ck.path + "/config.yaml";
  if (!fs::is_regular_file(path)) return std::nullopt;
  return load_saved_config(path);
}

void check_resume_trainables(const CheckpointInfo& ck, const Config& cfg, const std::optional<Config>& saved) {
  if (!saved) return;  // older builds' checkpoints: the load names the tensor that differs
  const Config& before = *saved;
  // A LoRA adapter was trained on top of one base: a random base is fixed by its seed (and shape), so another seed,
  // or weights where there were none, is another model under the same adapter (a full-parameter checkpoint holds
  // every weight: its base does not matter). A moved model.hf_dir is checked by its weights (check_resume_base);
  // in checkpoints of older builds, which recorded none, it only warns (warn_config_changes). Checked on every rank
  // before the model is built: a rank whose load fails first would otherwise end the job with a missing tensor.
  const bool was_random = before.model.hf_dir.empty(), is_random = cfg.model.hf_dir.empty();
  const bool same_base = was_random == is_random && (!is_random || before.model.init_seed == cfg.model.init_seed);
  CG_CHECK(!cfg.lora.enabled || same_base,
           "{} was trained on {}, this launch has {}: the trained adapter would sit on another base; resume with "
           "the checkpoint's model settings (its config.yaml) or start a new train.run_dir", ck.path,
           was_random ? fmt::format("a random base (model.init_seed={})", before.model.init_seed)
                      : "model.hf_dir=" + before.model.hf_dir,
           is_random ? fmt::format("a random base (model.init_seed={})", cfg.model.init_seed)
                     : "model.hf_dir=" + cfg.model.hf_dir);
  std::vector<std::string> bad;
  for (const std::string& d : config_differences(before, cfg)) {
    const bool lora_shape = cfg.lora.enabled && before.lora.enabled &&
                            (d.rfind("lora.r ", 0) == 0 ||
                             (d.rfind("lora.targets ", 0) == 0 &&
                              picked_targets(before.lora.targets) != picked_targets(cfg.lora.targets)));
    const bool flavor = d.rfind("model.flavor ", 0) == 0 && cfg.model.hf_dir.empty() && before.model.hf_dir.empty();
    if (d.rfind("lora.enabled ", 0) == 0 || lora_shape || flavor) bad.push_back(d);
  }
  CG_CHECK(bad.empty(), "{} cannot go on with {}: its trainable tensors are other ones, or of other shapes; set {} "
           "back to the checkpoint's value{} (its config.yaml), or start a new train.run_dir", ck.path,
           fmt::join(bad, "; "), bad.size() == 1 ? bad[0].substr(0, bad[0].find(' ')) : "these keys",
           bad.size() == 1 ? "" : "s");
}

void warn_config_changes(const CheckpointInfo& ck, const Config& cfg, const std::optional<Config>& saved,
                         bool base_matched) {
  if (!saved) {  // checkpoints of older builds kept no config
    spdlog::warn("resuming {} written with another config (hash {} vs {})", ck.path, ck.manifest.config_hash,
                 config_hash(cfg));
    return;
  }
  const Config& before = *saved;
  std::vector<std::string> changed;
  for (const std::string& d : config_differences(before, cfg)) {
    if (base_matched && d.rfind("model.hf_dir ", 0) == 0) {  // the same weights, moved
      spdlog::info("{}: its base weights are there (sampled values match the checkpoint's record)", d);
      continue;
    }
    const bool launch_only = d.rfind("train.run_dir ", 0) == 0 || d.rfind("train.threads ", 0) == 0 ||
                             d.rfind("parallel.mpi_wait ", 0) == 0 ||
                             d.rfind("log.", 0) == 0 || d.rfind("sample.", 0) == 0 || d.rfind("eval.", 0) == 0;
    if (d.rfind("lora.targets ", 0) == 0 && picked_targets(before.lora.targets) == picked_targets(cfg.lora.targets))
      continue;  // the same projections spelled otherwise
    if (!launch_only) changed.push_back(d);
  }
  if (changed.empty()) return;
  // What the changes do to the run's course, where it is not obvious from the list.
  const double lr_before = LrSchedule::from(before.train).at(ck.step), lr_now = LrSchedule::from(cfg.train).at(ck.step);
  if (cfg.train.steps > ck.step && std::fabs(lr_now - lr_before) > 1e-3 * std::max(lr_before, lr_now))
    spdlog::warn("the learning-rate schedule is recomputed from the new settings: step {} goes on at lr {:.3g}, "
                 "where the checkpoint's schedule stood at {:.3g}{}; keep train.steps, train.lr and the schedule keys "
                 "for a smooth continuation", ck.step + 1, lr_now, lr_before,
                 lr_before > 0 ? fmt::format(" ({:.2g}x)", lr_now / lr_before) : "");
  spdlog::warn("resuming {} with {} changed setting{}: {}{}", ck.path, changed.size(), changed.size() == 1 ? "" : "s",
               fmt::join(changed, "; "),
               std::any_of(changed.begin(), changed.end(), [](const std::string& d) {
                 return d.rfind("lora.alpha ", 0) == 0 || d.rfind("lora.rslora ", 0) == 0;
               }) ? " (lora.alpha / lora.rslora rescale the adapter trained so far)" : "");
}

// What training reads from the files the config names before its first step: the tokenizer, the shards (checked
// against it and against the model), model.hf_dir's config.json and a sample of its weights, lora.init_adapter's
// folder, and, resuming, the checkpoint's manifest, config and loader position (checked against this launch).
// train() calls it under one every_rank_alike: every rank reads the same files here, in the same order, so a file
// that is missing or broken is every rank's error, said once; a new input read here is covered without more. The
// two collectives inside (the resumed step's broadcast from rank 0, agreed_base_sample's comparison with rank 0)
// are left alike by every rank that reaches them: each either passes or fails the same way on all ranks. Rank 0
// alone looks for the checkpoint to resume; its refusal there is said by rank 0 anyway. A file only some nodes
// lack (node-local disks) is still said, by a rank that lacks it (common/input_error.h).
struct TrainInputs {
  std::string tok_path, tok_bytes, tok_hash;
  Loader loader;
  std::string training_data;  // training_data_json of the train shards
  model::LlamaConfig lc;
  std::vector<Batch> val_batches;
  int64_t val_samples = 0;  // over all ranks
  std::optional<CheckpointInfo> resume;  // the newest complete checkpoint, when resuming
  std::string base_sample;               // model.hf_dir's weights as sampled, the same on every rank
  bool base_matched = false;             // the checkpoint's record of its base matched them
  std::optional<Config> resumed_config;  // the checkpoint's config.yaml
};

TrainInputs read_train_inputs(const Config& cfg, const dist::ParallelDims& dims) {
  const bool lead = dims.rank == 0;
  const std::string& run_dir = cfg.train.run_dir;
  const std::string tok_path = tokenizer_path(cfg.data);
  // Every checkpoint keeps the tokenizer (cgsample and cgexport use it; a resume refuses another one).
  // data.tokenizer=train reads cgprep's; a path given is the user's own file, which cgprep does not make.
  CG_CHECK(fs::exists(tok_path), "tokenizer {} does not exist{}: {}", tok_path, relative_path_note(tok_path, "cgtrain"),
           cfg.data.tokenizer == "train"
               ? "run cgprep with this config first (it writes <data.shards_dir>/tokenizer.model), or set "
                 "data.shards_dir to the folder it wrote"
               : "set data.tokenizer to the sentencepiece .model the shards were made with (cgprep_config.yaml in "
                 "data.shards_dir names it), or to 'train' for the one cgprep fitted");
  std::string tok_bytes = read_file(tok_path, "tokenizer");
  const std::string tok_hash = sha256_hex(tok_bytes.data(), tok_bytes.size());
  const LoaderOptions lo = train_loader_options(cfg, dims.dp_rank, dims.dp);
  Loader loader = Loader::from_shards(cfg.data.shards_dir, "train", lo);
  const ShardMeta& meta = loader.meta();
  check_shards(tok_hash, meta, meta, tok_path, cfg);
  if (lead) warn_data_settings(cfg, meta);
  if (lead) warn_data_source(cfg, meta, "data.train_csv", cfg.data.train_csv);
  // What the model learns from, in every checkpoint: cgsample warns of conditions its training prompts never stated.
  const std::string training_data = training_data_json(meta, cfg.data.shards_dir);
  const int64_t vocab = meta.vocab_size;  // the tokenizer's, as cgprep recorded it
  // model.hf_dir's config.json (missing, malformed), its tokenizer against the shards', and the shapes they fix.
  model::LlamaConfig lc = train_llama_config(cfg, vocab);
  // More rows than pieces (a base with an added <pad> row, or one padded to a multiple) is fine: those ids never
  // occur in the data. Fewer would index past the embedding.
  CG_CHECK(lc.vocab_size >= vocab, "the model has vocab_size {} but tokenizer {} has {} pieces: use the base "
           "model's own tokenizer (data.tokenizer) and run cgprep again", lc.vocab_size, tok_path, vocab);
  check_base_tokenizer(cfg.model.hf_dir, tok_path, "the shards' tokenizer", [](const std::string& base_path) {
    return "run cgprep with data.tokenizer=" + base_path;
  });
  CG_CHECK(cfg.train.seq_len <= lc.max_position_embeddings, "train.seq_len {} is longer than the model's "
           "max_position_embeddings {} ({}): the model was not trained on such positions and cgsample refuses "
           "them; lower train.seq_len", cfg.train.seq_len, lc.max_position_embeddings,
           cfg.model.hf_dir.empty() ? "model.flavor " + cfg.model.flavor : cfg.model.hf_dir + "/config.json");
  if (lead && lc.vocab_size > vocab)
    spdlog::info("the model's vocab_size {} has {} row(s) past tokenizer {}'s {} pieces (ids the data never uses)",
                 lc.vocab_size, lc.vocab_size - vocab, tok_path, vocab);
  const int64_t global_batch = cfg.train.micro_batch * dims.dp * cfg.train.grad_accum;
  const int64_t n_train = loader.num_samples();
  if (lead && n_train < global_batch)
    spdlog::warn("the train split has {} samples, fewer than one global batch (train.micro_batch {} x dp {} x "
                 "train.grad_accum {} = {}): every step trains on all of them and {}; {}", n_train,
                 cfg.train.micro_batch, dims.dp, cfg.train.grad_accum, global_batch,
                 n_train < dims.dp * cfg.train.grad_accum ? "some micro-steps of some dp replicas get none"
                                                          : "each rank's micro-batches are part empty",
                 n_train >= dims.dp
                     ? fmt::format("lower train.micro_batch x train.grad_accum to {} or less", n_train / dims.dp)
                     : fmt::format("use at most {} dp replicas, or more data", n_train));
  // Each sample keeps the augmentation and task cgprep drew for it; the paper draws them afresh every epoch, which
  // data.copies buys ahead: one copy per pass over the crystals.
  const double passes = double(cfg.train.steps) * double(global_batch) /
                        double(std::max<int64_t>(1, loader.num_samples()));
  if (lead && passes > 1.05)
    spdlog::warn("train.steps={} go {:.1f} times over the {} training samples, each with the one augmentation and task "
                 "cgprep drew for it (the paper draws them afresh every epoch): for a fresh draw per pass, run cgprep "
                 "with data.copies={}", cfg.train.steps, passes, loader.num_samples(),
                 int64_t(std::ceil(passes * double(cfg.data.copies))));
  std::vector<Batch> val_batches;
  int64_t val_samples = 0;  // over all ranks
  if (cfg.train.val_every > 0) {
    CG_CHECK(fs::exists(shard_path(cfg.data.shards_dir, "val", 0)), "train.val_every={} validates on the 'val' "
             "shards, but {} has none ({} missing): run cgprep with a data.val_csv, or set train.val_every=0",
             cfg.train.val_every, cfg.data.shards_dir, shard_path(cfg.data.shards_dir, "val", 0));
    Loader val = Loader::from_shards(cfg.data.shards_dir, "val", lo);
    check_shards(tok_hash, val.meta(), meta, tok_path, cfg);
    if (lead) warn_data_source(cfg, val.meta(), "data.val_csv", cfg.data.val_csv);
    val_batches = val.fixed_batches(cfg.train.val_samples);
    for (const auto& b : val_batches) val_samples += b.global_samples;
  }

  // The newest complete checkpoint to resume from (rank 0 finds and verifies it; -1: none), before the model is
  // built: a resumed run needs no lora.init_adapter (the checkpoint replaces it).
  std::optional<CheckpointInfo> resume;
  if (cfg.checkpoint.resume) {
    at::Tensor step = at::tensor({int64_t(-1)}, at::kLong);
    if (lead) {
      auto found = find_latest_complete(run_dir);
      if (found) step.fill_(found->step);
      const auto steps = checkpoint_steps(run_dir);
      CG_CHECK(found || steps.empty(), "{}/checkpoints holds {} checkpoint folder{} (newest step-{}) and none can be "
               "resumed (why: the warnings above); cgtrain does not start over beside them, which would replace "
               "them: restore them, or move them out of {}/checkpoints (or give a new train.run_dir) to start afresh",
               run_dir, steps.size(), steps.size() == 1 ? "" : "s", steps.empty() ? 0 : steps.front(), run_dir);
    }
    dims.host_world_comm->broadcast(step, 0);
    if (step.item<int64_t>() >= 0) {
      resume.emplace();
      resume->step = step.item<int64_t>();
      resume->path = step_folder(run_dir, resume->step);
      resume->manifest = read_manifest(resume->path);
      const std::string ck_tok = checkpoint_tokenizer_sha(*resume);
      CG_CHECK(ck_tok.empty() || ck_tok == tok_hash, "{} was trained with another tokenizer (sha256 {}) than {} "
               "({}), so its adapter would now read other token ids: make the shards again with the run's tokenizer "
               "(cgprep with data.tokenizer={}/{} and the run's other data settings, and train with the same), or "
               "start a new train.run_dir",
               resume->path, ck_tok.substr(0, 12), tok_path, tok_hash.substr(0, 12), run_dir, kCheckpointTokenizer);
    }
  }

  // lora.init_adapter's folder (its factors are read once the base is built): before a 70B model is loaded for
  // nothing. A resumed run does not read it.
  if (cfg.lora.enabled && !cfg.lora.init_adapter.empty() && !resume)
    lora::check_peft_adapter_folder(cfg.lora.init_adapter);
  // The base's weights, the same on every rank, and (resuming) the ones the checkpoint was trained on: before a
  // 70B model is loaded for nothing.
  const std::string base_sample = agreed_base_sample(cfg.model.hf_dir);
  const bool base_matched = resume && check_resume_base(*resume, cfg, base_sample);
  const std::optional<Config> resumed_config = resume ? checkpoint_config(*resume) : std::nullopt;
  if (resume) check_resume_trainables(*resume, cfg, resumed_config);
  // The loader's checks too (train.seed, the global batch, the shards): a 70B base takes minutes to load, and these
  // refusals need only the checkpoint's loader position.
  if (resume)
    loader.check_restore(read_checkpoint_train_state(*resume).loader, equivalent_shards_digests(loader, cfg.data));
  return TrainInputs{tok_path, std::move(tok_bytes), tok_hash, std::move(loader), training_data, lc,
                     std::move(val_batches), val_samples, std::move(resume), base_sample, base_matched, resumed_config};
}

}  // namespace

int train(const Config& given) {
  const dist::Runtime& rt = dist::runtime();
  // The first collective: ranks started apart must not meet in different ones (the GPU check below is one).
  check_ranks_agree(given, "cgtrain");
  const at::Device device = resolve_device(given.model.device, rt);
  const dist::Backend backend = dist::backend_from_name(given.parallel.backend, device.is_cuda());
  init_logging(rt.rank, rt.world, given.log.level, given.log.all_ranks);  // before the grid says what it is
  const int threads = dist::cpu_threads(given.train.threads, rt.local_size);
  dist::set_cpu_threads(threads);  // before the groups: MpiComm's wait follows the node's threads
  const dist::ParallelDims dims = dist::make_parallel_dims(int(given.parallel.tp), int(given.parallel.dp), backend,
                                                           dist::collective_wait_from_name(given.parallel.mpi_wait));
  const bool lead = dims.rank == 0;
  if (lead)
    spdlog::info("cgtrain: {} on {}, {} threads per rank (OpenBLAS {}, OMP_WAIT_POLICY {})", dims.describe(),
                 device.str(), threads, openblas_threads(),
                 std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "default");

  const Config cfg = with_shards_columns(given, lead);  // what config.yaml records

  // Run folder with the resolved config (rank 0 writes; everyone waits).
  const std::string& run_dir = cfg.train.run_dir;
  const std::string cfg_yaml = to_yaml(cfg);
  // One cgtrain per run folder: a second job (submitted twice, or requeued while the first still runs) would delete
  // the first one's checkpoints in rotation and interleave its metrics. Held until the process ends.
  std::optional<FileLock> run_lock;
  // A launch refused before training starts (no tokenizer, other shards, fp16, another base's adapter, ...) leaves no
  // folder where there was none: rank 0 notes the folders it creates and, when the launch fails, removes them as far
  // as they hold nothing but this launch's files (never a checkpoint, never a file of the user's). Unwinding does it
  // before the lock is let go (declared after run_lock); abort_all, which may end the process without unwinding,
  // does it through undo_on_abort. A run folder that was there keeps everything but the empty checkpoints/ made now.
  // In a run folder that was there, the lock file goes too where this launch created it (never one that was there).
  // When a rank other than 0 fails alone, relay_aborts hands its error to rank 0, which cleans up and ends the job
  // (without MPI_THREAD_MULTIPLE, that rank's MPI_Abort kills rank 0 from outside, and the folder stays).
  std::optional<MadeFolders> made_run_dir, made_checkpoints;
  std::optional<dist::AbortCleanup> undo_on_abort;
  if (lead) {
    made_run_dir.emplace(run_dir, std::vector<std::string>{".cgtrain.lock", "config.yaml", "model_config.json",
                                                           kCheckpointTokenizer, "metrics.jsonl"});
    undo_on_abort.emplace([&] {
      made_checkpoints.reset();
      made_run_dir.reset();
      run_lock.reset();
    });
    make_output_dir(run_dir, "train.run_dir");
    // On NFS the lock of a job whose node died lingers until the server's lease ends (about 90 s): a requeued job
    // waits that long (CG_LOCK_WAIT_S, default 120) before it calls the folder taken.
    // A holder that is a live process of this machine (an earlier launch still saving as it ends, a second launch) is
    // waited for as long, and named.
    const char* wait_env = std::getenv("CG_LOCK_WAIT_S");
    const double wait_s = wait_env ? std::atof(wait_env) : 120.0;
    const double t0 = now_s();
    bool said = false;
    run_lock.emplace(run_dir + "/.cgtrain.lock", [&] {
      if (!said) {
        const LockHolder holder = read_lock_holder(run_dir + "/.cgtrain.lock");
        spdlog::warn("{}/.cgtrain.lock is held by another process{}; waiting up to {:.0f} s (CG_LOCK_WAIT_S) {}",
                     run_dir, holder.known() ? " (" + holder.describe() + ")" : "", wait_s,
                     holder.alive_here() ? "for it to end: it is running on this machine"
                                         : "in case it is a dead job's on a network filesystem");
      }
      said = true;
      return now_s() - t0 < wait_s;
    });
    run_lock->remove_file_at_release(true);  // until training starts (below)
    // A launch that held the lock while this one waited, and gave up, removed the run folder it had made; the lock
    // made it again for its file, and from here it is this launch's to remove if it gives up too.
    made_run_dir->note_made(run_lock->made_folders());
    if (run_lock->held_elsewhere()) made_run_dir->keep();  // that run's, even where this launch made it just now
    CG_CHECK(!run_lock->held_elsewhere(), "{} is in use by another cgtrain right now ({} holds {}/.cgtrain.lock): "
             "two runs in one folder delete each other's checkpoints; wait for that one to end or stop it, or give "
             "another train.run_dir", run_dir, run_lock->who_holds(), run_dir);
    // Where every save goes: a problem there shows now, not after the first checkpoint.every steps. Made under the
    // lock: a holder that gave up while this launch waited removed the one it had made.
    made_checkpoints.emplace(run_dir + "/checkpoints");
    make_output_dir(run_dir + "/checkpoints", "train.run_dir's checkpoints folder");
    if (!run_lock->locked())
      spdlog::warn("cannot lock {}/.cgtrain.lock ({}); make sure no other cgtrain runs in this folder", run_dir,
                   std::strerror(run_lock->error()));
    const auto old_steps = checkpoint_steps(run_dir);
    CG_CHECK(cfg.checkpoint.resume || old_steps.empty(), "{} already holds checkpoints (newest step-{}) and "
             "checkpoint.resume=false would start over in it, mixing two runs' checkpoints and metrics: set "
             "checkpoint.resume=true to continue that run, or give a new train.run_dir (or move the old one away)",
             run_dir, old_steps.empty() ? 0 : old_steps.front());
  }
  dims.host_world_comm->barrier();
  dist::RelayAbortsToRank0 relay_aborts;  // until training starts

  // Data, checked against the tokenizer and the model, and the checkpoint resumed, before step 0 (said once when
  // every rank meets the same error: read_train_inputs).
  TrainInputs in = every_rank_alike([&] { return read_train_inputs(cfg, dims); });
  const std::string &tok_path = in.tok_path, &tok_bytes = in.tok_bytes, &training_data = in.training_data;
  Loader& loader = in.loader;
  const model::LlamaConfig& lc = in.lc;
  const int64_t vocab = loader.meta().vocab_size;  // the tokenizer's, as cgprep recorded it
  const std::vector<Batch>& val_batches = in.val_batches;
  const int64_t val_samples = in.val_samples;
  const std::optional<CheckpointInfo>& resume = in.resume;

  // Model (fixed order inside), optimizer, gradient reduction. The base's weights (model.hf_dir's safetensors) and
  // lora.init_adapter's factors are read by every rank alike too, each its own slices of the same files, after the
  // same checks: a tensor of another shape is said once. Wrapped here, not read in read_train_inputs: reading them
  // is building the model. A device's own failure (out of memory) is no cg::Error and is said by its rank at once.
  TrainModel m = every_rank_alike([&] {
    return build_train_model(cfg, dims, vocab, device, /*resuming=*/resume.has_value(), &in.base_sample);
  });
  // The model's shape, for cgexport and cgsample, and the dtype its base weights have in this run.
  const std::string model_json = lc.to_hf_json(model::hf_dtype_name(model::resolve_dtype(cfg.model.dtype, device)));
  AdamW opt = make_optimizer(m, cfg.train);
  TrainGrads grads(m.trainable, dims);
  if (lead) {
    int64_t n_train = 0;
    for (const auto& p : m.trainable) n_train += p.param.numel();
    spdlog::info("model {} layers d {} vocab {}; {} trainable tensors, {} elements on rank 0 ({})",
                 lc.num_hidden_layers, lc.hidden_size, lc.vocab_size, m.trainable.size(), human_count(double(n_train)),
                 m.full_param ? "full-parameter"
                              : fmt::format("LoRA r {} on {} linear modules", cfg.lora.r, m.lora.size()));
  }

  // Resume (everyone loads its part).
  TrainState st;
  const std::string hash = config_hash(cfg);
  if (resume) {
    const CheckpointInfo& ck = *resume;
    if (lead && ck.manifest.config_hash != hash) warn_config_changes(ck, cfg, in.resumed_config, in.base_matched);
    // Rank 0 verified every file of the step folder (sizes, checksums): what fails here is the settings', alike on
    // every rank. A rank file only one node's disk lost is still said, by that rank (common/input_error.h).
    st = every_rank_alike([&] { return load_rank_checkpoint(ck, m, opt, dims, cfg.train.seed); });
    loader.restore(st.loader, equivalent_shards_digests(loader, cfg.data));
    if (lead) spdlog::info("resumed from {} (step {}, {} tokens seen)", ck.path, st.step, st.tokens_seen);
    // A relaunch that trains nothing says so, whatever else changed: a finished run, or train.steps lowered.
    if (lead && st.step > cfg.train.steps)
      spdlog::warn("train.steps={} is not above the checkpoint's step {}: there is nothing left to train; raise "
                   "train.steps to go on", cfg.train.steps, st.step);
    else if (lead && st.step == cfg.train.steps)
      spdlog::info("the run is complete (step {} of train.steps={}): nothing to train; raise train.steps to train "
                   "further, or export its adapter: cgexport {} --out DIR", st.step, cfg.train.steps, run_dir);
  }

  // The run folder's copies of the resolved config and the model's shape follow the latest launch, written once the
  // resume has succeeded (a launch that fails before leaves the previous ones); every checkpoint keeps its own.
  if (lead) {
    write_file_atomic(run_dir + "/config.yaml", cfg_yaml);
    write_file_atomic(run_dir + "/model_config.json", model_json);
    write_file_atomic(run_dir + "/" + kCheckpointTokenizer, tok_bytes);
    // The metrics continue from the step resumed: records of later steps (a crash or a failed launch after the
    // checkpoint) and, on a fresh start, a previous run's file would mix two runs.
    const std::string kept = trim_metrics(run_dir + "/metrics.jsonl", st.step);
    if (!kept.empty()) spdlog::warn("{}", kept);
  }

  std::optional<MetricsWriter> metrics;
  if (lead) metrics.emplace(run_dir + "/metrics.jsonl", /*append=*/true);
  const LrSchedule sched = LrSchedule::from(cfg.train);
  model::PlanInputs pin;
  pin.model = lc;
  pin.seq_len = cfg.train.seq_len;
  pin.lora = !m.full_param;
  pin.lora_r = cfg.lora.r;
  pin.lora_targets = cfg.lora.targets;
  pin.activation_checkpointing = cfg.model.activation_checkpointing;
  const double fpt = model::make_plan(pin).flops_per_token, peak = peak_flops(device, lead);  // model FLOPs (no recompute)
  const int64_t steps = cfg.train.steps;

  RunClock clock;  // this launch's step, validation and save times (tok/s counts steps only; the ETA all three)
  auto validate = [&] {
    const double t0 = now_s();
    const ValLoss v = validation_loss(m, val_batches, dims);
    clock.add_val(now_s() - t0);
    st.last_val_loss = v.all;
    if (lead) {
      // Per task when the set holds both (data.infill_fraction between 0 and 1): the mean in all follows the mix.
      const std::string by_task = v.generation_tokens > 0 && v.infill_tokens > 0
                                      ? fmt::format("generation {:.4f}, infill {:.4f}; ", v.generation, v.infill)
                                      : "";
      spdlog::info("step {}/{} | val loss {:.4f} ({}{} samples, {} batches per rank)", st.step, steps, v.all, by_task,
                   val_samples, val_batches.size());
      metrics->write({{"step", st.step}, {"val_loss", v.all}, {"val_loss_generation", v.generation},
                      {"val_loss_infill", v.infill}});
    }
  };
  std::vector<std::string> ckpt_files{"config.yaml", "model_config.json", kCheckpointTokenizer};
  if (!m.base_sample.empty()) ckpt_files.push_back(model::kBaseSampleFile);
  ckpt_files.push_back(kTrainingDataFile);
  for (int r = 0; r < dims.world; ++r) ckpt_files.push_back(rank_file_name(r));
  auto save = [&] {
    const double t0 = now_s();
    const CheckpointLayout layout{dims.world, dims.tp, dims.dp};
    const std::string path = save_checkpoint(
        run_dir, st.step, dims.rank, layout, hash,
        [&](const std::string& dir) {
          write_rank_checkpoint(dir, m, opt, st, dims, hash);
          // The config and model shape this checkpoint was trained under, for cgexport and cgsample (the run
          // folder's copies follow the latest launch).
          if (lead) {
            write_file_durable(dir + "/config.yaml", cfg_yaml.data(), cfg_yaml.size());
            write_file_durable(dir + "/model_config.json", model_json.data(), model_json.size());
            write_file_durable(dir + "/" + kCheckpointTokenizer, tok_bytes.data(), tok_bytes.size());
            // The base's weights as sampled (model/base_sample.h): what a resume, cgexport and cgsample compare
            // model.hf_dir with, wherever it has moved.
            if (!m.base_sample.empty())
              write_file_durable(dir + "/" + model::kBaseSampleFile, m.base_sample.data(), m.base_sample.size());
            write_file_durable(dir + "/" + kTrainingDataFile, training_data.data(), training_data.size());
          }
        },
        [&](bool ok) { return !any_rank(!ok, dims); }, std::max<int64_t>(1, cfg.checkpoint.keep_last), ckpt_files);
    if (lead) spdlog::info("saved {}", path);
    clock.save_s += now_s() - t0;
    ++clock.saves;
  };

  if (cfg.train.val_every > 0 && st.step == 0) validate();
  // Training starts: the run folder is the run's from here, whatever happens (its metrics say how far it got). Rank 0
  // listens until every rank got through its launch: a rank whose own file failed (its error said after run_main's
  // wait) reaches it here, where it would otherwise have gone on to its first step and no longer listen.
  dims.host_world_comm->barrier();
  relay_aborts.stop();
  undo_on_abort.reset();
  if (run_lock) run_lock->remove_file_at_release(false);
  if (made_run_dir) made_run_dir->keep();
  if (made_checkpoints) made_checkpoints->keep();
  const double t_start = now_s();
  double step_s_window = 0;  // the steps' own time since the last progress line
  int64_t tokens_window = 0;
  double cuda_used_max = -1;  // device memory in use at the log points, the largest seen (progress line)
  arm_interrupt_save();  // from here a Ctrl-C saves the steps trained so far
  // A SIGTERM/SIGUSR1 kept from the start-up is answered after the first step (there is nothing to save before).
  if (lead && preempt_requested() && st.step < steps)
    spdlog::warn("signal {} arrived while starting up: saving after the first step, then exiting with {}",
                 preempt_signal(), stop_exit_code());
  const int64_t first_step = st.step, bad_before = st.bad_steps;  // this process's steps: first_step + 1 .. steps
  int64_t zero_grad_in_row = 0;  // finite steps whose (global) gradient norm is exactly 0
  while (st.step < steps) {
    const double lr = sched.at(st.step);
    const double t_step = now_s();
    const StepResult r = train_step(m, loader, grads, opt, lr, cfg.train.clip_grad_norm, dims);
    const double step_s = now_s() - t_step;  // ends with the step's one device->host copy (its statistics)
    clock.step_s += step_s;
    ++clock.steps;
    step_s_window += step_s;
    ++st.step;
    st.tokens_seen += r.real_tokens;
    st.loss_tokens_seen += int64_t(r.stats.loss_tokens);
    st.loader = loader.state();
    tokens_window += r.real_tokens;
    if (r.skipped) {
      ++st.bad_steps;
      ++st.bad_in_row;
      if (lead) spdlog::warn("step {}: non-finite loss or gradient (loss {}, grad norm {}); step skipped ({} in a row)",
                             st.step, r.stats.loss, r.stats.grad_norm, st.bad_in_row);
      CG_CHECK(st.bad_in_row <= cfg.train.max_bad_steps, "{} non-finite steps in a row (more than "
               "train.max_bad_steps={}): lower train.lr, raise train.warmup_steps, or check the data, the base weights "
               "(model.hf_dir) and lora.init_adapter", st.bad_in_row, cfg.train.max_bad_steps);
    } else {
      st.bad_in_row = 0;
    }
    zero_grad_in_row = !r.skipped && r.stats.grad_norm == 0 ? zero_grad_in_row + 1 : 0;
    const double t = now_s();
    const double epoch = double(st.loader.epoch) + double(st.loader.cursor) / double(loader.batches_per_epoch());
    if (lead) {
      metrics->write({{"step", st.step}, {"loss", r.stats.loss}, {"lr", lr}, {"grad_norm", r.stats.grad_norm},
                      {"loss_tokens", int64_t(r.stats.loss_tokens)}, {"tokens", r.real_tokens},
                      {"tokens_seen", st.tokens_seen}, {"epoch", epoch}, {"skipped", r.skipped},
                      {"time_s", t - t_start}, {"step_s", step_s}});
    }
    if (cfg.log.every > 0 && (st.step % cfg.log.every == 0 || st.step == steps) && lead) {
      ProgressInfo p;
      p.step = st.step;
      p.total_steps = steps;
      p.epoch = epoch;
      p.loss = r.stats.loss;
      p.lr = lr;
      p.grad_norm = r.stats.grad_norm;
      p.tokens_per_s = double(tokens_window) / std::max(1e-9, step_s_window);
      p.mfu = model_flops_utilisation(p.tokens_per_s, fpt, peak, dims.world);
      if (device.is_cuda()) {  // the driver's view, kept as a maximum: the caching allocator seldom gives memory back
        cuda_used_max = std::max(cuda_used_max, dist::cuda_memory_used_bytes());
        p.mem_bytes = cuda_used_max;
        p.mem_kind = "cuda";
      } else {
        p.mem_bytes = peak_rss_bytes();
      }
      p.eta_s = clock.eta_s(st.step, steps, cfg.train.val_every, cfg.checkpoint.every);
      spdlog::info("{}", format_progress(p));
      step_s_window = 0;
      tokens_window = 0;
    }
    // Weights blown up by a too large lr can saturate every output: the loss then sits still and no gradient is left,
    // which no NaN check sees. The norm is all-reduced, so every rank stops at the same step; nothing is saved.
    CG_CHECK(zero_grad_in_row < kZeroGradientSteps, "the gradient norm has been exactly 0 for {} steps in a row "
             "(steps {}-{}, loss {:.4f}): nothing trains any more; the weights were most likely blown up by train.lr={} "
             "(or lora.alpha). Not saved; resume from a checkpoint before step {} (checkpoint.keep_last) with a lower "
             "train.lr, or start again", zero_grad_in_row, st.step - zero_grad_in_row + 1, st.step, r.stats.loss,
             cfg.train.lr, st.step - zero_grad_in_row + 1);
    if (cfg.train.val_every > 0 && (st.step % cfg.train.val_every == 0 || st.step == steps)) validate();
    const int stop = agreed_stop(dims);
    // A periodic save waits while the gradient norm is 0 (the weights may have blown up, see below): saved, such a
    // state would rotate the last good checkpoints out. The last step and a stop save as always.
    const bool periodic = cfg.checkpoint.every > 0 && st.step % cfg.checkpoint.every == 0;
    if (periodic && zero_grad_in_row > 0 && !stop && st.step != steps && lead)
      spdlog::warn("step {}: checkpoint not saved: the gradient norm has been exactly 0 for {} step(s)", st.step,
                   zero_grad_in_row);
    if (stop || st.step == steps || (periodic && zero_grad_in_row == 0)) {
      save();
    }
    if (stop && st.step < steps) {
      if (lead && stop == kExitPreempted)
        spdlog::warn("preempted (signal {}) after step {}: checkpoint saved, exiting with {}", preempt_signal(),
                     st.step, kExitPreempted);
      if (lead && stop == kExitInterrupted)
        spdlog::warn("interrupted after step {}: checkpoint saved, exiting with {}; the same command resumes it",
                     st.step, kExitInterrupted);
      ignore_stop_signals();
      return stop;
    }
    if (stop && lead)  // the last step: the run is complete, nothing to requeue
      spdlog::warn("signal {} arrived during the last step; the run is complete and saved", preempt_signal());
  }
  ignore_stop_signals();
  if (lead)
    spdlog::info("done: {} steps, {} tokens, {} skipped steps{}", st.step, st.tokens_seen, st.bad_steps,
                 cfg.train.val_every > 0 ? fmt::format(", last val loss {:.4f}", st.last_val_loss) : "");
  // Fewer steps than train.max_bad_steps can all be skipped: a run that trained nothing does not end as a success.
  const int64_t ran = st.step - first_step;
  CG_CHECK(ran == 0 || st.bad_steps - bad_before < ran, "every one of the {} steps this run took (steps {}-{}) had a non-finite loss "
           "or gradient and was skipped: nothing was trained. Lower train.lr or lora.alpha, raise train.warmup_steps, "
           "or check the data, the base weights (model.hf_dir), lora.init_adapter and the checkpoint resumed from",
           ran, first_step + 1, st.step);
  CG_CHECK(cfg.train.val_every == 0 || std::isfinite(st.last_val_loss), "the final validation loss is {}: the model "
           "diverged (step {} is saved, but its weights give non-finite outputs). Lower train.lr or lora.alpha, raise "
           "train.warmup_steps or set train.clip_grad_norm, or resume from an earlier checkpoint", st.last_val_loss,
           st.step);
  return 0;
}

}  // namespace cg
