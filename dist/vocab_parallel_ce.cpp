// Vocab-parallel cross-entropy: loss_i = log(sum_v exp(z_iv - m_i)) - (z_i,t_i - m_i), m_i = max_v z_iv, with the
// max, the sum and the target logit each reduced over tp; the gradient w.r.t. z is softmax - onehot (times grad).
#include "dist/vocab_parallel_ce.h"

#include <torch/torch.h>

#include "dist/autograd_comm.h"

namespace cg::dist {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// forward: all-reduce(max), then one all-reduce(sum) of [target logit, sum exp, target found]; backward: local only.
struct VocabParallelCrossEntropy : torch::autograd::Function<VocabParallelCrossEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits_in, const at::Tensor& targets,
                            int64_t vocab_start, const CommPtr& tp) {
    at::Tensor logits = logits_in.is_floating_point() && logits_in.element_size() >= 4
                            ? logits_in.contiguous()
                            : logits_in.to(at::kFloat);            // (N, V_local), compute dtype
    const int64_t v_local = logits.size(1);

    // Subtract the global row max for a stable exp.
    at::Tensor row_max = std::get<0>(logits.max(/*dim=*/1)).contiguous();  // (N)
    const bool split = tp->size() > 1;  // tp 1: no collective (on NCCL, two launches and host waits per micro-batch)
    if (split) tp->all_reduce(row_max, ReduceOp::Max);
    at::Tensor shifted = logits - row_max.unsqueeze(1);  // (N, V_local), fresh: reused in place below

    // Targets that fall in this rank's columns.
    at::Tensor valid = targets != kIgnoreIndex;                                             // (N) bool
    at::Tensor in_range = valid & (targets >= vocab_start) & (targets < vocab_start + v_local);  // (N) bool
    at::Tensor local_idx = (targets - vocab_start).masked_fill(in_range.logical_not(), 0);      // (N) in [0, V_local)
    // masked_fill, not a product: a rank whose columns are all vocabulary padding holds -inf logits (-inf * 0 = NaN).
    at::Tensor target_logit =
        shifted.gather(1, local_idx.unsqueeze(1)).squeeze(1).masked_fill(in_range.logical_not(), 0);  // (N)

    at::Tensor exps = shifted.exp_();  // (N, V_local)
    // One sum over tp for three (N) rows: the target logit (found on exactly one rank), sum of exps, found count.
    at::Tensor packed = at::stack({target_logit, exps.sum(1), in_range.to(exps.scalar_type())}).contiguous();  // (3, N)
    if (split) tp->all_reduce(packed, ReduceOp::Sum);
    at::Tensor sum_exp = packed[1];  // (N)
    if (logits.is_cpu()) {  // on an accelerator this check would cost a host sync per micro-batch: callers check ids
      const int64_t missing = (valid & (packed[2] != 1)).sum().item<int64_t>();
      TORCH_CHECK(missing == 0, missing, " target id(s) lie outside the vocabulary split over tp ranks (ids must be "
                  "in [0, V) or ", kIgnoreIndex, "); check the tokenizer's vocabulary size against the model's "
                  "vocab_size");
    }

    at::Tensor loss = (sum_exp.log() - packed[0]).masked_fill(valid.logical_not(), 0);  // (N)

    at::Tensor softmax = exps.div_(sum_exp.unsqueeze(1));  // (N, V_local)
    ctx->save_for_backward({softmax, in_range, local_idx, valid});
    ctx->saved_data["in_dtype"] = static_cast<int64_t>(logits_in.scalar_type());
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor grad_logits = saved[0].clone();  // (N, V_local) softmax
    const at::Tensor& in_range = saved[1];
    const at::Tensor& local_idx = saved[2];
    const at::Tensor& valid = saved[3];
    grad_logits.scatter_add_(1, local_idx.unsqueeze(1), -in_range.to(grad_logits.scalar_type()).unsqueeze(1));
    at::Tensor g = (grads[0].to(grad_logits.scalar_type()) * valid).unsqueeze(1);  // (N, 1)
    grad_logits.mul_(g);
    const auto in_dtype = static_cast<at::ScalarType>(ctx->saved_data["in_dtype"].toInt());
    return {grad_logits.to(in_dtype), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor vocab_parallel_cross_entropy(const at::Tensor& logits_local, const at::Tensor& targets,
                                        int64_t vocab_start, const CommPtr& tp) {
  TORCH_CHECK(tp, "vocab_parallel_cross_entropy: null tp comm; pass ParallelDims::tp_comm");
  TORCH_CHECK(logits_local.dim() == 2, "logits_local must be (N, V_local), got ", logits_local.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits_local.size(0), "targets must be (N) = (",
              logits_local.size(0), "), got ", targets.sizes());
  TORCH_CHECK(targets.scalar_type() == at::kLong, "targets must be int64, got ", targets.scalar_type());
  TORCH_CHECK(logits_local.is_floating_point(), "logits must be floating point, got ", logits_local.scalar_type());
  return VocabParallelCrossEntropy::apply(logits_local, targets, vocab_start, tp);
}

}  // namespace cg::dist
