// cgtrain --plan's device memory: --device-gb wins, model.device=cpu plans against the host's memory, a cuda config
// without a GPU in sight assumes 80 GB (and says so); the verdict and the headroom follow the memory given; the plan
// says whether its shapes are model.hf_dir's config.json or (the folder not there) model.flavor's preset; a file there,
// or a folder without config.json, is refused.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "dist/nccl_comm.h"
#include "model/llama_config.h"
#include "tests/test_util.h"
#include "trainer/config.h"
#include "trainer/train_plan.h"

namespace {

double meminfo_total_bytes() {  // independent of sysconf: /proc/meminfo's MemTotal in kB
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (f >> key >> kb)
    if (key == "MemTotal:") return kb * 1024;
  return 0;
}

double number_after(const std::string& text, const std::string& pattern) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(text, m, std::regex(pattern))) << pattern << "\n" << text;
  return m.empty() ? -1 : std::stod(m[1].str());
}

TEST(TrainPlan, DeviceMemoryComesFromTheFlagTheHostOrTheGpu) {
  cg::Config cuda = cg::load_config(std::string(CG_SOURCE_DIR) + "/configs/llama70b.yaml", {});
  ASSERT_NE(cuda.model.device, "cpu");
  const cg::PlanDevice flag = cg::plan_device(cuda, 141);
  EXPECT_DOUBLE_EQ(flag.bytes, 141e9);
  EXPECT_NE(flag.what.find("--device-gb"), std::string::npos) << flag.what;

  const cg::PlanDevice seen = cg::plan_device(cuda, 0);
  if (cg::dist::cuda_device_count() == 0) {
    EXPECT_DOUBLE_EQ(seen.bytes, 80e9);
    EXPECT_NE(seen.what.find("assumed 80 GB"), std::string::npos) << seen.what;
  } else {
    EXPECT_DOUBLE_EQ(seen.bytes, cg::dist::cuda_device_memory_bytes(0));
    EXPECT_NE(seen.what.find("GPU 0"), std::string::npos) << seen.what;
  }

  cg::Config cpu = cg::load_config(std::string(CG_SOURCE_DIR) + "/configs/tiny.yaml", {"model.device=cpu"});
  const cg::PlanDevice host = cg::plan_device(cpu, 0);
  EXPECT_NEAR(host.bytes, meminfo_total_bytes(), 0.01 * meminfo_total_bytes());
  EXPECT_NE(host.what.find("this host's"), std::string::npos) << host.what;
}

TEST(TrainPlan, VerdictAndHeadroomFollowTheDeviceMemory) {
  const cg::Config cfg = cg::load_config(std::string(CG_SOURCE_DIR) + "/configs/llama70b.yaml", {});
  const std::string big = cg::train_plan_text(cfg, cg::plan_device(cfg, 141));
  const std::string small = cg::train_plan_text(cfg, cg::plan_device(cfg, 24));
  const double total = number_after(big, R"(total\s+([0-9.]+) GB\s+of 141\.00 GB)");
  EXPECT_EQ(number_after(small, R"(total\s+([0-9.]+) GB\s+of 24\.00 GB)"), total);  // the need does not change
  ASSERT_GT(total, 24);  // 70B at tp 8 needs more than 24 GB a rank: 17 GB of weights alone
  ASSERT_LT(total, 141);
  EXPECT_NEAR(number_after(big, R"(fits: yes, ([0-9.]+) GB to spare)"), 141 - total, 0.011);
  EXPECT_NEAR(number_after(small, R"(fits: NO, over by ([0-9.]+) GB)"), total - 24, 0.011);
  EXPECT_EQ(big.rfind("device memory: 141 GB (--device-gb)", 0), 0u) << big;
  bool fits = false;
  cg::train_plan_text(cfg, cg::plan_device(cfg, 141), &fits);
  EXPECT_TRUE(fits);
  cg::train_plan_text(cfg, cg::plan_device(cfg, 24), &fits);
  EXPECT_FALSE(fits);
}

TEST(TrainPlan, CpuPlansEveryRankAgainstTheHost) {
  const cg::Config cfg = cg::load_config(std::string(CG_SOURCE_DIR) + "/configs/tiny.yaml",
                                         {"model.device=cpu", "parallel.tp=2", "parallel.dp=8"});
  const std::string text = cg::train_plan_text(cfg, cg::plan_device(cfg, 24));
  const double per_rank = number_after(text, R"(total\s+([0-9.]+) GB\s+per rank; x 16 ranks on this host)");
  EXPECT_NEAR(number_after(text, R"(16 ranks on this host = ([0-9.]+) GB of 24\.00 GB)"), 16 * per_rank, 0.09);
  EXPECT_EQ(text.find("context/NCCL"), std::string::npos) << text;
}

