// AdamW over named fp32 parameters (torch.optim.AdamW math, multi-tensor kernels) with its state exposed as named
// tensors for checkpoints. Gradient reduction, the global norm and clipping live in trainer/train_grads.h.
//
// Per parameter p with gradient g, at its own step t (1-based; params without a grad are skipped, as in torch):
//   p  *= 1 - lr * weight_decay                      (decoupled decay; only params with decay = true)
//   m   = beta1 * m + (1 - beta1) * g                 exp_avg
//   v   = beta2 * v + (1 - beta2) * g * g             exp_avg_sq
//   p  -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cg {

struct NamedParam {
  std::string name;   // checkpoint key, e.g. the module path "layers.0.self_attn.q_proj.lora_A"
  at::Tensor param;   // fp32 leaf tensor (requires_grad); updated in place
  bool decay = true;  // apply weight decay
};

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<NamedParam> params, AdamWOptions opt);

  // One update at learning rate lr (the schedule's value for this step).
  void step(double lr);
  // Clears gradients (sets them undefined, as torch's zero_grad(set_to_none=true)).
  void zero_grad();

  const std::vector<NamedParam>& params() const { return params_; }
  const AdamWOptions& options() const { return opt_; }

  // State as named tensors: "<name>.exp_avg", "<name>.exp_avg_sq" (param's shape, fp32) and "<name>.step"
  // (0-dim int64). Params that never stepped have zero moments and step 0. Tensors are views of the live state.
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  // Copies state back from tensors named as above; every expected name must be present with the param's shape.
  void load_state(const std::vector<std::pair<std::string, at::Tensor>>& named);

 private:
  struct Slot {
    at::Tensor exp_avg, exp_avg_sq;  // same shape/device as the param, fp32
    int64_t step = 0;
  };
  std::vector<NamedParam> params_;
  std::vector<Slot> slots_;
  AdamWOptions opt_;
};

}  // namespace cg
