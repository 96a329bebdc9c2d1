// The small LLaMA the model suites share: GQA (4 heads on 2 kv heads), 2 layers, 37 tokens, 64 positions.
#pragma once
#include "model/llama_config.h"

namespace cg::test {

inline cg::model::LlamaConfig small_llama() {
  cg::model::LlamaConfig c;
  c.hidden_size = 32, c.intermediate_size = 48, c.num_attention_heads = 4, c.num_key_value_heads = 2;
  c.num_hidden_layers = 2, c.vocab_size = 37, c.rms_norm_eps = 1e-5, c.rope_theta = 10000.0;
  c.max_position_embeddings = 64;
  return c;
}

}  // namespace cg::test
