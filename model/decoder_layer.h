// One LLaMA decoder layer (pre-norm attention + pre-norm SwiGLU MLP, residuals), with optional activation
// checkpointing: forward without saving activations, rerun the layer under grad in backward.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <utility>
#include <vector>

#include "model/attention.h"
#include "model/mlp.h"
#include "model/rms_norm.h"

namespace cg::model {

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(int64_t index, const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options);

  // x (B, T, d) -> (B, T, d); cache tensors and rows as in Attention::forward (nullptr: no cache).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t start_pos = 0,
                     at::Tensor* k_cache = nullptr, at::Tensor* v_cache = nullptr,
                     const RowPositions* rows = nullptr);
  // Same result; keeps only x, cos, sin for backward and recomputes the layer there. The default CPU (and the
  // tensor's device) generator plus `generators` are rewound for the recompute, so dropout inside hooks (LoRA's)
  // draws the same masks; they are restored afterwards. Gradients flow to x and to every trainable parameter.
  at::Tensor forward_checkpointed(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const std::vector<at::Generator>& generators = {});

  // Inference only: fused q/k/v and gate/up projections (Attention/Mlp::fuse_projections) and the norms through
  // RMSNorm::forward_fused (the residual sums done inside them). Same results (bf16: to the last bit).
  void fuse_for_inference();
  // After fuse_for_inference, the residual stream as two tensors whose sum is the layer's input (m undefined: h
  // alone) -> two tensors whose sum is its output (the last sum is left to the next norm). Arguments as forward's.
  std::pair<at::Tensor, at::Tensor> forward_fused(const at::Tensor& h, const at::Tensor& m, const at::Tensor& cos,
                                                  const at::Tensor& sin, int64_t start_pos, at::Tensor* k_cache,
                                                  at::Tensor* v_cache, const RowPositions* rows);
  bool fused() const { return fused_; }

  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};

 private:
  bool fused_ = false;
};
TORCH_MODULE(DecoderLayer);

}  // namespace cg::model
