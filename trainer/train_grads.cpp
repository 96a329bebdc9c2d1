// TrainGrads: flat dp all-reduce with the loss statistics, global-token normalisation, tp-aware global norm, clip.
#include "trainer/train_grads.h"

#include <cmath>

#include "common/error.h"

namespace cg {

TrainGrads::TrainGrads(std::vector<model::ParamSpec> params, const dist::ParallelDims& dims) : dims_(dims) {
  CG_CHECK(!params.empty(), "no trainable parameters: enable LoRA targets or set lora.enabled=false");
  for (auto& p : params)
    if (p.shard_dim >= 0) params_.push_back(p);
  n_sharded_ = params_.size();
  for (auto& p : params)
    if (p.shard_dim < 0) params_.push_back(p);
  for (size_t i = 0; i < params_.size(); ++i) {
    numel_ += params_[i].param.numel();
    if (i < n_sharded_) numel_sharded_ += params_[i].param.numel();
  }
  flat_ = at::zeros({numel_ + 3}, params_[0].param.options().dtype(at::kFloat));
}

GradStats TrainGrads::reduce(const at::Tensor& local_loss_sum, int64_t local_loss_tokens, int64_t local_real_tokens) {
  at::NoGradGuard no_grad;
  int64_t off = 0;
  for (auto& p : params_) {
    const int64_t n = p.param.numel();
    at::Tensor seg = flat_.narrow(0, off, n);
    if (p.param.grad().defined()) {
      seg.copy_(p.param.grad().reshape({n}));
    } else {
      seg.zero_();
    }
    off += n;
  }
  flat_.narrow(0, numel_, 1).copy_(local_loss_sum.detach().reshape({1}));
  flat_.narrow(0, numel_ + 1, 1).fill_(double(local_loss_tokens));
  flat_.narrow(0, numel_ + 2, 1).fill_(double(local_real_tokens));
  if (dims_.dp > 1) dims_.dp_comm->all_reduce(flat_);

  at::Tensor stats = flat_.narrow(0, numel_, 3).to(at::kDouble).cpu();  // [loss_sum, loss_tokens, real_tokens]
  GradStats s;
  const double loss_sum = stats[0].item<double>();
  s.loss_tokens = stats[1].item<double>();
  s.real_tokens = stats[2].item<double>();
  CG_CHECK(s.loss_tokens > 0, "a training step had no loss tokens on any rank; check the shards' loss masks");
  s.loss = loss_sum / s.loss_tokens;
  at::Tensor g = flat_.narrow(0, 0, numel_);
  g.mul_(1.0 / s.loss_tokens);

  // Σ g² of the sharded part on every tp rank, of the replicated part on tp rank 0 only; summed over tp.
  at::Tensor sq = at::zeros({1}, flat_.options().dtype(at::kDouble));
  if (numel_sharded_ > 0) sq += g.narrow(0, 0, numel_sharded_).to(at::kDouble).pow(2).sum();
  if (dims_.tp_rank == 0 && numel_ > numel_sharded_)
    sq += g.narrow(0, numel_sharded_, numel_ - numel_sharded_).to(at::kDouble).pow(2).sum();
  if (dims_.tp > 1) dims_.tp_comm->all_reduce(sq);
  s.grad_norm = std::sqrt(sq.cpu().item<double>());
  s.finite = std::isfinite(s.loss) && std::isfinite(s.grad_norm);

  off = 0;
  for (auto& p : params_) {
    const int64_t n = p.param.numel();
    if (!p.param.grad().defined()) p.param.mutable_grad() = at::zeros_like(p.param);
    p.param.grad().copy_(flat_.narrow(0, off, n).view(p.param.sizes()));
    off += n;
  }
  return s;
}

double TrainGrads::clip(double max_norm, double norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
  const double f = max_norm / (norm + 1e-6);
  at::NoGradGuard no_grad;
  for (auto& p : params_)
    if (p.param.grad().defined()) p.param.grad().mul_(f);
  return f;
}

void TrainGrads::zero_grad() {
  for (auto& p : params_)
    if (p.param.grad().defined()) p.param.mutable_grad().reset();
}

}  // namespace cg
