#include "sampler/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace cg {

namespace {

// Candidate ids (allowed, finite logit) with their probabilities after temperature, top-k and top-p, sorted by
// probability descending (ties by id), renormalised.
void candidates(const float* logits, int n, const uint8_t* mask, const SamplingParams& p, std::vector<int>* ids,
                std::vector<double>* probs) {
  ids->clear();
  probs->clear();
  for (int v = 0; v < n; ++v)
    if ((!mask || mask[v]) && std::isfinite(logits[v])) ids->push_back(v);
  if (ids->empty()) return;
  std::stable_sort(ids->begin(), ids->end(), [&](int a, int b) { return logits[a] > logits[b]; });
  if (p.top_k > 0 && static_cast<int64_t>(ids->size()) > p.top_k) ids->resize(p.top_k);
  const double t = p.temperature;
  const double mx = logits[(*ids)[0]];
  double z = 0;
  for (int v : *ids) {
    probs->push_back(std::exp((logits[v] - mx) / t));
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
    ids->resize(keep);
    probs->resize(keep);
    const double s = std::accumulate(probs->begin(), probs->end(), 0.0);
    for (double& q : *probs) q /= s;
  }
}

}  // namespace

int sample_token(const float* logits, int n, const uint8_t* mask, const SamplingParams& p, std::mt19937_64& rng) {
  if (p.temperature <= 0) {
    int best = -1;
    for (int v = 0; v < n; ++v)
      if ((!mask || mask[v]) && std::isfinite(logits[v]) && (best < 0 || logits[v] > logits[best])) best = v;
    return best;
  }
  std::vector<int> ids;
  std::vector<double> probs;
  candidates(logits, n, mask, p, &ids, &probs);
  // One uniform in [0, 1) from 53 random bits: the same on every platform (std distributions are not).
  const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
  if (ids.empty()) return -1;
  double cum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    cum += probs[i];
    if (u < cum) return ids[i];
  }
  return ids.back();
}

std::vector<double> sampling_distribution(const float* logits, int n, const uint8_t* mask, const SamplingParams& p) {
  std::vector<double> out(n, 0.0);
  if (p.temperature <= 0) {
    std::mt19937_64 unused;
    const int v = sample_token(logits, n, mask, p, unused);
    if (v >= 0) out[v] = 1.0;
    return out;
  }
  std::vector<int> ids;
  std::vector<double> probs;
  candidates(logits, n, mask, p, &ids, &probs);
  for (size_t i = 0; i < ids.size(); ++i) out[ids[i]] = probs[i];
  return out;
}

}  // namespace cg
