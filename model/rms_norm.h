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
  // Inference only: forward_fused applies the weight inside the layer norm (its 2 dim scale: the weight, then ones
  // for the discarded half; the weight parameter becomes a view of it), one kernel fewer. The normalised value is
  // then multiplied by the weight in fp32 and rounded once (forward rounds before the weight: bf16 results may differ
  // in the last bit).
  void fuse_for_inference();

  at::Tensor weight;  // (dim)
  const double eps;

 private:
  at::Tensor scale2_;  // (2 dim) after fuse_for_inference: [weight, ones]
};
TORCH_MODULE(RMSNorm);

}  // namespace cg::model
