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

// Candidate entries (allowed, finite logit) with their probabilities after temperature, top-k and top-p, sorted by
// probability descending (ties by id), renormalised.
void candidates(const Row& row, const SamplingParams& p, std::vector<int>* idx, std::vector<double>* probs) {
  idx->clear();
  probs->clear();
  const float* logits = row.logits;
  for (int i = 0; i < row.n; ++i)
    if (row.usable(i)) idx->push_back(i);
  if (idx->empty()) return;
  std::stable_sort(idx->begin(), idx->end(), [&](int a, int b) { return logits[a] > logits[b]; });
  if (p.top_k > 0 && static_cast<int64_t>(idx->size()) > p.top_k) idx->resize(p.top_k);
  const double t = p.temperature;
  const double mx = logits[(*idx)[0]];
  double z = 0;
  for (int i : *idx) {
    probs->push_back(std::exp((logits[i] - mx) / t));
    z += probs->back();
  }
  for (double& q : *probs) q /= z;
  if (p.top_p < 1.0) {
    double cum = 0;
    size_t keep = 0;
    while (keep < probs->size()) {
      cum += (*probs)[keep++];
      if (cum >= p.top_p) break;
    }
    idx->resize(keep);
    probs->resize(keep);
    const double s = std::accumulate(probs->begin(), probs->end(), 0.0);
    for (double& q : *probs) q /= s;
  }
}

int sample(const Row& row, const SamplingParams& p, std::mt19937_64& rng) {
  if (p.temperature <= 0) {
    int best = -1;
    for (int i = 0; i < row.n; ++i)
      if (row.usable(i) && (best < 0 || row.logits[i] > row.logits[best])) best = i;
    return best < 0 ? -1 : row.id(best);
  }
  std::vector<int> idx;
  std::vector<double> probs;
  candidates(row, p, &idx, &probs);
  // One uniform in [0, 1) from 53 random bits: the same on every platform (std distributions are not).
  const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
  if (idx.empty()) return -1;
  double cum = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    cum += probs[i];
    if (u < cum) return row.id(idx[i]);
  }
  return row.id(idx.back());
}

}  // namespace

int sample_token(const float* logits, int n, const uint8_t* mask, const SamplingParams& p, std::mt19937_64& rng) {
  return sample({logits, n, mask, nullptr}, p, rng);
}

int sample_token_among(const float* logits, const int32_t* ids, int n, const SamplingParams& p,
                       std::mt19937_64& rng) {
  return sample({logits, n, nullptr, ids}, p, rng);
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
