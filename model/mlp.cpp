#include "model/mlp.h"

#include <torch/torch.h>

namespace cg::model {

MlpImpl::MlpImpl(const std::string& prefix, const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options) {
  const int64_t d = cfg.hidden_size, f = cfg.intermediate_size;
  gate_proj = register_module("gate_proj", Linear(prefix + ".gate_proj", d, f, ParallelStyle::Column, tp, options));
  up_proj = register_module("up_proj", Linear(prefix + ".up_proj", d, f, ParallelStyle::Column, tp, options));
  down_proj = register_module("down_proj", Linear(prefix + ".down_proj", f, d, ParallelStyle::Row, tp, options));
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  if (!fused()) return down_proj(at::silu(gate_proj(x)) * up_proj(x));  // inner (B, T, intermediate_local)
  const int64_t f = gate_proj->out_features_local;
  const auto gu = fused_linear_forward({gate_proj.get(), up_proj.get()}, gate_up_weight, x);  // (B, T, 2 f)
  if (use_decode_kernel(kernels, gu)) return down_proj(silu_mul(gu));  // one kernel on a GPU
  return down_proj(at::silu(gu.narrow(-1, 0, f)) * gu.narrow(-1, f, f));
}

void MlpImpl::fuse_projections() {
  if (!fused()) gate_up_weight = fuse_linears({gate_proj.get(), up_proj.get()}, "Mlp::fuse_projections");
}

}  // namespace cg::model
