// Test helper: a random micro LLaMA (2 layers, d 64, GQA 4/2) over a given vocabulary, in eval mode.
#pragma once
#include <cstdint>

#include "model/llama.h"

namespace cg::sampler_test {

// init_std: larger values give peakier random logits.
inline model::Llama tiny_random_llama(int64_t vocab_size, int64_t max_positions, uint64_t seed, double init_std) {
  model::LlamaConfig lc;
  lc.hidden_size = 64;
  lc.intermediate_size = 128;
  lc.num_attention_heads = 4;
  lc.num_key_value_heads = 2;
  lc.num_hidden_layers = 2;
  lc.vocab_size = vocab_size;
  lc.max_position_embeddings = max_positions;
  model::Llama m(lc);
  model::init_weights(*m, seed, init_std);
  m->eval();
  return m;
}

}  // namespace cg::sampler_test
