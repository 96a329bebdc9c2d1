#include "model/llama_config.h"

#include <nlohmann/json.hpp>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/folder_kind.h"

namespace cg::model {

void LlamaConfig::validate() const {
  CG_CHECK(hidden_size > 0 && intermediate_size > 0 && num_hidden_layers > 0 && vocab_size > 0,
           "LLaMA config: hidden_size {}, intermediate_size {}, num_hidden_layers {}, vocab_size {} must be positive",
           hidden_size, intermediate_size, num_hidden_layers, vocab_size);
  CG_CHECK(num_attention_heads > 0 && num_key_value_heads > 0, "LLaMA config: num_attention_heads {} and "
           "num_key_value_heads {} must be positive", num_attention_heads, num_key_value_heads);
  CG_CHECK(hidden_size % num_attention_heads == 0,
           "LLaMA config: hidden_size {} is not divisible by num_attention_heads {}", hidden_size, num_attention_heads);
  CG_CHECK(num_attention_heads % num_key_value_heads == 0,
           "LLaMA config: num_attention_heads {} is not divisible by num_key_value_heads {}", num_attention_heads,
           num_key_value_heads);
  CG_CHECK(head_dim() % 2 == 0, "LLaMA config: head_dim {} must be even for rotary embeddings", head_dim());
  CG_CHECK(rms_norm_eps > 0 && rope_theta > 0 && max_position_embeddings > 0, "LLaMA config: rms_norm_eps {}, "
           "rope_theta {} and max_position_embeddings {} must be positive", rms_norm_eps, rope_theta,
           max_position_embeddings);
}

bool LlamaConfig::operator==(const LlamaConfig& o) const {
  return hidden_size == o.hidden_size && intermediate_size == o.intermediate_size &&
         num_attention_heads == o.num_attention_heads && num_key_value_heads == o.num_key_value_heads &&
         num_hidden_layers == o.num_hidden_layers && rms_norm_eps == o.rms_norm_eps && rope_theta == o.rope_theta &&
         vocab_size == o.vocab_size && max_position_embeddings == o.max_position_embeddings;
}

std::string LlamaConfig::to_hf_json(const std::string& torch_dtype) const {
  nlohmann::ordered_json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["num_hidden_layers"] = num_hidden_layers;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["tie_word_embeddings"] = false;
  j["initializer_range"] = 0.02;
  j["bos_token_id"] = 1;
  j["eos_token_id"] = 2;
  j["torch_dtype"] = torch_dtype;
  return j.dump(2) + "\n";
}

namespace {
// What a broken config.json needs, after the message that names it and its field.
constexpr const char* kFixConfig = "correct it to the model's own (the config.json published with its weights)";
}  // namespace

LlamaConfig llama_config_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    CG_FAIL("{} is not valid JSON: {}; {}", source, e.what(), kFixConfig);
  }
  CG_CHECK(j.is_object(), "{} is not a JSON object of settings; {}", source, kFixConfig);
  // A key that is absent or null takes the default (as transformers' LlamaConfig does); a present one must have the
  // right type, named in the error.
  auto given = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  auto integer = [&](const char* key, std::optional<int64_t> def) -> int64_t {
    if (!given(key)) {
      CG_CHECK(def.has_value(), "{} has no \"{}\" (is this a LLaMA checkpoint?); {}", source, key, kFixConfig);
      return *def;
    }
    CG_CHECK(j[key].is_number_integer(), "{}: \"{}\" is {}, not an integer; {}", source, key, j[key].dump(),
             kFixConfig);
    // 2^63 and above are unsigned in JSON and would wrap to a negative int64.
    CG_CHECK(j[key].is_number_unsigned() ? j[key].get<uint64_t>() <= uint64_t(INT64_MAX) : true,
             "{}: \"{}\" is {}, far beyond any model; {}", source, key, j[key].dump(), kFixConfig);
    return j[key].get<int64_t>();
  };
  auto number = [&](const char* key, double def) -> double {
    if (!given(key)) return def;
    CG_CHECK(j[key].is_number(), "{}: \"{}\" is {}, not a number; {}", source, key, j[key].dump(), kFixConfig);
    return j[key].get<double>();
  };
  auto flag = [&](const char* key) -> bool {
    if (!given(key)) return false;
    CG_CHECK(j[key].is_boolean(), "{}: \"{}\" is {}, not true or false; {}", source, key, j[key].dump(),
             kFixConfig);
    return j[key].get<bool>();
  };
  if (given("model_type"))
    CG_CHECK(j["model_type"] == "llama", "{}: model_type {} is not llama: give a LLaMA checkpoint", source,
             j["model_type"].dump());
  flag("tie_word_embeddings");  // true or false: tying happens where the weights are read (HfCheckpoint)
  for (const char* bias : {"attention_bias", "mlp_bias"})
    CG_CHECK(!flag(bias), "{}: {} true is not supported (LLaMA-2's projections have no bias): give a LLaMA-2 base",
             source, bias);
  if (given("hidden_act"))  // transformers maps both names to SiLU
    CG_CHECK(j["hidden_act"] == "silu" || j["hidden_act"] == "swish", "{}: hidden_act {} is not supported "
             "(LLaMA's MLP is SiLU-gated: \"silu\"): give a LLaMA base", source, j["hidden_act"].dump());
  if (given("rope_scaling")) {  // {"rope_type": "default"} is no scaling; the others change the angles
    const auto& r = j["rope_scaling"];
    auto text = [&r](const char* k) { return r.contains(k) && r[k].is_string() ? r[k].get<std::string>() : ""; };
    const bool plain = r.is_object() && (r.contains("rope_type") ? text("rope_type") : text("type")) == "default";
    CG_CHECK(plain, "{}: rope_scaling {} is not supported (only unscaled RoPE, as in LLaMA-2): give a base "
             "without rope_scaling (LLaMA-2 and its fine-tunes have none); deleting the key would change the "
             "positions the model was trained with", source, r.dump());
  }
  LlamaConfig c;
  c.hidden_size = integer("hidden_size", std::nullopt);
  c.intermediate_size = integer("intermediate_size", std::nullopt);
  c.num_attention_heads = integer("num_attention_heads", std::nullopt);
  c.num_hidden_layers = integer("num_hidden_layers", std::nullopt);
  c.vocab_size = integer("vocab_size", std::nullopt);
  c.num_key_value_heads = integer("num_key_value_heads", c.num_attention_heads);
  c.rms_norm_eps = number("rms_norm_eps", 1e-6);
  c.rope_theta = number("rope_theta", 10000.0);
  c.max_position_embeddings = integer("max_position_embeddings", 2048);
  int64_t head_dim_times_heads = 0;  // overflow-checked: a huge head_dim must be an error, not undefined behaviour
  if (given("head_dim") && c.num_attention_heads > 0)
    CG_CHECK(!__builtin_mul_overflow(integer("head_dim", std::nullopt), c.num_attention_heads, &head_dim_times_heads) &&
                 head_dim_times_heads == c.hidden_size, "{}: head_dim {} "
             "is not hidden_size / num_attention_heads = {}; LLaMA-2's heads split the hidden size",
             source, j["head_dim"].dump(), c.hidden_size / c.num_attention_heads);
  try {
    c.validate();
  } catch (const Error& e) {
    CG_FAIL("{}: {}; {}", source, message_of(e), kFixConfig);
  }
  return c;
}

