// PEFT adapters: exact HF names/shapes/dtypes/JSON fields on write, round trip, and reading an adapter laid out byte
// for byte as PEFT saves it (safetensors written by hand here, not by our writer).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>

#include "common/error.h"
#include "lora/peft.h"
#include "model/safetensors.h"
#include "trainer/config.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

namespace fs = std::filesystem;
using cg::lora::PeftConfig;

namespace {

std::string fresh_dir(const std::string& name) {
  fs::path p = fs::path(::testing::TempDir()) / ("peft_" + name);
  fs::remove_all(p);
  return p.string();
}

// The cg::Error `f` throws, "accepted" where it throws none.
template <class F>
std::string refusal_of(F&& f) {
  try {
    f();
  } catch (const cg::Error& e) {
    return e.what();
  }
  return "accepted";
}

// The safetensors header of a file, parsed independently of model/safetensors.
nlohmann::json read_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string h(n, '\0');
  in.read(h.data(), static_cast<std::streamsize>(n));
  return nlohmann::json::parse(h);
}

// Two layers, q_proj (in 6 -> out 6) and down_proj (in 10 -> out 6), rank 2; values distinct per tensor.
std::map<std::string, at::Tensor> sample_factors() {
  std::map<std::string, at::Tensor> f;
  int k = 0;
  for (int layer : {0, 1}) {
    for (auto [mod, in, out] : {std::tuple<std::string, int, int>{"self_attn.q_proj", 6, 6}, {"mlp.down_proj", 10, 6}}) {
      std::string base = fmt::format("model.layers.{}.{}", layer, mod);
      f[base + ".lora_A.weight"] = torch::arange(2 * in, torch::kFloat).reshape({2, in}) * 0.01 + k++;
      f[base + ".lora_B.weight"] = torch::arange(out * 2, torch::kFloat).reshape({out, 2}) * -0.02 + k++;
    }
  }
  return f;
}

using cg::test::log_of;

PeftConfig sample_config() {
  PeftConfig c;
  c.r = 2;
  c.lora_alpha = 16;
  c.lora_dropout = 0.05;
  c.target_modules = {"q_proj", "down_proj"};
  c.base_model_name_or_path = "meta-llama/Llama-2-7b-hf";
  return c;
}

TEST(Peft, WritesHfNamesShapesDtypesAndConfigFields) {
  std::string dir = fresh_dir("write");
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kBFloat16);
  nlohmann::json h = read_header(dir + "/adapter_model.safetensors");
  EXPECT_EQ(h["__metadata__"]["format"], "pt");
  const auto& qa = h.at("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(qa["dtype"], "BF16");
  EXPECT_EQ(qa["shape"], nlohmann::json::array({2, 6}));
  EXPECT_EQ(h.at("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight")["shape"],
            nlohmann::json::array({2, 10}));
  EXPECT_EQ(h.at("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight")["shape"],
            nlohmann::json::array({6, 2}));
  EXPECT_EQ(h.size(), 8u + 1u);  // 8 tensors + metadata

  std::ifstream in(dir + "/adapter_config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["r"], 2);
  EXPECT_TRUE(j["lora_alpha"].is_number_integer());
  EXPECT_EQ(j["lora_alpha"], 16);
  EXPECT_DOUBLE_EQ(j["lora_dropout"].get<double>(), 0.05);
  EXPECT_EQ(j["target_modules"], nlohmann::json::array({"q_proj", "down_proj"}));
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["base_model_name_or_path"], "meta-llama/Llama-2-7b-hf");
  EXPECT_EQ(j["fan_in_fan_out"], false);
  EXPECT_EQ(j["use_rslora"], false);
  EXPECT_EQ(j["inference_mode"], true);
  // A base folder whose name is not UTF-8 (Latin-1 "café"): written, its bad byte as U+FFFD, where JSON would fail.
  auto latin1 = sample_config();
  latin1.base_model_name_or_path = "/data/caf\xe9/llama";
  fs::remove_all(dir);
  cg::lora::write_peft_adapter(dir, latin1, sample_factors(), at::kBFloat16);
  std::ifstream in2(dir + "/adapter_config.json");
  EXPECT_EQ(nlohmann::json::parse(in2)["base_model_name_or_path"], "/data/caf\xef\xbf\xbd/llama");
}

TEST(Peft, RoundTripFp32ExactBf16Rounded) {
  auto factors = sample_factors();
  for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    std::string dir = fresh_dir("roundtrip");
    PeftConfig cfg = sample_config();
    cfg.use_rslora = true;
    cg::lora::write_peft_adapter(dir, cfg, factors, dtype);
    cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(dir);
    EXPECT_EQ(a.config.r, 2);
    EXPECT_EQ(a.config.lora_alpha, 16);
    EXPECT_TRUE(a.config.use_rslora);
    EXPECT_DOUBLE_EQ(a.config.scale(), 16 / std::sqrt(2.0));
    EXPECT_EQ(a.config.target_modules, cfg.target_modules);
    EXPECT_EQ(a.config.base_model_name_or_path, cfg.base_model_name_or_path);
    ASSERT_EQ(a.factors.size(), factors.size());
    for (const auto& [name, t] : factors) {
      ASSERT_TRUE(a.factors.count(name)) << name;
      EXPECT_EQ(a.factors[name].scalar_type(), at::kFloat);
      EXPECT_TRUE(torch::equal(a.factors[name], t.to(dtype).to(at::kFloat))) << name;
    }
  }
}

