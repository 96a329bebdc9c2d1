// export_run: checkpoint rank files → full tensors → PEFT adapter and/or merged HF checkpoint.
// The HF checkpoint is streamed: one base tensor is read (mmap), merged in fp32, cast, written and dropped at a time,
// so exporting a 70B merge needs a few times its largest tensor in memory, not the model.
#include "trainer/train_export.h"

#include <torch/torch.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/ranges.h>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <utility>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/folder_kind.h"
#include "common/hold_stop_signals.h"
#include "common/log.h"
#include "common/sha256.h"
#include "data/shard.h"
#include "lora/lora_linear.h"
#include "lora/peft.h"
#include "model/base_sample.h"
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

constexpr const char* kExportStaging = kExportStagingDir;  // in --out; kExportMovingDir once complete, then moved in

// An export of the other kind already in the folder must not stay beside this one (transformers loads a folder
// holding adapter_config.json as its base + that adapter, ignoring merged weights; cgsample reads it too), and
// cgexport does not delete files it may not have written: refused, saying what to do.
// weights: this export writes an HF checkpoint (merged or full); else a PEFT adapter at the top.
void check_no_other_export(const std::string& out, bool weights) {
  // cgprep's shards folder or another run's folder is not an export's: the export's tokenizer.model would replace
  // the one the shards' token ids were written with, and a run folder would read as both a run and an adapter.
  std::string mark;
  const OwnedBy owner = owned_by_tool(out, &mark);
  CG_CHECK(owner == OwnedBy::kNone, "cgexport: --out {} holds {}, so it is {}: the export would write its "
           "tokenizer.model and weights among those files; choose a folder of its own for --out", out, mark,
           owner == OwnedBy::kCgtrain ? "another cgtrain run's folder" : "cgprep's shards folder");
  static const std::regex hf_files(R"(config\.json|model(-[0-9]{5}-of-[0-9]{5})?\.safetensors|)"
                                   R"(model\.safetensors\.index\.json)");
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    const bool other = weights ? (name == "adapter_config.json" || name == "adapter_model.safetensors")
                               : std::regex_match(name, hf_files);
    CG_CHECK(!other, "cgexport: {} already holds {} ({}, from an earlier {} export); {} into the same folder "
             "would leave both, and transformers would then load {}: choose another --out or remove {} first",
             out, name, weights ? "a PEFT adapter" : "an HF checkpoint", weights ? "adapter" : "--merge",
             weights ? "a merged model" : "an adapter",
             weights ? "the adapter on its base instead of the merged weights" : "that checkpoint, not the adapter",
             name);
  }
}

// Whether `out` holds an earlier export of the same kind (check_no_other_export refused the other kind), and the
// checkpoint it came from where its adapter's kAdapterSourceFile says ("" where not).
std::optional<std::string> earlier_export(const std::string& out, bool weights) {
  const fs::path dir(out);
  const bool there = weights ? fs::exists(dir / "config.json") : fs::exists(dir / "adapter_config.json");
  if (!there) return std::nullopt;
  const fs::path adapter = weights ? dir / "adapter" : dir;
  std::string checkpoint;
  try {
    if (fs::exists(adapter / kAdapterSourceFile)) checkpoint = peft_adapter_record(adapter.string()).checkpoint;
  } catch (const std::exception&) {  // an unreadable record only makes the note vaguer
  }
  return checkpoint;
}

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
      model::check_hf_config(cfg.model.hf_dir, lc, "the run's model_config.json");
      hf_.emplace(cfg.model.hf_dir);
      model::check_hf_tensors(*hf_, shapes);
    }
  }
  // The dtype the base stores a weight in (a checkpoint may keep norms in fp32 beside fp16 matrices).
  at::ScalarType dtype(const std::string& name) const { return hf_ ? hf_->info(name).scalar_type : at::kFloat; }
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

