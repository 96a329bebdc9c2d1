// cgexport --merge streamed from the base folder (export_run): the merged checkpoint equals a straightforward
// in-memory reference (base + adapter read back, W + scale·B·A), for fp32 and bf16 bases and outputs, sharded output;
// full-parameter and random-init runs; a base that does not match model_config.json; a full disk (RLIMIT_FSIZE)
// that leaves no model file of the failed export.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/sha256.h"
#include "lora/peft.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "tests/test_util.h"
#include "tests/trainer/export_fixture.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/train_export.h"

namespace fs = std::filesystem;
using cg::test::make_export_run;
using cg::test::write_random_hf;

namespace {

using cg::test::contains;
using cg::test::error_of;

struct TempDir : cg::test::TempDir {
  TempDir() : cg::test::TempDir("cg_export") {}
};

cg::model::LlamaConfig micro() {
  cg::model::LlamaConfig c;
  c.hidden_size = 64, c.intermediate_size = 96, c.num_attention_heads = 4, c.num_key_value_heads = 2;
  c.num_hidden_layers = 2, c.vocab_size = 101, c.max_position_embeddings = 128;
  return c;
}

std::vector<std::string> model_files(const std::string& dir) {
  std::vector<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("model", 0) == 0 || f == "config.json") n.push_back(f);
  }
  std::sort(n.begin(), n.end());
  return n;
}

// Every output tensor against the reference merge, computed here in fp64 from the base file and the exported
// adapter: W + scale · B · A for each adapted linear, W itself otherwise. tol: relative to the output dtype.
void expect_merged(const std::string& out, const std::string& base_dir, const cg::model::LlamaConfig& lc,
                   at::ScalarType dtype, double scale, size_t expected_pairs) {
  const cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(out + "/adapter");
  EXPECT_EQ(a.factors.size(), 2 * expected_pairs);
  const cg::model::HfCheckpoint got(out), base(base_dir);
  EXPECT_EQ(cg::model::load_llama_config(out), lc);
  const auto shapes = cg::model::llama_tensor_shapes(lc);
  EXPECT_EQ(got.keys().size(), shapes.size());
  size_t merged = 0;
  const double tol = dtype == at::kFloat ? 1e-6 : 1e-2;  // bf16/fp16: one rounding of the output
  for (const auto& [name, shape] : shapes) {
    const at::Tensor t = got.read(name);
    ASSERT_EQ(t.scalar_type(), dtype) << name;
    ASSERT_EQ(t.sizes().vec(), shape) << name;
    at::Tensor ref = base.read(name).to(at::kDouble);
    const std::string mod = name.substr(0, name.size() - 7);
    if (a.factors.count(mod + ".lora_A.weight")) {
      ref = ref + scale * at::matmul(a.factors.at(mod + ".lora_B.weight").to(at::kDouble),
                                     a.factors.at(mod + ".lora_A.weight").to(at::kDouble));
      ++merged;
    }
    const double err = (t.to(at::kDouble) - ref).abs().max().item<double>();
    EXPECT_LE(err, tol * std::max(1.0, ref.abs().max().item<double>())) << name;
  }
  EXPECT_EQ(merged, expected_pairs);
}

}  // namespace

TEST(ExportStream, MergedShardedFp32EqualsTheReference) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 3);
  const auto run = make_export_run(d / "run", lc, d / "hf", {"lora.r=4", "lora.alpha=8",
                                                             "lora.targets=[q_proj,v_proj,down_proj]"});
  cg::ExportOptions o{d / "run", -1, d / "out", true, "fp32", 64 * 1024};
  EXPECT_EQ(cg::export_run(o), d / "run/checkpoints/step-5");
  const auto files = model_files(d / "out");
  EXPECT_GT(files.size(), 4u);  // config, index, several shards of at most 64 KiB
  EXPECT_TRUE(fs::exists(d / "out/model.safetensors.index.json"));
  for (const auto& f : files) EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
  expect_merged(d / "out", d / "hf", lc, at::kFloat, run.scale, 3 * 2);
  // The adapter holds the checkpoint's factors exactly.
  const auto a = cg::lora::read_peft_adapter(d / "out/adapter");
  for (const auto& [name, t] : run.params) EXPECT_TRUE(at::equal(a.factors.at(name), t)) << name;
  // Exported again into the same folder as one file: the old shards and index go, the result reads the same.
  o.max_shard_bytes = int64_t{1} << 30;
  cg::export_run(o);
  EXPECT_EQ(model_files(d / "out"), (std::vector<std::string>{"config.json", "model.safetensors"}));
  expect_merged(d / "out", d / "hf", lc, at::kFloat, run.scale, 3 * 2);
}

TEST(ExportStream, MergedFromBf16BaseToBf16AndFp16) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kBFloat16, 40 * 1024, 4);
  const auto run = make_export_run(d / "run", lc, d / "hf", {"lora.r=2", "lora.alpha=4", "lora.targets=all-linear"});
  for (const auto& [name, dt] : {std::pair<std::string, at::ScalarType>{"bf16", at::kBFloat16}, {"fp16", at::kHalf}}) {
    fs::remove_all(d / "out");
    cg::export_run({d / "run", 5, d / "out", true, name});
    expect_merged(d / "out", d / "hf", lc, dt, run.scale, 7 * 2);
  }
  // No --dtype: the merged checkpoint keeps the base's bf16, the adapter is fp32.
  fs::remove_all(d / "out");
  cg::export_run({d / "run", 5, d / "out", true, ""});
  expect_merged(d / "out", d / "hf", lc, at::kBFloat16, run.scale, 7 * 2);
  cg::model::SafetensorsFile adapter(d / "out/adapter/adapter_model.safetensors");
  for (const auto& key : adapter.keys()) EXPECT_EQ(adapter.info(key).dtype, "F32") << key;
}