TEST(Peft, FractionalAlphaIsWrittenAsItIs) {
  // PEFT writes a whole lora_alpha as an integer; a fractional one must stay fractional, or PEFT's scale
  // lora_alpha / r would change (2.5 / 2 = 1.25, not 2 / 2).
  const std::string dir = fresh_dir("fractional_alpha");
  PeftConfig cfg = sample_config();
  cfg.lora_alpha = 2.5;
  cg::lora::write_peft_adapter(dir, cfg, sample_factors(), at::kFloat);
  std::ifstream in(dir + "/adapter_config.json");
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(in)["lora_alpha"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(cg::lora::read_peft_adapter(dir).config.scale(), 1.25);
}

// An adapter whose numbers cannot be used (a diverged run's NaN, a scale beyond float) is refused when read, not merged
// into weights that would then write nothing parseable.
TEST(Peft, RefusesNonFiniteFactorsAndUnusableAlpha) {
  const auto error_of = [](const std::string& dir) -> std::string {
    try {
      cg::lora::read_peft_adapter(dir);
    } catch (const cg::Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string dir = fresh_dir("nonfinite");
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto factors = sample_factors();
    factors["model.layers.1.mlp.down_proj.lora_B.weight"][3][1] = bad;
    fs::remove_all(dir);
    cg::lora::write_peft_adapter(dir, sample_config(), factors, at::kBFloat16);
    const std::string e = error_of(dir);
    EXPECT_NE(e.find("tensor 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight' holds NaN or infinite "
                     "values"), std::string::npos) << e;
  }
  fs::remove_all(dir);
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors());
  EXPECT_EQ(error_of(dir), "");
  for (const char* alpha : {"-1e300", "0", "1e39", "-8"}) {
    std::ifstream in(dir + "/adapter_config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j["lora_alpha"] = std::stod(alpha);
    std::ofstream(dir + "/adapter_config.json") << j.dump();
    const std::string e = error_of(dir);
    EXPECT_NE(e.find("is not a positive number that fits a 32-bit float"), std::string::npos) << alpha << ": " << e;
  }
  fs::remove_all(dir);
  // A cgtrain run folder given where an adapter goes (lora.init_adapter): the way to make one is named.
  fs::create_directories(dir + "/checkpoints");
  const std::string run = error_of(dir);
  EXPECT_NE(run.find(dir + " is not a PEFT adapter folder but a cgtrain run or step folder: export its adapter first "
                     "(cgexport " + dir + " --out DIR) and give DIR"), std::string::npos) << run;
  fs::remove_all(dir);
  fs::create_directories(dir);
  EXPECT_EQ(error_of(dir).find("cgexport"), std::string::npos) << error_of(dir);  // an empty folder is just no adapter
  // A cgexport into the folder that is running or was stopped before its export was complete: said so.
  fs::create_directories(dir + "/.cgexport.tmp");
  const std::string staging = error_of(dir);
  EXPECT_NE(staging.find("(it holds " + dir + "/.cgexport.tmp: a cgexport into it is still running, or was stopped "
                         "before its export was complete; wait for it to finish, or run that cgexport command again)"),
            std::string::npos) << staging;
  fs::remove_all(dir);
}

TEST(Peft, ReadsAdapterInPeftsExactLayout) {
  // As PEFT's save_pretrained writes it: header JSON padded with spaces to a multiple of 8, tensors sorted by name,
  // "__metadata__" {"format": "pt"}, adapter_config.json with PEFT's own extra keys.
  std::string dir = fresh_dir("hf_layout");
  fs::create_directories(dir);
  const std::string a_name = "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight";
  const std::string b_name = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight";
  std::vector<float> A = {1, 2, 3, 4, 5, 6};     // (r=1, in=6)
  std::vector<float> B = {0.5f, -1.0f, 2.0f, 0.25f};  // (out=4, r=1)
  std::string header = fmt::format(
      R"({{"__metadata__":{{"format":"pt"}},"{}":{{"dtype":"F32","shape":[1,6],"data_offsets":[0,24]}},)"
      R"("{}":{{"dtype":"F32","shape":[4,1],"data_offsets":[24,40]}}}})",
      a_name, b_name);
  while (header.size() % 8) header += ' ';
  {
    std::ofstream out(dir + "/adapter_model.safetensors", std::ios::binary);
    uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
    out.write(reinterpret_cast<const char*>(A.data()), 24);
    out.write(reinterpret_cast<const char*>(B.data()), 16);
  }
  std::ofstream(dir + "/adapter_config.json") << R"({
  "alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "NousResearch/Llama-2-7b-hf",
  "bias": "none", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
  "layer_replication": null, "layers_pattern": null, "layers_to_transform": null, "loftq_config": {},
  "lora_alpha": 8, "lora_dropout": 0.1, "megatron_config": null, "megatron_core": "megatron.core",
  "modules_to_save": null, "peft_type": "LORA", "r": 1, "rank_pattern": {}, "revision": null,
  "target_modules": ["v_proj"], "task_type": "CAUSAL_LM", "use_dora": false, "use_rslora": false
})";
  cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(a.config.r, 1);
  EXPECT_DOUBLE_EQ(a.config.scale(), 8.0);
  EXPECT_DOUBLE_EQ(a.config.lora_dropout, 0.1);
  EXPECT_EQ(a.config.base_model_name_or_path, "NousResearch/Llama-2-7b-hf");
  ASSERT_EQ(a.factors.size(), 2u);
  at::Tensor ra = a.factors.at("model.layers.0.self_attn.v_proj.lora_A.weight");
  at::Tensor rb = a.factors.at("model.layers.0.self_attn.v_proj.lora_B.weight");
  EXPECT_TRUE(torch::equal(ra, torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).reshape({1, 6})));
  EXPECT_TRUE(torch::equal(rb, torch::tensor({0.5f, -1.f, 2.f, 0.25f}).reshape({4, 1})));

  // Optional keys written as null (PEFT's LoraConfig without a task_type saves "task_type": null) read as absent.
  std::ofstream(dir + "/adapter_config.json")
      << R"({"peft_type": "LORA", "r": 1, "lora_alpha": 8, "target_modules": ["v_proj"], "task_type": null,
             "bias": null, "lora_dropout": null, "use_rslora": null, "fan_in_fan_out": null, "use_dora": null})";
  const cg::lora::PeftAdapter nulls = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(nulls.config.task_type, "");
  EXPECT_EQ(nulls.config.bias, "none");
  EXPECT_DOUBLE_EQ(nulls.config.lora_dropout, 0.0);

  // Unsupported variants fail with the reason.
  std::ofstream(dir + "/adapter_config.json")
      << R"({"peft_type": "LORA", "r": 1, "lora_alpha": 8, "target_modules": ["v_proj"], "use_dora": true})";
  try {
    cg::lora::read_peft_adapter(dir);
    FAIL() << "expected DoRA to be rejected";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("DoRA"), std::string::npos) << e.what();
  }
  // A regular expression as target_modules (PEFT's re.fullmatch over module paths): the targets are the modules
  // the adapter's tensors belong to.
  const std::string head = R"({"peft_type": "LORA", "r": 1, "lora_alpha": 8, )";
  std::ofstream(dir + "/adapter_config.json") << head + R"x("target_modules": ".*\\.(q_proj|v_proj)"})x";
  EXPECT_EQ(cg::lora::read_peft_adapter(dir).config.target_modules, std::vector<std::string>{"v_proj"});
  // Layer subsets, extra trained modules and LoRA biases are refused by name.
  for (const std::string extra : {R"("layers_to_transform": [0])", R"("layers_pattern": "layers")",
                                  R"("modules_to_save": ["lm_head"])", R"("lora_bias": true)"}) {
    std::ofstream(dir + "/adapter_config.json") << head + R"("target_modules": ["v_proj"], )" + extra + "}";
    const std::string key = extra.substr(1, extra.find('"', 1) - 1);
    try {
      cg::lora::read_peft_adapter(dir);
      ADD_FAILURE() << extra << " was accepted";
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
    }
  }
}

