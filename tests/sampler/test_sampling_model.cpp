// load_sampling_model from each source cgsample accepts, against an independent expectation (single process):
//   PEFT adapter (merged)            == an HF checkpoint whose weights were merged by hand: W + scale * B A
//   LoRA run checkpoint (run_dir, step-N folder) == the training model it was saved from (unmerged LoRA, eval)
//   full-parameter run checkpoint    == the training model it was saved from
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/input_error.h"
#include "common/sha256.h"
#include "data/shard.h"
#include "data/sp_model.h"
#include "lora/peft.h"
#include "model/base_sample.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "sampler/sampling_model.h"
#include "sampler/trained_text.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/config.h"
#include "trainer/train_export.h"
#include "tests/test_util.h"
#include "trainer/train_model.h"

namespace cg {
namespace {

namespace fs = std::filesystem;

model::LlamaConfig micro() {
  model::LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.num_hidden_layers = 2;
  c.vocab_size = 61;
  c.max_position_embeddings = 64;
  return c;
}

// A fresh folder in the process's own scratch folder (tests/test_util.h: removed when every test passed).
std::string scratch(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("sampling_model_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// Random base written as an HF checkpoint; returns its full tensors in checkpoint order.
std::vector<std::pair<std::string, at::Tensor>> write_base(const std::string& dir) {
  model::Llama m(micro());
  model::init_weights(*m, 3, 0.2);
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& p : m->param_specs()) t.emplace_back(p.name, p.param.detach().clone());
  model::write_hf_checkpoint(dir, t, micro());
  return t;
}

// Random LoRA factors (times 0.3) of shape [r, in] and [out, r] for each layer weight of `base` that is one of
// pc.target_modules, under PEFT's names without its base_model.model. prefix.
std::map<std::string, at::Tensor> random_factors(const std::vector<std::pair<std::string, at::Tensor>>& base,
                                                 const lora::PeftConfig& pc, at::Generator& g) {
  std::map<std::string, at::Tensor> factors;
  for (const auto& [name, W] : base) {
    const std::string mod = name.substr(0, name.size() - 7);  // drop ".weight"
    const std::string leaf = mod.substr(mod.rfind('.') + 1);
    if (name.find("layers.") == std::string::npos ||
        std::find(pc.target_modules.begin(), pc.target_modules.end(), leaf) == pc.target_modules.end())
      continue;
    factors[mod + ".lora_A.weight"] = at::randn({pc.r, W.size(1)}, g) * 0.3;
    factors[mod + ".lora_B.weight"] = at::randn({W.size(0), pc.r}, g) * 0.3;
  }
  return factors;
}

at::Tensor probe_tokens() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  return at::randint(micro().vocab_size, {2, 9}, g, at::TensorOptions().dtype(at::kLong));
}

at::Tensor logits_of(model::LlamaImpl& m) {
  torch::NoGradGuard ng;
  return m.forward(probe_tokens());
}

Config sampling_config(const std::string& hf_dir, const std::string& adapter) {
  Config c;
  c.model.hf_dir = hf_dir;
  c.model.device = "cpu";
  c.model.dtype = "fp32";
  c.sample.adapter = adapter;
  return c;
}

// sampling_tokenizer_path's error for a config ("<no error>" when it picks a tokenizer).
std::string tokenizer_error(const Config& c) {
  try {
    sampling_tokenizer_path(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// load_sampling_model's error for a base folder and an adapter ("<no error>" when it loads).
std::string load_error(const std::string& hf_dir, const std::string& adapter) {
  try {
    load_sampling_model(sampling_config(hf_dir, adapter), dist::single_process_dims(), 0, at::kCPU);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// A tied base (tie_word_embeddings true, no lm_head.weight): cgsample's model, bare and with a PEFT adapter, equals
// the one of an untied copy whose lm_head.weight is the embedding.
TEST(SamplingModel, TiedBaseEqualsItsUntiedCopy) {
  const std::string d = scratch("tied");
  const auto base = write_base(d + "/drawn");
  std::vector<std::pair<std::string, at::Tensor>> without, copy;
  for (const auto& [name, W] : base) {
    if (name != "lm_head.weight") without.emplace_back(name, W);
    copy.emplace_back(name, name == "lm_head.weight" ? base.front().second : W);
  }
  ASSERT_EQ(base.front().first, "model.embed_tokens.weight");
  model::write_hf_checkpoint(d + "/untied", copy, micro());
  model::write_hf_checkpoint(d + "/tied", without, micro());
  auto cfg = nlohmann::json::parse(read_file(d + "/tied/config.json"));
  cfg["tie_word_embeddings"] = true;
  std::ofstream(d + "/tied/config.json") << cfg.dump(2);
  lora::PeftConfig pc;
  pc.r = 2;
  pc.lora_alpha = 4;
  pc.target_modules = {"q_proj"};
  auto g = at::make_generator<at::CPUGeneratorImpl>(4);
  lora::write_peft_adapter(d + "/adapter", pc, random_factors(base, pc, g));
  const auto dims = dist::single_process_dims();
  for (const std::string adapter : {std::string(), d + "/adapter"}) {
    auto t = load_sampling_model(sampling_config(d + "/tied", adapter), dims, 0, at::kCPU);
    auto u = load_sampling_model(sampling_config(d + "/untied", adapter), dims, 0, at::kCPU);
    EXPECT_TRUE(at::equal(logits_of(*t), logits_of(*u))) << adapter;
  }
  auto own = load_sampling_model(sampling_config(d + "/drawn", ""), dims, 0, at::kCPU);  // its own drawn lm_head
  auto t = load_sampling_model(sampling_config(d + "/tied", ""), dims, 0, at::kCPU);
  EXPECT_GT((logits_of(*own) - logits_of(*t)).abs().max().item<double>(), 1e-3);
  fs::remove_all(d);
}

TEST(SamplingModel, PeftAdapterEqualsHandMergedCheckpoint) {
  const std::string d = scratch("peft");
  const auto base = write_base(d + "/base");
  lora::PeftConfig pc;
  pc.r = 4;
  pc.lora_alpha = 8;
  pc.target_modules = {"q_proj", "down_proj"};
  auto g = at::make_generator<at::CPUGeneratorImpl>(9);
  const std::map<std::string, at::Tensor> factors = random_factors(base, pc, g);
  ASSERT_EQ(factors.size(), 2u * 2 * 2);  // q_proj and down_proj of both layers, A and B
  std::vector<std::pair<std::string, at::Tensor>> merged;
  for (const auto& [name, W] : base) {
    const std::string mod = name.substr(0, name.size() - 7);  // drop ".weight"
    const auto A = factors.find(mod + ".lora_A.weight"), B = factors.find(mod + ".lora_B.weight");
    if (A == factors.end()) {
      merged.emplace_back(name, W);
      continue;
    }
    // independent of lora::merge_lora
    merged.emplace_back(name, W + (pc.lora_alpha / pc.r) * at::matmul(B->second, A->second));
  }
  lora::write_peft_adapter(d + "/adapter", pc, factors);
  model::write_hf_checkpoint(d + "/merged", merged, micro());
  EXPECT_EQ(adapter_kind(d + "/adapter"), AdapterKind::kPeft);

  const auto dims = dist::single_process_dims();
  std::string what;
  auto with_adapter = load_sampling_model(sampling_config(d + "/base", d + "/adapter"), dims, 0, at::kCPU, &what);
  auto hand_merged = load_sampling_model(sampling_config(d + "/merged", ""), dims, 0, at::kCPU);
  auto plain = load_sampling_model(sampling_config(d + "/base", ""), dims, 0, at::kCPU);
  EXPECT_NE(what.find("PEFT"), std::string::npos) << what;
  const auto a = logits_of(*with_adapter), b = logits_of(*hand_merged), c = logits_of(*plain);
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-4);
  EXPECT_GT((a - c).abs().max().item<double>(), 1e-2);  // the adapter matters
  // adapter_config.json listing modules its tensors hold no factors for (v_proj, up_proj): loaded as PEFT loads it
  // (those modules' lora_B = 0, no update), the same model, with a warning naming them (it was refused: "has no
  // 'model.layers.0.self_attn.v_proj.lora_A.weight'").
  {
    lora::PeftConfig listed = pc;
    listed.target_modules = {"q_proj", "v_proj", "down_proj", "up_proj"};
    lora::write_peft_adapter(d + "/adapter_listed", listed, factors);
    std::ostringstream log;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
    spdlog::default_logger()->sinks().push_back(sink);
    std::string listed_what;
    std::string error;
    try {
      auto m = load_sampling_model(sampling_config(d + "/base", d + "/adapter_listed"), dims, 0, at::kCPU,
                                   &listed_what);
      EXPECT_LT((logits_of(*m) - b).abs().max().item<double>(), 1e-4);
    } catch (const Error& e) {
      error = e.what();
    }
    spdlog::default_logger()->sinks().pop_back();
    EXPECT_EQ(error, "");
    EXPECT_NE(log.str().find("PEFT adapter " + d + "/adapter_listed: adapter_config.json target_modules lists "
                             "[v_proj,up_proj], but adapter_model.safetensors holds no factors for them"),
              std::string::npos) << log.str();
    EXPECT_NE(listed_what.find("(r 4 on q_proj,down_proj) merged"), std::string::npos) << listed_what;
  }
  // As the reference script's adapters: PEFT also saved embed_tokens and lm_head whole, one row appended ([PAD]).
  // Their base rows equal the base's: said and ignored, the model the same. A changed row: refused.
  const auto with_embeddings = [&](const std::string& dir, double change) {
    fs::remove_all(dir);
    lora::write_peft_adapter(dir, pc, factors);
    std::vector<std::pair<std::string, at::Tensor>> all;
    for (const auto& [name, t] : factors) all.emplace_back(lora::to_peft_name(name), t);
    for (const auto& [name, W] : base)
      if (name == "model.embed_tokens.weight" || name == "lm_head.weight") {
        at::Tensor grown = at::cat({W, W.mean(0, true)}, 0);
        grown[7][1] += change;
        all.emplace_back(lora::to_peft_name(name), grown);
      }
    ASSERT_EQ(all.size(), factors.size() + 2);
    model::write_safetensors(dir + "/adapter_model.safetensors", all, {});
  };
  with_embeddings(d + "/adapter_emb", 0);
  {
    std::ostringstream log;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
    spdlog::default_logger()->sinks().push_back(sink);
    auto m = load_sampling_model(sampling_config(d + "/base", d + "/adapter_emb"), dims, 0, at::kCPU);
    spdlog::default_logger()->sinks().pop_back();
    EXPECT_TRUE(at::equal(logits_of(*m), a));
    EXPECT_NE(log.str().find("PEFT adapter " + d + "/adapter_emb: its saved embedding layers (lm_head.weight [62, "
                             "32], model.embed_tokens.weight [62, 32]) equal the base's in the base's 61 rows, 1 row "
                             "appended"),
              std::string::npos) << log.str();
  }
  with_embeddings(d + "/adapter_emb", 0.5);
  const std::string trained = load_error(d + "/base", d + "/adapter_emb");
  EXPECT_NE(trained.find("rows differ from the base's " + d + "/base (the first: row 7 of 61)"), std::string::npos)
      << trained;
  // cgexport records the sample of the adapter's base beside it: on other weights (here the merged ones, whose
  // q_proj and down_proj differ) the adapter is refused, saying how to apply it anyway.
  std::ofstream(d + "/adapter/" + kAdapterSourceFile)
      << nlohmann::json{{model::kBaseSampleKey, nlohmann::json::parse(model::sample_base(d + "/base").to_json())}};
  EXPECT_EQ(load_error(d + "/base", d + "/adapter"), "<no error>");
  const std::string e = load_error(d + "/merged", d + "/adapter");
  EXPECT_NE(e.find("sample.adapter " + d + "/adapter was trained on other weights than model.hf_dir=" + d +
                   "/merged holds: 16 of "), std::string::npos) << e;  // 2 layers x 4 values of q_proj and down_proj
  EXPECT_NE(e.find("first model.layers.0.mlp.down_proj.weight[sample 0]: "), std::string::npos) << e;  // by name
  EXPECT_NE(e.find("remove its cgtrain_source.json"), std::string::npos) << e;
  fs::remove(d + "/adapter/" + kAdapterSourceFile);

  // Without model.hf_dir the adapter would go onto random weights: refused, naming the base it was trained on (a
  // random-init base of cgtrain's is warned of only).
  const auto warning_for = [&](const std::string& base_name) {
    pc.base_model_name_or_path = base_name;
    fs::remove_all(d + "/adapter_named");
    lora::write_peft_adapter(d + "/adapter_named", pc, factors);
    std::ostringstream log;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
    spdlog::default_logger()->sinks().push_back(sink);
    try {
      load_sampling_model(sampling_config("", d + "/adapter_named"), dims, 0, at::kCPU);
    } catch (const std::exception& e) {  // (the flavor's random model has other shapes, which fail later)
      log << "\nerror: " << e.what();
    }
    spdlog::default_logger()->sinks().pop_back();
    return log.str();
  };
  const std::string named = warning_for(d + "/base");
  EXPECT_NE(named.find("\nerror: "), std::string::npos) << named;  // refused, not warned of
  EXPECT_NE(named.find("PEFT adapter " + d + "/adapter_named was trained on base " + d + "/base (its "
                       "base_model_name_or_path), but model.hf_dir is empty, so it would be merged into random weights "
                       "and every sample would be noise: set model.hf_dir=" + d + "/base"),
            std::string::npos) << named;
  // cgexport names a random-init base cgtrain-<flavor>: no folder to point model.hf_dir at; the flavor must match.
  const std::string flavor = sampling_config("", "").model.flavor;
  const std::string other = flavor == "7b" ? "tiny" : "7b";
  const std::string wrong_flavor = warning_for("cgtrain-" + other);
  EXPECT_NE(wrong_flavor.find("random-init base of flavor " + other), std::string::npos) << wrong_flavor;
  EXPECT_NE(wrong_flavor.find("set model.flavor=" + other), std::string::npos) << wrong_flavor;
  EXPECT_EQ(wrong_flavor.find("model.hf_dir="), std::string::npos) << wrong_flavor;
  const std::string same_flavor = warning_for("cgtrain-" + flavor);
  EXPECT_NE(same_flavor.find("trained on a random-init base"), std::string::npos) << same_flavor;
  EXPECT_EQ(same_flavor.find("model.hf_dir="), std::string::npos) << same_flavor;
  EXPECT_EQ(same_flavor.find("set model.flavor"), std::string::npos) << same_flavor;

  // target_modules entries of other architectures ("query", "value") are ignored as PEFT does, said by name: the
  // same model as the hand merge.
  pc.base_model_name_or_path = "";
  fs::remove_all(d + "/adapter_extra");
  lora::write_peft_adapter(d + "/adapter_extra", pc, factors);
  {
    auto j = nlohmann::json::parse(std::ifstream(d + "/adapter_extra/adapter_config.json"));
    j["target_modules"] = {"query", "q_proj", "value", "down_proj"};
    std::ofstream(d + "/adapter_extra/adapter_config.json") << j.dump();
    std::ostringstream log;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
    spdlog::default_logger()->sinks().push_back(sink);
    auto extra = load_sampling_model(sampling_config(d + "/base", d + "/adapter_extra"), dims, 0, at::kCPU);
    spdlog::default_logger()->sinks().pop_back();
    EXPECT_LT((logits_of(*extra) - b).abs().max().item<double>(), 1e-4);
    EXPECT_NE(log.str().find("target_modules entries [query,value] name no LLaMA module and are ignored"),
              std::string::npos) << log.str();
  }
  // q_proj on every layer but down_proj on the last one missing: some layers only, per module, refused as such.
  auto partial = factors;
  const std::string last = "model.layers." + std::to_string(micro().num_hidden_layers - 1) + ".mlp.down_proj";
  ASSERT_EQ(partial.erase(last + ".lora_A.weight") + partial.erase(last + ".lora_B.weight"), 2u);
  fs::remove_all(d + "/adapter_partial");
  lora::write_peft_adapter(d + "/adapter_partial", pc, partial);
  const std::string why = load_error(d + "/base", d + "/adapter_partial");
  EXPECT_NE(why.find("PEFT adapter " + d + "/adapter_partial has down_proj factors for " +
                     std::to_string(micro().num_hidden_layers - 1) + " of the model's " +
                     std::to_string(micro().num_hidden_layers) + " layers: adapters on some layers only"),
            std::string::npos) << why;
  fs::remove_all(d);
}

// A cgtrain-style run folder (config.yaml, model_config.json, checkpoints/step-7) from a perturbed training model.
// record_base: the step folder keeps the base's sample as cgtrain's do (false: as an older build's). init_seed: the
// run's random base where hf_dir is empty.
at::Tensor save_run(const std::string& run_dir, const std::string& hf_dir, bool lora_mode, bool record_base = true,
                   uint64_t init_seed = Config().model.init_seed) {
  Config cfg;
  cfg.model.hf_dir = hf_dir;
  cfg.model.init_seed = init_seed;
  cfg.model.device = "cpu";
  cfg.model.dtype = "fp32";
  cfg.lora.enabled = lora_mode;
  cfg.lora.r = 4;
  cfg.lora.alpha = 16;
  cfg.lora.dropout = 0;
  cfg.lora.targets = {"q_proj", "v_proj", "up_proj"};
  cfg.train.run_dir = run_dir;
  const auto dims = dist::single_process_dims();
  TrainModel m = build_train_model(cfg, dims, micro().vocab_size, at::kCPU);
  {
    torch::NoGradGuard ng;
    auto g = at::make_generator<at::CPUGeneratorImpl>(13);
    for (auto& p : m.trainable) p.param.add_(at::randn(p.param.sizes(), g) * 0.2);  // "training"
  }
  m.llama->eval();
  const at::Tensor expected = logits_of(*m.llama);
  AdamW opt = make_optimizer(m, cfg.train);
  TrainState st;
  st.step = 7;
  fs::create_directories(run_dir);
  std::ofstream(run_dir + "/config.yaml") << to_yaml(cfg);
  std::ofstream(run_dir + "/model_config.json") << m.llama->config().to_hf_json();  // micro(), or the flavor's
  const std::string hash = config_hash(cfg);
  save_checkpoint(
      run_dir, 7, 0, CheckpointLayout{1, 1, 1}, hash,
      [&](const std::string& dir) {
        write_rank_checkpoint(dir, m, opt, st, dims, hash);
        if (record_base) std::ofstream(dir + "/" + model::kBaseSampleFile) << m.base_sample;
      },
      [](bool ok) { return ok; }, 1);
  return expected;
}

TEST(SamplingModel, LoraRunCheckpointEqualsTheTrainingModel) {
  const std::string d = scratch("lorarun");
  write_base(d + "/base");
  const at::Tensor expected = save_run(d + "/run", d + "/base", /*lora_mode=*/true);
  EXPECT_EQ(adapter_kind(d + "/run"), AdapterKind::kRunCheckpoint);
  const auto dims = dist::single_process_dims();
  for (const std::string& adapter : {d + "/run", d + "/run/checkpoints/step-7", d + "/run/checkpoints/step-7/"}) {
    std::string what;
    // model.hf_dir empty: the run's own base (its config.yaml) is used.
    auto m = load_sampling_model(sampling_config("", adapter), dims, 0, at::kCPU, &what);
    EXPECT_NE(what.find("step 7"), std::string::npos) << what;
    EXPECT_LT((logits_of(*m) - expected).abs().max().item<double>(), 1e-4) << adapter;
  }
  auto base = load_sampling_model(sampling_config(d + "/base", ""), dims, 0, at::kCPU);
  EXPECT_GT((logits_of(*base) - expected).abs().max().item<double>(), 1e-2);
  // model.hf_dir moves the base: one of the same shapes but another RoPE base is another model (refused by field),
  // and a cgexport --merge of this very checkpoint would get its update twice.
  const auto error_of = [&](const std::string& hf) { return load_error(hf, d + "/run"); };
  fs::copy(d + "/base", d + "/other_rope");
  model::LlamaConfig rope = micro();
  rope.rope_theta = 500000;
  std::ofstream(d + "/other_rope/config.json") << rope.to_hf_json();
  std::string e = error_of(d + "/other_rope");
  EXPECT_NE(e.find("rope_theta 500000 there, 10000 in run checkpoint"), std::string::npos) << e;
  fs::copy(d + "/base", d + "/merged");
  auto cfg = nlohmann::json::parse(read_file(d + "/merged/config.json"));
  const std::string step7 = fs::weakly_canonical(d + "/run/checkpoints/step-7").string();
  // Recorded as merged: another checkpoint of the same run (here the same one) would add its update again.
  cfg[kMergedKey] = {{"adapter_sha256", "0"}, {"checkpoint", step7},
                     {"run_dir", fs::weakly_canonical(d + "/run").string()}};
  std::ofstream(d + "/merged/config.json") << cfg.dump();
  e = error_of(d + "/merged");
  EXPECT_NE(e.find("already has checkpoint " + step7 + " merged in"), std::string::npos) << e;
  EXPECT_NE(e.find("is a checkpoint of the same run"), std::string::npos) << e;
  EXPECT_EQ(error_of(d + "/base"), "<no error>");
  // Another folder as model.hf_dir: its weights are compared with the checkpoint's record of its base. A copy
  // loads without a word; other weights of the same shape (here the base plus 0.01) are refused.
  const auto log_of = [&](const std::string& hf, const std::string& run) {
    std::ostringstream log;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
    spdlog::default_logger()->sinks().push_back(sink);
    EXPECT_EQ(load_error(hf, run), "<no error>");
    spdlog::default_logger()->sinks().pop_back();
    return log.str();
  };
  fs::copy(d + "/base", d + "/copy");
  EXPECT_EQ(log_of(d + "/copy", d + "/run").find("was trained on"), std::string::npos);
  {
    const model::HfCheckpoint ck(d + "/base");
    std::vector<std::pair<std::string, at::Tensor>> shifted;
    for (const std::string& name : ck.keys()) shifted.emplace_back(name, ck.read(name) + 0.01);
    model::write_hf_checkpoint(d + "/tuned", shifted, micro());
  }
  e = error_of(d + "/tuned");
  EXPECT_NE(e.find("sample.adapter " + d + "/run was trained on other weights than model.hf_dir=" + d + "/tuned holds"),
            std::string::npos) << e;
  EXPECT_NE(e.find("set model.hf_dir to a copy of the weights it was trained on (the run's model.hf_dir was " + d +
                   "/base)"), std::string::npos) << e;
  // The run's own base with its weights replaced in place: refused too.
  fs::rename(d + "/base", d + "/base_kept");
  fs::rename(d + "/tuned", d + "/base");
  e = load_error("", d + "/run");
  EXPECT_NE(e.find("was trained on other weights than model.hf_dir=" + d + "/base holds"), std::string::npos) << e;
  fs::remove_all(d + "/base");
  fs::rename(d + "/base_kept", d + "/base");
  // A checkpoint of an older build, without the record: another folder while the run's base is still there is
  // loaded (a copy may have moved), with a warning naming both; the run's own base is no reason for one.
  save_run(d + "/old_run", d + "/base", /*lora_mode=*/true, /*record_base=*/false);
  const std::string moved = log_of(d + "/copy", d + "/old_run");
  EXPECT_NE(moved.find("was trained on the base " + d + "/base (its config.yaml model.hf_dir), which is still there, "
                       "but model.hf_dir is " + d + "/copy"), std::string::npos) << moved;
  EXPECT_EQ(log_of(d + "/base", d + "/old_run").find("was trained on the base"), std::string::npos);
  fs::remove_all(d);
}

// The identity load_sampling_model reports is cgsample's journal key for the weights: a resumed run takes the
// journaled sequences only of the same model. It follows the adapter's files and the run checkpoint's manifest, not
// their paths: another adapter on the same base is another model, a copy of it elsewhere the same one.
TEST(SamplingModel, IdentityFollowsTheAdaptersWeightsNotTheirPaths) {
  const std::string d = scratch("identity");
  const auto base = write_base(d + "/base");
  lora::PeftConfig pc;
  pc.r = 2;
  pc.lora_alpha = 4;
  pc.target_modules = {"q_proj"};
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  for (const std::string name : {"adapter", "other"})
    lora::write_peft_adapter(d + "/" + name, pc, random_factors(base, pc, g));
  fs::copy(d + "/adapter", d + "/adapter_copy");
  save_run(d + "/run", d + "/base", /*lora_mode=*/true);
  const auto identity = [&](const std::string& hf_dir, const std::string& adapter) {
    std::string id;
    load_sampling_model(sampling_config(hf_dir, adapter), dist::single_process_dims(), 0, at::kCPU, nullptr, &id);
    EXPECT_EQ(id.size(), 64u) << hf_dir << " + " << adapter;  // a sha256
    return id;
  };
  const std::string plain = identity(d + "/base", ""), peft = identity(d + "/base", d + "/adapter");
  EXPECT_NE(peft, plain);
  EXPECT_NE(identity(d + "/base", d + "/other"), peft);
  EXPECT_EQ(identity(d + "/base", d + "/adapter_copy"), peft);
  const std::string run = identity(d + "/base", d + "/run");
  EXPECT_NE(run, plain);
  EXPECT_NE(run, peft);
  EXPECT_EQ(identity("", d + "/run/checkpoints/step-7"), run);  // the run's own base, its newest step
  fs::remove_all(d);
}

// Shards of an older cgprep record no text settings; they were written in the file's site order (its only order
// then), and with an angle mode not known. Infill prompts on a model trained on them must list the sites so; their
// angles are not checked.
TEST(SamplingModel, ShardsThatRecordNoSiteOrderWereWrittenInTheFilesOrder) {
  const std::string d = scratch("trained_text");
  fs::create_directories(d + "/adapter");
  fs::create_directories(d + "/shards");
  std::ofstream(d + "/adapter/" + kTrainingDataFile) << nlohmann::json{{"shards_dir", d + "/shards"}}.dump();
  SampleSet one;
  one.tokens = {1, 5, 2};
  one.offsets = {0, 3};
  one.prompt_lens = {1};
  one.tasks = {0};
  one.rows = {0};
  one.copies = {0};
  ShardMeta meta;
  meta.split = "train";
  meta.settings_json = R"({"seed": 1})";
  write_shard(shard_path(d + "/shards", "train", 0), one, meta);
  Config c;
  c.sample.adapter = d + "/adapter";
  c.data.site_order = "pymatgen";
  const std::string e = test::error_of([&] { check_text_settings_trained(c, kInfillPrompts); });
  EXPECT_TRUE(test::contains(e, "records no site order, so was written in the file's") &&
              test::contains(e, "set data.site_order=file")) << e;
  c.data.site_order = "file";
  c.data.angle_mode = "truncate";
  EXPECT_NO_THROW(check_text_settings_trained(c, kInfillPrompts));
  fs::remove_all(d);
}

// A run folder as sample.adapter means its newest step: a damaged or unfinished newest step-N/ is refused, naming the
// newest intact step to sample on purpose, instead of sampling an older model than the user believes.
TEST(SamplingModel, LoraRunOnARandomBaseIsMergedIntoItsOwnRandomBase) {
  // A LoRA run of no model.hf_dir (the tiny flavor's tests) trained on the random init of its own model.init_seed:
  // sampling its checkpoint rebuilds that base, whatever the sampling config's seed (here the default, not the run's).
  const std::string d = scratch("randomrun");
  const at::Tensor expected = save_run(d + "/run", "", /*lora_mode=*/true, /*record_base=*/true, /*init_seed=*/77);
  std::string what;
  auto m = load_sampling_model(sampling_config("", d + "/run"), dist::single_process_dims(), 0, at::kCPU, &what);
  EXPECT_NE(what.find("random init seed 77"), std::string::npos) << what;
  EXPECT_LT((logits_of(*m) - expected).abs().max().item<double>(), 1e-4);
  fs::remove_all(d);
}

TEST(SamplingModel, RunWhoseNewestCheckpointIsDamagedIsRefusedNamingTheIntactOne) {
  const std::string d = scratch("damagedrun");
  write_base(d + "/base");
  save_run(d + "/run", d + "/base", /*lora_mode=*/true);
  const fs::path ckpts = fs::path(d) / "run" / "checkpoints";
  fs::copy(ckpts / "step-7", ckpts / "step-9", fs::copy_options::recursive);  // step 9: a copy of 7, under its name
  auto man = nlohmann::json::parse(read_file((ckpts / "step-9/manifest.json").string()));
  man["step"] = 9;
  std::ofstream(ckpts / "step-9/manifest.json") << man.dump();
  ASSERT_EQ(verify_checkpoint((ckpts / "step-9").string()), "");
  ASSERT_EQ(load_error("", d + "/run"), "<no error>");
  const fs::path rank = ckpts / "step-9" / rank_file_name(0);
  {
    std::fstream f(rank, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');  // the same size: only the checksum sees it
  }
  std::string e = load_error("", d + "/run");
  EXPECT_NE(e.find("sample.adapter " + d + "/run: its newest checkpoint " + (ckpts / "step-9").string() +
                   " is damaged (checksum mismatch in rank-00000.safetensors); the run's newest intact step is 7: to "
                   "sample it on purpose, set sample.adapter=" + (ckpts / "step-7").string() + ". Or restore that "
                   "folder from a copy (a resume from an older step that saves step 9 again first moves this folder "
                   "aside to step-9.damaged)"), std::string::npos) << e;
  EXPECT_EQ(load_error("", (ckpts / "step-7").string()), "<no error>");
  // Unfinished (no manifest.json), in cgtrain's and cgexport's words: the run folder, and the step folder itself,
  // which was "neither adapter_config.json (PEFT), manifest.json (a step-N checkpoint) nor checkpoints/".
  fs::remove(ckpts / "step-9/manifest.json");
  e = load_error("", d + "/run");
  EXPECT_NE(e.find("its newest checkpoint " + (ckpts / "step-9").string() + " is unfinished (it has no "
                   "manifest.json, which cgtrain writes last: a save or a copy of the folder that did not finish); "
                   "the run's newest intact step is 7"), std::string::npos) << e;
  EXPECT_NE(e.find("Or copy that folder again whole (a resume from an older step that saves step 9 again first "
                   "moves this folder aside to step-9.unfinished)"), std::string::npos) << e;
  for (const std::string& step9 : {(ckpts / "step-9").string(), (ckpts / "step-9").string() + "/"}) {
    e = load_error("", step9);
    EXPECT_NE(e.find("sample.adapter " + step9 + " is unfinished (it has no manifest.json, which cgtrain writes "
                     "last: a save or a copy of the folder that did not finish); the run's newest intact step is 7: "
                     "to sample it on purpose, set sample.adapter=" + (ckpts / "step-7").string() + ". Or copy that "
                     "folder again whole"), std::string::npos) << e;
  }
  fs::remove(ckpts / "step-7" / rank_file_name(0));
  e = load_error("", d + "/run");
  EXPECT_NE(e.find("no other step of the run is intact either"), std::string::npos) << e;
  fs::remove_all(d);
}

TEST(SamplingModel, FullParameterRunCheckpointEqualsTheTrainingModel) {
  const std::string d = scratch("fullrun");
  write_base(d + "/base");
  const at::Tensor expected = save_run(d + "/run", d + "/base", /*lora_mode=*/false);
  std::string what;
  auto m = load_sampling_model(sampling_config("", d + "/run"), dist::single_process_dims(), 0, at::kCPU, &what);
  EXPECT_NE(what.find("full-parameter"), std::string::npos) << what;
  EXPECT_LT((logits_of(*m) - expected).abs().max().item<double>(), 1e-5);
  fs::remove_all(d);
}

TEST(SamplingModel, BadAdapterFolderSaysWhatItNeeds) {
  const std::string d = scratch("bad");
  try {
    adapter_kind(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter_config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("give cgexport's --out folder, a cgtrain run_dir or"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(adapter_kind(""), AdapterKind::kNone);
  // A cgexport --out folder while the export is written (.cgexport.tmp), or stopped while it was moved in
  // (.cgexport.moving, its only adapter_config.json inside): each said as such, not as "holds no adapter".
  fs::create_directories(d + "/.cgexport.tmp");
  try {
    adapter_kind(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/.cgexport.tmp: a cgexport into it is still running"), std::string::npos)
        << e.what();
  }
  fs::rename(d + "/.cgexport.tmp", d + "/.cgexport.moving");
  std::ofstream(d + "/.cgexport.moving/adapter_config.json") << "{}";
  try {
    adapter_kind(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample.adapter " + d + " holds " + d + "/.cgexport.moving: cgexport was "
                                         "stopped"), std::string::npos) << e.what();
  }
  fs::remove_all(d + "/.cgexport.moving");
  // cgprep's shards folder given as the adapter: named as such.
  std::ofstream(d + "/cgprep_config.yaml") << "{}";
  try {
    adapter_kind(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("; it is cgprep's shards folder: give"), std::string::npos) << e.what();
  }
  fs::remove(d + "/cgprep_config.yaml");
  // A model folder (a cgexport --merge) given as the adapter: said to be model.hf_dir.
  std::ofstream(d + "/config.json") << "{}";
  try {
    adapter_kind(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds a model (config.json), not an adapter: give it as model.hf_dir=" + d),
              std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

// A PEFT adapter that does not fit the base: errors name the adapter folder and its adapter_config.json (what
// cgsample read), never lora.targets (which cgsample does not use for an adapter).
TEST(SamplingModel, PeftAdapterForAnotherBaseNamesTheAdapter) {
  const std::string d = scratch("peftbad");
  write_base(d + "/base");
  auto error_of = [&](const std::string& adapter) { return load_error(d + "/base", adapter); };
  lora::PeftConfig pc;
  pc.r = 2;
  pc.lora_alpha = 4;
  pc.target_modules = {"q_proj"};
  const int64_t d_model = micro().hidden_size;
  std::map<std::string, at::Tensor> factors;
  for (int layer = 0; layer < 3; ++layer) {  // the base has 2 layers
    const std::string mod = fmt::format("model.layers.{}.self_attn.q_proj", layer);
    factors[mod + ".lora_A.weight"] = at::zeros({2, d_model});
    factors[mod + ".lora_B.weight"] = at::zeros({d_model, 2});
  }
  lora::write_peft_adapter(d + "/three_layers", pc, factors);
  std::string e = error_of(d + "/three_layers");
  EXPECT_NE(e.find("PEFT adapter " + d + "/three_layers holds 'model.layers.2.self_attn.q_proj.lora_A.weight'"),
            std::string::npos) << e;
  EXPECT_NE(e.find("was it trained on this base (" + d + "/base"), std::string::npos) << e;
  EXPECT_EQ(e.find("lora.targets"), std::string::npos) << e;

  factors.erase("model.layers.2.self_attn.q_proj.lora_A.weight");
  factors.erase("model.layers.2.self_attn.q_proj.lora_B.weight");
  factors["model.layers.1.self_attn.q_proj.lora_A.weight"] = at::zeros({2, d_model + 8});  // a wider model's layer
  lora::write_peft_adapter(d + "/wider", pc, factors);
  e = error_of(d + "/wider");
  EXPECT_NE(e.find("PEFT adapter " + d + "/wider: model.layers.1.self_attn.q_proj: lora_A has shape"),
            std::string::npos) << e;
  EXPECT_NE(e.find("another base model"), std::string::npos) << e;
  EXPECT_NE(e.find("another base model; was it trained on this base (" + d + "/base"), std::string::npos) << e;

  factors.erase("model.layers.1.self_attn.q_proj.lora_A.weight");
  factors.erase("model.layers.1.self_attn.q_proj.lora_B.weight");
  lora::write_peft_adapter(d + "/one_layer", pc, factors);
  e = error_of(d + "/one_layer");
  EXPECT_NE(e.find("PEFT adapter " + d + "/one_layer has q_proj factors for 1 of the model's 2 layers: adapters on some "
                   "layers only"), std::string::npos) << e;

  // lm_head listed with factors of its own: no module cgsample adapts (listed without factors, it would be one that
  // gets no update, left out with a warning, as PEFT loads it).
  pc.target_modules = {"q_proj", "lm_head"};
  factors["lm_head.lora_A.weight"] = at::zeros({2, d_model});
  factors["lm_head.lora_B.weight"] = at::zeros({micro().vocab_size, 2});
  lora::write_peft_adapter(d + "/lm_head", pc, factors);
  e = error_of(d + "/lm_head");
  EXPECT_NE(e.find(d + "/lm_head/adapter_config.json target_modules: unknown module 'lm_head'"), std::string::npos)
      << e;
  EXPECT_EQ(e.find("lora.targets"), std::string::npos) << e;
  fs::remove_all(d);
}

// The base folder: not an adapter folder, not a merge of the very adapter given, and a tokenizer.json-only base
// is not silently replaced by the shards' tokenizer.
TEST(SamplingModel, BaseFolderIsNotTheAdapterOrItsMerge) {
  const std::string d = scratch("basefolder");
  write_base(d + "/base");
  auto error_of = load_error;
  lora::PeftConfig pc;
  pc.r = 2;
  pc.lora_alpha = 4;
  pc.target_modules = {"v_proj"};
  std::map<std::string, at::Tensor> factors;
  const int64_t d_model = micro().hidden_size, kv = micro().num_key_value_heads * micro().head_dim();
  for (int layer = 0; layer < 2; ++layer) {
    const std::string mod = fmt::format("model.layers.{}.self_attn.v_proj", layer);
    factors[mod + ".lora_A.weight"] = at::ones({2, d_model}) * 0.1;
    factors[mod + ".lora_B.weight"] = at::ones({kv, 2}) * 0.1;
  }
  lora::write_peft_adapter(d + "/adapter", pc, factors);
  EXPECT_EQ(error_of(d + "/base", d + "/adapter"), "<no error>");
  // The adapter given as the base (or copied into it): transformers would apply it, here it would be ignored.
  fs::copy(d + "/base", d + "/base_with_adapter");
  fs::copy(d + "/adapter/adapter_config.json", d + "/base_with_adapter/adapter_config.json");
  std::string e = error_of(d + "/base_with_adapter", "");
  EXPECT_NE(e.find("model.hf_dir " + d + "/base_with_adapter holds a PEFT adapter (adapter_config.json)"),
            std::string::npos) << e;
  // A merged folder whose config.json records this adapter (as cgexport --merge writes it): not applied twice.
  fs::copy(d + "/base", d + "/merged");
  auto cfg = nlohmann::json::parse(read_file(d + "/merged/config.json"));
  cfg[kMergedKey] = {{"adapter_sha256", sha256_file(d + "/adapter/adapter_model.safetensors")},
                     {"checkpoint", "/somewhere/run/checkpoints/step-5"}};
  std::ofstream(d + "/merged/config.json") << cfg.dump();
  e = error_of(d + "/merged", d + "/adapter");
  EXPECT_NE(e.find("already has checkpoint /somewhere/run/checkpoints/step-5 merged in (cgexport --merge), and "
                   "sample.adapter " + d + "/adapter is that adapter"), std::string::npos) << e;
  EXPECT_EQ(error_of(d + "/merged", ""), "<no error>");  // the merged model alone
  factors.begin()->second.mul_(2);  // another adapter on the merged model: allowed
  lora::write_peft_adapter(d + "/adapter2", pc, factors);
  EXPECT_EQ(error_of(d + "/merged", d + "/adapter2"), "<no error>");
  // A base with tokenizer.json only: the sampler does not fall back to the shards' tokenizer.
  std::ofstream(d + "/base/tokenizer.json") << "{}";
  Config c = sampling_config(d + "/base", "");
  c.data.shards_dir = d + "/shards";
  try {
    sampling_tokenizer_path(c);
    ADD_FAILURE() << "the shards' tokenizer was taken";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("cgtok hf-json " + d + "/base/tokenizer.json " + d +
                                           "/base/tokenizer.model"), std::string::npos) << err.what();
  }
  fs::remove_all(d);
}

// The tokenizer follows the weights: an adapter's own tokenizer.model (cgexport's PEFT folder, cgtrain's run and step
// folders) wins over the shards', which may have been made again since; a data.tokenizer that is not that file is
// refused; without an adapter's, model.hf_dir's and then the shards'.
TEST(SamplingModel, TokenizerIsTheAdaptersOwn) {
  const std::string d = scratch("tok");
  for (const char* dir : {"shards", "adapter", "hf", "plain"}) fs::create_directories(d + "/" + dir);
  std::ofstream(d + "/shards/tokenizer.model") << "made again later";
  std::ofstream(d + "/adapter/tokenizer.model") << "trained with";
  std::ofstream(d + "/hf/tokenizer.model") << "trained with";  // the base's own (a different one: below)
  std::ofstream(d + "/copy.model") << "trained with";
  Config c;
  c.data.shards_dir = d + "/shards";
  c.sample.adapter = d + "/adapter";
  c.model.hf_dir = d + "/hf";
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/adapter/tokenizer.model");
  c.data.tokenizer = d + "/copy.model";  // the same bytes elsewhere: fine
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/copy.model");
  c.data.tokenizer = d + "/shards/tokenizer.model";
  try {
    sampling_tokenizer_path(c);
    FAIL() << "a tokenizer other than the adapter's was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("was trained with the tokenizer " + d + "/adapter/tokenizer.model"),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("leave data.tokenizer at \"train\""), std::string::npos) << e.what();
  }
  c.data.tokenizer = d + "/gone/tokenizer.model";  // a config's path on another machine: named, with the way out
  EXPECT_NE(tokenizer_error(c).find("data.tokenizer=" + d + "/gone/tokenizer.model does not exist; set "
                                    "data.tokenizer to the tokenizer.model the model was trained with, or leave it at "
                                    "\"train\" to use the adapter's own (" + d + "/adapter/tokenizer.model)"),
            std::string::npos) << tokenizer_error(c);
  c.data.tokenizer = d + "/hf";  // a folder
  EXPECT_NE(tokenizer_error(c).find("data.tokenizer=" + d + "/hf is not a file"), std::string::npos)
      << tokenizer_error(c);
  c.data.tokenizer = "train";
  c.sample.adapter = d + "/plain";  // an adapter without a tokenizer (older builds)
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/hf/tokenizer.model");
  c.sample.adapter = "";
  c.model.hf_dir = "";
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/shards/tokenizer.model");
  fs::remove_all(d);
}

// A sample.adapter that is not there is said by load_sampling_tokenizer as itself, as an InputError (said once under
// mpirun), although the shards' tokenizer.model it falls back to is there and reads.
TEST(SamplingModel, LoadingTheTokenizerNamesAMissingAdapter) {
  const std::string d = scratch("tokadapter");
  fs::create_directories(d + "/shards");
  std::vector<std::string> vocab{"<unk>", "<s>", "</s>"};
  for (int byte = 0; byte < 256; ++byte) vocab.push_back(fmt::format("<0x{:02X}>", byte));
  std::ofstream(d + "/shards/tokenizer.model", std::ios::binary) << serialize_sp_model(sp_model_from_bpe(vocab, {}));
  Config c;
  c.data.shards_dir = d + "/shards";
  EXPECT_EQ(load_sampling_tokenizer(c).path, d + "/shards/tokenizer.model");  // no adapter: the shards' one
  c.sample.adapter = d + "/gone";
  try {
    load_sampling_tokenizer(c);
    FAIL() << "a missing sample.adapter was read as the shards' tokenizer";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("sample.adapter " + d + "/gone does not exist; give cgexport's --out folder"),
              std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

// cgexport records the sha256 of the tokenizer it copies beside a PEFT adapter (cgtrain_source.json): another
// tokenizer.model put there since, or given as data.tokenizer, is refused; the recorded one passes.
TEST(SamplingModel, PeftAdapterTokenizerMustBeTheRecordedOne) {
  const std::string d = scratch("toksha");
  fs::create_directories(d + "/peft");
  std::ofstream(d + "/peft/adapter_config.json") << "{}";
  const std::string trained = "trained with";
  std::ofstream(d + "/peft/tokenizer.model") << trained;
  std::ofstream(d + "/copy.model") << trained;
  std::ofstream(d + "/other.model") << "another run's, same vocabulary size";
  std::ofstream(d + "/peft/" + std::string(kAdapterSourceFile))
      << R"({"checkpoint": "c", "run_dir": "r", "tokenizer_sha256": ")" << sha256_hex(trained.data(), trained.size())
      << "\"}";
  Config c;
  c.sample.adapter = d + "/peft";
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/peft/tokenizer.model");
  c.data.tokenizer = d + "/copy.model";
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/copy.model");
  const auto error = [&] { return tokenizer_error(c); };
  c.data.tokenizer = d + "/other.model";
  std::string e = error();
  EXPECT_NE(e.find("not data.tokenizer=" + d + "/other.model"), std::string::npos) << e;
  EXPECT_NE(e.find("leave data.tokenizer at \"train\""), std::string::npos) << e;
  c.data.tokenizer = "train";
  fs::copy_file(d + "/other.model", d + "/peft/tokenizer.model", fs::copy_options::overwrite_existing);
  e = error();
  EXPECT_NE(e.find("but " + d + "/peft/tokenizer.model has sha256"), std::string::npos) << e;
  EXPECT_NE(e.find("put back the tokenizer.model of the run"), std::string::npos) << e;
  // No tokenizer.model beside the adapter (PEFT folders often ship without): the base's is read, and checked too.
  fs::remove(d + "/peft/tokenizer.model");
  fs::create_directories(d + "/base");
  std::ofstream(d + "/base/tokenizer.model") << "another run's, same vocabulary size";
  c.model.hf_dir = d + "/base";
  e = error();
  EXPECT_NE(e.find("but " + d + "/base/tokenizer.model has sha256"), std::string::npos) << e;
  EXPECT_NE(e.find("the adapter folder has no tokenizer.model of its own"), std::string::npos) << e;
  std::ofstream(d + "/base/tokenizer.model") << trained;
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/base/tokenizer.model");
  fs::copy_file(d + "/other.model", d + "/peft/tokenizer.model");
  fs::remove(d + "/peft/" + std::string(kAdapterSourceFile));  // an older cgexport's adapter: nothing to compare
  c.model.hf_dir = "";  // (on a base with its own tokenizer, that one would be compared: next test)
  EXPECT_EQ(sampling_tokenizer_path(c), d + "/peft/tokenizer.model");
  fs::remove_all(d);
}

// The base model's embeddings belong to its own tokenizer: the tokenizer read (an adapter's own, data.tokenizer) must
// have its pieces, whatever the bytes (a converted copy of the same vocabulary is fine).
TEST(SamplingModel, TokenizerMustBeTheBasesOwn) {
  const std::string d = scratch("tokbase");
  for (const char* dir : {"hf", "adapter"}) fs::create_directories(d + "/" + dir);
  // Two vocabularies of 270 pieces (3 control, 256 bytes, "▁" and ten characters) that differ in ten of them.
  const auto sp_model = [](const std::string& chars) {
    std::vector<std::string> vocab{"<unk>", "<s>", "</s>"};
    for (int byte = 0; byte < 256; ++byte) vocab.push_back(fmt::format("<0x{:02X}>", byte));
    vocab.push_back("\xE2\x96\x81");
    for (char ch : chars) vocab.push_back(std::string(1, ch));
    return serialize_sp_model(sp_model_from_bpe(vocab, {}));
  };
  const std::string a = sp_model("abcdefghij"), b = sp_model("0123456789");
  std::ofstream(d + "/hf/tokenizer.model", std::ios::binary) << a;
  std::ofstream(d + "/same.model", std::ios::binary) << a;
  std::ofstream(d + "/adapter/tokenizer.model", std::ios::binary) << b;
  std::ofstream(d + "/other.model", std::ios::binary) << b;
  Config c;
  c.model.hf_dir = d + "/hf";
  c.sample.adapter = d + "/adapter";
  const auto error = [&] { return tokenizer_error(c); };
  std::string e = error();
  EXPECT_NE(e.find("the base model's tokenizer " + d + "/hf/tokenizer.model (270 pieces) and the tokenizer read " + d +
                   "/adapter/tokenizer.model (270 pieces) differ in 10 piece(s)"), std::string::npos) << e;
  EXPECT_NE(e.find("sample.adapter " + d + "/adapter was trained with another tokenizer, so on another base"),
            std::string::npos) << e;
  c.sample.adapter = "";
  c.data.tokenizer = d + "/other.model";
  e = error();
  EXPECT_NE(e.find("set data.tokenizer=" + d + "/hf/tokenizer.model"), std::string::npos) << e;
  c.data.tokenizer = d + "/same.model";
  EXPECT_EQ(error(), "<no error>");
  fs::remove_all(d);
}

}  // namespace
}  // namespace cg
