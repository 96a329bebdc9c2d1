// Invariance check: batched completion log-likelihoods (vocab-parallel cross-entropy) of crystals and variants.
#include "sampler/invariance.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/augment.h"
#include "data/prompt.h"
#include "data/rng.h"
#include "dist/tp_plan.h"
#include "dist/vocab_parallel_ce.h"
#include "model/llama.h"

namespace cg {

std::vector<double> completion_log_likelihoods(model::LlamaImpl& model, const std::vector<std::vector<int32_t>>& seqs,
                                               const std::vector<int64_t>& prompt_lens,
                                               const dist::ParallelDims& dims, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  CG_CHECK(seqs.size() == prompt_lens.size(), "{} sequences but {} prompt lengths", seqs.size(), prompt_lens.size());
  CG_CHECK(batch_size >= 1, "batch_size must be >= 1 (got {})", batch_size);
  std::vector<double> out(seqs.size(), 0.0);
  for (size_t s = 0; s < seqs.size(); s += batch_size) {
    const size_t e = std::min(seqs.size(), s + static_cast<size_t>(batch_size));
    const int64_t B = static_cast<int64_t>(e - s);
    int64_t T = 0;
    for (size_t i = s; i < e; ++i) {
      CG_CHECK(prompt_lens[i] >= 1 && prompt_lens[i] <= static_cast<int64_t>(seqs[i].size()),
               "sequence {}: prompt length {} outside 1..{}", i, prompt_lens[i], seqs[i].size());
      T = std::max<int64_t>(T, static_cast<int64_t>(seqs[i].size()));
    }
    CG_CHECK(T <= model.config().max_position_embeddings, "a scored text has {} tokens, more than the model's {} "
             "positions", T, model.config().max_position_embeddings);
    // tokens (B, T) right-padded with id 0; targets (B, T): next token where it is a completion token, else ignored.
    at::Tensor tokens = at::zeros({B, T}, at::kLong);
    at::Tensor targets = at::full({B, T}, dist::kIgnoreIndex, at::kLong);
    auto tok = tokens.accessor<int64_t, 2>();
    auto tgt = targets.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& q = seqs[s + b];
      for (size_t t = 0; t < q.size(); ++t) tok[b][t] = q[t];
      for (int64_t t = prompt_lens[s + b]; t < static_cast<int64_t>(q.size()); ++t) tgt[b][t - 1] = q[t];
    }
    const at::Tensor logits_local = model.forward(tokens.to(model.device()), 0);  // (B, T, vocab_local)
    const at::Tensor ce =
        dist::token_cross_entropy(model, logits_local.to(at::kFloat), targets.to(model.device()), dims);  // (B, T)
    const at::Tensor ll = -ce.to(at::kCPU, at::kDouble).sum(1);  // (B)
    for (int64_t b = 0; b < B; ++b) out[s + b] = ll[b].item<double>();
  }
  return out;
}

InvarianceVariants make_invariance_variants(const Crystal& c, uint64_t seed) {
  Rng rng(seed);
  const size_t n = c.num_sites();
  InvarianceVariants v;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  if (n >= 2) {
    // Reject the identity order; stop after a few tries when every order lists the same text (all sites equal).
    for (int tries = 0; tries < 16; ++tries) {
      rng.shuffle(order);
      bool identity = true;
      for (size_t i = 0; i < n; ++i) identity &= order[i] == i;
      if (!identity) break;
    }
  }
  v.permuted = c;
  for (size_t i = 0; i < n; ++i) {
    v.permuted.species[i] = c.species[order[i]];
    v.permuted.frac[i] = c.frac[order[i]];
    if (c.oxidation.size() == n) v.permuted.oxidation[i] = c.oxidation[order[i]];  // Fe2+ stays with its site
  }
  v.permuted.id = c.id + "/permuted";

  if (n >= 2) {
    const size_t i = rng.below(n);
    std::vector<size_t> other;
    for (size_t j = 0; j < n; ++j)
      if (c.species[j] != c.species[i]) other.push_back(j);
    if (!other.empty()) {
      const size_t j = other[rng.below(other.size())];
      Crystal w = c;
      std::swap(w.species[i], w.species[j]);
      if (w.oxidation.size() == n) std::swap(w.oxidation[i], w.oxidation[j]);
      w.id = c.id + "/swapped";
      v.swapped = std::move(w);
      v.swap_i = static_cast<int>(i);
      v.swap_j = static_cast<int>(j);
    }
  }
  return v;
}

std::vector<Crystal> translated_copies(const Crystal& c, uint64_t seed, int64_t n) {
  std::vector<Crystal> out;
  Rng rng(Rng::derive({seed, 0x7472616e736cull}));  // "transl"
  for (int64_t t = 0; t < n; ++t) {
    Crystal w = augment(c, {/*translate=*/true, /*permute=*/false}, rng);  // cgprep's translation augmentation
    w.id = c.id + "/translated" + std::to_string(t);
    out.push_back(std::move(w));
  }
  return out;
}