// The variants real PEFT files come in that the reader must not take for a plain LoRA: a changed-base start (PiSSA
// and the like), layer replication; and the forms of target_modules PEFT matches by suffix.
TEST(Peft, RefusesChangedBaseStartsAndReadsTargetPaths) {
  const std::string dir = fresh_dir("variants");
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);
  const std::string head = R"({"peft_type": "LORA", "r": 2, "lora_alpha": 16, )";
  auto config = [&](const std::string& rest) { std::ofstream(dir + "/adapter_config.json") << head + rest + "}"; };
  auto refusal = [&](const std::string& rest) {
    config(rest);
    return refusal_of([&] { cg::lora::read_peft_adapter(dir); });
  };
  const std::string tm = R"("target_modules": ["q_proj", "down_proj"])";
  for (const std::string init : {"pissa", "pissa_niter_4", "olora", "corda", "loftq"}) {
    const std::string why = refusal(tm + R"(, "init_lora_weights": ")" + init + "\"");
    EXPECT_NE(why.find("init_lora_weights = \"" + init + "\" is not supported"), std::string::npos) << why;
  }
  for (const std::string init : {R"(true)", R"(false)", R"("gaussian")", R"("eva")", R"("orthogonal")"}) {
    config(tm + R"(, "init_lora_weights": )" + init);
    EXPECT_NO_THROW(cg::lora::read_peft_adapter(dir)) << init;
  }
  std::string why = refusal(tm + R"(, "layer_replication": [[0, 1], [1, 2]])");
  EXPECT_NE(why.find("layer_replication"), std::string::npos) << why;
  // Dotted suffixes and full paths name the same modules as their last component (PEFT: name == t or ends with
  // "." + t); the targets are then read from the tensors.
  config(R"("target_modules": ["self_attn.q_proj", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"])");
  EXPECT_EQ(cg::lora::read_peft_adapter(dir).config.target_modules, (std::vector<std::string>{"down_proj", "q_proj"}));
  // A mistyped or missing key is named.
  why = refusal(R"("target_modules": ["q_proj"], "lora_alpha": "16")");
  EXPECT_NE(why.find("\"lora_alpha\" = \"16\" has the wrong type"), std::string::npos) << why;
  // The rank is a whole number >= 1: not truncated from 2.5, not 0 (scale alpha / r), not converted from 1e30.
  for (const std::string r : {"\"2\"", "2.5", "0", "-2", "1e+30", "true"}) {
    why = refusal(tm + R"(, "r": )" + r);
    EXPECT_NE(why.find("\"r\" is " + r + ", not a whole number in [1, "), std::string::npos) << why;
  }
  std::ofstream(dir + "/adapter_config.json") << R"({"peft_type": "LORA", "r": 2, "lora_alpha": 16})";
  try {
    cg::lora::read_peft_adapter(dir);
    ADD_FAILURE() << "no target_modules accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"target_modules\" is missing"), std::string::npos) << e.what();
  }
}

TEST(Peft, RefusesTensorNamesOutsidePeftsSavedLayout) {
  // In memory PEFT names factors "...lora_A.default.weight"; save_pretrained strips the adapter name. A file that
  // kept it (a raw state_dict) is refused naming the file, not read as missing factors.
  const std::string dir = fresh_dir("default_names");
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);
  std::vector<std::pair<std::string, at::Tensor>> renamed;
  for (const auto& [name, t] : sample_factors()) {
    std::string n = "base_model.model." + name;
    n.insert(n.rfind(".weight"), ".default");
    renamed.emplace_back(n, t);
  }
  cg::model::write_safetensors(dir + "/adapter_model.safetensors", renamed, {});
  try {
    cg::lora::read_peft_adapter(dir);
    FAIL() << "'.default' names accepted";
  } catch (const cg::Error& e) {
    const std::string why = e.what();
    EXPECT_NE(why.find(dir + "/adapter_model.safetensors"), std::string::npos) << why;
    EXPECT_NE(why.find("'.default'"), std::string::npos) << why;
  }
  // Names without PEFT's "base_model.model." prefix: the file is named too.
  std::vector<std::pair<std::string, at::Tensor>> bare;
  for (const auto& [name, t] : sample_factors()) bare.emplace_back(name, t);
  cg::model::write_safetensors(dir + "/adapter_model.safetensors", bare, {});
  try {
    cg::lora::read_peft_adapter(dir);
    FAIL() << "unprefixed names accepted";
  } catch (const cg::Error& e) {
    const std::string why = e.what();
    EXPECT_NE(why.find(dir + "/adapter_model.safetensors"), std::string::npos) << why;
    EXPECT_NE(why.find("base_model.model."), std::string::npos) << why;
  }
}

