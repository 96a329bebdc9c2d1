#include "model/llama_config.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace cg::model {

void LlamaConfig::validate() const {
  CG_CHECK(hidden_size > 0 && intermediate_size > 0 && num_hidden_layers > 0 && vocab_size > 0,
           "LLaMA config: hidden_size {}, intermediate_size {}, num_hidden_layers {}, vocab_size {} must be positive",
           hidden_size, intermediate_size, num_hidden_layers, vocab_size);
  CG_CHECK(num_attention_heads > 0 && hidden_size % num_attention_heads == 0,
           "LLaMA config: hidden_size {} is not divisible by num_attention_heads {}", hidden_size, num_attention_heads);
  CG_CHECK(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0,
           "LLaMA config: num_attention_heads {} is not divisible by num_key_value_heads {}", num_attention_heads,
           num_key_value_heads);
  CG_CHECK(head_dim() % 2 == 0, "LLaMA config: head_dim {} must be even for rotary embeddings", head_dim());
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

LlamaConfig llama_config_from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    CG_FAIL("config.json is not valid JSON: {}", e.what());
  }
  auto req = [&](const char* key) -> int64_t {
    CG_CHECK(j.contains(key), "config.json has no \"{}\" (is this a LLaMA checkpoint?)", key);
    return j.at(key).get<int64_t>();
  };
  if (j.contains("model_type") && j["model_type"] != "llama")
    CG_FAIL("config.json: model_type {} is not llama", j["model_type"].dump());
  CG_CHECK(!j.value("tie_word_embeddings", false),
           "config.json: tie_word_embeddings true is not supported (LLaMA-2 has an untied lm_head)");
  LlamaConfig c;
  c.hidden_size = req("hidden_size");
  c.intermediate_size = req("intermediate_size");
  c.num_attention_heads = req("num_attention_heads");
  c.num_hidden_layers = req("num_hidden_layers");
  c.vocab_size = req("vocab_size");
  c.num_key_value_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                              ? j["num_key_value_heads"].get<int64_t>()
                              : c.num_attention_heads;
  c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
  c.rope_theta = j.contains("rope_theta") && !j["rope_theta"].is_null() ? j["rope_theta"].get<double>() : 10000.0;
  c.max_position_embeddings = j.value("max_position_embeddings", int64_t{2048});
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    CG_FAIL("config.json: rope_scaling {} is not supported", j["rope_scaling"].dump());
  c.validate();
  return c;
}

LlamaConfig load_llama_config(const std::string& hf_dir) {
  const auto path = std::filesystem::path(hf_dir) / "config.json";
  std::ifstream in(path);
  CG_CHECK(in.good(), "cannot read {} (model.hf_dir must be a Hugging Face checkpoint folder)", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return llama_config_from_json(ss.str());
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

LlamaConfig resolve_llama_config(const std::string& flavor, const std::string& hf_dir, int64_t vocab_size) {
  if (!hf_dir.empty() && std::filesystem::exists(std::filesystem::path(hf_dir) / "config.json"))
    return load_llama_config(hf_dir);
  return llama_flavor(flavor, vocab_size);
}

}  // namespace cg::model
