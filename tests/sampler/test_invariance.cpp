// Invariance check on a random tiny Llama: batched, right-padded completion log-likelihoods equal a direct sum of
// token log-probabilities from one unpadded forward per sequence; the variants are what they claim (a permutation
// of the same sites; two sites of different elements exchanging species); the check's averages are those of its rows.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "data/crystal_text.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/rng.h"
#include "model/llama.h"
#include "sampler/invariance.h"
#include "tests/sampler/tiny_model.h"
#include "tests/sampler/tiny_vocab.h"

namespace cg {
namespace {

using Fixture = sampler_test::TinyFixture;

Fixture& invariance_fixture() {
  static Fixture f = sampler_test::make_tiny_fixture(6, 1024, 21, 0.3);
  return f;
}

// Reference: one unpadded forward, log_softmax, and the plain sum over completion positions.
double direct_ll(model::LlamaImpl& m, const std::vector<int32_t>& seq, int64_t prompt_len) {
  torch::NoGradGuard ng;
  std::vector<int64_t> ids(seq.begin(), seq.end());
  const at::Tensor logp = at::log_softmax(m.forward(torch::tensor(ids).view({1, -1}))[0].to(at::kDouble), -1);
  double s = 0;
  for (size_t t = prompt_len; t < seq.size(); ++t) s += logp[t - 1][seq[t]].item<double>();
  return s;
}

std::vector<std::pair<std::string, std::array<double, 3>>> sites(const Crystal& c) {
  std::vector<std::pair<std::string, std::array<double, 3>>> v;
  for (size_t i = 0; i < c.num_sites(); ++i) v.push_back({c.species[i], c.frac[i]});
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Invariance, BatchedLogLikelihoodEqualsDirectSumOfTokenLogProbs) {
  Fixture& f = invariance_fixture();
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> plens;
  const std::string prompt = generation_prompt({});
  for (int k = 0; k < 5; ++k) {  // different lengths: padding inside every batch of 2
    auto ids = f.tok.encode(prompt + crystal_to_text(f.crystals[k]), true);
    ids.push_back(f.tok.eos());
    seqs.push_back(ids);
    plens.push_back(static_cast<int64_t>(f.tok.encode(prompt, true).size()) - (k == 3 ? 5 : 0));
  }
  seqs.push_back({1, 40, 41});  // a tiny one: prompt BOS only
  plens.push_back(1);
  const auto dims = dist::single_process_dims();
  const auto ll = completion_log_likelihoods(*f.model, seqs, plens, dims, 2);
  ASSERT_EQ(ll.size(), seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    const double ref = direct_ll(*f.model, seqs[i], plens[i]);
    EXPECT_NEAR(ll[i], ref, 1e-3 + 1e-5 * std::abs(ref)) << i;
    EXPECT_LT(ll[i], 0.0);
  }
  // The batch size changes nothing.
  const auto ll1 = completion_log_likelihoods(*f.model, seqs, plens, dims, 1);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_NEAR(ll1[i], ll[i], 1e-3) << i;
}

TEST(Invariance, VariantsPermuteSitesAndSwapTwoDifferentElements) {
  Fixture& f = invariance_fixture();
  for (size_t k = 0; k < f.crystals.size(); ++k) {
    const Crystal& c = f.crystals[k];
    const InvarianceVariants v = make_invariance_variants(c, 100 + k);
    EXPECT_EQ(sites(v.permuted), sites(c));  // the same multiset of sites
    if (c.num_sites() >= 2) EXPECT_NE(crystal_to_text(v.permuted), crystal_to_text(c)) << c.id;
    const bool two_elements = std::any_of(c.species.begin(), c.species.end(),
                                          [&](const std::string& s) { return s != c.species[0]; });
    ASSERT_EQ(v.swapped.has_value(), two_elements) << c.id;
    if (!v.swapped) continue;
    const Crystal& w = *v.swapped;
    ASSERT_EQ(w.num_sites(), c.num_sites());
    int changed = 0;
    for (size_t i = 0; i < c.num_sites(); ++i) {
      EXPECT_EQ(w.frac[i], c.frac[i]);
      changed += w.species[i] != c.species[i];
    }
    EXPECT_EQ(changed, 2) << c.id;
    EXPECT_EQ(w.species[v.swap_i], c.species[v.swap_j]);
    EXPECT_EQ(w.species[v.swap_j], c.species[v.swap_i]);
    EXPECT_EQ(w.lattice.a, c.lattice.a);
  }
  Crystal one;  // one element only: no swap
  one.lattice = {3, 3, 3, 90, 90, 90};
  one.species = {"Fe", "Fe"};
  one.frac = {{0, 0, 0}, {0.5, 0.5, 0.5}};
  const auto v = make_invariance_variants(one, 1);
  EXPECT_FALSE(v.swapped.has_value());
  EXPECT_EQ(v.permuted.frac[0], one.frac[1]);
  // Translated copies: every site moved by the copy's one vector (mod 1), into [0, 1); copies differ.
  Crystal three = one;
  three.species = {"Fe", "O", "O"};
  three.frac = {{0.1, 0.2, 0.3}, {0.9, 0.5, 0.0}, {0.45, 0.95, 0.6}};
  const auto copies = translated_copies(three, 9, 3);
  ASSERT_EQ(copies.size(), 3u);
  for (const Crystal& t : copies) {
    EXPECT_EQ(t.species, three.species);
    EXPECT_EQ(t.lattice.a, three.lattice.a);
    for (size_t i = 0; i < 3; ++i)
      for (int k = 0; k < 3; ++k) {
        EXPECT_GE(t.frac[i][k], 0.0);
        EXPECT_LT(t.frac[i][k], 1.0);
        const double d = (t.frac[i][k] - three.frac[i][k]) - (t.frac[0][k] - three.frac[0][k]);
        EXPECT_NEAR(d - std::round(d), 0.0, 1e-12) << i << " " << k;
      }
  }
  EXPECT_NE(copies[0].frac[0], copies[1].frac[0]);
  EXPECT_TRUE(translated_copies(three, 9, 0).empty());
}

TEST(Invariance, VariantsKeepEachSitesOxidationState) {
  // A CIF with _atom_type_oxidation_number gives every site its Species (data/crystal.h): a permuted or swapped
  // variant must keep each oxidation state with its site, or a later space-group or site-order step would pair Fe3+
  // with another site's position.
  Crystal c;
  c.lattice = {4, 4, 4, 90, 90, 90};
  c.species = {"Fe", "Fe", "O", "O"};
  c.frac = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0}, {0, 0.5, 0.5}};
  c.oxidation = {2, 3, -2, -2.5};  // one value per site, all different: a misplaced one is seen
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const InvarianceVariants v = make_invariance_variants(c, seed);
    ASSERT_EQ(v.permuted.oxidation.size(), c.num_sites());
    for (size_t i = 0; i < c.num_sites(); ++i) {
      const size_t from = size_t(std::find(c.frac.begin(), c.frac.end(), v.permuted.frac[i]) - c.frac.begin());
      ASSERT_LT(from, c.num_sites());
      EXPECT_EQ(v.permuted.species[i], c.species[from]) << seed;
      EXPECT_EQ(v.permuted.oxidation[i], c.oxidation[from]) << seed;  // the site's own, wherever it went
    }
    ASSERT_TRUE(v.swapped.has_value());
    const Crystal& w = *v.swapped;
    EXPECT_EQ(w.oxidation[size_t(v.swap_i)], c.oxidation[size_t(v.swap_j)]) << seed;  // Fe2+ and O2- trade places
    EXPECT_EQ(w.oxidation[size_t(v.swap_j)], c.oxidation[size_t(v.swap_i)]) << seed;
  }
}

