#include "dist/vocab_parallel_embedding.h"

#include <torch/torch.h>

#include "common/error.h"
#include "dist/tp_ops.h"

namespace cg::dist {

at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight_local, int64_t vocab_start,
                                    const CommPtr& tp) {
  if (tp->size() == 1 && vocab_start == 0) return at::embedding(weight_local, ids);
  const int64_t v_local = weight_local.size(0);
  // An id past the vocabulary would be a zero row here, where tp 1's at::embedding fails: fail alike (on CPU; on a
  // GPU the check would cost a host synchronisation per forward, and the loaders check ids against the vocabulary).
  if (!ids.is_cuda() && ids.numel() > 0) {
    const int64_t padded = v_local * tp->size();
    const bool bad = ids.lt(0).logical_or(ids.ge(padded)).any().item<bool>();  // one read, as in the loss's check
    CG_CHECK(!bad, "a token id is outside the model's (padded) vocabulary [0, {}): the tokens were made with another "
             "tokenizer", padded);
  }
  const auto outside = (ids < vocab_start).logical_or(ids >= vocab_start + v_local);  // (B, T) bool
  const auto local_ids = (ids - vocab_start).masked_fill(outside, 0);                 // (B, T) in [0, V_local)
  const auto part = at::embedding(weight_local, local_ids).masked_fill(outside.unsqueeze(-1), 0.0);  // (B, T, d)
  return reduce_from_tp(part, tp);
}

}  // namespace cg::dist