// The dtype each of `shapes`' tensors has in the HF base `hf_dir`; empty when there is no base (random init), it is
// gone, or it does not hold every tensor with that shape (then the checkpoint's dtype is written, said).
std::map<std::string, at::ScalarType> hf_base_dtypes(const std::string& hf_dir, const model::NamedShapes& shapes) {
  if (hf_dir.empty()) return {};
  std::map<std::string, at::ScalarType> d;
  try {
    const model::HfCheckpoint base(hf_dir);
    model::check_hf_tensors(base, shapes);
    for (const auto& [name, shape] : shapes) d[name] = base.info(name).scalar_type;
  } catch (const std::exception& e) {
    spdlog::warn("cgexport: the run's base {} cannot be read ({}), so the weights are written in the checkpoint's "
                 "dtype, not the base's; give the base with --base DIR to keep its dtype, or choose one with --dtype",
                 hf_dir, e.what());
    return {};
  }
  return d;
}

// HF checkpoint of the tensors `shapes` lists, in that order, each in dtype(name): tensor(name) gives each (any
// dtype), it is cast, written and dropped before the next is asked for.
void stream_hf_checkpoint(const std::string& dir, const model::NamedShapes& shapes,
                          const std::function<at::ScalarType(const std::string&)>& dtype, const model::LlamaConfig& lc,
                          int64_t max_shard_bytes, const std::function<at::Tensor(const std::string&)>& tensor) {
  std::vector<model::TensorEntry> plan;
  for (const auto& [name, shape] : shapes) plan.push_back({name, dtype(name), shape});
  model::HfCheckpointWriter w(dir, std::move(plan), lc, max_shard_bytes);
  for (const auto& [name, shape] : shapes) {
    w.write(name, tensor(name).to(dtype(name)));
#ifdef __GLIBC__
    // Freed tensors of a few MB stay in glibc's heap, fragmented, and the resident set would creep up tensor by
    // tensor; hand the free pages back (tensors over 32 MB, most of a 7B-70B model, are mmapped and return anyway).
    ::malloc_trim(0);
#endif
  }
  w.finish();
}

// A merged checkpoint (or a full-parameter run's, fine-tuned from an HF base) is its base with other weights: the
// base's config.json (its token ids, generation fields, anything transformers reads) and its tokenizer and
// generation files are kept, so the folder loads as the base did; tokenizer.json only when the run's tokenizer
// (tok_bytes) is the base's tokenizer.model, or the base has none. A merge's config.json also records what was
// merged (kMergedKey), so cgsample refuses to apply that adapter again.
// base_dtypes: every tensor was written in the base's dtype, so the base's torch_dtype describes them and stays;
// else (--dtype, or the checkpoint's dtype) config.json's torch_dtype is the written tensors'.
// The base's config.json, which the export keeps (finish_hf_folder): one that is no JSON object of settings is named
// by its path, with what to do. A full-parameter export reads the base's weights for their dtypes only, so a broken
// config.json first shows here.
nlohmann::ordered_json base_config_json(const std::string& base_dir) {
  const std::string path = (fs::path(base_dir) / "config.json").string();
  constexpr const char* kFix = "correct it to the base's own (the config.json published with its weights), or give a "
                               "copy of the base with a sound one with --base DIR";
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_file(path, "the base's config.json"));
  } catch (const nlohmann::json::exception& e) {
    CG_FAIL("{} (the config.json of the run's base, which the export keeps) is not valid JSON: {}; {}", path, e.what(),
            kFix);
  }
  CG_CHECK(j.is_object(), "{} (the config.json of the run's base, which the export keeps) is not a JSON object of "
           "settings; {}", path, kFix);
  return j;
}