TEST(Invariance, CheckAveragesItsRowsScoredLikeDirectSums) {
  Fixture& f = invariance_fixture();
  std::vector<Crystal> crystals(f.crystals.begin(), f.crystals.begin() + 4);
  Crystal single;  // skipped: one site
  single.id = "single";
  single.lattice = {3, 3, 3, 90, 90, 90};
  single.species = {"Na"};
  single.frac = {{0, 0, 0}};
  crystals.insert(crystals.begin() + 1, single);
  InvarianceOptions opt;
  opt.batch_size = 3;
  opt.seed = 5;
  opt.translations = 2;
  const auto enc = [&](const std::string& s) { return f.tok.encode(s, true); };
  const InvarianceResult r = invariance_check(*f.model, crystals, enc, f.tok.eos(), dist::single_process_dims(), opt);
  ASSERT_EQ(r.crystals, 4);
  ASSERT_EQ(r.rows.size(), 4u);
  const std::string prompt = generation_prompt({});
  const int64_t plen = static_cast<int64_t>(enc(prompt).size());
  double sum_ll = 0, sum_dp = 0, sum_adp = 0, sum_ds = 0, sum_ads = 0, sum_ipt = 0;
  int64_t swapped = 0;
  for (size_t k = 0, row = 0; k < crystals.size(); ++k) {
    if (crystals[k].num_sites() < 2) continue;
    const InvarianceRow& rw = r.rows[row++];
    EXPECT_EQ(rw.id, crystals[k].id);
    auto score = [&](const Crystal& c) {
      auto ids = enc(prompt + crystal_to_text(c));
      ids.push_back(f.tok.eos());
      return direct_ll(*f.model, ids, plen);
    };
    const InvarianceVariants v = make_invariance_variants(crystals[k], Rng::derive({opt.seed, k}));
    EXPECT_NEAR(rw.ll, score(crystals[k]), 1e-3);
    EXPECT_NEAR(rw.ll_permuted, score(v.permuted), 1e-3);
    ASSERT_EQ(rw.ll_swapped.has_value(), v.swapped.has_value());
    if (v.swapped) {
      EXPECT_NEAR(*rw.ll_swapped, score(*v.swapped), 1e-3);
      sum_ds += *rw.ll_swapped - rw.ll;
      sum_ads += std::abs(*rw.ll_swapped - rw.ll);
      ++swapped;
    }
    // IPT: perplexities of the original and its two translated copies, each from a direct sum.
    std::vector<Crystal> copies = {crystals[k]};
    for (const Crystal& t : translated_copies(crystals[k], Rng::derive({opt.seed, k}), 2)) copies.push_back(t);
    std::vector<double> ppl;
    for (const Crystal& c : copies) {
      auto ids = enc(prompt + crystal_to_text(c));
      ids.push_back(f.tok.eos());
      ppl.push_back(std::exp(-direct_ll(*f.model, ids, plen) / double(int64_t(ids.size()) - plen)));
    }
    ASSERT_EQ(rw.ppl_translations.size(), 3u);
    for (size_t t = 0; t < 3; ++t) EXPECT_NEAR(rw.ppl_translations[t], ppl[t], 1e-3 * ppl[t]) << t;
    const double ipt = (ppl[0] + ppl[1] + ppl[2]) / 3 - std::min({ppl[0], ppl[1], ppl[2]});
    ASSERT_TRUE(rw.ipt.has_value());
    EXPECT_NEAR(*rw.ipt, ipt, 1e-3 * ppl[0]);
    EXPECT_GE(*rw.ipt, 0.0);
    sum_ipt += *rw.ipt;
    sum_ll += rw.ll;
    sum_dp += rw.ll_permuted - rw.ll;
    sum_adp += std::abs(rw.ll_permuted - rw.ll);
  }
  EXPECT_EQ(r.swapped, swapped);
  EXPECT_NEAR(r.mean_ll, sum_ll / 4, 1e-9);
  EXPECT_NEAR(r.mean_delta_permute, sum_dp / 4, 1e-9);
  EXPECT_NEAR(r.mean_abs_delta_permute, sum_adp / 4, 1e-9);
  ASSERT_GT(swapped, 0);
  EXPECT_NEAR(r.mean_delta_swap, sum_ds / swapped, 1e-9);
  EXPECT_NEAR(r.mean_abs_delta_swap, sum_ads / swapped, 1e-9);
  EXPECT_GT(r.mean_abs_delta_permute, 0.0);  // a random model is not order invariant
  EXPECT_NEAR(r.mean_ipt, sum_ipt / 4, 1e-9);
  EXPECT_GT(r.mean_ipt, 0.0);  // nor translation invariant
  EXPECT_NE(invariance_json(r).find("\"mean_ipt\""), std::string::npos);
  EXPECT_NE(invariance_json(r).find("\"mean_abs_delta_swap\""), std::string::npos);
}