// What to do about a model folder without config.json: the likely mix-ups (an adapter or a cgtrain folder given as
// the base model) are named, else a HF checkpoint folder's layout.
std::string missing_config_hint(const std::string& hf_dir) {
  if (is_peft_adapter_folder(hf_dir))
    return "it is a PEFT adapter folder (adapter_config.json), not a base model: give it as sample.adapter (or "
           "lora.init_adapter) and its base model's folder as model.hf_dir";
  if (is_cgtrain_folder(hf_dir))
    return "it is a cgtrain run or checkpoint folder, not a base model: give it as sample.adapter (cgsample), or "
           "export it (cgexport RUN_DIR --out DIR, --merge for a whole model) and keep model.hf_dir its base model";
  return "a Hugging Face checkpoint folder holds config.json beside its *.safetensors; copy the model's config.json "
         "there";
}

bool hf_ties_word_embeddings(const std::string& hf_dir) {
  const auto path = std::filesystem::path(hf_dir) / "config.json";
  if (!std::filesystem::is_regular_file(path)) return false;
  const nlohmann::json j =
      nlohmann::json::parse(read_file(path.string(), "config.json"), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("tie_word_embeddings") || j["tie_word_embeddings"].is_null()) return false;
  CG_CHECK(j["tie_word_embeddings"].is_boolean(), "{}: \"tie_word_embeddings\" is {}, not true or false",
           path.string(), j["tie_word_embeddings"].dump());
  return j["tie_word_embeddings"].get<bool>();
}

LlamaConfig load_llama_config(const std::string& hf_dir) {
  const auto path = std::filesystem::path(hf_dir) / "config.json";
  CG_CHECK(std::filesystem::is_regular_file(path), "cannot read {} (model.hf_dir must be a Hugging Face checkpoint "
           "folder): {}", path.string(), missing_config_hint(hf_dir));
  return llama_config_from_json(read_file(path.string(), "config.json"), path.string());
}