void finish_hf_folder(const std::string& dir, const std::string& base_dir, bool base_dtypes,
                      const std::string& tok_bytes, const MergedFrom* merged) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(read_file(dir + "/config.json", "config.json"));
  if (!base_dir.empty() && fs::is_regular_file(fs::path(base_dir) / "config.json")) {
    const nlohmann::ordered_json ours = j;
    j = base_config_json(base_dir);
    if (!base_dtypes || !j.contains("torch_dtype")) j["torch_dtype"] = ours["torch_dtype"];
    // Fields a base's published config may revise for the same weights (check_hf_config warns of them): the values
    // the run trained with, which its adapter (or weights) go with.
    for (const char* key : {"rms_norm_eps", "max_position_embeddings"}) j[key] = ours[key];
    // lm_head.weight is written whole (a tied base's is its embed_tokens, read under that name): the folder is
    // untied, the same model to transformers, and read by tools that expect lm_head.weight.
    j["tie_word_embeddings"] = false;
    const fs::path base_tok = fs::path(base_dir) / "tokenizer.model";
    const bool same_tokenizer = !fs::exists(base_tok) || read_file(base_tok.string(), "tokenizer") == tok_bytes;
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                          "generation_config.json", "added_tokens.json"}) {
      const fs::path src = fs::path(base_dir) / f;
      if (std::string(f) == "tokenizer.json" && !same_tokenizer) {
        spdlog::warn("cgexport: the run trained with another tokenizer.model than the base's, so the base's "
                     "tokenizer.json is not copied beside it");
        continue;
      }
      if (fs::is_regular_file(src) && !fs::exists(fs::path(dir) / f))
        write_file_atomic(dir + "/" + f, read_file(src.string(), f));
    }
  }
  if (merged) j[kMergedKey] = {{"adapter_sha256", merged->adapter_sha256}, {"checkpoint", merged->checkpoint},
                               {"run_dir", merged->run_dir}};
  write_file_atomic(dir + "/config.json", j.dump(2, ' ', false, decltype(j)::error_handler_t::replace) + "\n");
}

std::string canonical(const std::string& p) { return fs::weakly_canonical(p).string(); }

MergedFrom merged_from(const std::string& adapter_file, const CheckpointInfo& ck) {
  const fs::path step = fs::weakly_canonical(ck.path);
  return {sha256_file(adapter_file), step.string(), step.parent_path().parent_path().string()};
}