// A merged checkpoint is its base with merged weights: the base's config.json fields (token ids), tokenizer and
// generation files and each tensor's dtype (fp32 norms beside fp16 matrices) are kept; config.json records the
// merged adapter's sha256 and checkpoint (cgsample's guard against applying it twice).
TEST(ExportStream, MergedKeepsTheBaseFolder) {
  TempDir d;
  const auto lc = micro();
  std::vector<std::pair<std::string, at::Tensor>> t;
  auto g = at::make_generator<at::CPUGeneratorImpl>(9);
  for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc))
    t.emplace_back(name, (at::randn(shape, g) * 0.05 + (shape.size() == 1 ? 1 : 0))
                             .to(shape.size() == 1 ? at::kFloat : at::kHalf));
  cg::model::write_hf_checkpoint(d / "hf", t, lc);
  auto base_cfg = nlohmann::ordered_json::parse(lc.to_hf_json("float16"));
  base_cfg["pad_token_id"] = 0;
  base_cfg["bos_token_id"] = 1;
  base_cfg["eos_token_id"] = 2;
  base_cfg["transformers_version"] = "4.31.0.dev0";
  // A published revision of the same weights' config (LLaMA-2's eps went 1e-6 -> 1e-5): the merge states the values
  // the run trained with (checked below: load_llama_config(out) == lc).
  base_cfg["rms_norm_eps"] = lc.rms_norm_eps * 0.1;
  base_cfg["max_position_embeddings"] = lc.max_position_embeddings / 2;
  std::ofstream(d / "hf/config.json") << base_cfg.dump(2);
  const std::map<std::string, std::string> side = {
      {"tokenizer_config.json", R"({"chat_template": "{{ messages }}", "model_max_length": 4096})"},
      {"generation_config.json", R"({"do_sample": true, "temperature": 0.6, "top_p": 0.9})"},
      {"special_tokens_map.json", R"({"bos_token": "<s>", "eos_token": "</s>"})"},
      {"tokenizer.json", R"({"version": "1.0"})"}};
  for (const auto& [f, text] : side) std::ofstream(d / ("hf/" + f)) << text;
  const auto run = make_export_run(d / "run", lc, d / "hf", {"lora.r=2", "lora.alpha=4"});

  cg::export_run({d / "run", -1, d / "out", true, ""});
  const cg::model::HfCheckpoint got(d / "out"), base(d / "hf");
  for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc))
    EXPECT_EQ(got.info(name).scalar_type, base.info(name).scalar_type) << name;
  EXPECT_TRUE(at::equal(got.read("model.norm.weight"), base.read("model.norm.weight")));  // fp32, not cut to fp16
  const auto cfg = nlohmann::json::parse(cg::read_file(d / "out/config.json"));
  EXPECT_EQ(cfg["pad_token_id"], 0);
  EXPECT_EQ(cfg["transformers_version"], "4.31.0.dev0");
  EXPECT_EQ(cfg["torch_dtype"], "float16");
  EXPECT_EQ(cg::model::load_llama_config(d / "out"), lc);
  EXPECT_EQ(cfg[cg::kMergedKey]["adapter_sha256"], cg::sha256_file(d / "out/adapter/adapter_model.safetensors"));
  EXPECT_EQ(cfg[cg::kMergedKey]["checkpoint"], fs::weakly_canonical(d / "run/checkpoints/step-5").string());
  EXPECT_EQ(cfg[cg::kMergedKey]["run_dir"], fs::weakly_canonical(d / "run").string());
  // Each adapter cgexport writes says where it came from, so a later one of the same run is known too.
  const cg::MergedFrom src = cg::peft_adapter_source(d / "out/adapter");
  EXPECT_EQ(src.run_dir, fs::weakly_canonical(d / "run").string());
  EXPECT_EQ(src.adapter_sha256, cfg[cg::kMergedKey]["adapter_sha256"]);
  cg::export_run({d / "run", -1, d / "plain", false, "bf16"});  // another file of the same checkpoint
  EXPECT_NE(cg::merged_twice(d / "out", cg::peft_adapter_source(d / "plain"), "sample.adapter X"), "");
  EXPECT_EQ(cg::merged_twice(d / "hf", cg::peft_adapter_source(d / "plain"), "sample.adapter X"), "");
  {  // Hand-edited provenance of the wrong type is no provenance (it was a JSON type error): the sha still tells.
    const std::string kept = cg::read_file(d / "out/config.json");
    auto edited = nlohmann::json::parse(kept);
    edited[cg::kMergedKey]["run_dir"] = 7;
    edited[cg::kMergedKey]["checkpoint"] = nullptr;
    std::ofstream(d / "out/config.json") << edited.dump();
    std::ofstream(d / ("plain/" + std::string(cg::kAdapterSourceFile))) << R"({"run_dir": ["x"], "checkpoint": 3})";
    const cg::MergedFrom plain = cg::peft_adapter_source(d / "plain");
    EXPECT_EQ(plain.run_dir, "");
    EXPECT_NE(cg::merged_twice(d / "out", cg::peft_adapter_source(d / "out/adapter"), "sample.adapter Y"), "");
    EXPECT_EQ(cg::merged_twice(d / "out", plain, "sample.adapter X"), "");  // another file, and no run to compare
    std::ofstream(d / "out/config.json") << kept;
  }
  for (const auto& [f, text] : side) EXPECT_EQ(cg::read_file(d / ("out/" + f)), text) << f;
  for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc)) {
    const std::string mod = name.substr(0, name.size() - 7);
    if (!run.params.count(mod + ".lora_A.weight")) continue;
    const at::Tensor ref = base.read(name).to(at::kDouble) + run.scale * at::matmul(
        run.params.at(mod + ".lora_B.weight").to(at::kDouble), run.params.at(mod + ".lora_A.weight").to(at::kDouble));
    EXPECT_LE((got.read(name).to(at::kDouble) - ref).abs().max().item<double>(), 2e-3) << name;
  }
  // --dtype: every tensor and torch_dtype follow it.
  fs::remove_all(d / "out");
  cg::export_run({d / "run", -1, d / "out", true, "bf16"});
  const cg::model::HfCheckpoint bf(d / "out");
  for (const auto& key : bf.keys()) EXPECT_EQ(bf.info(key).scalar_type, at::kBFloat16) << key;
  EXPECT_EQ(nlohmann::json::parse(cg::read_file(d / "out/config.json"))["torch_dtype"], "bfloat16");
}