TEST(Invariance, ScoresTheTextOfTheTrainingAngleMode) {
  // cgeval passes data.angle_mode (opt.text): an angle of 89.6 is "90" in round's text and "89" in truncate's, and
  // the check scores the text the model was trained on; a row's tokens are that text's (EOS included).
  Fixture& f = invariance_fixture();
  Crystal c;
  c.id = "tilted";
  c.lattice = {4, 4.5, 5, 89.6, 89.6, 89.6};
  c.species = {"Fe", "O", "O"};
  c.frac = {{0.1, 0.2, 0.3}, {0.6, 0.7, 0.8}, {0.35, 0.05, 0.55}};
  InvarianceOptions opt;
  opt.translations = 0;
  opt.text.angles = AngleMode::kTruncate;
  ASSERT_NE(crystal_to_text(c, opt.text), crystal_to_text(c)) << "the angle modes should write different texts";
  const auto enc = [&](const std::string& s) { return f.tok.encode(s, true); };
  const InvarianceResult r = invariance_check(*f.model, {c}, enc, f.tok.eos(), dist::single_process_dims(), opt);
  ASSERT_EQ(r.rows.size(), 1u);
  const std::string prompt = generation_prompt({});
  const int64_t plen = static_cast<int64_t>(enc(prompt).size());
  auto ids = enc(prompt + crystal_to_text(c, opt.text));
  ids.push_back(f.tok.eos());
  EXPECT_NEAR(r.rows[0].ll, direct_ll(*f.model, ids, plen), 1e-3);
  EXPECT_EQ(r.rows[0].tokens, static_cast<int64_t>(ids.size()) - plen);
}

