#include "sampler/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace cg {

namespace {

// A row of logits: entries [0, n), entry i being token id(i) (ascending in i) and allowed where allowed(i).
struct Row {
  const float* logits;
  int n;
  const uint8_t* mask;  // over entries; nullable
  const int32_t* ids;   // entry -> token id; null: entry i is token i
  int id(int i) const { return ids ? ids[i] : i; }
  bool usable(int i) const { return (!mask || mask[i]) && std::isfinite(logits[i]); }
};

// One uniform in [0, 1) from 53 random bits: the same on every platform (std distributions are not).
double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

// The softmax's sum sum exp((logit(i) - mx) / t) over entries `in_id_order`, terms below e^-40 of the largest (which
// is 1) left out: they cannot move the sum at double precision. The order is fixed so that every path that draws
// one row's token (whole row, allowed columns, largest logits) sums alike.
template <typename Logit>
double softmax_sum(const std::vector<int>& in_id_order, Logit logit, double mx, double t) {
  double z = 0;
  for (int i : in_id_order) {
    const double d = (logit(i) - mx) / t;
    if (d > -40) z += std::exp(d);
  }
  return z;
}

// The nucleus's probabilities made to sum to 1 again (with top_p < 1 they were cut).
void renormalise(std::vector<double>* probs, const SamplingParams& p) {
  if (p.top_p >= 1.0) return;
  const double s = std::accumulate(probs->begin(), probs->end(), 0.0);
  for (double& q : *probs) q /= s;
}

// The entry of probs (in order) the uniform u falls in; the last one where rounding leaves u past them all.
size_t pick(const std::vector<double>& probs, double u) {
  double cum = 0;
  for (size_t i = 0; i < probs.size(); ++i)
    if (u < (cum += probs[i])) return i;
  return probs.size() - 1;
}

// Candidate entries (allowed, finite logit) with their probabilities after temperature, top-k and top-p, sorted by
// probability descending (ties by id), renormalised. Only as many entries are put in order as top-k and top-p keep:
// at LLaMA's 32k vocabulary, unconstrained with top-p 0.9, a few dozen, so a row costs one pass of exp() and a
// partial sort rather than a sort of 32k (~10x less; bench/sampling_bench.cpp). The softmax's sum runs over the
// candidates in id order, the same for a full row and its allowed columns (sample_token_among).
// stop_at (a draw's uniform u, with top_p >= 1 only): the ordering stops at the first entry whose cumulative
// probability passes u, the one pick(probs, u) returns, since pick adds the same terms in the same order and
// renormalise leaves them alone at top_p >= 1. Entries after it stay out of idx and probs.
void candidates(const Row& row, const SamplingParams& p, std::vector<int>* idx, std::vector<double>* probs,
                double stop_at = 2.0) {
  idx->clear();
  probs->clear();
  const float* logits = row.logits;
  for (int i = 0; i < row.n; ++i)
    if (row.usable(i)) idx->push_back(i);
  if (idx->empty()) return;
  const auto before = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  auto& v = *idx;
  if (p.top_k > 0 && static_cast<int64_t>(v.size()) > p.top_k) {  // the k first in order, then back to id order
    std::nth_element(v.begin(), v.begin() + (p.top_k - 1), v.end(), before);
    v.resize(p.top_k);
    std::sort(v.begin(), v.end());
  }
  const double t = p.temperature;
  const double mx = logits[*std::min_element(v.begin(), v.end(), before)];
  const double z = softmax_sum(v, [&](int i) { return logits[i]; }, mx, t);
  // The terms softmax_sum leaves out go behind the others (they follow them in order anyway), so the ordering below
  // starts with the few that count (most of a trained model's row does not).
  const size_t counted =
      std::partition(v.begin(), v.end(), [&](int i) { return (logits[i] - mx) / t > -40; }) - v.begin();
  const auto prob = [&](int i) { return std::exp((logits[i] - mx) / t) / z; };
  // Put v in order a block at a time (the block's entries selected, then sorted; the rest of a range at once when
  // the block is a quarter of it), the counted range first, until they reach top_p (all of them when top_p >= 1).
  size_t sorted = 0, keep = v.size();
  double cum = 0;
  bool reached = false;
  for (const size_t lim : {counted, v.size()}) {
    for (size_t block = 64; sorted < lim && !reached; block *= 2) {
      size_t end = std::min(lim, sorted + block);
      if (4 * (end - sorted) >= lim - sorted) end = lim;
      if (end < lim) std::nth_element(v.begin() + sorted, v.begin() + end - 1, v.begin() + lim, before);
      std::sort(v.begin() + sorted, v.begin() + end, before);
      for (; sorted < end; ++sorted) {
        probs->push_back(prob(v[sorted]));
        cum += probs->back();
        if ((p.top_p < 1.0 && cum >= p.top_p) || (p.top_p >= 1.0 && stop_at < cum)) {
          keep = ++sorted;
          reached = true;
          break;
        }
      }
    }
  }
  v.resize(keep);
  probs->resize(keep);
  renormalise(probs, p);
}

int sample(const Row& row, const SamplingParams& p, std::mt19937_64& rng) {
  if (p.temperature <= 0) {
    int best = -1;
    for (int i = 0; i < row.n; ++i)
      if (row.usable(i) && (best < 0 || row.logits[i] > row.logits[best])) best = i;
    return best < 0 ? -1 : row.id(best);
  }
  // u is drawn first (one uniform per call, as always) so that with top_p >= 1 the ordering can stop where u falls:
  // grammar off, a draw used to order every allowed entry (4% of a tiny-model decode step, 2026-12-07).
  const double u = uniform(rng);
  std::vector<int> idx;
  std::vector<double> probs;
  candidates(row, p, &idx, &probs, u);
  if (idx.empty()) return -1;
  return row.id(idx[pick(probs, u)]);
}

}  // namespace