// A tied base (tie_word_embeddings true, no lm_head.weight, as transformers saves one): the merged checkpoint writes
// lm_head.weight, the base's embed_tokens bit for bit, and tie_word_embeddings false: transformers reads it back as
// the same model (untied, its head equal to the embedding), as does every reader expecting lm_head.weight.
TEST(ExportStream, MergedFromTiedBaseIsUntiedWithTheEmbeddingAsHead) {
  TempDir d;
  const auto lc = micro();
  std::vector<std::pair<std::string, at::Tensor>> t;
  auto g = at::make_generator<at::CPUGeneratorImpl>(13);
  for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc))
    if (name != "lm_head.weight") t.emplace_back(name, (at::randn(shape, g) * 0.05).to(at::kBFloat16));
  cg::model::write_hf_checkpoint(d / "hf", t, lc);
  auto base_cfg = nlohmann::json::parse(cg::read_file(d / "hf/config.json"));
  base_cfg["tie_word_embeddings"] = true;
  std::ofstream(d / "hf/config.json") << base_cfg.dump(2);
  const auto run = make_export_run(d / "run", lc, d / "hf", {"lora.r=2", "lora.alpha=4"});

  cg::export_run({d / "run", -1, d / "out", true, ""});
  expect_merged(d / "out", d / "hf", lc, at::kBFloat16, run.scale, 2 * 2);  // base lm_head read as embed_tokens
  const cg::model::HfCheckpoint got(d / "out");
  EXPECT_FALSE(got.tied());
  cg::model::SafetensorsFile file(d / "out/model.safetensors");
  ASSERT_TRUE(file.contains("lm_head.weight"));  // stored, not read through the tie
  EXPECT_TRUE(at::equal(file.read("lm_head.weight"), t.front().second));
  EXPECT_EQ(t.front().first, "model.embed_tokens.weight");
  EXPECT_EQ(nlohmann::json::parse(cg::read_file(d / "out/config.json"))["tie_word_embeddings"], false);
}

TEST(ExportStream, RandomInitAndFullParameterRuns) {
  TempDir d;
  const auto lc = micro();
  // No hf_dir: the base is the run's random init (model.init_seed), as in training.
  auto run = make_export_run(d / "rand", lc, "", {"lora.r=4", "lora.alpha=16", "model.init_seed=77"});
  cg::export_run({d / "rand", -1, d / "rand_out", true, "fp32"});
  {
    cg::model::Llama base(lc, cg::model::TpShape{}, at::TensorOptions().dtype(at::kFloat));
    cg::model::init_weights(*base, 77);
    std::vector<std::pair<std::string, at::Tensor>> t;
    for (const auto& p : base->param_specs()) t.emplace_back(p.name, p.param.detach());
    cg::model::write_hf_checkpoint(d / "rand_base", t, lc);
  }
  expect_merged(d / "rand_out", d / "rand_base", lc, at::kFloat, run.scale, 2 * 2);

  // Full-parameter run: the checkpoint's weights, cast to the output dtype, in checkpoint order.
  run = make_export_run(d / "full", lc, "", {"lora.enabled=false"});
  cg::export_run({d / "full", -1, d / "full_out", false, "bf16", 30 * 1024});
  const cg::model::HfCheckpoint got(d / "full_out");
  EXPECT_GT(got.num_files(), 2u);
  for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc))
    EXPECT_TRUE(at::equal(got.read(name), run.params.at(name).to(at::kBFloat16))) << name;
}