// PEFT LoraConfig keys that either change nothing here (patterns equal to r / lora_alpha, "r": 2.0, target list
// entries of other architectures, exclude_modules) or are refused naming the key and what to do (merge with PEFT).
TEST(Peft, AcceptsNoOpKeysAndRefusalsSayWhatToDo) {
  const std::string dir = fresh_dir("noop_keys");
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);
  const std::string head = R"({"peft_type": "LORA", "r": 2, "lora_alpha": 16, )";
  const std::string tm = R"("target_modules": ["q_proj", "down_proj"])";
  auto config = [&](const std::string& rest) { std::ofstream(dir + "/adapter_config.json") << head + rest + "}"; };
  auto refusal = [&](const std::string& rest) {
    config(rest);
    return refusal_of([&] { cg::lora::read_peft_adapter(dir); });
  };
  for (const std::string same : {R"("rank_pattern": {"q_proj": 2, "down_proj": 2})", R"("alpha_pattern": {"q_proj": 16.0})",
                                 R"("rank_pattern": null, "alpha_pattern": {})", R"("exclude_modules": null)"}) {
    config(tm + ", " + same);
    EXPECT_NO_THROW(cg::lora::read_peft_adapter(dir)) << same;
  }
  std::ofstream(dir + "/adapter_config.json") << R"({"peft_type": "LORA", "r": 2.0, "lora_alpha": 16, )" + tm + "}";
  EXPECT_EQ(cg::lora::read_peft_adapter(dir).config.r, 2);
  // A folder in adapter_config.json's place: said so with its path (an ifstream on it threw libstdc++'s bare
  // "basic_filebuf::underflow error reading the file: Is a directory", no cg::Error and no path).
  fs::remove(dir + "/adapter_config.json");
  fs::create_directory(dir + "/adapter_config.json");
  const std::string folder = refusal_of([&] { cg::lora::read_peft_adapter(dir); });
  EXPECT_NE(folder.find("cannot read PEFT adapter config " + dir + "/adapter_config.json: it is a folder, not a file"),
            std::string::npos) << folder;
  fs::remove(dir + "/adapter_config.json");
  // An adapter_config.json of another export beside these tensors: named, with what to do.
  std::ofstream(dir + "/adapter_config.json") << R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, )" + tm + "}";
  const std::string other_r = refusal_of([&] { cg::lora::read_peft_adapter(dir); });
  EXPECT_NE(other_r.find("every tensor has rank 2 but adapter_config.json's r = 8"), std::string::npos) << other_r;
  EXPECT_NE(other_r.find("copy both from one export (or export again)"), std::string::npos) << other_r;
  // One module's factors of another rank than the rest and adapter_config.json's r: that tensor is named with its
  // rank and r, and the file (not the pairing of the two files) is what is wrong.
  {
    std::vector<std::pair<std::string, at::Tensor>> mixed;
    for (const auto& [name, t] : sample_factors()) {
      at::Tensor f = t;
      if (name == "model.layers.1.mlp.down_proj.lora_A.weight") f = torch::ones({3, 10});
      if (name == "model.layers.1.mlp.down_proj.lora_B.weight") f = torch::ones({6, 3});
      mixed.emplace_back("base_model.model." + name, f);
    }
    const std::string cut = fresh_dir("mixed_rank");
    cg::lora::write_peft_adapter(cut, sample_config(), sample_factors(), at::kFloat);
    cg::model::write_safetensors(cut + "/adapter_model.safetensors", mixed, {{"format", "pt"}});
    const std::string one = refusal_of([&] { cg::lora::read_peft_adapter(cut); });
    EXPECT_NE(one.find("tensor model.layers.1.mlp.down_proj.lora_A.weight has rank 3 (A is (r, in), B is (out, r)) "
                       "but adapter_config.json's r = 2, and the file's tensors have ranks [2, 3]"), std::string::npos)
        << one;
    EXPECT_NE(one.find("this file was edited or put together from several adapters"), std::string::npos) << one;
    EXPECT_EQ(one.find("different adapters"), std::string::npos) << one;
    fs::remove_all(cut);
  }
  for (const std::string bad : {R"("rank_pattern": {"q_proj": 4})", R"("alpha_pattern": {"down_proj": 32})",
                                R"("bias": "lora_only")", R"("fan_in_fan_out": true)", R"("use_dora": true)",
                                R"("use_qalora": true)", R"("lora_bias": true)", R"("modules_to_save": ["lm_head"])",
                                R"("layers_to_transform": [0])"}) {
    const std::string why = refusal(tm + ", " + bad), key = bad.substr(1, bad.find('"', 1) - 1);
    EXPECT_NE(why.find(key), std::string::npos) << why;
    EXPECT_NE(why.find("not supported"), std::string::npos) << why;
    EXPECT_NE(why.find("merge_and_unload().save_pretrained(OUT)) and give OUT as model.hf_dir"), std::string::npos)
        << why;
  }
  // Entries naming no LLaMA module are left out, as PEFT ignores them; none left is another architecture's adapter.
  config(R"("target_modules": ["query", "q_proj", "value", "down_proj"])");
  const cg::lora::PeftAdapter extra = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(extra.config.target_modules, (std::vector<std::string>{"q_proj", "down_proj"}));
  EXPECT_EQ(extra.ignored_targets, (std::vector<std::string>{"query", "value"}));
  std::string why = refusal(R"("target_modules": ["query", "value"])");
  EXPECT_NE(why.find("target_modules [query,value] names no LLaMA module"), std::string::npos) << why;
  // exclude_modules: the modules left are those the tensors hold (here no down_proj factors).
  auto q_only = sample_factors();
  for (int layer : {0, 1})
    for (const char* f : {"lora_A", "lora_B"}) q_only.erase(fmt::format("model.layers.{}.mlp.down_proj.{}.weight", layer, f));
  cg::lora::write_peft_adapter(dir, sample_config(), q_only, at::kFloat);
  config(R"("target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], )"
         R"("exclude_modules": ["down_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"])");
  EXPECT_EQ(cg::lora::read_peft_adapter(dir).config.target_modules, std::vector<std::string>{"q_proj"});
  fs::remove_all(dir);
}