// What a full-parameter launch refuses before it reads a weight is a mistake in the plan too (exit 2), not a plan
// that fits: a base whose lm_head is tied to embed_tokens, weights other than fp32.
TEST(TrainPlan, RefusesWhatFullParameterTrainingCannotTrain) {
  cg::test::TempDir dir("cg_plan_full_param");
  const std::string hf = dir / "tied";
  std::filesystem::create_directories(hf);
  auto j = nlohmann::json::parse(cg::model::llama_flavor("tiny").to_hf_json());
  j["tie_word_embeddings"] = true;
  std::ofstream(hf + "/config.json") << j.dump();
  const std::string src = std::string(CG_SOURCE_DIR) + "/configs/tiny.yaml";  // fp32 on the cpu
  auto plan = [&](const std::vector<std::string>& overrides) {
    const cg::Config c = cg::load_config(src, overrides);
    try {
      return cg::train_plan_text(c, cg::plan_device(c, 141));
    } catch (const std::exception& e) {
      return std::string("refused: ") + e.what();
    }
  };
  std::string p = plan({"model.hf_dir=" + hf});  // LoRA: lm_head and embed_tokens both stay frozen
  EXPECT_EQ(p.find("refused"), std::string::npos) << p;
  p = plan({"model.hf_dir=" + hf, "lora.enabled=false"});
  EXPECT_NE(p.find("model.hf_dir " + hf + " ties lm_head to embed_tokens (config.json tie_word_embeddings true), and "
                   "full-parameter training (lora.enabled=false) would train them apart"), std::string::npos) << p;
  EXPECT_EQ(p.rfind("refused: ", 0), 0u) << p;
  p = plan({"lora.enabled=false", "model.dtype=bf16"});
  EXPECT_NE(p.find("full-parameter training (lora.enabled=false) keeps fp32 weights"), std::string::npos) << p;
  EXPECT_EQ(p.rfind("refused: ", 0), 0u) << p;
  p = plan({"lora.enabled=false"});
  EXPECT_EQ(p.find("refused"), std::string::npos) << p;
}

TEST(TrainPlan, SaysWhetherTheShapesAreTheCheckpointsOrTheFlavorsPreset) {
  cg::test::TempDir dir("cg_plan_shapes");
  const std::string missing = dir / "Llama-2-70b-hf";  // a shipped config's hf_dir, not downloaded here
  const std::string src = std::string(CG_SOURCE_DIR) + "/configs/llama70b.yaml";
  const cg::Config preset = cg::load_config(src, {"model.hf_dir=" + missing});
  const std::string said = "shapes: model.flavor=70b preset (model.hf_dir " + missing + " does not exist here, so "
                           "the plan uses model.flavor=70b;";
  const std::string text = cg::train_plan_text(preset, cg::plan_device(preset, 141));
  EXPECT_NE(text.find(said), std::string::npos) << text;
  EXPECT_NE(text.find("model: 80 layers, hidden 8192, 64 heads (8 kv)"), std::string::npos) << text;  // LLaMA-2 70B

  // A checkpoint's own config.json (another shape than the flavor's, so the plan cannot have used the preset).
  const std::string hf = dir / "hf";
  std::filesystem::create_directories(hf);
  cg::model::LlamaConfig lc = cg::model::llama_flavor("tiny");
  lc.num_hidden_layers = 3;
  lc.hidden_size = 96;
  lc.num_attention_heads = 6;
  lc.num_key_value_heads = 2;
  lc.intermediate_size = 200;
  lc.vocab_size = 300;
  std::ofstream(hf + "/config.json") << lc.to_hf_json();
  const cg::Config read = cg::load_config(src, {"model.hf_dir=" + hf, "parallel.tp=2"});
  const std::string own = cg::train_plan_text(read, cg::plan_device(read, 141));
  EXPECT_EQ(own.find("preset"), std::string::npos) << own;
  EXPECT_NE(own.find("\nshapes: " + hf + "/config.json (model.hf_dir)\n"), std::string::npos) << own;
  EXPECT_NE(own.find("model: 3 layers, hidden 96, 6 heads (2 kv), MLP 200, vocab 300"), std::string::npos) << own;

  // A model.hf_dir that is there but no checkpoint folder is a mistake, not a folder still to come: refused, saying
  // what to set (a plan of the preset would not be the model the run trains).
  auto refusal = [&](const std::string& hf_dir) {
    try {
      cg::train_plan_text(cg::load_config(src, {"model.hf_dir=" + hf_dir}), cg::plan_device(preset, 141));
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("planned");
  };
  const std::string file = dir / "Llama-2-70b-hf.tar";
  std::ofstream(file) << "not a folder";
  std::string e = refusal(file);
  EXPECT_NE(e.find("model.hf_dir " + file + " is a file, not a folder: set model.hf_dir to the Hugging Face "
                   "checkpoint folder"), std::string::npos) << e;
  const std::string empty = dir / "empty";
  std::filesystem::create_directories(empty);
  e = refusal(empty);
  EXPECT_NE(e.find("model.hf_dir " + empty + " has no config.json"), std::string::npos) << e;

  // No model.hf_dir: the flavor, said as such but not as a fallback.
  const cg::Config tiny = cg::load_config(std::string(CG_SOURCE_DIR) + "/configs/tiny.yaml", {});
  const std::string random = cg::train_plan_text(tiny, cg::plan_device(tiny, 141));
  EXPECT_NE(random.find("\nshapes: model.flavor=tiny preset (no model.hf_dir)\n"), std::string::npos) << random;
}

}  // namespace