// A full-parameter run fine-tuned from an HF base is written as a merge is: each tensor in the base's dtype (bf16
// matrices beside fp32 norms), so the base's torch_dtype describes the tensors; --dtype sets both; with no base
// to read (moved), the checkpoint's fp32 and torch_dtype float32.
TEST(ExportStream, FullParameterRunKeepsTheBaseDtype) {
  TempDir d;
  const auto lc = micro();
  std::vector<std::pair<std::string, at::Tensor>> t;
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc))
    t.emplace_back(name, at::randn(shape, g).to(shape.size() == 1 ? at::kFloat : at::kBFloat16));
  cg::model::write_hf_checkpoint(d / "hf", t, lc);
  ASSERT_EQ(nlohmann::json::parse(cg::read_file(d / "hf/config.json"))["torch_dtype"], "bfloat16");
  write_random_hf(d / "hf32", lc, at::kFloat, int64_t{1} << 30, 6);
  const auto torch_dtype = [&](const std::string& out) {
    return nlohmann::json::parse(cg::read_file(out + "/config.json"))["torch_dtype"].get<std::string>();
  };
  const auto expect_tensors = [&](const std::string& out, const std::map<std::string, at::ScalarType>& dtypes,
                                  const std::map<std::string, at::Tensor>& params) {
    const cg::model::HfCheckpoint got(out);
    for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc)) {
      ASSERT_EQ(got.info(name).scalar_type, dtypes.at(name)) << name;
      EXPECT_TRUE(at::equal(got.read(name), params.at(name).to(dtypes.at(name)))) << name;
    }
  };
  std::map<std::string, at::ScalarType> base_dt, all32, all16;
  for (const auto& [name, x] : t) base_dt[name] = x.scalar_type(), all32[name] = at::kFloat, all16[name] = at::kHalf;

  const auto run = make_export_run(d / "full", lc, d / "hf", {"lora.enabled=false"});
  cg::export_run({d / "full", -1, d / "out", true, ""});
  expect_tensors(d / "out", base_dt, run.params);
  EXPECT_EQ(torch_dtype(d / "out"), "bfloat16");
  cg::export_run({d / "full", -1, d / "out16", true, "fp16"});
  expect_tensors(d / "out16", all16, run.params);
  EXPECT_EQ(torch_dtype(d / "out16"), "float16");

  const auto run32 = make_export_run(d / "full32", lc, d / "hf32", {"lora.enabled=false"});
  cg::export_run({d / "full32", -1, d / "out32", true, ""});
  expect_tensors(d / "out32", all32, run32.params);
  EXPECT_EQ(torch_dtype(d / "out32"), "float32");

  fs::rename(d / "hf", d / "hf_moved");  // no base to read: the checkpoint's dtype, and torch_dtype says so
  cg::export_run({d / "full", -1, d / "out_nobase", true, ""});
  expect_tensors(d / "out_nobase", all32, run.params);
  EXPECT_EQ(torch_dtype(d / "out_nobase"), "float32");
}

// A full-parameter export keeps the base's config.json: a broken one (cut off, or JSON that is no object) is named
// by its path, with what to do, and nothing is left in --out. Read with the base's dtypes (the base unreadable: a
// warning, the checkpoint's dtype) and with --dtype (the base's weights not read at all).
TEST(ExportStream, BrokenBaseConfigJsonIsNamed) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 6);
  make_export_run(d / "full", lc, d / "hf", {"lora.enabled=false"});
  const std::string path = d / "hf/config.json";
  const std::string named = path + " (the config.json of the run's base, which the export keeps) is not ";
  const std::string fix = "; correct it to the base's own (the config.json published with its weights), or give a "
                          "copy of the base with a sound one with --base DIR";
  for (const std::string dtype : {"", "fp16"}) {
    std::ofstream(path) << R"({"hidden_size": 64, "intermediate_size")";
    std::string e = error_of([&] { cg::export_run({d / "full", -1, d / "out", true, dtype}); });
    EXPECT_TRUE(contains(e, named + "valid JSON: [json.exception.parse_error")) << e;
    EXPECT_TRUE(contains(e, fix)) << e;
    EXPECT_FALSE(fs::exists(d / "out")) << dtype;  // no staging folder, half an export, or --out left
    std::ofstream(path) << "[64, 96]";
    e = error_of([&] { cg::export_run({d / "full", -1, d / "out", true, dtype}); });
    EXPECT_TRUE(contains(e, named + "a JSON object of settings" + fix)) << e;
    EXPECT_FALSE(fs::exists(d / "out")) << dtype;  // no staging folder, half an export, or --out left
  }
  std::ofstream(path) << lc.to_hf_json("float32");  // mended: exported
  cg::export_run({d / "full", -1, d / "out", true, ""});
  EXPECT_EQ(cg::model::load_llama_config(d / "out"), lc);
}

