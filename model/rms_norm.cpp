#include "model/rms_norm.h"

namespace cg::model {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, const at::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", at::ones({dim}, options), /*requires_grad=*/true);
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  const auto xf = x.to(at::kFloat);
  const auto var = xf.pow(2).mean(-1, /*keepdim=*/true);  // (..., 1)
  return weight * (xf * at::rsqrt(var + eps)).to(x.scalar_type());
}

}  // namespace cg::model
