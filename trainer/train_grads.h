// TrainGrads: what happens to the gradients between backward and the optimizer step.
//   1. one flat fp32 buffer [sharded grads | replicated grads | loss_sum, loss_tokens, real_tokens] is all-reduced over dp
//      (a single call), so the loss statistics travel with the gradients;
//   2. grads are divided by the GLOBAL number of loss tokens: loss = Σ token losses / global loss tokens, whatever
//      the micro-batch, accumulation and dp split;
//   3. the global L2 norm counts a tp-sharded tensor summed over its shards and a replicated one once (tp rank 0
//      contributes the replicated part), one scalar all-reduce over tp; clipping scales by max_norm / norm.
// dp replicas hold identical grads after step 1, so the norm needs no dp reduction and every rank takes the same
// skip/clip decision.
// The fp32 params' .grad() ARE views into the flat buffer (autograd accumulates into them in place, as PyTorch DDP's
// gradient_as_bucket_view), so a step copies no gradient; scaling, clipping and zeroing are one kernel each over the
// buffer, and the loss statistics plus the squared norm come to the host in one transfer (one sync per step).
// A grad that someone replaced (or a non-fp32 param's) is copied in and out instead.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "dist/parallel_dims.h"
#include "model/llama.h"

namespace cg {

struct GradStats {
  double loss = 0;         // global mean token loss of this step (Σ losses / loss_tokens)
  double loss_tokens = 0;  // global loss tokens of this step (all micro-steps, all dp ranks)
  double real_tokens = 0;  // global non-pad tokens of this step (throughput)
  double grad_norm = 0;    // global L2 norm before clipping
  bool finite = true;      // loss and grad norm are finite (same answer on every rank)
};

// Σ x² in fp64 of an fp32 tensor, `chunk` elements at a time: fp64 accumulation without an fp64 copy of the whole
// buffer (full-parameter 7B at tp 8 holds 0.84e9 grads a rank: 6.7 GB as fp64). A 1-element fp64 tensor on x's
// device; no host sync.
at::Tensor sum_of_squares_fp64(const at::Tensor& x, int64_t chunk = int64_t(1) << 24);

class TrainGrads {
 public:
  // params: every trainable tensor with its tp layout (same order on every rank).
  TrainGrads(std::vector<model::ParamSpec> params, const dist::ParallelDims& dims);

  // After the backward passes of Σ token losses of all micro-steps: local_loss_sum is this rank's Σ token losses
  // (a 0-dim tensor on the params' device), local_loss_tokens / local_real_tokens its counts (the same on every tp
  // rank of a dp replica). Collective over dp and tp. Leaves every grad = global sum / global loss tokens.
  GradStats reduce(const at::Tensor& local_loss_sum, int64_t local_loss_tokens, int64_t local_real_tokens = 0);

  // Scale every grad by max_norm / (norm + 1e-6) when norm > max_norm (max_norm <= 0: off). Returns the factor.
  double clip(double max_norm, double norm);
  // Zeroes every grad (the flat buffer; views stay installed).
  void zero_grad();

  const std::vector<model::ParamSpec>& params() const { return params_; }
  int64_t numel() const { return numel_; }  // trainable elements on this rank

 private:
  std::vector<model::ParamSpec> params_;  // sharded first, then replicated
  size_t n_sharded_ = 0;
  int64_t numel_ = 0, numel_sharded_ = 0;
  std::vector<int64_t> offset_;            // per param: its segment's start in flat_
  dist::ParallelDims dims_;
  at::Tensor flat_;  // (numel + 3) fp32 on the params' device

  at::Tensor segment(size_t i) const;     // (numel of param i) view of flat_
  bool grad_is_view(size_t i) const;       // param i's grad is its segment of flat_
  void install_view(size_t i);             // param i's grad := its segment (fp32 params only)
};

}  // namespace cg
