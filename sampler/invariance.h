// Log-likelihood scoring of texts and the paper's invariance check (Gruver et al. 2024, Sec. 4): how much the
// log-likelihood the model assigns to a crystal changes when its atoms are listed in another order (the same
// crystal: an invariant model changes little) versus when two sites of different elements exchange their element
// (a different crystal: it should change more). With translated copies it also measures Gruver et al.'s IPT,
// the increase in perplexity under translation: over the original and its copies, mean PPL - min PPL (0 for a
// translation-invariant model). Scores the unconditional generation text
//   BOS + encode(generation_prompt({}) + crystal_to_text(c)) + EOS          (as cgprep tokenizes training samples)
// summed over the completion tokens (EOS included), in nats.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/crystal.h"
#include "data/crystal_text.h"
#include "dist/parallel_dims.h"

namespace cg::model {
class LlamaImpl;
}

namespace cg {

// Sum over t in [prompt_lens[i], len_i) of log p(seqs[i][t] | seqs[i][<t]) for each sequence, in nats. Sequences are
// right-padded into batches of batch_size (padding never influences earlier positions under the causal mask).
// Collective over dims' tp group (vocab-parallel cross-entropy); every tp rank passes the same sequences.
std::vector<double> completion_log_likelihoods(model::LlamaImpl& model, const std::vector<std::vector<int32_t>>& seqs,
                                               const std::vector<int64_t>& prompt_lens,
                                               const dist::ParallelDims& dims, int64_t batch_size = 8);

struct InvarianceVariants {
  Crystal permuted;                // the same sites in another order (differs from the original when >= 2 sites)
  std::optional<Crystal> swapped;  // sites i != j of different elements exchange species; nullopt: one element only
  int swap_i = -1, swap_j = -1;
};
// Seeded draw of both variants of c.
InvarianceVariants make_invariance_variants(const Crystal& c, uint64_t seed);
// n copies of c, each with every site shifted by one seeded uniform vector in [0, 1)^3 and wrapped into [0, 1).
std::vector<Crystal> translated_copies(const Crystal& c, uint64_t seed, int64_t n);

struct InvarianceRow {
  std::string id;
  int64_t tokens = 0;     // completion tokens of the original (EOS included)
  double ll = 0;          // original
  double ll_permuted = 0;
  std::optional<double> ll_swapped;
  // Perplexity exp(-LL / tokens) of the original then of each translated copy, and their IPT: mean - min.
  std::vector<double> ppl_translations;
  std::optional<double> ipt;
};

struct InvarianceResult {
  int64_t crystals = 0;               // scored crystals (those with >= 2 sites)
  int64_t swapped = 0;                // of which have two different elements (the swap averages run over these)
  double mean_ll = 0;                 // mean LL of the originals
  double mean_delta_permute = 0;      // mean LL(permuted) - LL(original)
  double mean_abs_delta_permute = 0;  // mean |LL(permuted) - LL(original)|
  double mean_delta_swap = 0;         // mean LL(swapped) - LL(original)
  double mean_abs_delta_swap = 0;
  int64_t translations = 0;           // translated copies per crystal (0: IPT not measured)
  double mean_ipt = 0;                // mean IPT over the crystals
  std::vector<InvarianceRow> rows;
};

// encode(text): token ids with BOS prepended (the tokenizer's encode(text, true)); eos_id appended by the scorer.
using EncodeFn = std::function<std::vector<int32_t>(const std::string&)>;

struct InvarianceOptions {
  int64_t batch_size = 8;
  uint64_t seed = 0;   // variant draws: crystal k uses seed (seed, k)
  int64_t translations = 4;  // translated copies per crystal for the IPT (0: none)
  TextOptions text;    // data.angle_mode as cgprep wrote the training text
};

// Scores every crystal with >= 2 sites and its two variants. Collective over tp.
InvarianceResult invariance_check(model::LlamaImpl& model, const std::vector<Crystal>& crystals, const EncodeFn& encode,
                                  int eos_id, const dist::ParallelDims& dims, const InvarianceOptions& opt = {});

// {"crystals", "swapped", "mean_ll", "mean_delta_permute", ...} (no per-crystal rows).
std::string invariance_json(const InvarianceResult& r);
// A short markdown section for report.md.
std::string invariance_markdown(const InvarianceResult& r);

}  // namespace cg