TEST(ExportStream, BaseNotMatchingModelConfigIsAClearError) {
  TempDir d;
  auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 3);
  auto bigger = lc;
  bigger.intermediate_size = 128;
  make_export_run(d / "run", bigger, d / "hf", {"lora.r=4"});
  // The base's config.json names another model: each differing field is said.
  auto e = error_of([&] { cg::export_run({d / "run", -1, d / "out", true, "fp32"}); });
  EXPECT_TRUE(contains(e, "intermediate_size 96 there, 128 in the run's model_config.json")) << e;
  EXPECT_FALSE(fs::exists(d / "out"));  // nor the folder it made
  // Its config.json agrees but a tensor does not: the tensor is named.
  std::ofstream(d / "hf/config.json") << bigger.to_hf_json("float32");
  e = error_of([&] { cg::export_run({d / "run", -1, d / "out", true, "fp32"}); });
  EXPECT_TRUE(contains(e, "model.layers.0.mlp.gate_proj.weight has shape [96, 64] but the model expects [128, 64]"))
      << e;
  EXPECT_FALSE(fs::exists(d / "out"));  // nor the folder it made
  std::ofstream(d / "hf/config.json") << lc.to_hf_json("float32");
  // --out equal to the base folder would overwrite the weights being read.
  make_export_run(d / "run2", lc, d / "hf", {"lora.r=4"});
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "run2", -1, d / "hf", true, "fp32"}); }),
                       "is the base model folder"));
  // An export of the other kind into the same folder is refused before anything is written (transformers would load
  // the adapter on its base instead of merged weights beside it); the same kind again overwrites.
  cg::export_run({d / "run2", -1, d / "both", false, "fp32"});
  cg::export_run({d / "run2", -1, d / "both", false, "fp32"});
  const auto mixed = error_of([&] { cg::export_run({d / "run2", -1, d / "both", true, "fp32"}); });
  EXPECT_TRUE(contains(mixed, "already holds adapter_")) << mixed;
  EXPECT_TRUE(contains(mixed, "choose another --out")) << mixed;
  EXPECT_FALSE(std::filesystem::exists(d / "both/config.json"));
  cg::export_run({d / "run2", -1, d / "merged", true, "fp32"});
  const auto over_merged = error_of([&] { cg::export_run({d / "run2", -1, d / "merged", false, "fp32"}); });
  EXPECT_TRUE(contains(over_merged, "(an HF checkpoint, from an earlier --merge export)")) << over_merged;
  EXPECT_FALSE(std::filesystem::exists(d / "merged/adapter_config.json"));
  // Under checkpoints/ (lost to rotation) or the run folder itself (read as its newest checkpoint): refused; a
  // folder of its own inside the run (cgsweep's RUN/adapter) is fine.
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "run2", -1, d / "run2/checkpoints/x", false, "fp32"}); }),
                       "is under the checkpoints folder of"));
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "run2", -1, d / "run2/", false, "fp32"}); }),
                       "is the run folder of"));
  cg::export_run({d / "run2", -1, d / "run2/adapter", false, "fp32"});
  EXPECT_TRUE(std::filesystem::exists(d / "run2/adapter/adapter_config.json"));
  EXPECT_EQ(cg::find_latest_complete(d / "run2")->step, 5);  // the run still reads as its checkpoint
  // A step folder given as the run (cgsample takes one): that run at that step; a --step that contradicts it is an
  // error.
  EXPECT_EQ(cg::export_run({d / "run2/checkpoints/step-5/", -1, d / "from_step", false, "fp32"}),
            d / "run2/checkpoints/step-5");
  EXPECT_EQ(cg::lora::read_peft_adapter(d / "from_step").factors.size(),
            cg::lora::read_peft_adapter(d / "run2/adapter").factors.size());
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "run2/checkpoints/step-5", 3, d / "x", false, "fp32"}); }),
                       "is the checkpoint of step 5, but --step 3 was given"));
  std::filesystem::create_directories(d / "run2/checkpoints/step-7.tmp");  // a save that did not finish
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "run2/checkpoints/step-7.tmp", -1, d / "x", false, "fp32"}); }),
                       "step-7.tmp is a save that did not finish"));
  std::filesystem::remove_all(d / "run2/checkpoints/step-7.tmp");
  // A run folder of its own whose path happens to end in checkpoints/step-N is that run, not a step folder.
  std::filesystem::create_directories(d / "odd/checkpoints");
  std::filesystem::copy(d / "run2", d / "odd/checkpoints/step-9", std::filesystem::copy_options::recursive);
  EXPECT_EQ(cg::export_run({d / "odd/checkpoints/step-9", -1, d / "from_odd", false, "fp32"}),
            d / "odd/checkpoints/step-9/checkpoints/step-5");
  // A run before its first save (cgtrain still on its way to checkpoint.every): nothing to export yet.
  std::filesystem::create_directories(d / "young/checkpoints");
  std::filesystem::copy_file(d / "run2/config.yaml", d / "young/config.yaml");
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "young", -1, d / "x", false, "fp32"}); }),
                       "young has no complete checkpoint under checkpoints/; train first"));
  EXPECT_FALSE(std::filesystem::exists(d / "x"));
  // A folder that is not a run (a typo, or the HF folder itself).
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "no-such-run", -1, d / "out", false, "fp32"}); }),
                       "is not a cgtrain run folder (it has no config.yaml)"));
  EXPECT_TRUE(contains(error_of([&] { cg::export_run({d / "hf", -1, d / "out", false, "fp32"}); }),
                       "is not a cgtrain run folder"));
}

