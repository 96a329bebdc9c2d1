// model::Linear: a bias-free linear layer with hooks, so tensor parallelism (dist/) and LoRA (lora/) attach to it
// without touching the model code:  forward(x) = delta(x, post(pre(x) @ weight^T)), delta adding the LoRA term.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>
#include <vector>

#include "model/tp_shape.h"

namespace cg::model {

using TensorHook = std::function<at::Tensor(const at::Tensor&)>;
// (x, y) -> y + the layer's delta for input x: the hook adds it itself, so LoRA can fold the sum into its last matmul.
using DeltaHook = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& y)>;

class LinearImpl : public torch::nn::Module {
 public:
  // Built at its local size: Column splits out_features over tp, Row splits in_features (errors name both numbers).
  LinearImpl(std::string hf_name, int64_t in_features, int64_t out_features, ParallelStyle style, TpShape tp,
             const at::TensorOptions& options);

  // x (..., in_features_local) -> (..., out_features_local)
  at::Tensor forward(const at::Tensor& x);

  at::Tensor weight;            // (out_features_local, in_features_local), HF layout
  const std::string hf_name;    // "model.layers.3.self_attn.q_proj" (the checkpoint key without ".weight")
  const int64_t in_features;    // full sizes
  const int64_t out_features;
  const int64_t in_features_local;
  const int64_t out_features_local;
  const ParallelStyle style;    // None, Column or Row
  const TpShape tp;

  // Installed by dist::apply_tensor_parallel: Column sets pre = copy_to_tp, Row sets post = reduce_from_tp.
  TensorHook pre, post;
  // Installed by LoRA: returns the output plus its term; it sees the layer input x (local features) and the output y
  // (local), and does its own collectives.
  DeltaHook delta;
};
TORCH_MODULE(Linear);

// Inference-time fusion of linears that read the same input (q/k/v, gate/up): their weights concatenated along
// out_features into one tensor, returned; each part's weight becomes a view of its rows (same values, shared
// storage, so parameters and checkpoints see no change). Fails, naming `what`, when a part has a delta (LoRA) hook
// or the parts differ in input size or pre hook presence.
at::Tensor fuse_linears(const std::vector<LinearImpl*>& parts, const std::string& what);
// parts' forward through their fused weight: pre (parts[0]'s, identity in forward) then one matmul ->
// (..., sum of out_features_local). Checks again that no part got a delta hook since.
at::Tensor fused_linear_forward(const std::vector<LinearImpl*>& parts, const at::Tensor& fused, const at::Tensor& x);

}  // namespace cg::model