// target_modules listing a module the tensors hold no factors for: read as PEFT loads it (a missing-keys warning, that
// module's lora_B = 0, no update), so cgsample and cgtrain apply the modules the tensors hold, and warn naming the
// listed ones without factors. A tensor of a module the list lacks keeps the list as written: the files disagree,
// and the caller's load refuses it.
TEST(Peft, ListedModulesWithoutFactorsAreLeftOutWithAWarning) {
  const std::string dir = fresh_dir("untrained");
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);  // q_proj and down_proj
  const std::string head = R"({"peft_type": "LORA", "r": 2, "lora_alpha": 16, "target_modules": )";
  std::ofstream(dir + "/adapter_config.json") << head + R"(["q_proj", "v_proj", "down_proj", "up_proj"]})";
  const cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(a.config.target_modules, (std::vector<std::string>{"q_proj", "down_proj"}));
  EXPECT_EQ(a.untrained_targets, (std::vector<std::string>{"v_proj", "up_proj"}));
  EXPECT_EQ(a.factors.size(), 8u);
  const std::string log = log_of([&] { cg::lora::warn_ignored_targets(a, "SETTING"); });
  EXPECT_NE(log.find("SETTING: adapter_config.json target_modules lists [v_proj,up_proj], but "
                     "adapter_model.safetensors holds no factors for them: those modules get no update (PEFT loads it "
                     "so too, warning of missing keys), only [q_proj,down_proj] are applied"), std::string::npos)
      << log;
  std::ofstream(dir + "/adapter_config.json") << head + R"(["q_proj", "v_proj"]})";  // down_proj's factors unlisted
  const cg::lora::PeftAdapter b = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(b.config.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_TRUE(b.untrained_targets.empty());
  std::ofstream(dir + "/adapter_config.json") << head + R"(["q_proj", "down_proj"]})";  // as written: no warning
  const cg::lora::PeftAdapter c = cg::lora::read_peft_adapter(dir);
  EXPECT_TRUE(c.untrained_targets.empty());
  EXPECT_EQ(log_of([&] { cg::lora::warn_ignored_targets(c, "SETTING"); }), "");
  fs::remove_all(dir);
}

// exclude_modules naming a module whose factors the file holds (PEFT never writes such a file): the factors are left
// out, as PEFT's loader drops them (the module has no LoRA layer there: unexpected keys of a non-strict load), and
// named for a warning. Matched as PEFT does: list entries equal to the path or ending it after a dot, a string as a
// regular expression over the whole path; a LlamaModel adapter's paths lack "model.".
TEST(Peft, ExcludedModulesFactorsAreLeftOutAsPeftDoes) {
  const std::string dir = fresh_dir("exclude");
  const std::string head =
      R"({"peft_type": "LORA", "r": 2, "lora_alpha": 16, "target_modules": ["q_proj", "down_proj"], )";
  auto read_with = [&](const std::string& exclude) {
    std::ofstream(dir + "/adapter_config.json") << head + R"("exclude_modules": )" + exclude + "}";
    return cg::lora::read_peft_adapter(dir);
  };
  auto names = [](const cg::lora::PeftAdapter& a) {
    std::vector<std::string> n;
    for (const auto& [name, t] : a.factors) n.push_back(name);
    return n;
  };
  const std::vector<std::string> q_only = {"model.layers.0.self_attn.q_proj.lora_A.weight",
                                           "model.layers.0.self_attn.q_proj.lora_B.weight",
                                           "model.layers.1.self_attn.q_proj.lora_A.weight",
                                           "model.layers.1.self_attn.q_proj.lora_B.weight"};
  const std::vector<std::string> down_keys = {"base_model.model.model.layers.0.mlp.down_proj.lora_A.weight",
                                              "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight",
                                              "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
                                              "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"};
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);
  // Python's \A and \Z anchors, which std::regex would read as the letters A and Z (matching nothing here).
  for (const std::string exclude : {R"(["down_proj"])", R"(["mlp.down_proj", "k_proj"])", R"(".*\\.mlp\\..*")",
                                    R"(".*\\.mlp\\.down_proj\\Z")", R"("\\Amodel\\.layers\\.\\d+\\.mlp\\..*")"}) {
    const cg::lora::PeftAdapter a = read_with(exclude);
    EXPECT_EQ(names(a), q_only) << exclude;
    EXPECT_EQ(a.config.target_modules, std::vector<std::string>{"q_proj"}) << exclude;
    EXPECT_EQ(a.excluded_factors, down_keys) << exclude;
    for (const auto& n : q_only) EXPECT_TRUE(torch::equal(a.factors.at(n), sample_factors().at(n))) << n;
  }
  // Not a match: a regex must match the whole path, a list entry a whole name ("proj" ends no path after a dot).
  for (const std::string exclude : {R"("down_proj")", R"(["proj", "layers.0.mlp"])"}) {
    const cg::lora::PeftAdapter a = read_with(exclude);
    EXPECT_EQ(a.factors.size(), sample_factors().size()) << exclude;
    EXPECT_TRUE(a.excluded_factors.empty()) << exclude;
  }
  // One layer's module: the rest of that kind is on some layers only, which is refused where the adapter is applied.
  const cg::lora::PeftAdapter one = read_with(R"(["model.layers.1.mlp.down_proj"])");
  EXPECT_EQ(one.excluded_factors, (std::vector<std::string>{down_keys[2], down_keys[3]}));
  EXPECT_NE(cg::lora::some_layers_only(one, 2, "X").find("X has down_proj factors for 1 of the model's 2 layers"),
            std::string::npos);
  // The warning names the file, the count, a key and what to do.
  const std::string log = log_of([&] { cg::lora::warn_ignored_targets(read_with(R"(["down_proj"])"), "SETTING"); });
  for (const std::string& part : std::vector<std::string>{"SETTING: adapter_model.safetensors holds 4 LoRA factors of "
                                 "modules its adapter_config.json exclude_modules names (e.g. " + down_keys[0] + ")",
                                 "its loader drops them", "remove those modules from exclude_modules"})
    EXPECT_NE(log.find(part), std::string::npos) << part << " in: " << log;
  // Every factor excluded: nothing would apply, refused; a malformed exclude_modules is refused naming it.
  auto refusal = [&](const std::string& exclude) { return refusal_of([&] { read_with(exclude); }); };
  std::string why = refusal(R"(["q_proj", "down_proj"])");
  EXPECT_NE(why.find("names the module of every LoRA factor"), std::string::npos) << why;
  why = refusal(R"({"q_proj": 1})");
  EXPECT_NE(why.find("\"exclude_modules\" = {\"q_proj\":1} is neither a list"), std::string::npos) << why;
  why = refusal(R"("(unclosed")");
  EXPECT_NE(why.find("is not a regular expression this reader understands"), std::string::npos) << why;
  // A LlamaModel adapter: its module paths are PEFT's keys there, "layers.0.mlp.down_proj".
  std::vector<std::pair<std::string, at::Tensor>> bare;
  for (const auto& [name, t] : sample_factors()) bare.emplace_back("base_model.model." + name.substr(6), t);
  cg::model::write_safetensors(dir + "/adapter_model.safetensors", bare, {{"format", "pt"}});
  const cg::lora::PeftAdapter b = read_with(R"(["layers.0.mlp.down_proj", "layers.1.mlp.down_proj"])");
  EXPECT_EQ(names(b), q_only);
  EXPECT_EQ(b.excluded_factors.front(), "base_model.model.layers.0.mlp.down_proj.lora_A.weight");
  fs::remove_all(dir);
}