// "Export the run" is its newest checkpoint. A damaged newest one (a flipped byte, a cut file) or one without its
// manifest (a copy that stopped halfway) was skipped with a warning and an older step exported, exit 0: refused now,
// naming the folder, what is wrong with it and the --step that exports the newest intact one on purpose, which works.
// A save still being written (step-N.tmp) is no checkpoint: the newest complete one is exported as before, and the
// resume's choice (the newest intact one) is unchanged.
TEST(ExportStream, DamagedNewestCheckpointIsRefusedNamingTheIntactOne) {
  TempDir d;
  const auto lc = micro();
  make_export_run(d / "run", lc, "", {"lora.r=4"});
  const fs::path ckpts = fs::path(d / "run") / "checkpoints";
  // step-9: a copy of step-5 under the manifest's step 9, intact until damaged below.
  fs::copy(ckpts / "step-5", ckpts / "step-9", fs::copy_options::recursive);
  auto man = nlohmann::json::parse(cg::read_file((ckpts / "step-9/manifest.json").string(), "manifest"));
  man["step"] = 9;
  std::ofstream(ckpts / "step-9/manifest.json") << man.dump();
  ASSERT_EQ(cg::verify_checkpoint((ckpts / "step-9").string()), "");
  const fs::path rank = ckpts / "step-9" / cg::rank_file_name(0);
  {
    std::fstream f(rank, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');  // the same size: only the checksum sees it
  }
  const std::string run = d / "run", out = d / "out";
  std::string e = error_of([&] { cg::export_run({run, -1, out, false, ""}); });
  EXPECT_TRUE(contains(e, "cgexport: the newest checkpoint of " + run + ", " + (ckpts / "step-9").string() +
                              ", is damaged (checksum mismatch in rank-00000.safetensors); the run's newest intact "
                              "step is 5: to export it on purpose, run cgexport " + run + " --step 5 --out " + out +
                              ". Or restore that folder from a copy (a resume from an older step that saves step 9 "
                              "again first moves this folder aside to step-9.damaged)")) << e;
  EXPECT_FALSE(fs::exists(fs::path(out) / "adapter_model.safetensors"));
  EXPECT_EQ(cg::find_latest_complete(run)->step, 5);  // a resume still goes on from the newest intact one
  // The step asked for: exported.
  EXPECT_EQ(cg::export_run({run, 5, out, false, ""}), (ckpts / "step-5").string());
  EXPECT_TRUE(fs::exists(fs::path(out) / "adapter_model.safetensors"));
  // A cut file, with --merge and --dtype kept in the command it suggests.
  fs::resize_file(rank, fs::file_size(rank) - 10);
  e = error_of([&] { cg::export_run({run, -1, d / "out2", true, "bf16"}); });
  EXPECT_TRUE(contains(e, "is damaged (size mismatch in rank-00000.safetensors")) << e;
  EXPECT_TRUE(contains(e, "run cgexport " + run + " --step 5 --out " + d / "out2" + " --merge --dtype bf16.")) << e;
  // No manifest: a save or copy that did not finish, told apart from damage, in cgtrain's and cgsample's words; the
  // step folder itself given (cgexport RUN/checkpoints/step-9, or --step 9) is refused the same way, naming step 5
  // (it was "not a usable checkpoint: missing manifest.json (interrupted save?)", with no step to use).
  fs::remove(ckpts / "step-9/manifest.json");
  e = error_of([&] { cg::export_run({run, -1, d / "out3", false, ""}); });
  EXPECT_TRUE(contains(e, "step-9, is unfinished (it has no manifest.json, which cgtrain writes last: a save or a "
                          "copy of the folder that did not finish); the run's newest intact step is 5")) << e;
  EXPECT_TRUE(contains(e, "Or copy that folder again whole (a resume from an older step that saves step 9 again "
                          "first moves this folder aside to step-9.unfinished)")) << e;
  for (const cg::ExportOptions& given : {cg::ExportOptions{(ckpts / "step-9").string(), -1, d / "out3", false, ""},
                                         cg::ExportOptions{run, 9, d / "out3", false, ""}}) {
    e = error_of([&] { cg::export_run(given); });
    EXPECT_TRUE(contains(e, "cgexport: " + (ckpts / "step-9").string() + " is unfinished (it has no manifest.json, "
                            "which cgtrain writes last: a save or a copy of the folder that did not finish); the "
                            "run's newest intact step is 5: to export it on purpose, run cgexport " + run +
                            " --step 5 --out " + d / "out3" + ". Or copy that folder again whole")) << e;
  }
  // Nothing intact at all: said.
  fs::remove(ckpts / "step-5" / cg::rank_file_name(0));
  e = error_of([&] { cg::export_run({run, -1, d / "out4", false, ""}); });
  EXPECT_TRUE(contains(e, "no other step of the run is intact either")) << e;
  // A save in progress (step-12.tmp) beside an intact step-5: step 5 is the run's newest checkpoint, exported.
  make_export_run(d / "run3", lc, "", {"lora.r=4"});
  fs::create_directories(fs::path(d / "run3") / "checkpoints/step-12.tmp");
  EXPECT_EQ(cg::export_run({d / "run3", -1, d / "out5", false, ""}), d / "run3/checkpoints/step-5");
}

TEST(ExportStream, FullDiskIsAClearErrorAndKeepsTheEarlierExport) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 3);
  make_export_run(d / "run", lc, d / "hf", {"lora.r=4", "lora.targets=all-linear"});
  // The adapter (30 KB) fits; the first merged shard (embedding 26 KB + q, k, v: 58 KB) does not.
  const auto export_with_file_limit = [&](const fs::path& out) {
    cg::test::FileSizeLimit limit(48 * 1024);
    return error_of([&] { cg::export_run({d / "run", -1, out, true, "fp32", 64 * 1024}); });
  };
  const std::string e = export_with_file_limit(d / "out2");
  EXPECT_TRUE(contains(e, d / "out2/.cgexport.tmp/model-00001-of-") && contains(e, "File too large") &&
              contains(e, "file size limit (ulimit -f)") && !contains(e, "disk is full")) << e;
  EXPECT_FALSE(fs::exists(d / "out2"));  // nothing of the failed export: no shard, adapter, staging folder, --out
  // With room, the same export completes; failing again over it leaves it whole.
  cg::export_run({d / "run", -1, d / "out2", true, "fp32", 64 * 1024});
  EXPECT_TRUE(fs::exists(d / "out2/model.safetensors.index.json"));
  const auto before = model_files(d / "out2");
  const std::string index = cg::read_file(d / "out2/model.safetensors.index.json");
  EXPECT_FALSE(export_with_file_limit(d / "out2").empty());
  EXPECT_EQ(model_files(d / "out2"), before);
  EXPECT_EQ(cg::read_file(d / "out2/model.safetensors.index.json"), index);
  EXPECT_TRUE(fs::exists(d / "out2/adapter/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(d / "out2/.cgexport.tmp"));
}

// Every file under `dir` (recursively) by its path relative to `dir`, with its bytes.
std::map<std::string, std::string> folder_files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = cg::read_file(e.path().string());
  return files;
}

