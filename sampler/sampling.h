// Drawing one token from full-vocabulary logits on the CPU: grammar mask, temperature, top-k, top-p (nucleus).
// Deterministic given the logits and the RNG state, so tp ranks holding the same gathered logits and the same seed
// draw the same tokens. No torch.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace cg {

struct SamplingParams {
  double temperature = 0.7;  // <= 0: greedy (argmax)
  double top_p = 0.9;        // keep the smallest set of most likely tokens with total probability >= top_p; 1: off
  int64_t top_k = 0;         // keep the k most likely; 0: off
};

// logits[0..n): one row; mask (nullable): 1 where allowed. Returns the drawn token id, or -1 when nothing is allowed.
// Ties in greedy mode go to the lowest id. Consumes exactly one uniform from rng when not greedy.
int sample_token(const float* logits, int n, const uint8_t* mask, const SamplingParams& p, std::mt19937_64& rng);

// The same draw over a row restricted to `ids` (ascending token ids, e.g. TokenGrammar::allowed_ids): logits[i] is
// token ids[i]'s logit. Returns what sample_token returns for the full row masked to those ids (same token, same
// uniform consumed), so a sampler can bring only the allowed columns of its logits to the host.
int sample_token_among(const float* logits, const int32_t* ids, int n, const SamplingParams& p,
                       std::mt19937_64& rng);

// The same draw as sample_token on a whole unmasked row of n logits of which only the m largest are given (vals,
// ids: in any order, e.g. a GPU's topk), with the row's softmax sum z = the sum over its finite entries of
// exp((l - max) / temperature), terms below e^-40 left out (used when top_k does not apply). Returns the token
// sample_token returns (the same uniform consumed; z's rounding aside), or kNeedWholeRow (no uniform consumed) where
// entries outside the m could take part: the nucleus or top-k reaching the smallest given logit or tying with it, or
// top_p 1 without top_k. The generator brings 64 logits of each row to the host this way instead of 32k.
constexpr int kNeedWholeRow = -2;
int sample_token_from_top(const float* vals, const int64_t* ids, int m, int n, double z, const SamplingParams& p,
                          std::mt19937_64& rng);

// The probabilities sample_token draws from (0 for excluded tokens), for tests and diagnostics.
std::vector<double> sampling_distribution(const float* logits, int n, const uint8_t* mask, const SamplingParams& p);

}  // namespace cg
