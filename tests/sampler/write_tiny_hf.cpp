// write_tiny_hf OUT_DIR TOKENIZER.model [SEED]: a random micro LLaMA (d 64, 2 layers, 4 heads / 2 kv, 1024
// positions) with the tokenizer's vocabulary, written as an HF checkpoint (config.json + model.safetensors) for the
// cgsample / cgeval end-to-end test.
#include <cstdio>
#include <string>

#include "common/log.h"
#include "data/tokenizer.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fputs("usage: write_tiny_hf OUT_DIR TOKENIZER.model [SEED]\n", stderr);
    return 2;
  }
  cg::init_logging(0, 1, "warn");
  cg::model::LlamaConfig lc;
  lc.hidden_size = 64;
  lc.intermediate_size = 128;
  lc.num_attention_heads = 4;
  lc.num_key_value_heads = 2;
  lc.num_hidden_layers = 2;
  lc.vocab_size = cg::Tokenizer::load(argv[2]).vocab_size();
  lc.max_position_embeddings = 1024;
  cg::model::Llama m(lc);
  cg::model::init_weights(*m, argc > 3 ? std::stoull(argv[3]) : 7, 0.3);
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& p : m->param_specs()) t.emplace_back(p.name, p.param.detach());
  cg::model::write_hf_checkpoint(argv[1], t, lc);
  return 0;
}