// An adapter of LlamaModel (get_peft_model on the model without its LM head: task_type null) names its tensors
// base_model.model.layers.*: the same modules, read under our names; mixed with LlamaForCausalLM's names, refused.
TEST(Peft, ReadsLlamaModelAdapterKeys) {
  const std::string dir = fresh_dir("llamamodel_keys");
  cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);
  std::vector<std::pair<std::string, at::Tensor>> bare;
  for (const auto& [name, t] : sample_factors()) bare.emplace_back("base_model.model." + name.substr(6), t);  // - "model."
  ASSERT_EQ(bare.front().first.rfind("base_model.model.layers.", 0), 0u);
  cg::model::write_safetensors(dir + "/adapter_model.safetensors", bare, {{"format", "pt"}});
  const cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(dir);
  ASSERT_EQ(a.factors.size(), sample_factors().size());
  for (const auto& [name, t] : sample_factors()) EXPECT_TRUE(torch::equal(a.factors.at(name), t)) << name;
  // With its embedding layer saved (a resized vocabulary): LlamaModel's embed_tokens, kept apart as ours.
  auto with_embed = bare;
  with_embed.emplace_back("base_model.model.embed_tokens.weight", torch::ones({5, 6}));
  cg::model::write_safetensors(dir + "/adapter_model.safetensors", with_embed, {{"format", "pt"}});
  const cg::lora::PeftAdapter e = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(e.factors.size(), sample_factors().size());
  ASSERT_EQ(e.embedding_layers.count("model.embed_tokens.weight"), 1u);
  bare.emplace_back("base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", torch::zeros({2, 6}));
  bare.emplace_back("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", torch::zeros({6, 2}));
  cg::model::write_safetensors(dir + "/adapter_model.safetensors", bare, {{"format", "pt"}});
  try {
    cg::lora::read_peft_adapter(dir);
    ADD_FAILURE() << "mixed key layouts accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("an adapter of LlamaModel"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// A cgexport --merge folder (a model, its adapter in adapter/) given as an adapter: the adapter's place is said.
TEST(Peft, MergedFolderGivenAsAdapterNamesItsAdapter) {
  const std::string dir = fresh_dir("merged_folder");
  cg::lora::write_peft_adapter(dir + "/adapter", sample_config(), sample_factors(), at::kFloat);
  std::ofstream(dir + "/config.json") << "{}";
  try {
    cg::lora::read_peft_adapter(dir);
    ADD_FAILURE() << "a model folder read as an adapter";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("the adapter is in " + dir + "/adapter/, give that"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir + "/adapter");
  try {
    cg::lora::read_peft_adapter(dir);
    ADD_FAILURE() << "a model folder read as an adapter";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("but a model (config.json): give it as model.hf_dir"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

// Per module kind: q_proj on both layers but down_proj on layer 0 only is an adapter on some layers only.
TEST(Peft, SomeLayersOnlyIsPerModule) {
  cg::lora::PeftAdapter a;
  a.factors = sample_factors();  // q_proj and down_proj on layers 0 and 1
  EXPECT_EQ(cg::lora::some_layers_only(a, 2, "X"), "");
  std::string why = cg::lora::some_layers_only(a, 3, "X");
  EXPECT_NE(why.find("X has down_proj factors for 2 of the model's 3 layers"), std::string::npos) << why;
  a.factors.erase("model.layers.1.mlp.down_proj.lora_A.weight");
  a.factors.erase("model.layers.1.mlp.down_proj.lora_B.weight");
  why = cg::lora::some_layers_only(a, 2, "X");
  EXPECT_NE(why.find("X has down_proj factors for 1 of the model's 2 layers: adapters on some layers only"),
            std::string::npos) << why;
  EXPECT_NE(why.find("merge_and_unload"), std::string::npos) << why;
}
// An adapter trained by the reference script (crystal-text-llm adds [PAD]: vocabulary V -> V + 1): PEFT saves the
// whole embed_tokens and lm_head beside the factors. Accepted when their first V rows are the base's.
TEST(Peft, EmbeddingLayersOfAResizedVocabularyAreCheckedAgainstTheBase) {
  const int64_t V = 5, d = 6;  // d = the sample factors' hidden size
  const std::string base = fresh_dir("emb_base"), dir = fresh_dir("emb_adapter");
  fs::create_directories(base);
  const at::Tensor embed = (torch::arange(V * d, torch::kFloat).reshape({V, d}) * 0.37).sin().to(torch::kBFloat16);
  const at::Tensor head = (torch::arange(V * d, torch::kFloat).reshape({V, d}) * 0.11).cos().to(torch::kBFloat16);
  cg::model::write_safetensors(base + "/model.safetensors",
                               {{"model.embed_tokens.weight", embed}, {"lm_head.weight", head}}, {});
  // Saved in fp32 (the reference trains in fp32), one appended row (the mean of the others, as its resize does).
  auto grown = [](const at::Tensor& t) {
    const at::Tensor f = t.to(torch::kFloat);
    return torch::cat({f, f.mean(0, true)}, 0);
  };
  auto write = [&](const at::Tensor& e, const at::Tensor& h) {
    cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);
    std::vector<std::pair<std::string, at::Tensor>> all;
    for (const auto& [name, t] : sample_factors()) all.emplace_back("base_model.model." + name, t);
    all.emplace_back("base_model.model.model.embed_tokens.weight", e);
    all.emplace_back("base_model.model.lm_head.weight", h);
    cg::model::write_safetensors(dir + "/adapter_model.safetensors", all, {});
  };
  write(grown(embed), grown(head));
  const cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(a.factors.size(), sample_factors().size());  // the layers are not taken for factors
  ASSERT_EQ(a.embedding_layers.size(), 2u);
  EXPECT_EQ(a.embedding_layers.at("lm_head.weight").sizes(), (std::vector<int64_t>{V + 1, d}));
  const std::string info = cg::lora::check_embedding_layers(a, dir, base);
  EXPECT_NE(info.find("ignored"), std::string::npos) << info;
  EXPECT_NE(info.find("equal the base's in the base's 5 rows, 1 row appended (the vocabulary was resized"),
            std::string::npos) << info;
  EXPECT_NE(info.find("lm_head.weight [6, 6]"), std::string::npos) << info;
  // Saved at the base's own size (save_embedding_layers=True, no resize): no row was appended, and the line says so.
  write(embed.to(torch::kFloat), head.to(torch::kFloat));
  const std::string same = cg::lora::check_embedding_layers(cg::lora::read_peft_adapter(dir), dir, base);
  EXPECT_NE(same.find("(lm_head.weight [5, 6], model.embed_tokens.weight [5, 6]) equal the base's row for row (5 rows, "
                      "none appended: the vocabulary was not resized"), std::string::npos) << same;
  EXPECT_EQ(same.find("appending"), std::string::npos) << same;
  EXPECT_EQ(same.find("[PAD]"), std::string::npos) << same;
  // An adapter without them: nothing to say.
  const std::string plain = fresh_dir("emb_plain");
  cg::lora::write_peft_adapter(plain, sample_config(), sample_factors(), at::kFloat);
  EXPECT_EQ(cg::lora::check_embedding_layers(cg::lora::read_peft_adapter(plain), plain, base), "");

  auto refusal = [&](const std::string& hf_dir) {
    return refusal_of([&] { cg::lora::check_embedding_layers(cg::lora::read_peft_adapter(dir), dir, hf_dir); });
  };
  // A trained head (one row of the base's vocabulary changed): unsupported, said with the row and the remedy.
  at::Tensor trained = grown(head);
  trained[3][2] += 0.5;
  write(grown(embed), trained);
  std::string why = refusal(base);
  EXPECT_NE(why.find("base_model.model.lm_head.weight's rows differ from the base's"), std::string::npos) << why;
  EXPECT_NE(why.find("row 3 of 5"), std::string::npos) << why;
  EXPECT_NE(why.find("does not support trained embedding layers"), std::string::npos) << why;
  // No base to compare with (random init): refused naming both tensors, why they are there and what to set.
  write(grown(embed), grown(head));
  why = refusal("");
  for (const char* part : {"base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight",
                           "vocabulary was resized", "set model.hf_dir"})
    EXPECT_NE(why.find(part), std::string::npos) << part << " in: " << why;
  // Fewer rows than the base's vocabulary is no resize by appending.
  write(grown(embed).narrow(0, 0, V - 1), grown(head));
  why = refusal(base);
  EXPECT_NE(why.find("does not extend the base's [5, 6]"), std::string::npos) << why;
  // Any other whole module (modules_to_save): refused by name, not as a malformed factor name.
  std::vector<std::pair<std::string, at::Tensor>> extra;
  for (const auto& [name, t] : sample_factors()) extra.emplace_back("base_model.model." + name, t);
  extra.emplace_back("base_model.model.model.norm.weight", torch::ones({d}));
  cg::model::write_safetensors(dir + "/adapter_model.safetensors", extra, {});
  try {
    cg::lora::read_peft_adapter(dir);
    ADD_FAILURE() << "a saved norm accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'base_model.model.model.norm.weight' is neither a LoRA factor"),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("modules_to_save"), std::string::npos) << e.what();
  }
}

// The steps cgsample and cgtrain's lora.init_adapter take after reading an adapter, in one place: embedding layers
// checked against the base and dropped, the info line and the ignored targets' warning naming the caller's setting
// (on the logging rank only), the factors untouched; a trained embedding layer refused whatever the rank.
TEST(Peft, CheckAdapterAgainstBaseDropsEmbeddingLayersAndSaysSo) {
  const int64_t V = 5, d = 6;
  const std::string base = fresh_dir("against_base"), dir = fresh_dir("against_adapter");
  fs::create_directories(base);
  const at::Tensor embed = (torch::arange(V * d, torch::kFloat).reshape({V, d}) * 0.3).sin();
  const at::Tensor head = (torch::arange(V * d, torch::kFloat).reshape({V, d}) * 0.7).cos();
  cg::model::write_safetensors(base + "/model.safetensors",
                               {{"model.embed_tokens.weight", embed}, {"lm_head.weight", head}}, {});
  auto write = [&](const at::Tensor& h) {
    cg::lora::write_peft_adapter(dir, sample_config(), sample_factors(), at::kFloat);
    std::ofstream(dir + "/adapter_config.json")
        << R"({"peft_type": "LORA", "r": 2, "lora_alpha": 16, "target_modules": ["q_proj", "query", "down_proj"]})";
    std::vector<std::pair<std::string, at::Tensor>> all;
    for (const auto& [name, t] : sample_factors()) all.emplace_back("base_model.model." + name, t);
    all.emplace_back("base_model.model.model.embed_tokens.weight", torch::cat({embed, embed.mean(0, true)}, 0));
    all.emplace_back("base_model.model.lm_head.weight", torch::cat({h, h.mean(0, true)}, 0));
    cg::model::write_safetensors(dir + "/adapter_model.safetensors", all, {});
  };
  write(head);
  cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(dir);
  ASSERT_EQ(a.embedding_layers.size(), 2u);
  const std::string log = log_of([&] { cg::lora::check_adapter_against_base(a, dir, base, "SETTING " + dir, true); });
  EXPECT_TRUE(a.embedding_layers.empty());
  ASSERT_EQ(a.factors.size(), sample_factors().size());
  for (const auto& [name, t] : sample_factors()) EXPECT_TRUE(torch::equal(a.factors.at(name), t)) << name;
  EXPECT_NE(log.find("SETTING " + dir + ": its saved embedding layers (lm_head.weight [6, 6], "
                     "model.embed_tokens.weight [6, 6]) equal the base's"), std::string::npos) << log;
  EXPECT_NE(log.find("SETTING " + dir + ": adapter_config.json target_modules entries [query] name no LLaMA module"),
            std::string::npos) << log;
  // Another rank: the same checks and drop, nothing said.
  cg::lora::PeftAdapter quiet = cg::lora::read_peft_adapter(dir);
  EXPECT_EQ(log_of([&] { cg::lora::check_adapter_against_base(quiet, dir, base, "SETTING", false); }), "");
  EXPECT_TRUE(quiet.embedding_layers.empty());
  // A trained head: refused on every rank.
  at::Tensor trained = head.clone();
  trained[2][3] += 0.25;
  write(trained);
  cg::lora::PeftAdapter t = cg::lora::read_peft_adapter(dir);
  try {
    cg::lora::check_adapter_against_base(t, dir, base, "SETTING", false);
    ADD_FAILURE() << "a trained lm_head accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 2 of 5"), std::string::npos) << e.what();
  }
  fs::remove_all(base);
  fs::remove_all(dir);
}

