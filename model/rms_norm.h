// RMSNorm as in HF LLaMA: normalise with fp32 statistics, scale by a learned weight (replicated over tp).
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "model/decode_kernels.h"

namespace cg::model {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const at::TensorOptions& options);
  // x (..., dim) -> weight * x / sqrt(mean(x^2) + eps), statistics in fp32, returned in x's dtype: forward_hf for
  // fp32/fp64 inputs, forward_layer_norm for bf16/fp16 (GPU training, where it moves about half the bytes), and
  // forward_native for bf16/fp16 on CUDA with libtorch >= 2.9.
  at::Tensor forward(const at::Tensor& x);
  // HF's formula: weight * (x_fp32 * rsqrt(mean(x_fp32^2) + eps)).to(dtype). In bf16: an fp32 copy of x, pow,
  // mean, rsqrt, two casts, 8 kernels forward (~0.6 GB at 4,096 x 4,096) and ~1.3 GB of traffic backward.
  at::Tensor forward_hf(const at::Tensor& x);
  // The same as a layer norm of [x, -x] (2 dim features): its mean is 0 and its variance mean(x^2), so its first
  // half is x * rsqrt(mean(x^2) + eps) (the gradient too: the mean's term cancels between the halves), the weight
  // the first half of its scale. One fused kernel with fp32 statistics; ~0.3 GB forward and ~0.6 GB backward at
  // 4,096 x 4,096 bf16. bf16 results may differ from forward_hf in the last bit (the weight is applied before the
  // rounding); in fp32 it moves more bytes than forward_hf (no casts to save), hence the choice in forward.
  at::Tensor forward_layer_norm(const at::Tensor& x);
  // torch's own rms_norm (libtorch >= 2.4; on CUDA since ~2.8 one fused kernel forward and one backward, about half
  // the bytes of the layer norm of [x, -x]): what forward uses for bf16/fp16 CUDA inputs on libtorch >= 2.9.
  // has_native(): whether this build has it (forward_native throws otherwise).
  static bool has_native();
  at::Tensor forward_native(const at::Tensor& x);

  // Inference (no autograd: writes into one buffer), 3 kernels: with `residual` it normalises x + residual, and *sum
  // receives that sum (one add instead of a separate residual add before the norm).
  // With `kernels` and a GPU input (inference_kernels_fit): one kernel of cgtrain's (model/decode_kernels.h).
  at::Tensor forward_fused(const at::Tensor& x, const at::Tensor& residual = {}, at::Tensor* sum = nullptr);
  // Inference only: the scale [weight, ones] built once (the weight parameter becomes a view of its first half, so
  // loading into it still counts), not per call.
  void fuse_for_inference();

  at::Tensor weight;  // (dim)
  const double eps;
  DecodeKernels kernels = DecodeKernels::Auto;  // forward_fused through add_rms_norm? (Llama::set_decode_kernels)

 private:
  // both (..., 2 dim) = [y, -y] -> the first half of its layer norm scaled by [weight, ones]: weight * RMSNorm(y).
  at::Tensor first_half_normalised(const at::Tensor& both) const;

  at::Tensor scale2_;  // (2 dim) after fuse_for_inference: [weight, ones]
};
TORCH_MODULE(RMSNorm);

}  // namespace cg::model
