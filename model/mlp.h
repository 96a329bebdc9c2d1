// SwiGLU MLP: down(silu(gate(x)) * up(x)); gate/up column-parallel, down row-parallel.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "model/linear.h"
#include "model/llama_config.h"

namespace cg::model {

class MlpImpl : public torch::nn::Module {
 public:
  // prefix: "model.layers.{i}.mlp"
  MlpImpl(const std::string& prefix, const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);  // (B, T, d) -> (B, T, d)

  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace cg::model
