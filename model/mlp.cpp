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
  return down_proj(at::silu(gate_proj(x)) * up_proj(x));  // inner (B, T, intermediate_local)
}

}  // namespace cg::model