// Means over no crystal (nothing scored, or no crystal with two elements to swap) are null / n/a, not 0.0, which would
// read as "the model does not change".
TEST(InvarianceReport, MeansOverNothingAreNullNotZero) {
  InvarianceResult r;
  r.crystals = 3;
  r.swapped = 0;
  r.mean_ll = -40.5;
  r.mean_delta_permute = 0.25;
  r.mean_abs_delta_permute = 0.5;
  r.translations = 2;
  r.mean_ipt = 0.125;
  auto j = nlohmann::json::parse(invariance_json(r));
  EXPECT_EQ(j["mean_ll"], -40.5);
  EXPECT_EQ(j["mean_ipt"], 0.125);
  EXPECT_TRUE(j["mean_delta_swap"].is_null()) << j.dump();
  EXPECT_TRUE(j["mean_abs_delta_swap"].is_null()) << j.dump();
  std::string md = invariance_markdown(r);
  EXPECT_NE(md.find("| atoms permuted | 0.250 | 0.500 |\n| elements swapped | n/a | n/a |"), std::string::npos) << md;
  r = InvarianceResult();
  r.translations = 2;
  j = nlohmann::json::parse(invariance_json(r));
  for (const char* k : {"mean_ll", "mean_delta_permute", "mean_abs_delta_permute", "mean_ipt"})
    EXPECT_TRUE(j[k].is_null()) << k << ": " << j.dump();
  md = invariance_markdown(r);
  EXPECT_NE(md.find("| atoms permuted | n/a | n/a |"), std::string::npos) << md;
  EXPECT_EQ(md.find("IPT"), std::string::npos) << md;
}

}  // namespace
}  // namespace cg