// Writes the export of checkpoint `ck` into `dir` (export_run's staging folder).
void write_export(const ExportOptions& o, const CheckpointInfo& ck, const Config& cfg, const model::LlamaConfig& lc,
                  const model::NamedShapes& shapes, at::ScalarType asked, std::map<std::string, at::Tensor>& full,
                  const std::string& dir) {
  // The tokenizer the checkpoint was trained with (kept in it); checkpoints of older builds: the config's, which
  // the shards may have been made again with since.
  std::string tok_path = checkpoint_tokenizer_path(ck);
  if (tok_path.empty()) {
    tok_path = tokenizer_path(cfg.data);
    spdlog::warn("cgexport: {} keeps no tokenizer (an older build's checkpoint); copying {}, which must be the one "
                 "the run trained with", ck.path, tok_path);
  }
  std::string tok_bytes;
  if (fs::exists(tok_path)) {
    tok_bytes = read_file(tok_path, "tokenizer");
    write_file_atomic(dir + "/tokenizer.model", tok_bytes);
  } else  // the config's paths are relative to where cgtrain ran
    spdlog::warn("cgexport: tokenizer {} not found from {}, so {} gets no tokenizer.model; run cgexport from the "
                 "folder cgtrain ran in, or copy the tokenizer yourself", tok_path, fs::current_path().string(), o.out);

  if (!cfg.lora.enabled) {  // full-parameter run: the checkpoint holds the whole model (read whole: tiny models)
    const at::ScalarType ck_dtype = o.dtype.empty() && !full.empty() ? full.begin()->second.scalar_type() : asked;
    // Fine-tuned from an HF base: each tensor in the base's dtype, as a merge writes it (bf16 matrices beside fp32
    // norms), so config.json's torch_dtype, the base's, describes the tensors.
    const std::map<std::string, at::ScalarType> base_dtypes = o.dtype.empty() ? hf_base_dtypes(cfg.model.hf_dir, shapes)
                                                                              : std::map<std::string, at::ScalarType>{};
    const auto dtype = [&](const std::string& name) {
      const auto it = base_dtypes.find(name);
      return it != base_dtypes.end() ? it->second : ck_dtype;
    };
    stream_hf_checkpoint(dir, shapes, dtype, lc, o.max_shard_bytes,
                         [&](const std::string& name) {
      auto it = full.find(name);
      CG_CHECK(it != full.end(), "{}: no {} in the checkpoint", ck.path, name);
      at::Tensor t = it->second;
      full.erase(it);
      return t;
    });
    finish_hf_folder(dir, cfg.model.hf_dir, /*base_dtypes=*/!base_dtypes.empty(), tok_bytes, nullptr);
    return;
  }

  // PEFT loads the base from base_model_name_or_path: an absolute path when the folder is here (a relative one
  // would resolve against wherever PEFT runs), else as configured (a Hub id such as meta-llama/Llama-2-7b-hf).
  std::string base_name = cfg.model.hf_dir.empty() ? kRandomBasePrefix + cfg.model.flavor : cfg.model.hf_dir;
  if (!cfg.model.hf_dir.empty() && fs::is_directory(cfg.model.hf_dir))
    base_name = fs::absolute(cfg.model.hf_dir).lexically_normal().string();
  else if (!cfg.model.hf_dir.empty() && fs::path(cfg.model.hf_dir).is_relative())  // a Hub id too: said
    spdlog::warn("cgexport: the run's base model.hf_dir {} is no folder from here ({}), so the adapter's "
                 "base_model_name_or_path is written as \"{}\" (a Hub id, or a path relative to where PEFT runs); "
                 "if it is a folder, run cgexport from the folder cgtrain ran in or give --base DIR", cfg.model.hf_dir,
                 fs::current_path().string(), cfg.model.hf_dir);
  const lora::PeftConfig pc = lora::peft_config_from(cfg.lora, base_name);
  // The base it was trained on, as sampled by cgtrain into the step folder (none in older builds' checkpoints).
  const std::string recorded = recorded_base_sample(ck.path);
  std::optional<BaseWeights> base;
  if (o.merge) base.emplace(cfg, lc, shapes);  // checks the base against model_config.json before writing anything
  const std::string adapter_dir = o.merge ? dir + "/adapter" : dir;
  lora::write_peft_adapter(adapter_dir, pc, full, asked);
  {
    const MergedFrom src = merged_from(adapter_dir + "/adapter_model.safetensors", ck);
    nlohmann::ordered_json j = {{"checkpoint", src.checkpoint}, {"run_dir", src.run_dir}};
    if (!tok_bytes.empty()) j[kSourceTokenizerKey] = sha256_hex(tok_bytes.data(), tok_bytes.size());
    if (!recorded.empty()) j[model::kBaseSampleKey] = nlohmann::ordered_json::parse(recorded);
    if (const std::string data = recorded_training_data(ck.path); !data.empty())
      j[kTrainingDataKey] = nlohmann::ordered_json::parse(data, nullptr, false);
    // Paths need not be UTF-8, JSON must: bytes that are not become U+FFFD.
    write_file_atomic(adapter_dir + "/" + kAdapterSourceFile,
                      j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  }
  // The adapter folder carries its tokenizer too: cgsample given OUT/adapter reads its ids with it.
  if (o.merge && !tok_bytes.empty()) write_file_atomic(dir + "/adapter/tokenizer.model", tok_bytes);
  if (o.merge) {
    std::set<std::string> merged;
    const auto dtype = [&](const std::string& name) { return o.dtype.empty() ? base->dtype(name) : asked; };
    stream_hf_checkpoint(dir, shapes, dtype, lc, o.max_shard_bytes, [&](const std::string& name) {
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
    spdlog::info("merged {} LoRA pairs into as many of the base's {} tensors", merged.size() / 2, shapes.size());
    const MergedFrom from = merged_from(dir + "/adapter/adapter_model.safetensors", ck);
    finish_hf_folder(dir, cfg.model.hf_dir, /*base_dtypes=*/o.dtype.empty(), tok_bytes, &from);
  }
}

// export_run's staging folder in --out, made empty (an earlier failed export's removed). Whatever ends the export
// before the folder is renamed into place (a full disk, any error) removes it on the way out; once renamed, there
// is nothing left to remove.
struct StagingFolder {
  const std::string path;
  explicit StagingFolder(std::string p) : path(std::move(p)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~StagingFolder() {
    std::error_code ec;  // an error already on its way is what the user needs to see
    fs::remove_all(path, ec);
  }
  StagingFolder(const StagingFolder&) = delete;
  StagingFolder& operator=(const StagingFolder&) = delete;
};

// Moves what `stage` holds into `out`, replacing entries of the same name (and every weight file of an earlier HF
// export when this one has weights: its shard count may differ), then removes `stage`. Renames within one folder:
// no disk space needed. A stop signal (Slurm's TERM at the time limit, a Ctrl-C) that comes meanwhile would leave some
// new entries beside the earlier export's: it is held (a handler for the process, whichever thread gets it) and acts
// as it would have once every entry is in place.
void commit_export(const std::string& stage, const std::string& out) {
  HoldStopSignals held;  // common/hold_stop_signals.h
  static const std::regex weights(R"(model(-[0-9]{5}-of-[0-9]{5})?\.safetensors|model\.safetensors\.index\.json)");
  bool has_weights = false;
  for (const auto& e : fs::directory_iterator(stage))
    has_weights = has_weights || std::regex_match(e.path().filename().string(), weights);
  if (has_weights)
    for (const auto& e : fs::directory_iterator(out))
      if (e.is_regular_file() && std::regex_match(e.path().filename().string(), weights)) fs::remove(e.path());
  // Fault injection for tests (test_export_stream): CG_TEST_SIGNAL_IN_EXPORT_COMMIT=N raises signal N once the first
  // entry is in place. One getenv per export.
  const char* hook = std::getenv("CG_TEST_SIGNAL_IN_EXPORT_COMMIT");
  for (const auto& e : fs::directory_iterator(stage)) {
    const fs::path target = fs::path(out) / e.path().filename();
    fs::remove_all(target);
    fs::rename(e.path(), target);
    if (hook) std::raise(std::atoi(hook)), hook = nullptr;
  }
  fs::remove_all(stage);
  fsync_path(out, /*directory=*/true);
}

// An export that an earlier cgexport wrote whole but was stopped while moving into `out` (a SIGKILL, a power loss:
// kExportMovingDir is there): that move is finished first, so the folder holds one export whole again.
void finish_unfinished_export(const std::string& out) {
  const std::string moving = out + "/" + kExportMovingDir;
  if (!fs::exists(moving)) return;
  spdlog::warn("cgexport: {} holds an export that was stopped while it was moved into place ({}); finishing that "
               "move first", out, moving);
  commit_export(moving, out);
}

// RUN/checkpoints/step-N given as the run folder (cgsample takes such a path): RUN with step N.
ExportOptions from_step_folder(ExportOptions o) {
  const fs::path p = fs::path(o.run_dir).lexically_normal();
  const fs::path dir = p.has_filename() ? p : p.parent_path();
  const std::string name = dir.filename().string();
  std::smatch m;
  CG_CHECK(dir.parent_path().filename() != "checkpoints" || !std::regex_match(name, m, std::regex(std::string(kStepNumber) + "\\.tmp")),
           "cgexport: {} is a save that did not finish (a .tmp folder is never complete); give the run folder {} "
           "(its newest complete checkpoint) or one of its step-N folders", o.run_dir,
           dir.parent_path().parent_path().string());
  // (A run folder of its own that happens to sit at such a path, one that holds checkpoints/, is the run.)
  const int64_t n = step_of_folder(o.run_dir);
  if (n < 0) return o;
  CG_CHECK(o.step < 0 || o.step == n, "cgexport: {} is the checkpoint of step {}, but --step {} was given; give the "
           "run folder {} with --step, or the step folder alone", o.run_dir, n, o.step,
           dir.parent_path().parent_path().string());
  o.step = n;
  o.run_dir = dir.parent_path().parent_path().string();
  return o;
}

// The run's newest checkpoint, which "export the run" means. When it does not verify, an older intact one would be
// the export of another step than the user believes, so it is refused, saying what is wrong with the newest and how
// to export the newest intact one on purpose (--step). (A resume does take the newest intact one: it trains on past
// the damaged step, and its next save of that step moves the damaged folder aside.) A save still being written
// (step-N.tmp) is no checkpoint yet and is not looked at.
// The refusal of step folder `path` (step `step` of o.run_dir), which verify_checkpoint refused for `why`, worded as
// cgsample words it (unusable_refusal): unfinished or damaged, the newest intact step (`intact`) to export on purpose,
// and what to do about the folder. `what`: how the folder is named ("the newest checkpoint of RUN, PATH," or PATH).
[[noreturn]] void refuse_unusable(const ExportOptions& o, const std::string& what, int64_t step, const std::string& why,
                                  int64_t intact) {
  std::string options = o.merge ? " --merge" : "";
  if (!o.base.empty()) options += " --base " + o.base;
  if (!o.dtype.empty()) options += " --dtype " + o.dtype;
  CG_FAIL("cgexport: {}", unusable_refusal(what, step, why, intact, fmt::format("to export it on purpose, run "
          "cgexport {} --step {} --out {}{}", o.run_dir, intact, o.out, options)));
}

CheckpointInfo newest_run_checkpoint(const ExportOptions& o) {
  const NewestCheckpoint n = newest_checkpoint(o.run_dir);
  CG_CHECK(n.info.step >= 0, "{} has no complete checkpoint under checkpoints/; train first", o.run_dir);
  if (n.why.empty()) return n.info;
  refuse_unusable(o, fmt::format("the newest checkpoint of {}, {},", o.run_dir, n.info.path), n.info.step, n.why,
                  n.newest_intact);
}

}  // namespace

namespace {

// o[key] when it is a string, else "": provenance fields are hints, and a hand-edited file must not stop a run.
std::string string_field(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

MergedFrom peft_adapter_record(const std::string& peft_dir) {
  MergedFrom m;
  const fs::path src = fs::path(peft_dir) / kAdapterSourceFile;
  if (fs::is_regular_file(src)) {
    const auto j = nlohmann::json::parse(read_file(src.string(), kAdapterSourceFile), nullptr, false);
    if (j.is_object()) {
      m.checkpoint = string_field(j, "checkpoint");
      m.run_dir = string_field(j, "run_dir");
      m.tokenizer_sha256 = string_field(j, kSourceTokenizerKey);
    }
  }
  return m;
}

std::string training_data_json(const ShardMeta& meta, const std::string& shards_dir) {
  nlohmann::ordered_json j = {{"shards_dir", shards_dir}, {"source_path", meta.source_path},
                              {"source_sha256", meta.source_sha256}, {"derived_properties", meta.derived_properties}};
  if (!meta.source_columns.empty()) j["source_columns"] = meta.source_columns;  // data.columns: heat_ref read as ...
  const auto counts = nlohmann::ordered_json::parse(meta.property_counts, nullptr, false);
  j["property_counts"] = counts.is_object() ? counts : nlohmann::ordered_json(nullptr);
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";  // paths need not be UTF-8
}

namespace {

// A record cgtrain keeps in a step folder as `file` and cgexport copies into a PEFT folder's kAdapterSourceFile under
// `key`: the file's text, else that key's JSON; "" when `folder` has neither.
std::string recorded(const std::string& folder, const char* file, const char* key) {
  const fs::path step_file = fs::path(folder) / file, src = fs::path(folder) / kAdapterSourceFile;
  if (fs::is_regular_file(step_file)) return read_file(step_file.string(), file);
  if (!fs::is_regular_file(src)) return "";
  const auto j = nlohmann::json::parse(read_file(src.string(), kAdapterSourceFile), nullptr, false);
  return j.is_object() && j.contains(key) ? j[key].dump() : "";
}

}  // namespace

std::string recorded_training_data(const std::string& folder) {
  return recorded(folder, kTrainingDataFile, kTrainingDataKey);
}

std::string recorded_base_sample(const std::string& folder) {
  return recorded(folder, model::kBaseSampleFile, model::kBaseSampleKey);
}

std::string other_base(const std::string& recorded, const std::string& now, const std::string& what,
                       const std::string& hf_dir) {
  if (recorded.empty() || now.empty()) return "";
  const std::string diff =
      model::base_sample_difference(model::BaseSample::from_json(recorded, what + "'s record of its base"),
                                    model::BaseSample::from_json(now, hf_dir), "the base it was trained on", hf_dir);
  return diff.empty() ? "" : fmt::format("{} was trained on other weights than model.hf_dir={} holds: {}", what, hf_dir, diff);
}

MergedFrom peft_adapter_source(const std::string& peft_dir) {
  MergedFrom m = peft_adapter_record(peft_dir);
  const fs::path w = fs::path(peft_dir) / "adapter_model.safetensors";
  if (fs::is_regular_file(w)) m.adapter_sha256 = sha256_file_memo(w.string());  // cgsample hashes it again
  return m;
}

MergedFrom checkpoint_source(const std::string& step_folder) {
  const fs::path step = fs::weakly_canonical(step_folder);
  return {"", step.string(), step.parent_path().parent_path().string()};
}

std::string merged_twice(const std::string& hf_dir, const MergedFrom& candidate, const std::string& what) {
  const fs::path cfg = fs::path(hf_dir) / "config.json";
  if (!fs::is_regular_file(cfg)) return "";
  const auto j = nlohmann::json::parse(read_file(cfg.string(), "config.json"), nullptr, false);
  if (!j.is_object() || !j.contains(kMergedKey) || !j[kMergedKey].is_object()) return "";
  const auto& m = j[kMergedKey];
  const std::string sha = string_field(m, "adapter_sha256"), run = string_field(m, "run_dir"),
                    ck = string_field(m, "checkpoint");
  const bool same_file = !sha.empty() && sha == candidate.adapter_sha256;
  const bool same_run = !run.empty() && run == candidate.run_dir;
  if (!same_file && !same_run) return "";
  return fmt::format("model.hf_dir {} already has {} merged in (cgexport --merge), and {} is {}: applying it adds "
                     "that update a second time; use the merged model without an adapter, or give the run's base as "
                     "model.hf_dir", hf_dir, ck.empty() ? "an adapter" : "checkpoint " + ck, what,
                     same_file ? "that adapter" : "a checkpoint of the same run " + run);
}

std::string export_run(const ExportOptions& given) {
  const ExportOptions o = from_step_folder(given);
  CG_CHECK(!o.out.empty(), "cgexport: give --out DIR");
  CG_CHECK(std::filesystem::is_regular_file(o.run_dir + "/config.yaml"), "cgexport: {} is not a cgtrain run folder "
           "(it has no config.yaml); give the train.run_dir of a training run, e.g. runs/tiny", o.run_dir);
  CheckpointInfo ck;
  if (o.step >= 0) {
    ck.step = o.step;
    ck.path = step_folder(o.run_dir, o.step);
    if (!std::filesystem::exists(ck.path)) {
      const std::vector<int64_t> steps = checkpoint_steps(o.run_dir);
      CG_FAIL("{} has no checkpoint of step {} (no {}); {}", o.run_dir, o.step, ck.path,
              steps.empty() ? std::string("it has no checkpoints")
                            : fmt::format("its checkpoints are of steps {} (newest first)", fmt::join(steps, ", ")));
    }
    const std::string why = verify_checkpoint(ck.path, &ck.manifest);
    if (!why.empty()) refuse_unusable(o, ck.path, o.step, why, newest_intact_step(o.run_dir, o.step));
  } else {
    ck = newest_run_checkpoint(o);
  }
  // The config and model shape the checkpoint was trained under (LoRA scale, targets, base).
  const CheckpointConfigs cc = read_checkpoint_configs(o.run_dir, ck);
  Config cfg = cc.config;
  if (!o.base.empty()) {
    CG_CHECK(!cfg.model.hf_dir.empty(), "cgexport: --base {} given, but {} was trained from a random init (flavor "
             "{}, no model.hf_dir): its base is rebuilt from model.init_seed; drop --base", o.base, o.run_dir,
             cfg.model.flavor);
    CG_CHECK(fs::is_directory(o.base), "cgexport: --base {} is not a folder", o.base);
    if (o.base != cfg.model.hf_dir)
      spdlog::info("base model: {} (--base; the run was trained on {})", o.base, cfg.model.hf_dir);
    cfg.model.hf_dir = o.base;
  }
  const bool needs_base = o.merge && cfg.lora.enabled;
  CG_CHECK(!needs_base || cfg.model.hf_dir.empty() || fs::is_directory(cfg.model.hf_dir),
           "cgexport: {} was trained on the base model {}, which is not there any more; give its new place with "
           "--base DIR (the same weights: shapes are checked)", o.run_dir, cfg.model.hf_dir);
  const model::LlamaConfig& lc = cc.llama;
  const at::ScalarType asked = o.dtype.empty() ? at::kFloat : lora::peft_dtype(o.dtype);
  std::map<std::string, at::Tensor> full = read_full_params(ck);  // LoRA factors (small), or a full run's weights
  const model::NamedShapes shapes = model::llama_tensor_shapes(lc);
  if (!cfg.model.hf_dir.empty() && fs::exists(o.out)) {
    std::error_code ec;
    CG_CHECK(!fs::equivalent(o.out, cfg.model.hf_dir, ec), "cgexport: --out {} is the base model folder "
             "(model.hf_dir); choose another output folder", o.out);
  }
  {
    // Under checkpoints/ an export is lost to checkpoint rotation, and the run folder itself reads as its newest
    // checkpoint (cgsample's sample.adapter); a folder of its own inside the run (RUN/adapter, as cgsweep does) is
    // fine.
    const fs::path run_abs = fs::weakly_canonical(o.run_dir), out_abs = fs::weakly_canonical(o.out);
    const fs::path rel = out_abs.lexically_relative(run_abs);
    const bool inside = !rel.empty() && *rel.begin() != "..";
    CG_CHECK(!inside || (rel != "." && *rel.begin() != "checkpoints"), "cgexport: --out {} is {} of {}, where "
             "checkpoint rotation deletes step folders and a run folder reads as its newest checkpoint; choose "
             "another folder (e.g. {}/adapter or {}_export)", o.out, rel == "." ? "the run folder" :
             "under the checkpoints folder", o.run_dir, o.run_dir, run_abs.string());
  }
  // The weights a merge reads, or --base names as the adapter's base_model_name_or_path, must be the ones it was
  // trained on (cgtrain's record of them in the step folder; none in older builds' checkpoints).
  if (cfg.lora.enabled && (o.merge || !o.base.empty()) && !cfg.model.hf_dir.empty()) {
    const std::string why = other_base(recorded_base_sample(ck.path), model::sample_base(cfg.model.hf_dir).to_json(),
                                       "checkpoint " + ck.path, cfg.model.hf_dir);
    CG_CHECK(why.empty(), "cgexport: {}; {}", why, o.base.empty() ? "give the folder of the weights it was trained on "
             "as --base DIR" : "--base must be the folder of the weights it was trained on (a copy anywhere is fine)");
  }
  MadeFolders made(o.out);  // a failed export into a new folder leaves no empty one
  make_output_dir(o.out, "cgexport --out");
  finish_unfinished_export(o.out);
  check_no_other_export(o.out, /*weights=*/o.merge || !cfg.lora.enabled);
  const std::optional<std::string> earlier = earlier_export(o.out, /*weights=*/o.merge || !cfg.lora.enabled);
  // Everything is written into a staging folder inside --out and moved into place at the end: a failed export (a
  // full disk) leaves an earlier export in the folder as it was. Whole, the staging folder is renamed in one step to
  // the name that says so, then moved in. Killed during the moves, the folder keeps the rest there, readers refuse it
  // (check_no_unfinished_export), and the next cgexport into it finishes the move.
  const std::string moving = o.out + "/" + kExportMovingDir;
  {
    const StagingFolder stage(o.out + "/" + kExportStaging);
    try {
      write_export(o, ck, cfg, lc, shapes, asked, full, stage.path);
    } catch (const IoError& e) {  // a full disk: the file, the OS reason, and what to change (--out), not the advice
                                  // of a bare file write ("write elsewhere")
      CG_FAIL("cgexport: {}; {} (nothing in {} was replaced: an earlier export there is kept as it was)", e.failure,
              io_advice(e.err, "give --out another folder"), o.out);
    }
    fsync_path(stage.path, /*directory=*/true);
    fs::rename(stage.path, moving);
  }
  fsync_path(o.out, /*directory=*/true);
  commit_export(moving, o.out);
  made.keep();
  // Said, not asked: exporting a later checkpoint over the earlier one is the usual way to refresh an adapter, but a
  // user who meant to keep both learns it here (cgsample says the same of its outputs).
  if (earlier)
    spdlog::warn("cgexport: replaced the earlier export{} in {}; give --out another folder to keep exports side by "
                 "side", earlier->empty() ? "" : " of " + *earlier, o.out);
  return ck.path;
}

}  // namespace cg
