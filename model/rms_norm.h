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

  // The same normalisation in fewer kernels (inference: a decode step is mostly kernel launches), 4 instead of 6
  // (fp32) or 8 (bf16): a layer norm of [x, -x] (2 dim features) has mean 0 and variance mean(x^2), so its first half
  // is x * rsqrt(mean(x^2) + eps), one fused kernel accumulating in fp32 and rounding once to x's dtype, as forward
  // does before its weight. With `residual`: normalises x + residual, and *sum receives that sum (one add instead of
  // a separate residual add before the norm).
  at::Tensor forward_fused(const at::Tensor& x, const at::Tensor& residual = {}, at::Tensor* sum = nullptr);

  at::Tensor weight;  // (dim)
  const double eps;
};
TORCH_MODULE(RMSNorm);

}  // namespace cg::model
