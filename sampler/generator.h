// Generator: batched autoregressive decoding of a (tp-sharded) Llama with a KV cache, optional grammar constraints
// (sampler/grammar.h) and temperature / top-k / top-p sampling. Every tp rank gathers the full logits and draws
// with one identically seeded RNG, so all ranks produce the same tokens. Prompts of equal token length share a
// batch (the model takes one start position per batch); each sequence stops at EOS or max_new_tokens.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "sampler/grammar.h"
#include "sampler/sampling.h"

namespace cg::model {
class LlamaImpl;
}

namespace cg {

struct GenerationParams {
  int64_t max_new_tokens = 300;
  int64_t batch_size = 32;
  SamplingParams sampling;
  uint64_t seed = 0;
  bool constrained = true;  // apply the grammar for `mode`
  CrystalGrammar::Mode mode = CrystalGrammar::Mode::kCrystal;
};

struct Generation {
  std::vector<int32_t> tokens;  // generated ids, EOS excluded
  bool hit_eos = false;         // false: stopped at max_new_tokens (or the grammar had nothing left to allow)
};

// Called after each batch with (sequences done, total, tokens generated so far).
using GenerationProgress = std::function<void(int64_t, int64_t, int64_t)>;

class Generator {
 public:
  // model: built, loaded, tp applied (and LoRA merged or injected); pieces[v]: the tokenizer's raw piece of token v
  // (Tokenizer::piece), eos_id its EOS; tp: the model's tp group (nullptr or size 1: no gather).
  // Takes pieces rather than a Tokenizer so that this library does not pull libsentencepiece into torch binaries.
  Generator(model::LlamaImpl& model, std::vector<std::string> pieces, int eos_id, dist::CommPtr tp);

  // prompts: token ids each (BOS included). Results in prompt order. Collective over tp: all ranks call it with the
  // same prompts and params.
  std::vector<Generation> generate(const std::vector<std::vector<int32_t>>& prompts, const GenerationParams& params,
                                   const GenerationProgress& progress = nullptr);

 private:
  model::LlamaImpl& model_;
  std::vector<std::string> pieces_;
  int eos_;
  dist::CommPtr tp_;
};

}  // namespace cg
