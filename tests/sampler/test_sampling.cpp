// Token sampling: the distribution after mask / temperature / top-k / top-p against hand-computed values, and
// determinism for a seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <random>
#include <vector>

#include "sampler/sampling.h"

namespace cg {
namespace {

TEST(Sampling, GreedyRespectsMask) {
  const std::vector<float> l = {1, 5, 3, 5};
  const std::vector<uint8_t> m = {1, 0, 1, 1};
  std::mt19937_64 rng(0);
  SamplingParams g;
  g.temperature = 0;
  EXPECT_EQ(sample_token(l.data(), 4, nullptr, g, rng), 1);  // first of the tied maxima
  EXPECT_EQ(sample_token(l.data(), 4, m.data(), g, rng), 3);
  const std::vector<uint8_t> none = {0, 0, 0, 0};
  EXPECT_EQ(sample_token(l.data(), 4, none.data(), g, rng), -1);
}

TEST(Sampling, TemperatureTopKTopP) {
  const float ln2 = std::log(2.0f);
  // logits log(4), log(2), log(1), log(1): softmax at T = 1 is 0.5, 0.25, 0.125, 0.125.
  const std::vector<float> l = {2 * ln2, ln2, 0, 0};
  SamplingParams p;
  p.temperature = 1;
  p.top_p = 1;
  auto d = sampling_distribution(l.data(), 4, nullptr, p);
  EXPECT_NEAR(d[0], 0.5, 1e-6);
  EXPECT_NEAR(d[3], 0.125, 1e-6);
  p.top_k = 2;  // keep 0.5, 0.25 -> 2/3, 1/3
  d = sampling_distribution(l.data(), 4, nullptr, p);
  EXPECT_NEAR(d[0], 2.0 / 3, 1e-6);
  EXPECT_NEAR(d[1], 1.0 / 3, 1e-6);
  EXPECT_EQ(d[2], 0.0);
  p.top_k = 0;
  p.top_p = 0.7;  // 0.5 < 0.7 <= 0.75: keep two
  d = sampling_distribution(l.data(), 4, nullptr, p);
  EXPECT_NEAR(d[0], 2.0 / 3, 1e-6);
  EXPECT_EQ(d[2], 0.0);
  p.top_p = 1;
  p.temperature = 0.5;  // squares the ratios: 16, 4, 1, 1 over 22
  d = sampling_distribution(l.data(), 4, nullptr, p);
  EXPECT_NEAR(d[0], 16.0 / 22, 1e-6);
  EXPECT_NEAR(d[2], 1.0 / 22, 1e-6);
}

TEST(Sampling, TopPKeepsTheTokenWhoseSumReachesItExactly) {
  // Four equal logits: 0.25 each, exactly. top_p 0.5 is reached, not passed, by the second: the nucleus is the
  // smallest set with total >= top_p, so it holds two (ids 0 and 1, ties by id), 0.5 each; 0.5 + 1e-9 needs a third.
  // The same from the row's largest logits (sample_token_from_top, all four given).
  const std::vector<float> l = {0, 0, 0, 0};
  SamplingParams p;
  p.temperature = 1;
  p.top_p = 0.5;
  EXPECT_EQ(sampling_distribution(l.data(), 4, nullptr, p), (std::vector<double>{0.5, 0.5, 0, 0}));
  p.top_p = 0.5 + 1e-9;
  EXPECT_EQ(sampling_distribution(l.data(), 4, nullptr, p), (std::vector<double>{1.0 / 3, 1.0 / 3, 1.0 / 3, 0}));
  p.top_p = 0.5;
  const std::vector<int64_t> ids = {3, 2, 1, 0};
  std::vector<int> seen(4, 0);
  std::mt19937_64 rng(5);
  for (int d = 0; d < 400; ++d) ++seen[sample_token_from_top(l.data(), ids.data(), 4, 4, 4.0, p, rng)];
  EXPECT_GT(seen[0], 150);
  EXPECT_GT(seen[1], 150);
  EXPECT_EQ(seen[2] + seen[3], 0);
}

TEST(Sampling, TheWholeRowGivenAsItsLargestLogitsIsAlwaysDecided) {
  // Every entry given (m = n): nothing outside can take part, so top-k of exactly m decides the draw; a row of -inf
  // only draws nothing, taking one uniform as sample_token does, so the streams stay in step.
  const std::vector<float> l = {1, 0, 2};
  const std::vector<int64_t> ids = {0, 1, 2};
  SamplingParams p;
  p.temperature = 1;
  p.top_p = 1;
  p.top_k = 3;
  const double z = std::exp(-1.0) + std::exp(-2.0) + 1;
  std::mt19937_64 a(9), b(9);
  for (int d = 0; d < 20; ++d)
    EXPECT_EQ(sample_token_from_top(l.data(), ids.data(), 3, 3, z, p, a), sample_token(l.data(), 3, nullptr, p, b));
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> none = {-inf, -inf, -inf};
  EXPECT_EQ(sample_token_from_top(none.data(), ids.data(), 3, 3, 0.0, p, a), -1);
  EXPECT_EQ(sample_token(none.data(), 3, nullptr, p, b), -1);
  EXPECT_EQ(a(), b());
}

TEST(Sampling, SameSeedSameDrawsAndFrequencies) {
  const std::vector<float> l = {0, 0, std::log(2.0f)};  // 0.25, 0.25, 0.5
  SamplingParams p;
  p.temperature = 1;
  p.top_p = 1;
  std::mt19937_64 a(42), b(42);
  std::vector<int> count(3, 0);
  for (int i = 0; i < 20000; ++i) {
    const int x = sample_token(l.data(), 3, nullptr, p, a);
    EXPECT_EQ(x, sample_token(l.data(), 3, nullptr, p, b));
    ++count[x];
  }
  EXPECT_NEAR(count[2] / 20000.0, 0.5, 0.02);
  EXPECT_NEAR(count[0] / 20000.0, 0.25, 0.02);
}

TEST(Sampling, DrawingAmongAllowedIdsEqualsTheMaskedFullRow) {
  // What the generator does when only the allowed columns come to the host: the same token and the same RNG use as
  // the masked full row, for greedy, temperature, top-k and top-p, with ties, -inf logits and empty sets.
  std::mt19937 gen(12);
  for (int trial = 0; trial < 400; ++trial) {
    const int n = 1 + gen() % 40;
    std::vector<float> logits(n);
    std::vector<uint8_t> mask(n);
    std::vector<int32_t> ids;
    for (int v = 0; v < n; ++v) {
      logits[v] = gen() % 5 == 0 ? -std::numeric_limits<float>::infinity() : static_cast<float>(gen() % 7) * 0.5f;
      mask[v] = gen() % 3 != 0;
      if (mask[v]) ids.push_back(v);
    }
    std::vector<float> compact;
    for (int32_t v : ids) compact.push_back(logits[v]);
    SamplingParams p;
    p.temperature = std::vector<double>{0, 0.7, 1.3}[gen() % 3];
    p.top_k = gen() % 2 ? 0 : 1 + gen() % 5;
    p.top_p = gen() % 2 ? 1.0 : 0.6;
    std::mt19937_64 a(trial), b(trial);
    for (int draw = 0; draw < 5; ++draw) {
      const int full = sample_token(logits.data(), n, mask.data(), p, a);
      EXPECT_EQ(sample_token_among(compact.data(), ids.data(), static_cast<int>(ids.size()), p, b), full)
          << "trial " << trial;
    }
    EXPECT_EQ(a(), b()) << "the same number of uniforms drawn, trial " << trial;
  }
}

// The distribution written the plain way: every allowed finite entry sorted by logit (ties by id), top-k, softmax at
// the temperature, then the smallest prefix reaching top_p, renormalised.
std::vector<double> plain_distribution(const std::vector<float>& logits, const std::vector<uint8_t>& mask,
                                       const SamplingParams& p) {
  const int n = static_cast<int>(logits.size());
  std::vector<int> idx;
  for (int i = 0; i < n; ++i)
    if (mask[i] && std::isfinite(logits[i])) idx.push_back(i);
  std::vector<double> out(n, 0.0);
  if (idx.empty()) return out;
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  if (p.top_k > 0 && static_cast<int64_t>(idx.size()) > p.top_k) idx.resize(p.top_k);
  std::vector<double> w;
  for (int i : idx) w.push_back(std::exp((static_cast<double>(logits[i]) - logits[idx[0]]) / p.temperature));
  const double z = std::accumulate(w.begin(), w.end(), 0.0);
  size_t keep = idx.size();
  double cum = 0;
  for (size_t k = 0; k < idx.size() && p.top_p < 1; ++k)
    if ((cum += w[k] / z) >= p.top_p) {
      keep = k + 1;
      break;
    }
  const double kept = std::accumulate(w.begin(), w.begin() + keep, 0.0);
  for (size_t k = 0; k < keep; ++k) out[idx[k]] = w[k] / kept;
  return out;
}

// A row of n logits on a grid (ties), one in 11 -inf, and its mask (all allowed on even trials, else 3 in 4): flat
// rows (logits within 0.02) need hundreds of entries for top-p.
void grid_row(std::mt19937& gen, int n, bool flat, bool all_allowed, std::vector<float>* logits,
              std::vector<uint8_t>* mask) {
  logits->resize(n);
  mask->resize(n);
  for (int v = 0; v < n; ++v) {
    (*logits)[v] = gen() % 11 == 0 ? -std::numeric_limits<float>::infinity()
                                   : static_cast<float>(gen() % (flat ? 3 : 400)) * (flat ? 0.01f : 0.05f);
    (*mask)[v] = all_allowed || gen() % 4 != 0;
  }
}

TEST(Sampling, LargeRowsDrawFromThePlainDistribution) {
  // Rows up to LLaMA's vocabulary, where only the nucleus is put in order: the same distribution as sorting every
  // entry, with ties (logits on a grid), -inf entries, masks, top-k and top-p reaching past the first sorted blocks.
  std::mt19937 gen(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int n = std::vector<int>{1, 50, 700, 5000, 32000}[trial % 5];
    const bool flat = trial % 3 == 0;  // many near-equal logits: top-p needs hundreds of entries
    std::vector<float> logits;
    std::vector<uint8_t> mask;
    grid_row(gen, n, flat, trial % 2 == 0, &logits, &mask);
    SamplingParams p;
    p.temperature = std::vector<double>{0.7, 1.0, 2.5}[gen() % 3];
    p.top_k = gen() % 3 == 0 ? 1 + gen() % 300 : 0;
    p.top_p = std::vector<double>{1.0, 0.9, 0.5, 0.0, 0.999}[gen() % 5];
    SCOPED_TRACE(testing::Message() << "trial " << trial << " n " << n << " T " << p.temperature << " top_k "
                                    << p.top_k << " top_p " << p.top_p);
    const auto want = plain_distribution(logits, mask, p);
    const auto got = sampling_distribution(logits.data(), n, mask.data(), p);
    int support = 0;
    for (int v = 0; v < n; ++v) {
      ASSERT_NEAR(got[v], want[v], 1e-12) << v;
      ASSERT_EQ(got[v] > 0, want[v] > 0) << v;
      support += want[v] > 0;
    }
    // A draw lands where the plain distribution puts its mass (u in the cumulative order of the kept entries).
    std::mt19937_64 rng(trial);
    for (int d = 0; d < 20; ++d) {
      const int x = sample_token(logits.data(), n, mask.data(), p, rng);
      if (support == 0)
        ASSERT_EQ(x, -1);  // nothing allowed and finite
      else
        ASSERT_TRUE(x >= 0 && want[x] > 0) << x << " of support " << support;
    }
  }
}

TEST(Sampling, TopP1DrawsTheTokenOfTheFullOrder) {
  // With top_p 1 a draw stops ordering the row where its uniform falls. It must give the token of the whole order
  // (every usable entry by logit descending, ties by id, probabilities added in that order until they pass u) and
  // take one uniform, as before: the reference orders everything with sampling_distribution's probabilities, which
  // are the draw's own terms, bit for bit.
  std::mt19937 gen(11);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = std::vector<int>{1, 50, 512, 5000, 32000}[trial % 5];
    const bool flat = trial % 3 == 0;
    std::vector<float> logits;
    std::vector<uint8_t> mask;
    grid_row(gen, n, flat, trial % 2 == 0, &logits, &mask);
    SamplingParams p;
    p.temperature = std::vector<double>{0.7, 1.0, 2.5}[gen() % 3];
    p.top_k = gen() % 3 == 0 ? 1 + gen() % 300 : 0;
    p.top_p = 1.0;
    SCOPED_TRACE(testing::Message() << "trial " << trial << " n " << n << " T " << p.temperature << " top_k "
                                    << p.top_k);
    const auto probs = sampling_distribution(logits.data(), n, mask.data(), p);
    std::vector<int> order;
    for (int v = 0; v < n; ++v)
      if (mask[v] && std::isfinite(logits[v])) order.push_back(v);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    if (p.top_k > 0 && static_cast<int64_t>(order.size()) > p.top_k) order.resize(p.top_k);  // ties: lower ids
    std::mt19937_64 rng(trial), ref(trial);
    for (int d = 0; d < 50; ++d) {
      const double u = static_cast<double>(ref() >> 11) * (1.0 / 9007199254740992.0);
      int want = order.empty() ? -1 : order.back();
      double cum = 0;
      for (int v : order)
        if (u < (cum += probs[v])) {
          want = v;
          break;
        }
      ASSERT_EQ(sample_token(logits.data(), n, mask.data(), p, rng), want) << "draw " << d << " u " << u;
    }
    EXPECT_EQ(rng(), ref());  // one uniform a draw
  }
}

TEST(Sampling, TheLargestLogitsDecideTheDrawOrSayTheyCannot) {
  // sample_token_from_top on a row's m largest logits (ties at the cut broken at random and the given order
  // shuffled, as a GPU's topk may) with the row's softmax sum: either the token sample_token draws from the whole row
  // with the same RNG (and the same uniform consumed), or kNeedWholeRow with no uniform consumed. Peaked rows with
  // top-p 0.9 (a trained model's) are decided from 64 of 32,000.
  std::mt19937 gen(3);
  int decided = 0, peaked_decided = 0, peaked = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const int n = std::vector<int>{3, 40, 300, 32000}[trial % 4];
    const bool is_peaked = n == 32000 && trial % 8 == 3;
    std::vector<float> logits(n);
    std::normal_distribution<float> normal(0.f, is_peaked ? 5.f : 1.f);
    for (int v = 0; v < n; ++v)
      logits[v] = gen() % 13 == 0 ? -std::numeric_limits<float>::infinity()
                  : is_peaked     ? normal(gen)
                                  : static_cast<float>(gen() % 9) * 0.5f;  // many ties
    SamplingParams p;
    p.temperature = std::vector<double>{0, 0.7, 1.0}[gen() % 3];
    p.top_k = gen() % 3 == 0 ? 1 + gen() % 8 : 0;
    p.top_p = std::vector<double>{0.9, 0.5, 0.0, 1.0}[gen() % 4];
    if (is_peaked) p.temperature = 0.7, p.top_k = 0, p.top_p = 0.9;
    const int m = is_peaked ? 64  // as the generator
                            : std::min(n, std::vector<int>{1, 4, 64}[gen() % 3] + static_cast<int>(p.top_k));
    // The m largest, ties at the cut taken in a random order, then shuffled.
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), gen);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
    order.resize(m);
    std::shuffle(order.begin(), order.end(), gen);
    std::vector<float> vals;
    std::vector<int64_t> ids;
    for (int i : order) vals.push_back(logits[i]), ids.push_back(i);
    const float mx = *std::max_element(logits.begin(), logits.end());
    double z = 0;
    for (int v = 0; v < n; ++v)
      if (std::isfinite(logits[v]) && (logits[v] - mx) / p.temperature > -40)
        z += std::exp((logits[v] - mx) / p.temperature);
    SCOPED_TRACE(testing::Message() << "trial " << trial << " n " << n << " m " << m << " T " << p.temperature
                                    << " top_k " << p.top_k << " top_p " << p.top_p);
    std::mt19937_64 a(trial), b(trial);
    const int got = sample_token_from_top(vals.data(), ids.data(), m, n, z, p, a);
    if (got == kNeedWholeRow) {
      EXPECT_EQ(a(), b()) << "no uniform consumed";
      EXPECT_FALSE(is_peaked);
      continue;
    }
    ++decided;
    peaked_decided += is_peaked;
    EXPECT_EQ(got, sample_token(logits.data(), n, nullptr, p, b));
    EXPECT_EQ(a(), b()) << "the same uniforms consumed";
  }
  for (int trial = 3; trial < 600; trial += 8) ++peaked;
  EXPECT_EQ(peaked_decided, peaked);
  EXPECT_GT(decided, 200);  // and the other answer came too (ties at the cut, a nucleus past m)
  EXPECT_LT(decided, 590);
}

}  // namespace
}  // namespace cg
