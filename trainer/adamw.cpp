// AdamW and gradient clipping (see adamw.h for the update rule).
#include "trainer/adamw.h"

#include <spdlog/fmt/ranges.h>
#include <torch/torch.h>

#include <cmath>
#include <map>

#include "common/error.h"

namespace cg {

AdamW::AdamW(std::vector<NamedParam> params, AdamWOptions opt) : params_(std::move(params)), opt_(opt) {
  std::map<std::string, int> seen;
  for (const auto& p : params_) {
    CG_CHECK(p.param.defined(), "AdamW: parameter {} is undefined", p.name);
    CG_CHECK(p.param.scalar_type() == at::kFloat, "AdamW: parameter {} is {}, expected fp32 (keep trainable "
             "parameters in fp32)", p.name, c10::toString(p.param.scalar_type()));
    CG_CHECK(seen[p.name]++ == 0, "AdamW: parameter name {} appears twice", p.name);
    slots_.push_back({torch::zeros_like(p.param, at::MemoryFormat::Contiguous),
                      torch::zeros_like(p.param, at::MemoryFormat::Contiguous), 0});
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  const double b1 = opt_.beta1, b2 = opt_.beta2;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor p = params_[i].param;
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    Slot& s = slots_[i];
    s.step += 1;
    if (params_[i].decay && opt_.weight_decay != 0) p.mul_(1 - lr * opt_.weight_decay);
    s.exp_avg.mul_(b1).add_(g, 1 - b1);
    s.exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2);
    const double bc1 = 1 - std::pow(b1, static_cast<double>(s.step));
    const double bc2 = 1 - std::pow(b2, static_cast<double>(s.step));
    at::Tensor denom = (s.exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(opt_.eps);
    p.addcdiv_(s.exp_avg, denom, -lr / bc1);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.param.mutable_grad().reset();
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].name + ".exp_avg", slots_[i].exp_avg);
    out.emplace_back(params_[i].name + ".exp_avg_sq", slots_[i].exp_avg_sq);
    out.emplace_back(params_[i].name + ".step", torch::tensor(slots_[i].step, torch::kInt64));
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, at::Tensor>>& named) {
  std::map<std::string, at::Tensor> by_name(named.begin(), named.end());
  auto get = [&](const std::string& key) -> const at::Tensor& {
    auto it = by_name.find(key);
    CG_CHECK(it != by_name.end(), "optimizer state has no tensor {}: the checkpoint was written for other "
             "parameters (different lora.targets / lora.r?)", key);
    return it->second;
  };
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i].name;
    for (auto [suffix, dst] : {std::pair<const char*, at::Tensor*>{".exp_avg", &slots_[i].exp_avg},
                               {".exp_avg_sq", &slots_[i].exp_avg_sq}}) {
      const at::Tensor& src = get(n + suffix);
      CG_CHECK(src.sizes() == dst->sizes(), "optimizer state {}{} has shape {}, parameter has {}", n, suffix,
               fmt::join(src.sizes(), "x"), fmt::join(dst->sizes(), "x"));
      dst->copy_(src);
    }
    slots_[i].step = get(n + ".step").item<int64_t>();
  }
}

at::Tensor grad_sq_norm(const std::vector<at::Tensor>& params) {
  at::Tensor total;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    at::Tensor sq = g.detach().to(at::kFloat).pow(2).sum();
    total = total.defined() ? total + sq : sq;
  }
  return total.defined() ? total : torch::zeros({}, torch::kFloat);
}

double clip_grads(const std::vector<at::Tensor>& params, double total_norm, double max_norm) {
  if (max_norm <= 0 || !std::isfinite(total_norm)) return 1.0;
  const double scale = std::min(1.0, max_norm / (total_norm + 1e-6));
  if (scale < 1.0) {
    torch::NoGradGuard no_grad;
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return scale;
}

}  // namespace cg
