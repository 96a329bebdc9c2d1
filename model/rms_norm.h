// RMSNorm as in HF LLaMA: normalise in fp32, cast back, scale by a learned weight (replicated over tp).
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace cg::model {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const at::TensorOptions& options);
  // x (..., dim) -> weight * (x / sqrt(mean(x^2) + eps)), computed in fp32, returned in x's dtype.
  at::Tensor forward(const at::Tensor& x);

  at::Tensor weight;  // (dim)
  const double eps;
};
TORCH_MODULE(RMSNorm);

}  // namespace cg::model
