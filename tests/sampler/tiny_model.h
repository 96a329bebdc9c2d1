// Test helpers: a random micro LLaMA (2 layers, d 64, GQA 4/2) over a given vocabulary, in eval mode; and the
// fixture the sampler tests share: that model over the hand-made vocabulary plus the first MP-20 test crystals.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/mp20.h"
#include "model/llama.h"
#include "tests/sampler/tiny_vocab.h"

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

struct TinyFixture {
  TinyVocab tok;
  model::Llama model{nullptr};
  std::vector<Crystal> crystals;
};

// The first `rows` crystals of MP-20's test split and a random model of max_positions (seed, init_std as above).
inline TinyFixture make_tiny_fixture(int rows, int64_t max_positions, uint64_t seed, double init_std) {
  TinyFixture f;
  f.crystals = read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz", rows).crystals;
  f.model = tiny_random_llama(f.tok.vocab_size(), max_positions, seed, init_std);
  return f;
}

}  // namespace cg::sampler_test
