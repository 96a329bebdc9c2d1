// bench_sampling [VOCAB] [ROWS]: the host's cost of drawing one token per row (sampler/sampling.h), as cgsample pays
// it every decode step, on one core:
//   - unconstrained (sample.constrained=false, the paper's protocol): a full row of LLaMA's 32k logits, temperature
//     0.7, top-p 0.9; logits peaked as a trained model's (a nucleus of a few tokens) and flat as random weights'
//     (the nucleus most of the vocabulary: the worst case); each against sorting every entry first (the plain way,
//     what sample_token did before 2026-12-04);
//     and, as on a GPU (GenerationParams::top_logits), from the row's 64 largest logits (sample_token_from_top);
//   - with the grammar: the ~40 allowed columns (sample_token_among).
// Prints microseconds per row. docs/performance.md "Sampling" has the numbers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include "sampler/sampling.h"

namespace {

// The plain way: sort every allowed entry, then temperature, top-p (what sampler/sampling.cpp did before).
int draw_sorting_all(const float* logits, int n, double t, double top_p, std::mt19937_64& rng) {
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<double> probs;
  double z = 0;
  for (int i : idx) z += probs.emplace_back(std::exp((logits[i] - logits[idx[0]]) / t));
  double cum = 0, kept = 0;
  size_t keep = 0;
  while (keep < probs.size()) {
    kept += probs[keep];
    if ((cum += probs[keep++] / z) >= top_p) break;
  }
  const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0) * kept;
  cum = 0;
  for (size_t i = 0; i < keep; ++i)
    if (u < (cum += probs[i])) return idx[i];
  return idx[keep - 1];
}

template <typename F>
double micros_per_row(int rows, F draw) {
  const auto t0 = std::chrono::steady_clock::now();
  int sink = 0;
  for (int r = 0; r < rows; ++r) sink += draw(r);
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  if (sink == -12345) std::puts("");
  return us / rows;
}

}  // namespace

int main(int argc, char** argv) {
  const int vocab = argc > 1 ? std::atoi(argv[1]) : 32000;
  const int rows = argc > 2 ? std::atoi(argv[2]) : 64;
  cg::SamplingParams p;
  p.temperature = 0.7;
  p.top_p = 0.9;
  std::mt19937 gen(1);
  std::printf("host cost of one draw, microseconds per row (vocabulary %d, %d rows, T %.1f, top-p %.1f, one core)\n",
              vocab, rows, p.temperature, p.top_p);
  for (const double scale : {4.0, 0.3}) {  // peaked (trained-like) and flat (random weights)
    std::normal_distribution<float> normal(0.f, static_cast<float>(scale));
    std::vector<std::vector<float>> logits(rows, std::vector<float>(vocab));
    for (auto& row : logits)
      for (auto& x : row) x = normal(gen);
    std::mt19937_64 a(0), b(0);
    const auto kept = cg::sampling_distribution(logits[0].data(), vocab, nullptr, p);
    const long nucleus = std::count_if(kept.begin(), kept.end(), [](double q) { return q > 0; });
    const double now = micros_per_row(rows, [&](int r) { return cg::sample_token(logits[r].data(), vocab, nullptr, p, a); });
    const double plain = micros_per_row(rows, [&](int r) {
      return draw_sorting_all(logits[r].data(), vocab, p.temperature, p.top_p, b);
    });
    std::printf("  unconstrained, logits N(0, %.1f^2), nucleus %ld tokens: sample_token %.0f us, sorting every entry "
                "%.0f us (%.1fx)\n", scale, nucleus, now, plain, plain / now);
    // What a GPU run's host does instead (GenerationParams::top_logits): the row's 64 largest and its softmax sum
    // (computed on the device; here on the host, outside the timing).
    std::vector<std::vector<float>> vals(rows);
    std::vector<std::vector<int64_t>> ids(rows);
    std::vector<double> z(rows, 0.0);
    for (int r = 0; r < rows; ++r) {
      std::vector<int> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 64, order.end(),
                        [&](int x, int y) { return logits[r][x] > logits[r][y]; });
      const float mx = logits[r][order[0]];
      for (int i = 0; i < 64; ++i) vals[r].push_back(logits[r][order[i]]), ids[r].push_back(order[i]);
      for (const float x : logits[r]) z[r] += std::exp((x - mx) / p.temperature);
    }
    std::mt19937_64 c(0);
    int whole = 0;
    const double from_top = micros_per_row(rows, [&](int r) {
      const int t = cg::sample_token_from_top(vals[r].data(), ids[r].data(), 64, vocab, z[r], p, c);
      whole += t == cg::kNeedWholeRow;
      return t;
    });
    std::printf("    from the 64 largest logits: %.1f us a row, %d of %d rows needing the whole row\n", from_top, whole,
                rows);
  }
  std::vector<int32_t> ids(40);
  for (int i = 0; i < 40; ++i) ids[i] = i * 97;
  std::vector<std::vector<float>> compact(rows, std::vector<float>(40));
  std::normal_distribution<float> normal(0.f, 4.f);
  for (auto& row : compact)
    for (auto& x : row) x = normal(gen);
  std::mt19937_64 c(0);
  std::printf("  with the grammar, 40 allowed columns: sample_token_among %.2f us\n", micros_per_row(rows, [&](int r) {
                return cg::sample_token_among(compact[r].data(), ids.data(), 40, p, c);
              }));
  return 0;
}