void check_hf_config(const std::string& hf_dir, const LlamaConfig& expected, const std::string& expected_from) {
  CG_CHECK(std::filesystem::exists(std::filesystem::path(hf_dir) / "config.json"), "{} has no config.json, so "
           "nothing says it is the model of {}: {}", hf_dir, expected_from, missing_config_hint(hf_dir));
  const LlamaConfig found = load_llama_config(hf_dir);  // refuses what this model cannot run (rope_scaling, ...)
  if (found == expected) return;
  std::vector<std::string> hard, soft;
  auto cmp = [&](std::vector<std::string>& out, const char* key, auto a, auto b) {
    if (a != b) out.push_back(fmt::format("{} {} there, {} in {}", key, a, b, expected_from));
  };
  cmp(hard, "hidden_size", found.hidden_size, expected.hidden_size);
  cmp(hard, "intermediate_size", found.intermediate_size, expected.intermediate_size);
  cmp(hard, "num_attention_heads", found.num_attention_heads, expected.num_attention_heads);
  cmp(hard, "num_key_value_heads", found.num_key_value_heads, expected.num_key_value_heads);
  cmp(hard, "num_hidden_layers", found.num_hidden_layers, expected.num_hidden_layers);
  cmp(hard, "rope_theta", found.rope_theta, expected.rope_theta);
  cmp(hard, "vocab_size", found.vocab_size, expected.vocab_size);
  // Settings revised in published configs of the same weights (LLaMA-2's rms_norm_eps went from 1e-6 to 1e-5 on
  // the Hub): said, and the expected model's values are used.
  cmp(soft, "rms_norm_eps", found.rms_norm_eps, expected.rms_norm_eps);
  cmp(soft, "max_position_embeddings", found.max_position_embeddings, expected.max_position_embeddings);
  CG_CHECK(hard.empty(), "{}/config.json does not describe the model of {} ({}): it is another base model; give the "
           "base it was trained on", hf_dir, expected_from, fmt::join(hard, "; "));
  spdlog::warn("{}/config.json differs from {} ({}); the latter's values are used", hf_dir, expected_from,
               fmt::join(soft, "; "));
}

LlamaConfig llama_flavor(const std::string& name, int64_t vocab_size) {
  LlamaConfig c;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 4096;
  if (name == "tiny") {
    c.hidden_size = 256, c.intermediate_size = 688, c.num_attention_heads = 8, c.num_key_value_heads = 4;
    c.num_hidden_layers = 4, c.vocab_size = 512;
  } else if (name == "7b") {
    c.hidden_size = 4096, c.intermediate_size = 11008, c.num_attention_heads = 32, c.num_key_value_heads = 32;
    c.num_hidden_layers = 32, c.vocab_size = 32000;
  } else if (name == "13b") {
    c.hidden_size = 5120, c.intermediate_size = 13824, c.num_attention_heads = 40, c.num_key_value_heads = 40;
    c.num_hidden_layers = 40, c.vocab_size = 32000;
  } else if (name == "70b") {
    c.hidden_size = 8192, c.intermediate_size = 28672, c.num_attention_heads = 64, c.num_key_value_heads = 8;
    c.num_hidden_layers = 80, c.vocab_size = 32000;
  } else {
    CG_FAIL("model.flavor {} is unknown; use tiny, 7b, 13b or 70b (or set model.hf_dir)", name);
  }
  if (vocab_size > 0) c.vocab_size = vocab_size;
  c.validate();
  return c;
}

namespace {

// The file that `dir` is or runs through ("model.tar", "model.tar/", "model.tar/sub"), else "": no folder can come
// there. exists() alone calls "model.tar/" missing (ENOTDIR), as it does a folder not downloaded yet.
std::string file_in_path(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::path p(dir); !p.empty(); p = p.parent_path()) {
    if (fs::is_directory(p, ec)) return "";
    if (fs::exists(p, ec)) return p.string();
    if (p == p.parent_path()) break;
  }
  return "";
}

}  // namespace

LlamaConfig resolve_llama_config(const std::string& flavor, const std::string& hf_dir, int64_t vocab_size) {
  // No folder (none given, or a missing one: loading the weights names it; --plan of a shipped config whose folder
  // is not downloaded here) is the flavor. Something else there is a mistake, not a folder still to come.
  std::error_code ec;
  const std::string file = hf_dir.empty() ? "" : file_in_path(hf_dir);
  CG_CHECK(file.empty(), "model.hf_dir {} is {}a file, not a folder: set model.hf_dir to the Hugging Face checkpoint "
           "folder (its config.json and *.safetensors), or leave it empty for a random model.flavor={} base", hf_dir,
           file == hf_dir ? "" : "in " + file + ", which is ", flavor);
  if (hf_dir.empty() || !std::filesystem::is_directory(hf_dir, ec)) return llama_flavor(flavor, vocab_size);
  // Without config.json the flavor's rope_theta, rms_norm_eps and positions would stand in for the checkpoint's own
  // (a Code Llama's rope_theta 1e6 read as 1e4): HF checkpoint folders always have one.
  CG_CHECK(std::filesystem::exists(std::filesystem::path(hf_dir) / "config.json"), "model.hf_dir {} has no "
           "config.json: {}", hf_dir, missing_config_hint(hf_dir));
  return load_llama_config(hf_dir);
}

}  // namespace cg::model
