// TrainGrads: flat dp all-reduce with the loss statistics, global-token normalisation, tp-aware global norm, clip.
#include "trainer/train_grads.h"

#include <algorithm>
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
    offset_.push_back(numel_);
    numel_ += params_[i].param.numel();
    if (i < n_sharded_) numel_sharded_ += params_[i].param.numel();
  }
  flat_ = at::zeros({numel_ + 3}, params_[0].param.options().dtype(at::kFloat));
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& g = params_[i].param.grad();
    if (g.defined()) segment(i).copy_(g.reshape({-1}));  // keep a gradient accumulated before construction
    install_view(i);
  }
}

at::Tensor TrainGrads::segment(size_t i) const { return flat_.narrow(0, offset_[i], params_[i].param.numel()); }

bool TrainGrads::grad_is_view(size_t i) const {
  const at::Tensor& g = params_[i].param.grad();
  return g.defined() && g.data_ptr() == segment(i).data_ptr() && g.is_contiguous();
}

void TrainGrads::install_view(size_t i) {
  at::Tensor& p = params_[i].param;
  if (p.scalar_type() == at::kFloat) p.mutable_grad() = segment(i).view(p.sizes());
}

at::Tensor sum_of_squares_fp64(const at::Tensor& x, int64_t chunk) {
  at::Tensor flat = x.reshape({-1});
  at::Tensor sq = at::zeros({1}, flat.options().dtype(at::kDouble));
  for (int64_t off = 0; off < flat.numel(); off += chunk)
    sq += flat.narrow(0, off, std::min(chunk, flat.numel() - off)).to(at::kDouble).square().sum();
  return sq;
}

GradStats TrainGrads::reduce(const at::Tensor& local_loss_sum, int64_t local_loss_tokens, int64_t local_real_tokens) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {  // views: nothing to copy
    if (grad_is_view(i)) continue;
    const at::Tensor& g = params_[i].param.grad();
    if (g.defined()) {
      segment(i).copy_(g.reshape({-1}));
    } else {
      segment(i).zero_();
    }
  }
  flat_.narrow(0, numel_, 1).copy_(local_loss_sum.detach().reshape({1}));
  flat_.narrow(0, numel_ + 1, 1).fill_(double(local_loss_tokens));
  flat_.narrow(0, numel_ + 2, 1).fill_(double(local_real_tokens));
  if (dims_.dp > 1) dims_.dp_comm->all_reduce(flat_);

  // Σ g² of the (not yet normalised) sums: the sharded part on every tp rank, the replicated part on tp rank 0
  // only, summed over tp. Then one transfer: [loss_sum, loss_tokens, real_tokens, Σ g²].
  at::Tensor g = flat_.narrow(0, 0, numel_);
  at::Tensor sq = at::zeros({1}, flat_.options().dtype(at::kDouble));
  if (numel_sharded_ > 0) sq += sum_of_squares_fp64(g.narrow(0, 0, numel_sharded_));
  if (dims_.tp_rank == 0 && numel_ > numel_sharded_)
    sq += sum_of_squares_fp64(g.narrow(0, numel_sharded_, numel_ - numel_sharded_));
  if (dims_.tp > 1) dims_.tp_comm->all_reduce(sq);
  const at::Tensor host = at::cat({flat_.narrow(0, numel_, 3).to(at::kDouble), sq}).cpu();
  const double* h = host.data_ptr<double>();

  GradStats s;
  s.loss_tokens = h[1];
  s.real_tokens = h[2];
  CG_CHECK(s.loss_tokens > 0, "a training step had no loss tokens on any rank; check the shards' loss masks");
  s.loss = h[0] / s.loss_tokens;
  s.grad_norm = std::sqrt(h[3]) / s.loss_tokens;
  s.finite = std::isfinite(s.loss) && std::isfinite(s.grad_norm);
  g.mul_(1.0 / s.loss_tokens);

  for (size_t i = 0; i < params_.size(); ++i) {
    if (grad_is_view(i)) continue;
    at::Tensor& p = params_[i].param;
    install_view(i);
    if (grad_is_view(i)) continue;  // fp32: now the segment itself
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    p.grad().copy_(segment(i).view(p.sizes()));
  }
  return s;
}

double TrainGrads::clip(double max_norm, double norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
  const double f = max_norm / (norm + 1e-6);
  at::NoGradGuard no_grad;
  flat_.narrow(0, 0, numel_).mul_(f);
  for (size_t i = 0; i < params_.size(); ++i)
    if (!grad_is_view(i) && params_[i].param.grad().defined()) params_[i].param.grad().mul_(f);
  return f;
}

void TrainGrads::zero_grad() {
  at::NoGradGuard no_grad;
  flat_.zero_();
  for (size_t i = 0; i < params_.size(); ++i)
    if (!grad_is_view(i)) params_[i].param.mutable_grad().reset();
}

}  // namespace cg