TEST(Peft, WriteRejectsMismatchedFactors) {
  auto f = sample_factors();
  f.erase("model.layers.1.mlp.down_proj.lora_B.weight");
  EXPECT_THROW(cg::lora::write_peft_adapter(fresh_dir("bad1"), sample_config(), f), cg::Error);
  PeftConfig wrong_r = sample_config();
  wrong_r.r = 4;
  EXPECT_THROW(cg::lora::write_peft_adapter(fresh_dir("bad2"), wrong_r, sample_factors()), cg::Error);
  EXPECT_THROW(cg::lora::read_peft_adapter(fresh_dir("missing")), cg::Error);
}

TEST(Peft, ConfigFromTreeExpandsAllLinear) {
  cg::LoraConfig l;
  l.r = 16;
  l.alpha = 32;
  l.targets = {"all-linear"};
  PeftConfig c = cg::lora::peft_config_from(l, "base");
  EXPECT_EQ(c.target_modules.size(), 7u);
  EXPECT_DOUBLE_EQ(c.scale(), 2.0);
  EXPECT_FALSE(c.use_rslora);
  // rsLoRA and the dropout reach the export: without use_rslora PEFT would scale by alpha / r = 2, not 32 / sqrt(16).
  l.rslora = true;
  l.dropout = 0.05;
  c = cg::lora::peft_config_from(l, "base");
  EXPECT_TRUE(c.use_rslora);
  EXPECT_DOUBLE_EQ(c.scale(), 8.0);
  EXPECT_DOUBLE_EQ(c.lora_dropout, 0.05);
  EXPECT_EQ(cg::lora::to_peft_name("model.layers.3.mlp.up_proj.lora_B.weight"),
            "base_model.model.model.layers.3.mlp.up_proj.lora_B.weight");
  EXPECT_EQ(cg::lora::from_peft_name("base_model.model.model.norm.weight"), "model.norm.weight");
  EXPECT_THROW(cg::lora::from_peft_name("model.norm.weight"), cg::Error);
  EXPECT_EQ(cg::lora::peft_dtype("bf16"), at::kBFloat16);
  EXPECT_THROW(cg::lora::peft_dtype("int8"), cg::Error);
}

TEST(Peft, MergeLoraHandComputed) {
  at::Tensor W = torch::tensor({{1.f, 0.f, 0.f}, {0.f, 1.f, 0.f}});  // (out 2, in 3)
  at::Tensor A = torch::tensor({{1.f, 2.f, 3.f}});                   // (r 1, in 3)
  at::Tensor B = torch::tensor({{1.f}, {-1.f}});                     // (out 2, r 1)
  at::Tensor M = cg::lora::merge_lora(W, A, B, 0.5);
  EXPECT_TRUE(torch::allclose(M, torch::tensor({{1.5f, 1.f, 1.5f}, {-0.5f, 0.f, -1.5f}})));
  EXPECT_EQ(cg::lora::merge_lora(W.to(at::kBFloat16), A, B, 0.5).scalar_type(), at::kBFloat16);
  EXPECT_THROW(cg::lora::merge_lora(W, B, A, 1.0), std::exception);
}

}  // namespace
