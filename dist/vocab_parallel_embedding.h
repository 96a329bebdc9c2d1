// Embedding lookup on a vocabulary-sharded table: each tp rank looks up the ids it holds, zeroes the rest, and the
// partial embeddings are summed over tp (Megatron's VocabParallelEmbedding).
#pragma once
#include <ATen/core/Tensor.h>

#include "dist/comm.h"

namespace cg::dist {

// ids (B, T) int64 global ids; weight_local (V_local, d) = rows [vocab_start, vocab_start + V_local) of the table.
// Returns (B, T, d), the full embeddings on every tp rank. Ids outside this rank's rows contribute zero here and no
// gradient to this rank's rows. forward: masked lookup + all-reduce(sum); backward: identity into the local rows.
at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight_local, int64_t vocab_start,
                                    const CommPtr& tp);

}  // namespace cg::dist