InvarianceResult invariance_check(model::LlamaImpl& model, const std::vector<Crystal>& crystals, const EncodeFn& encode,
                                  int eos_id, const dist::ParallelDims& dims, const InvarianceOptions& opt) {
  const std::string prompt = generation_prompt({});
  const std::vector<int32_t> prompt_ids = encode(prompt);
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> plens;
  // As cgprep's tokenize_sample: BOS + encode(prompt + completion) + EOS; the prompt is the common prefix.
  auto add = [&](const Crystal& c) {
    std::vector<int32_t> ids = encode(prompt + crystal_to_text(c, opt.text));
    ids.push_back(eos_id);
    size_t k = 0;
    while (k < prompt_ids.size() && k + 1 < ids.size() && prompt_ids[k] == ids[k]) ++k;
    seqs.push_back(std::move(ids));
    plens.push_back(static_cast<int64_t>(std::max<size_t>(k, 1)));
    return seqs.size() - 1;
  };
  struct Slots {
    size_t orig, perm;
    std::optional<size_t> swap;
    std::vector<size_t> translated;
  };
  std::vector<Slots> slots;
  InvarianceResult r;
  for (size_t k = 0; k < crystals.size(); ++k) {
    const Crystal& c = crystals[k];
    if (c.num_sites() < 2) continue;
    const InvarianceVariants v = make_invariance_variants(c, Rng::derive({opt.seed, k}));
    Slots s{add(c), add(v.permuted), std::nullopt};
    if (v.swapped) s.swap = add(*v.swapped);
    for (const Crystal& t : translated_copies(c, Rng::derive({opt.seed, k}), opt.translations))
      s.translated.push_back(add(t));
    slots.push_back(s);
    InvarianceRow row;
    row.id = c.id;
    r.rows.push_back(row);
  }
  const std::vector<double> ll = completion_log_likelihoods(model, seqs, plens, dims, opt.batch_size);
  for (size_t k = 0; k < slots.size(); ++k) {
    InvarianceRow& row = r.rows[k];
    row.ll = ll[slots[k].orig];
    row.tokens = static_cast<int64_t>(seqs[slots[k].orig].size()) - plens[slots[k].orig];
    row.ll_permuted = ll[slots[k].perm];
    if (slots[k].swap) row.ll_swapped = ll[*slots[k].swap];
    if (!slots[k].translated.empty()) {
      auto ppl = [&](size_t slot) {
        return std::exp(-ll[slot] / double(int64_t(seqs[slot].size()) - plens[slot]));
      };
      row.ppl_translations.push_back(ppl(slots[k].orig));
      for (size_t slot : slots[k].translated) row.ppl_translations.push_back(ppl(slot));
      double mean = 0, lo = row.ppl_translations[0];
      for (double p : row.ppl_translations) {
        mean += p / double(row.ppl_translations.size());
        lo = std::min(lo, p);
      }
      row.ipt = mean - lo;
      r.mean_ipt += *row.ipt;
    }
    r.mean_ll += row.ll;
    r.mean_delta_permute += row.ll_permuted - row.ll;
    r.mean_abs_delta_permute += std::abs(row.ll_permuted - row.ll);
    if (row.ll_swapped) {
      ++r.swapped;
      r.mean_delta_swap += *row.ll_swapped - row.ll;
      r.mean_abs_delta_swap += std::abs(*row.ll_swapped - row.ll);
    }
  }
  r.crystals = static_cast<int64_t>(slots.size());
  r.translations = opt.translations;
  if (r.crystals > 0) {
    r.mean_ipt /= r.crystals;
    r.mean_ll /= r.crystals;
    r.mean_delta_permute /= r.crystals;
    r.mean_abs_delta_permute /= r.crystals;
  }
  if (r.swapped > 0) {
    r.mean_delta_swap /= r.swapped;
    r.mean_abs_delta_swap /= r.swapped;
  }
  return r;
}

std::string invariance_json(const InvarianceResult& r) {
  // A mean over nothing is null, not 0 (which would read as "no change").
  const auto mean_over = [](int64_t n, double v) { return n > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  const nlohmann::json j = {{"crystals", r.crystals},
                            {"swapped", r.swapped},
                            {"mean_ll", mean_over(r.crystals, r.mean_ll)},
                            {"mean_delta_permute", mean_over(r.crystals, r.mean_delta_permute)},
                            {"mean_abs_delta_permute", mean_over(r.crystals, r.mean_abs_delta_permute)},
                            {"mean_delta_swap", mean_over(r.swapped, r.mean_delta_swap)},
                            {"mean_abs_delta_swap", mean_over(r.swapped, r.mean_abs_delta_swap)},
                            {"translations", r.translations},
                            {"mean_ipt", mean_over(r.translations > 0 ? r.crystals : 0, r.mean_ipt)}};
  return j.dump();
}

std::string invariance_markdown(const InvarianceResult& r) {
  const auto cell = [](int64_t n, double v) { return n > 0 ? fmt::format("{:.3f}", v) : std::string("n/a"); };
  return fmt::format(
      "\n## Log-likelihood invariance\n\n"
      "Over {} crystals (unconditional prompt; LL summed over the crystal's tokens and EOS, nats). An "
      "order-invariant model changes little under a permutation of its atoms and much more when two sites of "
      "different elements ({} crystals) exchange their element.\n\n"
      "| | mean ΔLL | mean \\|ΔLL\\| |\n|---|---|---|\n"
      "| atoms permuted | {} | {} |\n| elements swapped | {} | {} |\n\nmean LL of the originals: {}\n{}",
      r.crystals, r.swapped, cell(r.crystals, r.mean_delta_permute), cell(r.crystals, r.mean_abs_delta_permute),
      cell(r.swapped, r.mean_delta_swap), cell(r.swapped, r.mean_abs_delta_swap), cell(r.crystals, r.mean_ll),
      r.translations > 0 && r.crystals > 0
          ? fmt::format("\nIPT (Gruver et al.: increase in perplexity under translation, mean - min over the original "
                        "and {} translated copies): {:.4f}\n", r.translations, r.mean_ipt)
          : "");
}

}  // namespace cg
