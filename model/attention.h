// Grouped-query self-attention with rotary embeddings, built at its tp-local head counts; fused SDPA, causal.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "model/linear.h"
#include "model/llama_config.h"

namespace cg::model {

class AttentionImpl : public torch::nn::Module {
 public:
  // prefix: "model.layers.{i}.self_attn". Heads and kv heads are divided by tp (errors name both numbers).
  AttentionImpl(const std::string& prefix, const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options);

  // x (B, T, d), cos/sin (T, head_dim) for positions [start_pos, start_pos + T).
  // k_cache/v_cache (B, n_kv_local, max_len, head_dim) or undefined: when given, this step's keys/values are
  // written at [start_pos, start_pos + T) and attention sees positions [0, start_pos + T).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t start_pos,
                     at::Tensor* k_cache, at::Tensor* v_cache);

  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  const int64_t n_heads_local, n_kv_heads_local, head_dim;
};
TORCH_MODULE(Attention);

// Fused scaled-dot-product attention over libtorch 1.13 / 2.x. q (B, H, T, hd), k/v (B, H, S, hd);
// mask: bool (T, S), true = attend, or undefined; is_causal only with S == T and no mask.
at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                bool is_causal);

}  // namespace cg::model
