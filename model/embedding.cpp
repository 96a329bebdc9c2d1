#include "model/embedding.h"

#include "common/error.h"

namespace cg::model {

EmbeddingImpl::EmbeddingImpl(std::string name, int64_t vocab, int64_t dim_, TpShape tp_,
                             const at::TensorOptions& options)
    : hf_name(std::move(name)),
      vocab_size(vocab),
      vocab_padded(padded_vocab(vocab, tp_.size)),
      vocab_local(padded_vocab(vocab, tp_.size) / tp_.size),
      vocab_start(tp_.rank * (padded_vocab(vocab, tp_.size) / tp_.size)),
      dim(dim_),
      tp(tp_) {
  weight = register_parameter("weight", at::empty({vocab_local, dim}, options), /*requires_grad=*/true);
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) {
  if (lookup) return lookup(ids, weight);
  CG_CHECK(tp.size == 1, "{}: vocab-parallel at tp {} without its lookup hook; call dist::apply_tensor_parallel "
           "after building the model", hf_name, tp.size);
  return at::embedding(weight, ids);  // (B, T, dim)
}

}  // namespace cg::model
