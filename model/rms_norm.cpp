#include "model/rms_norm.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include "common/error.h"

// at::rms_norm: libtorch >= 2.4; a fused CUDA kernel (forward and backward) behind it since ~2.8, taken from 2.9 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define CG_HAVE_AT_RMS_NORM 1
#else
#define CG_HAVE_AT_RMS_NORM 0
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
#define CG_FUSED_RMS_NORM_CUDA 1
#else
#define CG_FUSED_RMS_NORM_CUDA 0
#endif

namespace cg::model {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, const at::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", at::ones({dim}, options), /*requires_grad=*/true);
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  if (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) return forward_hf(x);
  if (CG_FUSED_RMS_NORM_CUDA && x.is_cuda()) return forward_native(x);
  return forward_layer_norm(x);
}

bool RMSNormImpl::has_native() { return CG_HAVE_AT_RMS_NORM; }

at::Tensor RMSNormImpl::forward_native(const at::Tensor& x) {
#if CG_HAVE_AT_RMS_NORM
  return at::rms_norm(x, {x.size(-1)}, weight, eps);
#else
  (void)x;
  CG_FAIL("RMSNorm::forward_native needs libtorch >= 2.4 (this build has {})", TORCH_VERSION);
#endif
}

at::Tensor RMSNormImpl::forward_hf(const at::Tensor& x) {
  const auto xf = x.to(at::kFloat);
  const auto var = xf.pow(2).mean(-1, /*keepdim=*/true);  // (..., 1)
  return weight * (xf * at::rsqrt(var + eps)).to(x.scalar_type());
}

at::Tensor RMSNormImpl::forward_layer_norm(const at::Tensor& x) {
  // Differentiable: cat instead of writes into one buffer; the scale [weight, ones] (2 dim elements) built per call
  // so that the weight's gradient flows through it.
  return first_half_normalised(at::cat({x, x.neg()}, -1));  // (..., 2 d)
}

at::Tensor RMSNormImpl::forward_fused(const at::Tensor& x, const at::Tensor& residual, at::Tensor* sum) {
  if (use_decode_kernel(kernels, x)) return add_rms_norm(x, residual, weight, eps, sum);
  const int64_t d = x.size(-1);
  auto shape = x.sizes().vec();
  shape.back() = 2 * d;
  auto both = at::empty(shape, x.options());  // (..., 2 d): [x (+ residual), -x (- residual)]
  auto lo = both.narrow(-1, 0, d);
  if (residual.defined())
    at::add_out(lo, x, residual);
  else
    lo.copy_(x);
  auto hi = both.narrow(-1, d, d);
  at::neg_out(hi, lo);
  if (sum) *sum = lo;
  return first_half_normalised(both);
}

at::Tensor RMSNormImpl::first_half_normalised(const at::Tensor& both) const {
  const int64_t d = both.size(-1) / 2;
  const auto scale = scale2_.defined() ? scale2_ : at::cat({weight, at::ones_like(weight)});
  return at::layer_norm(both, {2 * d}, scale, {}, eps).narrow(-1, 0, d);
}

void RMSNormImpl::fuse_for_inference() {
  if (scale2_.defined()) return;
  at::NoGradGuard no_grad;
  scale2_ = at::cat({weight, at::ones_like(weight)});
  weight.set_data(scale2_.narrow(0, 0, weight.size(0)));  // loading into the parameter updates the scale
}

}  // namespace cg::model