// A real full disk (a small tmpfs, not a file size limit): an export that does not fit fails naming the file, the
// disk and what to do; an earlier export in the same --out stays byte for byte, a --out that was not there is not
// left behind, and no temporary file takes space (the disk's free space is what it was). With room, it completes.
// Needs root to mount: skipped where it cannot.
TEST(ExportStream, ARealFullDiskKeepsTheEarlierExportAndLeavesNoLitter) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 3);
  make_export_run(d / "run", lc, d / "hf", {"lora.r=4", "lora.targets=all-linear"});
  cg::test::TmpfsMount tmpfs(d / "tmpfs", 1024 * 1024);
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs at " << tmpfs.dir << " (needs root)";
  const fs::path disk = tmpfs.dir, out = disk / "out", fill = disk / "fill";
  // The merged checkpoint (fp32, ~330 KB in 64 KB shards) and its adapter (~30 KB) fit on the empty disk.
  cg::export_run({d / "run", -1, out, true, "fp32", 64 * 1024});
  const auto before = folder_files(out);
  ASSERT_TRUE(before.count("model.safetensors.index.json") && before.count("adapter/adapter_model.safetensors"));
  // Takes all the free space but `leave` bytes.
  const auto fill_but = [&](uintmax_t leave) {
    fs::remove(fill);
    cg::write_file(fill, std::string(fs::space(disk).available - leave, '\0'));
  };

  // Room for the adapter, not for the merged weights.
  fill_but(100 * 1024);
  uintmax_t free_before = fs::space(disk).available;
  std::string e = error_of([&] { cg::export_run({d / "run", -1, out, true, "fp32", 64 * 1024}); });
  EXPECT_TRUE(contains(e, "cgexport: ") && contains(e, (out / ".cgexport.tmp/").string()) &&
              contains(e, ": No space left on device (errno 28); the disk is full: free disk space or give --out "
                          "another folder (nothing in " + out.string() + " was replaced: an earlier export there is "
                          "kept as it was)")) << e;
  EXPECT_EQ(folder_files(out), before);
  EXPECT_EQ(fs::space(disk).available, free_before);

  // An adapter alone into a new --out, with room for less than it: the same error, and no folder left.
  fill_but(8 * 1024);
  free_before = fs::space(disk).available;
  e = error_of([&] { cg::export_run({d / "run", -1, disk / "adapter", false, ""}); });
  EXPECT_TRUE(contains(e, "cgexport: ") && contains(e, (disk / "adapter/.cgexport.tmp/").string()) &&
              contains(e, ": No space left on device (errno 28); the disk is full: free disk space or give --out "
                          "another folder")) << e;
  EXPECT_FALSE(fs::exists(disk / "adapter"));
  EXPECT_EQ(fs::space(disk).available, free_before);

  // Room made: both complete.
  fs::remove(fill);
  cg::export_run({d / "run", -1, out, true, "fp32", 64 * 1024});
  EXPECT_EQ(folder_files(out), before);  // the same checkpoint, the same bytes
  cg::export_run({d / "run", -1, disk / "adapter", false, ""});
  EXPECT_TRUE(fs::exists(disk / "adapter/adapter_model.safetensors"));
}

namespace {
char g_staging[4096];                      // OUT/.cgexport.tmp of the export below
volatile std::sig_atomic_t g_staging_left = -1;  // whether it was still there when the signal was handled
void note_staging(int) { g_staging_left = ::access(g_staging, F_OK) == 0; }
}  // namespace

// A stop signal while an export is moved into place (Slurm's TERM at the time limit, a Ctrl-C) is held until it is:
// the folder holds the new export whole, not some of its files beside the earlier export's with the rest left in
// .cgexport.tmp (which the next export deletes). Here the signal (USR1, with a handler that looks for the staging
// folder) is raised once the first entry is in place.
TEST(ExportStream, AStopSignalWhileMovingIntoPlaceWaitsUntilTheExportIsWhole) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, 40 * 1024, 3);
  const auto run = make_export_run(d / "run", lc, d / "hf", {"lora.r=2", "lora.alpha=4", "lora.targets=all-linear"});
  cg::export_run({d / "run", 5, d / "out", true, "fp32", 64 * 1024});  // the earlier export: fp32
  std::snprintf(g_staging, sizeof g_staging, "%s", (d / "out/.cgexport.moving").c_str());
  struct sigaction sa = {}, old = {};
  sa.sa_handler = note_staging;
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  ::setenv("CG_TEST_SIGNAL_IN_EXPORT_COMMIT", std::to_string(SIGUSR1).c_str(), 1);
  cg::export_run({d / "run", 5, d / "out", true, "bf16", 64 * 1024});
  ::unsetenv("CG_TEST_SIGNAL_IN_EXPORT_COMMIT");
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(g_staging_left, 0);  // handled once the staging folder was gone: every entry in place
  EXPECT_FALSE(fs::exists(d / "out/.cgexport.tmp"));
  expect_merged(d / "out", d / "hf", lc, at::kBFloat16, run.scale, 7 * 2);
}

namespace {
// Every regular file under `dir` (its path relative to `dir`) and the sha256 of its bytes.
std::map<std::string, std::string> file_tree(const fs::path& dir) {
  std::map<std::string, std::string> t;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) t[fs::relative(e.path(), dir).string()] = cg::sha256_file(e.path().string());
  return t;
}
}  // namespace

