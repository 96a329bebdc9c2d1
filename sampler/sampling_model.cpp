// load_sampling_model: resolve what sample.adapter / model.hf_dir name, then dist::build_llama with an adapter step.
#include "sampler/sampling_model.h"

#include <nlohmann/json.hpp>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/folder_kind.h"
#include "common/input_error.h"
#include "common/sha256.h"
#include "dist/tp_plan.h"
#include "lora/inject.h"
#include "lora/peft.h"
#include "model/llama_config.h"
#include "sampler/sample_jobs.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/train_export.h"
#include "trainer/train_model.h"

namespace cg {

namespace fs = std::filesystem;

namespace {

// A run checkpoint resolved to its step folder, the run's config and model shape, and the full trainable tensors.
struct RunCheckpoint {
  std::string run_dir;
  CheckpointInfo ckpt;
  Config config;
  model::LlamaConfig llama;
  std::map<std::string, at::Tensor> full;  // "model.layers.0.self_attn.q_proj.lora_A.weight" or base names
};

RunCheckpoint read_run_checkpoint(const std::string& path) {
  RunCheckpoint r;
  // A step folder that does not verify is refused as cgexport refuses it: unfinished or damaged, the run's newest
  // intact step to sample on purpose, and what to do about the folder.
  const auto refuse = [&](const std::string& what, int64_t step, const std::string& why, int64_t intact) {
    CG_FAIL("sample.adapter {}", unusable_refusal(what, step, why, intact, "to sample it on purpose, set "
                                                  "sample.adapter=" + step_folder(r.run_dir, intact)));
  };
  if (fs::exists(fs::path(path) / "manifest.json") || step_of_folder(path) >= 0) {  // run_dir/checkpoints/step-N
    r.ckpt.path = path;
    r.run_dir = fs::path(path).lexically_normal().parent_path().parent_path().string();
    if (fs::path(path).lexically_normal().filename().empty())  // trailing '/'
      r.run_dir = fs::path(path).lexically_normal().parent_path().parent_path().parent_path().string();
    const std::string why = verify_checkpoint(path, &r.ckpt.manifest);
    const int64_t named = step_of_folder(path);
    if (!why.empty()) refuse(path, named, why, newest_intact_step(r.run_dir, named));
    r.ckpt.step = r.ckpt.manifest.step;
  } else {
    // A run folder means its newest step: an older intact one would sample another model than the user believes.
    r.run_dir = path;
    const NewestCheckpoint n = newest_checkpoint(path);
    CG_CHECK(n.info.step >= 0, "sample.adapter {}: no complete checkpoint under {}/checkpoints; train first or name "
             "a step folder", path, path);
    if (!n.why.empty())
      refuse(fmt::format("{}: its newest checkpoint {}", path, n.info.path), n.info.step, n.why, n.newest_intact);
    r.ckpt = n.info;
  }
  if (r.run_dir.empty()) r.run_dir = ".";
  CheckpointConfigs cc = read_checkpoint_configs(r.run_dir, r.ckpt);
  r.config = std::move(cc.config);
  r.llama = cc.llama;
  r.full = read_full_params(r.ckpt);
  return r;
}

lora::LoraSpec inference_spec(int64_t r, double alpha, bool rslora) {
  lora::LoraSpec s;
  s.r = r;
  s.alpha = alpha;
  s.rslora = rslora;
  s.dropout = 0.0;
  return s;
}

// The base folder an adapter is merged into: the same weights on every rank, not an adapter folder itself
// (transformers would apply that one; here it would be ignored), not a cgexport --merge of this adapter or of a
// checkpoint of its run (applied twice), and the weights the adapter was trained on: refused when its record of them
// (cgtrain's sample, model/base_sample.h) differs; without a record, warned when its base is another folder still
// there (a copy elsewhere is fine).
// trained_base: the base the adapter was trained on (a PEFT adapter's base_model_name_or_path, a LoRA run's
// model.hf_dir); run_checkpoint: the step folder of a run checkpoint. Collective (the ranks' bases are compared).
// Returns the base's sample, as every rank agreed on it.
std::string check_base_folder(const std::string& hf_dir, const std::string& adapter, AdapterKind kind,
                       const std::string& trained_base, const std::string& run_checkpoint,
                       const dist::ParallelDims& dims) {
  CG_CHECK(!is_peft_adapter_folder(hf_dir), "model.hf_dir {} holds a PEFT adapter "
           "(adapter_config.json), which would not be applied: give its base as model.hf_dir and the adapter as "
           "sample.adapter={}", hf_dir, hf_dir);
  // Every rank reads the same folder here (under load_sampling_model's every_rank_alike): a broken one, or another
  // copy on some rank, is said once.
  const std::string now = agreed_base_sample(hf_dir);
  if (kind == AdapterKind::kNone) return now;
  const std::string twice = merged_twice(hf_dir, kind == AdapterKind::kPeft ? peft_adapter_source(adapter)
                                                                            : checkpoint_source(run_checkpoint),
                                         "sample.adapter " + adapter);
  CG_CHECK(twice.empty(), "{}", twice);
  const bool peft = kind == AdapterKind::kPeft;
  const std::string recorded = recorded_base_sample(peft ? adapter : run_checkpoint);
  const std::string other = other_base(recorded, now, "sample.adapter " + adapter, hf_dir);
  CG_CHECK(other.empty(), "{}; {}", other, peft ? fmt::format("set model.hf_dir to the base it was trained on{}. To "
           "apply it to these weights anyway, remove its {}", trained_base.empty() ? "" : " (its base_model_name_or_path: "
           + trained_base + ")", kAdapterSourceFile) : fmt::format("set model.hf_dir to a copy of the weights it was trained on (the run's "
           "model.hf_dir was {})", trained_base));
  std::error_code ec;
  if (!recorded.empty() || dims.rank != 0 || trained_base.empty() || !fs::is_directory(trained_base) ||
      fs::equivalent(trained_base, hf_dir, ec))
    return now;
  spdlog::warn("{}, but model.hf_dir is {}: fine if that is a copy of the same weights, wrong otherwise{}",
               peft ? fmt::format("PEFT adapter {} names the base {} (base_model_name_or_path)", adapter, trained_base)
                    : fmt::format("run checkpoint {} was trained on the base {} (its config.yaml model.hf_dir), "
                                  "which is still there", run_checkpoint, trained_base),
               hf_dir, peft ? "" : " (leave model.hf_dir empty to use the run's)");
  return now;
}

}  // namespace

dist::ParallelDims sampling_dims(const Config& c, const c10::Device& device, int world) {
  if (world == 1 && c.parallel.tp == 1) return dist::single_process_dims();
  return dist::make_parallel_dims(static_cast<int>(c.parallel.tp), static_cast<int>(c.parallel.dp),
                                  dist::backend_from_name(c.parallel.backend, device.is_cuda()),
                                  dist::collective_wait_from_name(c.parallel.mpi_wait));
}

AdapterKind adapter_kind(const std::string& path) {
  if (path.empty()) return AdapterKind::kNone;
  const fs::path p(path);
  CG_CHECK(fs::is_directory(p), "sample.adapter {} is not a folder: give a PEFT adapter folder, a cgtrain run_dir or "
           "a run_dir/checkpoints/step-N folder (or leave it empty)", path);
  // A folder cgexport is writing (or was stopped in) holds no adapter_config.json yet, or a mix of two exports.
  check_no_unfinished_export(path, "sample.adapter");
  if (is_peft_adapter_folder(path)) return AdapterKind::kPeft;
  // A step folder without its manifest.json is one too, by its name: refused as unfinished (read_run_checkpoint).
  if (is_cgtrain_folder(path) || step_of_folder(path) >= 0) return AdapterKind::kRunCheckpoint;
  CG_CHECK(!fs::exists(p / "config.json"), "sample.adapter {} holds a model (config.json), not an adapter: give it as "
           "model.hf_dir={} and leave sample.adapter empty (a cgexport --merge folder has its adapter in adapter/)",
           path, path);
  CG_FAIL("sample.adapter {} holds neither adapter_config.json (PEFT), manifest.json (a step-N checkpoint) nor "
          "checkpoints/ (a run_dir){}: give cgexport's --out folder, a cgtrain run_dir or a run_dir/checkpoints/step-N "
          "folder (or leave it empty)", path,
          owned_by_tool(path) == OwnedBy::kCgprep ? "; it is cgprep's shards folder" : unfinished_export_note(path));
}

namespace {

// The tokenizer file sampling reads (see sampling_tokenizer_path), given the adapter's own one (`own`, "" if none).
std::string chosen_tokenizer(const Config& c, const std::string& own) {
  if (c.data.tokenizer != "train") {
    std::error_code ec;
    CG_CHECK(fs::is_regular_file(c.data.tokenizer, ec), "data.tokenizer={} {}; set data.tokenizer to the "
             "tokenizer.model the model was trained with{}", c.data.tokenizer,
             fs::exists(c.data.tokenizer, ec) ? "is not a file" : "does not exist",
             !own.empty() ? fmt::format(", or leave it at \"train\" to use the adapter's own ({})", own)
                          : std::string(", or leave it at \"train\" to use model.hf_dir's tokenizer.model"));
    if (!own.empty()) {
      const std::string a = sha256_file_memo(own), b = sha256_file_memo(c.data.tokenizer);
      CG_CHECK(a == b, "sample.adapter {} was trained with the tokenizer {} (sha256 {}), not data.tokenizer={} "
               "(sha256 {}): its token ids would be read as other pieces; leave data.tokenizer at \"train\" to use "
               "the adapter's, or give that file", c.sample.adapter, own, a.substr(0, 12), c.data.tokenizer,
               b.substr(0, 12));
    }
    return c.data.tokenizer;
  }
  if (!own.empty()) return own;
  // No adapter (or one without a tokenizer): the base model's (a merged cgexport), else the shards' (a run of the
  // tiny flavor on its own shards).
  if (!c.model.hf_dir.empty() && fs::is_regular_file(fs::path(c.model.hf_dir) / "tokenizer.model"))
    return (fs::path(c.model.hf_dir) / "tokenizer.model").string();
  // The shards' tokenizer would be a guess here: the base names its own, in a format read after a conversion.
  const fs::path json = fs::path(c.model.hf_dir) / "tokenizer.json";
  CG_CHECK(c.model.hf_dir.empty() || !fs::is_regular_file(json), "model.hf_dir {} has its tokenizer as tokenizer.json "
           "only: convert it (cgtok hf-json {} {}/tokenizer.model) or set data.tokenizer to the tokenizer the model "
           "was trained with", c.model.hf_dir, json.string(), c.model.hf_dir);
  return c.data.shards_dir + "/tokenizer.model";  // the caller's "cannot read" error names it
}

}  // namespace

std::string sampling_tokenizer_path(const Config& c) {
  // The adapter's own tokenizer: cgexport copies it beside a PEFT adapter, cgtrain keeps it in every step folder
  // and in the run folder (a resume refuses another one, so the run's checkpoints share it).
  std::string own;
  if (!c.sample.adapter.empty() && fs::is_regular_file(fs::path(c.sample.adapter) / kCheckpointTokenizer))
    own = (fs::path(c.sample.adapter) / kCheckpointTokenizer).string();
  const std::string path = chosen_tokenizer(c, own);
  // cgexport records the digest of the tokenizer the adapter was trained with: whichever tokenizer is read (one put
  // beside the adapter since, data.tokenizer, or, in a folder without one, the base's or the shards') must be it, or
  // every id would be read as another piece.
  const std::string recorded = !c.sample.adapter.empty() && is_peft_adapter_folder(c.sample.adapter)
                                   ? peft_adapter_record(c.sample.adapter).tokenizer_sha256
                                   : "";
  if (!recorded.empty() && fs::is_regular_file(path)) {
    const std::string sha = sha256_file_memo(path);
    CG_CHECK(sha == recorded, "sample.adapter {} was trained with a tokenizer of sha256 {} ({}), but {} has sha256 "
             "{}: its token ids would be read as other pieces; {}", c.sample.adapter, recorded.substr(0, 12),
             kAdapterSourceFile, path, sha.substr(0, 12),
             path == own ? "put back the tokenizer.model of the run (its run_dir/tokenizer.model), or run cgexport "
                           "again"
             : c.data.tokenizer != "train"
                 ? "leave data.tokenizer at \"train\" to use the adapter's, or give the tokenizer it was trained with"
                 : "the adapter folder has no tokenizer.model of its own: copy the run's (its run_dir/tokenizer.model) "
                   "beside it, or set data.tokenizer to it");
  }
  // The base model's embeddings belong to its own tokenizer: another one (an adapter of a run on another base, a
  // data.tokenizer of another model) would feed it other ids for the same text.
  if (fs::is_regular_file(path))
    check_base_tokenizer(c.model.hf_dir, path, "the tokenizer read", [&](const std::string& base_tok) {
      return path == own ? fmt::format("sample.adapter {} was trained with another tokenizer, so on another base: "
                                       "give that base as model.hf_dir", c.sample.adapter)
                         : fmt::format("set data.tokenizer={} (or leave it at \"train\")", base_tok);
    }, /*warn_if_none=*/false);
  return path;
}

namespace {

// load_sampling_model, its errors as they come.
model::Llama read_sampling_model(const Config& c, const dist::ParallelDims& dims, int64_t tokenizer_vocab,
                                 const c10::Device& device, std::string* description, std::string* identity) {
  dist::ModelBuildOptions bo;
  bo.dtype = model::resolve_dtype(c.model.dtype, device);
  bo.device = device;
  bo.train_base = false;
  std::function<void(model::Llama&)> adapter_step;
  std::string desc;
  lora::LoraSet lora_set;

  const AdapterKind kind = adapter_kind(c.sample.adapter);
  bool every_weight_from_adapter = false;  // a full-parameter run checkpoint: the base weights are not used
  std::string peft_base;                   // a PEFT adapter's base_model_name_or_path
  std::string run_checkpoint;              // a run checkpoint's step folder
  std::string run_base;                    // its run's model.hf_dir
  if (kind == AdapterKind::kRunCheckpoint) {
    auto run = std::make_shared<RunCheckpoint>(read_run_checkpoint(c.sample.adapter));
    const Config& rc = run->config;
    bo.config = run->llama;
    bo.config_from = "run checkpoint " + run->ckpt.path + " (its run's model_config.json)";
    run_checkpoint = run->ckpt.path;
    bo.hf_dir = c.model.hf_dir.empty() ? rc.model.hf_dir : c.model.hf_dir;  // the sampling config may move the base
    run_base = rc.model.hf_dir;
    bo.init_seed = rc.model.init_seed;
    if (!rc.lora.enabled) {
      every_weight_from_adapter = true;
      desc = fmt::format("full-parameter run checkpoint {} (step {})", run->ckpt.path, run->ckpt.step);
      adapter_step = [run](model::Llama& m) {
        torch::NoGradGuard ng;
        for (const auto& p : m->param_specs()) {
          auto it = run->full.find(p.name);
          CG_CHECK(it != run->full.end(), "{} has no weight {}: it is not a full-parameter checkpoint of this model",
                   run->ckpt.path, p.name);
          p.param.detach().copy_(p.slice_of(it->second));
        }
      };
    } else {
      desc = fmt::format("LoRA run checkpoint {} (step {}, r {}, targets {}) merged into base {}", run->ckpt.path,
                         run->ckpt.step, rc.lora.r, fmt::join(rc.lora.targets, ","),
                         bo.hf_dir.empty() ? fmt::format("random init seed {}", bo.init_seed) : bo.hf_dir);
      adapter_step = [run, &lora_set, &dims, device](model::Llama& m) {
        const Config& rc = run->config;
        lora_set = lora::inject_lora(*m, inference_spec(rc.lora.r, rc.lora.alpha, rc.lora.rslora), rc.lora.targets,
                                     dims.tp_comm, device, nullptr);
        lora_set.load_full(run->full, "run checkpoint " + run->ckpt.path,
                           "its LoRA factors do not match its own config.yaml (edited after training?)");
      };
    }
  } else {
    bo.config =
        model::resolve_llama_config(c.model.flavor, c.model.hf_dir, c.model.hf_dir.empty() ? tokenizer_vocab : 0);
    bo.hf_dir = c.model.hf_dir;
    bo.init_seed = c.model.init_seed;
    desc = c.model.hf_dir.empty() ? fmt::format("random init of flavor {} (seed {})", c.model.flavor, c.model.init_seed)
                                  : "HF checkpoint " + c.model.hf_dir;
    if (kind == AdapterKind::kPeft) {
      auto ad = std::make_shared<lora::PeftAdapter>(lora::read_peft_adapter(c.sample.adapter));
      lora::check_adapter_against_base(*ad, c.sample.adapter, bo.hf_dir, "PEFT adapter " + c.sample.adapter,
                                       dims.rank == 0);
      peft_base = ad->config.base_model_name_or_path;
      desc += fmt::format(" + PEFT adapter {} (r {} on {}) merged", c.sample.adapter, ad->config.r,
                          fmt::join(ad->config.target_modules, ","));
      const std::string dir = c.sample.adapter, base = bo.hf_dir.empty() ? "the random-init base" : bo.hf_dir;
      const int64_t n_layers = bo.config.num_hidden_layers;
      adapter_step = [ad, dir, base, n_layers, &lora_set, &dims, device](model::Llama& m) {
        lora_set = lora::inject_lora(*m, inference_spec(ad->config.r, ad->config.lora_alpha, ad->config.use_rslora),
                                     ad->config.target_modules, dims.tp_comm, device, nullptr,
                                     dir + "/adapter_config.json target_modules");
        const std::string partial = lora::some_layers_only(*ad, n_layers, "PEFT adapter " + dir);
        CG_CHECK(partial.empty(), "{}", partial);
        lora_set.load_full(ad->factors, "PEFT adapter " + dir,
                           fmt::format("was it trained on this base ({}, model.hf_dir)? Or its tensors and its "
                                       "adapter_config.json target_modules [{}] disagree", base,
                                       fmt::join(ad->config.target_modules, ",")));
      };
    }
  }
  std::string base_sample;  // the base's sampled weights (model/base_sample.h), when the model has one
  if (!bo.hf_dir.empty() && !every_weight_from_adapter)
    base_sample = check_base_folder(bo.hf_dir, c.sample.adapter, kind, kind == AdapterKind::kPeft ? peft_base : run_base,
                      run_checkpoint, dims);
  // An adapter of a real base merged into random weights makes every sample noise: refused on every rank, before the
  // model is built.
  CG_CHECK(!bo.hf_dir.empty() || every_weight_from_adapter || peft_base.empty() ||
               peft_base.rfind(kRandomBasePrefix, 0) == 0,
           "PEFT adapter {} was trained on base {} (its base_model_name_or_path), but model.hf_dir is empty, so it "
           "would be merged into random weights and every sample would be noise: set model.hf_dir={} (or the folder "
           "that holds that model here)", c.sample.adapter, peft_base, peft_base);
  if (bo.hf_dir.empty() && !every_weight_from_adapter && dims.rank == 0) {
    const std::string random_base = kRandomBasePrefix;
    if (peft_base.rfind(random_base, 0) == 0) {
      const std::string flavor = peft_base.substr(random_base.size());
      if (flavor != c.model.flavor)
        spdlog::warn("PEFT adapter {} was trained on the random-init base of flavor {} (its base_model_name_or_path "
                     "{}), but this is the random init of flavor {}: set model.flavor={}", c.sample.adapter, flavor,
                     peft_base, c.model.flavor, flavor);
      else
        spdlog::warn("PEFT adapter {} was trained on a random-init base: it is merged into the random init of flavor "
                     "{} with model.init_seed {}, the training run's base only if that run used the same seed (fine "
                     "for tests, meaningless otherwise)", c.sample.adapter, flavor, c.model.init_seed);
    } else {
      spdlog::warn("sampling model has random base weights (no model.hf_dir): fine for tests, meaningless otherwise");
    }
  }

  if (identity) {
    nlohmann::json id;
    id["base"] = every_weight_from_adapter ? "none"
                 : bo.hf_dir.empty()       ? fmt::format("random init seed {}", bo.init_seed)
                                           : base_sample;
    if (!run_checkpoint.empty())  // its files' digests
      id["run_checkpoint"] = read_file(run_checkpoint + "/manifest.json", "checkpoint manifest");
    if (kind == AdapterKind::kPeft)
      id["peft"] = sha256_file_memo(c.sample.adapter + "/adapter_model.safetensors") + " " +
                   sha256_file_memo(c.sample.adapter + "/adapter_config.json");
    id["config"] = bo.config.to_hf_json();
    const std::string text = id.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    *identity = sha256_hex(text.data(), text.size());
  }
  check_ranks_agree(bo.config);
  model::Llama m = dist::build_llama(bo, dims, adapter_step);
  if (lora_set.size() > 0) {
    torch::NoGradGuard ng;
    lora::merge_lora(lora_set);  // local W += scale B A on every rank's slices: no LoRA left at decode time
  }
  m->fuse_for_inference();  // one q/k/v and one gate/up matmul per layer: fewer kernel launches per decode step
  m->set_decode_kernels(model::decode_kernels_from(c.sample.decode_kernels));
  m->eval();
  if (description) *description = desc;
  return m;
}

}  // namespace

// Every rank reads the same files the config names, at the same point of the launch: their errors are every rank's,
// said once under mpirun (every_rank_alike), as cgtrain's are.
SamplingTokenizer load_sampling_tokenizer(const Config& c) {
  return every_rank_alike([&] {
    check_sample_adapter_exists(c);  // first: a missing adapter is said as itself, not as a tokenizer not found
    std::string path = sampling_tokenizer_path(c);
    Tokenizer tokenizer = Tokenizer::load(path);
    return SamplingTokenizer{std::move(path), std::move(tokenizer)};
  });
}

model::Llama load_sampling_model(const Config& c, const dist::ParallelDims& dims, int64_t tokenizer_vocab,
                                 const c10::Device& device, std::string* description, std::string* identity) {
  return every_rank_alike([&] { return read_sampling_model(c, dims, tokenizer_vocab, device, description, identity); });
}

}  // namespace cg
