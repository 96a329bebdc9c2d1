// Cross-entropy over a vocabulary split across tp ranks (Megatron's _VocabParallelCrossEntropy): the full (N, V)
// logits are never gathered; three reductions over tp (max, then target logit + sum of exps in one all-reduce) give
// the exact loss, and the backward is local: (softmax_local - onehot_local) * grad.
#pragma once
#include <ATen/core/Tensor.h>

#include "dist/comm.h"

namespace cg::dist {

constexpr int64_t kIgnoreIndex = -100;  // target id that contributes no loss and no gradient

// logits_local: (N, V_local) float/double (bf16/half are computed in float), this rank's columns
//               [vocab_start, vocab_start + V_local) of the full (N, V) logits.
// targets:      (N) int64 global token ids, kIgnoreIndex = ignore; every other id must lie in some rank's columns.
// Returns the per-token loss (N), 0 where ignored, in the compute dtype; differentiable w.r.t. logits_local.
// Collective over `tp` (identity group: plain cross-entropy). Throws if a target id is outside the vocabulary
// (CPU tensors only: on a GPU that check would sync the host every call, so callers validate ids on the host).
at::Tensor vocab_parallel_cross_entropy(const at::Tensor& logits_local, const at::Tensor& targets,
                                        int64_t vocab_start, const CommPtr& tp);

}  // namespace cg::dist