int sample_token(const float* logits, int n, const uint8_t* mask, const SamplingParams& p, std::mt19937_64& rng) {
  return sample({logits, n, mask, nullptr}, p, rng);
}

int sample_token_among(const float* logits, const int32_t* ids, int n, const SamplingParams& p,
                       std::mt19937_64& rng) {
  return sample({logits, n, nullptr, ids}, p, rng);
}

int sample_token_from_top(const float* vals, const int64_t* ids, int m, int n, double z, const SamplingParams& p,
                          std::mt19937_64& rng) {
  std::vector<int> ord;  // the given finite entries, in sample_token's order
  bool all = m >= n;     // every usable entry of the row is given
  for (int i = 0; i < m; ++i) {
    if (std::isnan(vals[i])) return kNeedWholeRow;  // (a GPU's topk ranks NaN first)
    if (std::isfinite(vals[i]))
      ord.push_back(i);
    else
      all = true;  // -inf among the largest: nothing outside is usable
  }
  std::sort(ord.begin(), ord.end(), [&](int a, int b) {
    return vals[a] > vals[b] || (vals[a] == vals[b] && ids[a] < ids[b]);
  });
  const float last = ord.empty() ? 0.f : vals[ord.back()];
  const auto decided = [&](int i) { return all || vals[i] > last; };  // nothing outside comes before or ties it
  if (p.temperature <= 0) {
    if (ord.empty()) return all ? -1 : kNeedWholeRow;
    return decided(ord[0]) ? static_cast<int>(ids[ord[0]]) : kNeedWholeRow;
  }
  if (ord.empty()) {
    if (!all) return kNeedWholeRow;
    uniform(rng);  // as sample_token: one uniform, then nothing to draw
    return -1;
  }
  bool complete = all;  // the kept set is all of it (before top-p)
  const double t = p.temperature, mx = vals[ord[0]];
  if (p.top_k > 0 && (!all || static_cast<int64_t>(ord.size()) > p.top_k)) {
    if (static_cast<int64_t>(ord.size()) <= p.top_k || !decided(ord[p.top_k - 1])) return kNeedWholeRow;
    ord.resize(p.top_k);
    complete = true;
  }
  if (complete) {  // the softmax sum over the kept entries, in id order as sample_token sums (else the row's z)
    std::vector<int> by_id(ord);
    std::sort(by_id.begin(), by_id.end(), [&](int a, int b) { return ids[a] < ids[b]; });
    z = softmax_sum(by_id, [&](int i) { return vals[i]; }, mx, t);
  }
  std::vector<double> probs;
  size_t keep = ord.size();
  bool reached = false;
  double cum = 0;
  for (size_t j = 0; j < ord.size(); ++j) {
    probs.push_back(std::exp((vals[ord[j]] - mx) / t) / z);
    cum += probs.back();
    if (p.top_p < 1.0 && cum >= p.top_p) {
      if (!decided(ord[j])) return kNeedWholeRow;
      keep = j + 1;
      reached = true;
      break;
    }
  }
  if (!reached && !complete) return kNeedWholeRow;  // the nucleus goes on past the given entries
  probs.resize(keep);
  renormalise(&probs, p);
  return static_cast<int>(ids[ord[pick(probs, uniform(rng))]]);
}

std::vector<double> sampling_distribution(const float* logits, int n, const uint8_t* mask, const SamplingParams& p) {
  std::vector<double> out(n, 0.0);
  if (p.temperature <= 0) {
    std::mt19937_64 unused;
    const int v = sample_token(logits, n, mask, p, unused);
    if (v >= 0) out[v] = 1.0;
    return out;
  }
  std::vector<int> idx;
  std::vector<double> probs;
  candidates({logits, n, mask, nullptr}, p, &idx, &probs);
  for (size_t i = 0; i < idx.size(); ++i) out[idx[i]] = probs[i];
  return out;
}

}  // namespace cg
