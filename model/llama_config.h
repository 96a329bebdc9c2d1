// LlamaConfig: the LLaMA-2 architecture numbers, read from a Hugging Face config.json or picked by flavor name.
#pragma once
#include <cstdint>
#include <string>

namespace cg::model {

struct LlamaConfig {
  int64_t hidden_size = 256;              // d
  int64_t intermediate_size = 688;        // SwiGLU width
  int64_t num_attention_heads = 8;        // query heads
  int64_t num_key_value_heads = 4;        // kv heads (GQA); = num_attention_heads for 7B/13B
  int64_t num_hidden_layers = 4;          // L
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t vocab_size = 32000;             // V, before any tp padding
  int64_t max_position_embeddings = 4096;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Throws with the offending numbers when the shape is not a valid LLaMA (heads do not divide, etc).
  void validate() const;
  // HF config.json text (LlamaForCausalLM, model_type llama, untied embeddings).
  // torch_dtype: the dtype of the checkpoint's tensors ("bfloat16", "float16", "float32"; hf_dtype_name); transformers
  // loads with it under torch_dtype="auto". A file that describes weights passes theirs: the default is only for
  // texts that compare shapes.
  std::string to_hf_json(const std::string& torch_dtype = "bfloat16") const;
  bool operator==(const LlamaConfig& o) const;
};

// Parse config.json text. num_key_value_heads defaults to num_attention_heads, rms_norm_eps to 1e-6 (HF default),
// rope_theta to 10000, max_position_embeddings to 2048. tie_word_embeddings is read by hf_ties_word_embeddings (it
// changes where lm_head's weights come from, not the model). Errors name `source` (the file's path, where there is
// one) and the field.
LlamaConfig llama_config_from_json(const std::string& json_text, const std::string& source = "config.json");
// <hf_dir>/config.json's tie_word_embeddings: true when transformers uses model.embed_tokens.weight as lm_head's
// weight too. False without a config.json, or one that does not parse (its readers say why).
bool hf_ties_word_embeddings(const std::string& hf_dir);
// Read <dir>/config.json.
LlamaConfig load_llama_config(const std::string& hf_dir);
// Reads <hf_dir>/config.json (refusing settings this model cannot run) and fails, naming every differing field,
// when it describes another model than `expected`, the one the caller will build (expected_from: where that came
// from, e.g. "the run's model_config.json"): weights of another base would otherwise load by shape alone. A
// differing rms_norm_eps or max_position_embeddings (revised in published configs of the same weights) is warned
// about; expected's values are used. A folder without config.json is refused.
void check_hf_config(const std::string& hf_dir, const LlamaConfig& expected, const std::string& expected_from);
// Named flavors: tiny (a few M params for CPU runs), 7b, 13b, 70b (LLaMA-2 shapes).
// vocab_size <= 0 keeps the flavor's vocabulary (32000; tiny: 512).
LlamaConfig llama_flavor(const std::string& name, int64_t vocab_size = 0);
// hf_dir's config.json wins over the flavor (a folder without one is refused); vocab_size (> 0) overrides the
// flavor's vocabulary only.
LlamaConfig resolve_llama_config(const std::string& flavor, const std::string& hf_dir, int64_t vocab_size = 0);

}  // namespace cg::model
