// SwiGLU MLP: down(silu(gate(x)) * up(x)); gate/up column-parallel, down row-parallel.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "model/decode_kernels.h"
#include "model/linear.h"
#include "model/llama_config.h"

namespace cg::model {

class MlpImpl : public torch::nn::Module {
 public:
  // prefix: "model.layers.{i}.mlp"
  MlpImpl(const std::string& prefix, const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);  // (B, T, d) -> (B, T, d)

  // Inference only: gate and up become one (2 intermediate_local, d) weight (views into it stay the parameters), one
  // matmul instead of two. Fails if either has a LoRA delta hook.
  void fuse_projections();
  bool fused() const { return gate_up_weight.defined(); }
  DecodeKernels kernels = DecodeKernels::Auto;  // a fused forward's SwiGLU through silu_mul? (set_decode_kernels)

  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  at::Tensor gate_up_weight;
};
TORCH_MODULE(Mlp);

}  // namespace cg::model
