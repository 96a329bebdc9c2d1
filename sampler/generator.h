// Generator: batched autoregressive decoding of a (tp-sharded) Llama with a KV cache, optional grammar constraints
// (sampler/grammar.h) and temperature / top-k / top-p sampling.
//   tp: every tp rank gathers the full logits of the last position and draws with the same RNG, so all tp ranks
//       produce the same tokens (the next step's input is therefore identical everywhere, as TP requires).
//   RNG: sequence i draws from its own stream, seeded by (seed, stream id i), so its tokens do not depend on how the
//       prompts are batched or split over dp groups (generate_data_parallel equals a dp 1 run).
//   Batching: continuous. Up to batch_size sequences decode together, each at its own position; a sequence stops
//       at EOS or max_new_tokens and leaves the batch at once, and queued prompts (of any lengths) are prefilled into
//       the free rows, identical prompts once; the tokens all prompts start with are read from one shared copy of
//       their keys/values. The samples do not depend on batch_size.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "dist/parallel_dims.h"
#include "sampler/generation.h"
#include "sampler/grammar.h"
#include "sampler/sampling.h"

namespace at {
class Tensor;
}
namespace cg::model {
class LlamaImpl;
struct KVCache;
}

namespace cg {

struct GenerationParams {
  int64_t max_new_tokens = 400;
  // EOS is not drawn before a sequence has this many new tokens, where something else may be drawn (the grammar
  // allows more than EOS): its logit is left out of the draw.
  int64_t min_new_tokens = 0;
  int64_t batch_size = 32;
  SamplingParams sampling;
  uint64_t seed = 0;
  bool constrained = true;  // apply the grammar for `mode`
  bool share_prompt = true;  // read the prompt head all prompts share from one copy (GenerationStats::shared_prefix)
  // Decode steps as CUDA graphs over all batch_size rows (sampler/decode_graph.h; tp 1). On a CPU the same padded
  // steps run eagerly (tests); same samples up to rounding.
  bool cuda_graphs = false;
  CrystalGrammar::Mode mode = CrystalGrammar::Mode::kCrystal;
  // Unconstrained draws: On brings each row's 64 largest logits and its softmax sum to the host, and the whole row
  // only where they do not decide the draw (sample_token_from_top: the same tokens); Off whole rows; Auto: On on a
  // GPU.
  enum class TopLogits { Auto, On, Off };
  TopLogits top_logits = TopLogits::Auto;
};

// What the last generate() did: how full the batch kept (decode_rows / (decode_steps * batch_size)).
struct GenerationStats {
  int64_t decode_steps = 0;  // one-token forward passes over the running rows
  int64_t decode_rows = 0;   // rows in them, summed (one sampled token each)
  int64_t prefills = 0;      // prompt forward passes (one per admission and distinct prompt length, and the shared
                             // prompt prefix)
  int64_t shared_prefix = 0;  // tokens every prompt starts with, whose keys/values all rows read from one copy
  int64_t cache_read = 0;    // cached positions the decode steps' attention read per layer (summed over steps)
  int64_t cache_needed = 0;  // the positions the rows attend to (sum of pos + 1): read / needed < 1 with sharing
  int64_t logits_to_host = 0;  // logits brought to the host (rows x columns, summed): with the grammar only the
  int64_t logits_full = 0;     // allowed columns; logits_full counts whole rows
  int64_t whole_rows = 0;      // unconstrained rows whose largest logits did not decide the draw (GenerationParams::
                               // top_logits): brought whole
  // Where the loop's wall time went, in seconds (on a GPU: whether decoding is bound by the host). model_s: the
  // decode step and prefill calls (on a GPU the host enqueuing their kernels, on CPU the compute too); to_host_s:
  // bringing the logits to the host (tp gather, allowed-column gather, copy: on a GPU the wait for the step's
  // kernels); host_s: grammar masks, drawing the tokens, advancing the grammar, moving finished rows out.
  double model_s = 0, to_host_s = 0, host_s = 0;
  int64_t cuda_graphs = 0;  // decode-step graphs captured (cuda_graphs; 0 when the steps ran eagerly)
};

// Called with (sequences done, total, tokens generated so far) each time about batch_size more sequences have
// finished, when a sequence finishes 30 s or more after the last call, and at the end, on every rank.
using GenerationProgress = std::function<void(int64_t, int64_t, int64_t)>;
// Called with (prompt index, its sequence) as each sequence finishes, on every rank (cgsample journals them, so a
// stopped run keeps every finished sequence).
using GenerationDone = std::function<void(size_t, const Generation&)>;

class Generator {
 public:
  // model: built, loaded, tp applied (and LoRA merged or injected); pieces[v]: the tokenizer's raw piece of token v
  // (Tokenizer::piece), eos_id its EOS; tp: the model's tp group (nullptr or size 1: no gather).
  // Takes pieces rather than a Tokenizer: the grammar works on piece texts, and tests use hand-made vocabularies.
  Generator(model::LlamaImpl& model, std::vector<std::string> pieces, int eos_id, dist::CommPtr tp);

  // prompts: token ids each (BOS included). Results in prompt order. streams[i]: the RNG stream of prompt i (empty:
  // i). Collective over tp: all tp ranks call it with the same prompts, params and streams.
  std::vector<Generation> generate(const std::vector<std::vector<int32_t>>& prompts, const GenerationParams& params,
                                   const GenerationProgress& progress = nullptr,
                                   const std::vector<uint64_t>& streams = {}, const GenerationDone& on_done = nullptr);

  const GenerationStats& stats() const { return stats_; }
  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  int eos_id() const { return eos_; }

 private:
  // Prefills prompts [first, first + count) into cache rows [row0, row0 + count), positions from `shared` on (the
  // ones before come from the shared prefix) -> their next-token logits (count, vocab_local).
  at::Tensor prefill(const std::vector<std::vector<int32_t>>& prompts, size_t first, size_t count,
                     model::KVCache& cache, int64_t row0, int64_t shared);

  model::LlamaImpl& model_;
  std::vector<std::string> pieces_;
  int eos_;
  dist::CommPtr tp_;
  GenerationStats stats_;
};

// Data parallel generation: prompt i is generated by dp group i % dp with RNG stream streams[i] (empty: i); every
// rank returns every result (an all-reduce over dims.host_dp_comm). Identical to a dp 1 run with the same seed and
// streams. Collective over the world: every rank passes the same prompts, params and streams. progress reports this
// dp group's share; on_done is called on the ranks of the dp group that generated the sequence, with its index in
// prompts.
std::vector<Generation> generate_data_parallel(Generator& gen, const std::vector<std::vector<int32_t>>& prompts,
                                               const GenerationParams& params, const dist::ParallelDims& dims,
                                               const GenerationProgress& progress = nullptr,
                                               const std::vector<uint64_t>& streams = {},
                                               const GenerationDone& on_done = nullptr);

}  // namespace cg