// Killed while it moves a finished export into place (SIGKILL, a power loss: no handler runs), cgexport leaves the
// rest of it in OUT/.cgexport.moving, the earlier export's weights already removed: readers refuse the folder, saying
// what to do, and the next cgexport into it finishes that move before anything else, so that even when it fails itself
// (a full disk) the folder holds the killed export whole.
TEST(ExportStream, AnExportKilledWhileMovingIntoPlaceIsRefusedThenFinished) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 3);
  const auto run = make_export_run(d / "run", lc, d / "hf", {"lora.r=4", "lora.targets=all-linear"});
  cg::export_run({d / "run", -1, d / "out", true, "fp32", 64 * 1024});  // the earlier export
  cg::export_run({d / "run", -1, d / "b", true, "bf16", 64 * 1024});    // what the killed export had written
  fs::copy(d / "b", d / "b_ref", fs::copy_options::recursive);
  // The folder as the kill left it: the earlier weights removed, config.json moved in, the rest not yet.
  for (const std::string& f : model_files(d / "out"))
    if (f != "config.json") fs::remove(d / ("out/" + f));
  fs::rename(d / "b/config.json", d / "out/config.json");
  fs::rename(d / "b", d / "out/.cgexport.moving");
  for (const auto& read : std::vector<std::function<void()>>{[&] { cg::model::HfCheckpoint ck(d / "out"); },
                                                             [&] { cg::lora::read_peft_adapter(d / "out"); }}) {
    const std::string e = error_of(read);
    EXPECT_TRUE(contains(e, "holds " + (d / "out/.cgexport.moving") + ": cgexport was stopped") &&
                contains(e, "run that cgexport command again")) << e;
  }
  // The next export into the folder fails (a full disk at its first shard), after it has finished the move.
  {
    cg::test::FileSizeLimit limit(48 * 1024);
    EXPECT_FALSE(error_of([&] { cg::export_run({d / "run", -1, d / "out", true, "fp32", 64 * 1024}); }).empty());
  }
  EXPECT_FALSE(fs::exists(d / "out/.cgexport.moving"));
  EXPECT_FALSE(fs::exists(d / "out/.cgexport.tmp"));
  EXPECT_EQ(file_tree(d / "out"), file_tree(d / "b_ref"));
  expect_merged(d / "out", d / "hf", lc, at::kBFloat16, run.scale, 7 * 2);
}

// --out that is cgprep's shards folder or another run's folder is refused before anything is written: the shards'
// tokenizer.model stays the one their token ids were written with.
TEST(ExportStream, OutThatIsShardsOrAnotherRunIsRefused) {
  TempDir d;
  const auto lc = micro();
  make_export_run(d / "run", lc, "", {"lora.r=4"});
  make_export_run(d / "other", lc, "", {"lora.r=4"});
  fs::create_directories(d / "shards");
  cg::write_file_atomic(d / "shards/cgprep_config.yaml", "data: {}\n");
  cg::write_file_atomic(d / "shards/tokenizer.model", "the shards' own tokenizer");
  std::string e = error_of([&] { cg::export_run({d / "run", -1, d / "shards", false, "fp32"}); });
  EXPECT_TRUE(contains(e, "--out " + (d / "shards") + " holds cgprep_config.yaml, so it is cgprep's shards folder") &&
              contains(e, "choose a folder of its own for --out")) << e;
  EXPECT_EQ(cg::read_file(d / "shards/tokenizer.model"), "the shards' own tokenizer");
  EXPECT_FALSE(fs::exists(d / "shards/adapter_model.safetensors"));
  e = error_of([&] { cg::export_run({d / "run", -1, d / "other", true, "fp32"}); });
  EXPECT_TRUE(contains(e, "holds checkpoints, so it is another cgtrain run's folder")) << e;
  EXPECT_FALSE(fs::exists(d / "other/adapter") || fs::exists(d / "other/config.json"));
}

// An export into a folder that holds an earlier one of the same kind replaces it and says so, naming the checkpoint
// the earlier one came from; the first export into a folder says nothing of the kind.
TEST(ExportStream, ReplacingAnEarlierExportIsSaid) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 3);
  make_export_run(d / "run", lc, d / "hf", {"lora.r=4"});
  std::string ck;
  for (const bool merge : {false, true}) {
    const std::string out = d / (merge ? "merged" : "adapter");
    std::string log = cg::test::log_of([&] { ck = cg::export_run({d / "run", -1, out, merge, "fp32"}); });
    EXPECT_FALSE(contains(log, "replaced")) << log;
    log = cg::test::log_of([&] { cg::export_run({d / "run", -1, out, merge, "fp32"}); });
    EXPECT_TRUE(contains(log, "cgexport: replaced the earlier export of " + ck + " in " + out + "; give --out "
                              "another folder")) << log;
    EXPECT_TRUE(fs::exists(fs::path(out) / (merge ? "config.json" : "adapter_config.json")));
  }
}

// The base folder moved since training: --merge says so and names --base; with --base the merge reads the new place
// and equals the reference; --base on a random-init run is refused.
TEST(ExportStream, MovedBaseNeedsBaseOption) {
  TempDir d;
  const auto lc = micro();
  write_random_hf(d / "hf", lc, at::kFloat, int64_t{1} << 30, 3);
  const auto run = make_export_run(d / "run", lc, d / "hf", {"lora.r=4", "lora.alpha=8"});
  fs::rename(d / "hf", d / "moved");
  const auto e = error_of([&] { cg::export_run({d / "run", -1, d / "out", true, "fp32"}); });
  EXPECT_TRUE(contains(e, "which is not there any more")) << e;
  EXPECT_TRUE(contains(e, "--base DIR")) << e;
  EXPECT_FALSE(fs::exists(d / "out"));  // refused before the output folder is made
  cg::ExportOptions o{d / "run", -1, d / "out", true, "fp32"};
  o.base = d / "moved";
  cg::export_run(o);
  expect_merged(d / "out", d / "moved", lc, at::kFloat, run.scale, 2 * 2);
  const auto a = cg::lora::read_peft_adapter(d / "out/adapter");
  EXPECT_EQ(a.config.base_model_name_or_path, fs::absolute(d / "moved").lexically_normal().string());
  // The adapter alone needs no base weights: no error without --base.
  cg::export_run({d / "run", -1, d / "adapter_only", false, "fp32"});
  EXPECT_TRUE(fs::exists(d / "adapter_only/adapter_model.safetensors"));

  make_export_run(d / "rand", lc, "", {"lora.r=4"});
  cg::ExportOptions r{d / "rand", -1, d / "rand_out", true, "fp32"};
  r.base = d / "moved";
  EXPECT_TRUE(contains(error_of([&] { cg::export_run(r); }), "drop --base"));
}
