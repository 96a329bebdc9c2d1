// model::Embedding: the token embedding table, built at its local (vocab-sharded) size; dist/ installs the
// vocab-parallel lookup hook at tp > 1.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>

#include "model/tp_shape.h"

namespace cg::model {

// lookup(ids (B, T) int64 global ids, weight (V_local, d)) -> (B, T, d) full embeddings.
using EmbeddingLookup = std::function<at::Tensor(const at::Tensor& ids, const at::Tensor& weight)>;

class EmbeddingImpl : public torch::nn::Module {
 public:
  // The table holds rows [vocab_start, vocab_start + vocab_local) of the vocabulary padded to a multiple of tp.
  EmbeddingImpl(std::string hf_name, int64_t vocab_size, int64_t dim, TpShape tp, const at::TensorOptions& options);

  at::Tensor forward(const at::Tensor& ids);  // (B, T) int64 -> (B, T, dim)

  at::Tensor weight;               // (vocab_local, dim)
  const std::string hf_name;       // "model.embed_tokens"
  const int64_t vocab_size;        // real vocabulary (config)
  const int64_t vocab_padded;      // multiple of tp
  const int64_t vocab_local;       // vocab_padded / tp
  const int64_t vocab_start;       // tp.rank * vocab_local
  const int64_t dim;
  const TpShape tp;
  EmbeddingLookup lookup;          // set by dist::apply_tensor_parallel at tp > 1
};
TORCH_MODULE(Embedding);

}  // namespace cg::model
