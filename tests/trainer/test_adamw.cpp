// AdamW equals torch::optim::AdamW step for step; state save/load resumes identically; a state of another shape and
// a parameter name given twice are refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "trainer/adamw.h"

namespace {

// Deterministic pseudo-gradient for step k: depends on the current parameter so trajectories diverge on any error.
void fake_backward(const std::vector<at::Tensor>& ps, int k) {
  for (size_t i = 0; i < ps.size(); ++i) {
    torch::NoGradGuard g;
    at::Tensor grad = torch::sin(ps[i].detach() * (k + 1)) + 0.1 * static_cast<double>(i) - 0.05 * k;
    ps[i].mutable_grad() = grad;
  }
}

std::vector<at::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({4, 3}).requires_grad_(), torch::randn({5}).requires_grad_(),
          torch::randn({2, 2, 2}).requires_grad_()};
}

TEST(AdamW, MatchesTorchOptimAdamWOverSteps) {
  auto ours_p = make_params(7);
  auto ref_p = make_params(7);
  cg::AdamWOptions o;
  o.beta1 = 0.85;
  o.beta2 = 0.99;
  o.eps = 1e-6;
  o.weight_decay = 0.1;
  cg::AdamW ours({{"a", ours_p[0]}, {"b", ours_p[1]}, {"c", ours_p[2]}}, o);
  torch::optim::AdamW ref(ref_p, torch::optim::AdamWOptions(1e-2).betas({0.85, 0.99}).eps(1e-6).weight_decay(0.1));
  for (int k = 0; k < 8; ++k) {
    double lr = 1e-2 * (k + 1) / 8.0;  // a changing lr, as a schedule would give
    for (auto& group : ref.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    fake_backward(ours_p, k);
    fake_backward(ref_p, k);
    ours.step(lr);
    ref.step();
    ours.zero_grad();
    ref.zero_grad();
    for (size_t i = 0; i < ours_p.size(); ++i)
      EXPECT_TRUE(torch::allclose(ours_p[i], ref_p[i], 0, 1e-7)) << "step " << k << " param " << i;
  }
  // The update actually moved the parameters.
  EXPECT_FALSE(torch::allclose(ours_p[0], make_params(7)[0]));
}

TEST(AdamW, SkipsParamsWithoutGradAndNoDecayFlag) {
  auto p = make_params(3);
  at::Tensor before1 = p[1].detach().clone(), before2 = p[2].detach().clone();
  cg::AdamWOptions o;
  o.weight_decay = 0.5;
  cg::AdamW opt({{"a", p[0]}, {"b", p[1]}, {"c", p[2], /*decay=*/false}}, o);
  {
    torch::NoGradGuard g;
    p[0].mutable_grad() = torch::ones_like(p[0]);
    p[2].mutable_grad() = torch::zeros_like(p[2]);  // zero grad + no decay: unchanged
  }
  opt.step(0.1);
  EXPECT_TRUE(torch::equal(p[1], before1));  // no grad: untouched, step stays 0
  EXPECT_TRUE(torch::equal(p[2], before2));
  auto st = opt.state();
  ASSERT_EQ(st.size(), 9u);
  EXPECT_EQ(st[2].first, "a.step");
  EXPECT_EQ(st[2].second.item<int64_t>(), 1);
  EXPECT_EQ(st[5].second.item<int64_t>(), 0);
  // First step with g = 1: m = 0.1, v = 0.001, bias-corrected update = lr * 1 / (1 + eps) after decay.
  // Hand check on one element: p1 = p0 * (1 - 0.1 * 0.5) - 0.1 * 1 / (1 + 1e-8).
  at::Tensor p0 = make_params(3)[0];
  EXPECT_TRUE(torch::allclose(p[0], p0 * 0.95 - 0.1 / (1 + 1e-8), 0, 1e-7));
}

// A param that had no grad at first lags one step behind: the multi-tensor update groups params by step count, and
// each group must use its own bias correction, as torch's per-parameter state does.
TEST(AdamW, ParamsAtDifferentStepCountsMatchTorch) {
  auto ours_p = make_params(5);
  auto ref_p = make_params(5);
  cg::AdamWOptions o;
  o.weight_decay = 0.05;
  cg::AdamW ours({{"a", ours_p[0]}, {"b", ours_p[1]}, {"c", ours_p[2]}}, o);
  torch::optim::AdamW ref(ref_p, torch::optim::AdamWOptions(1e-2).weight_decay(0.05));
  for (int k = 0; k < 4; ++k) {
    fake_backward(ours_p, k);
    fake_backward(ref_p, k);
    if (k == 0) {  // b has no grad in the first step
      ours_p[1].mutable_grad().reset();
      ref_p[1].mutable_grad().reset();
    }
    ours.step(1e-2);
    ref.step();
    ours.zero_grad();
    ref.zero_grad();
    for (size_t i = 0; i < ours_p.size(); ++i)
      EXPECT_TRUE(torch::allclose(ours_p[i], ref_p[i], 0, 1e-7)) << "step " << k << " param " << i;
  }
  auto st = ours.state();
  EXPECT_EQ(st[2].second.item<int64_t>(), 4);  // a.step
  EXPECT_EQ(st[5].second.item<int64_t>(), 3);  // b.step
}

TEST(AdamW, StateRoundTripResumesIdentically) {
  auto a = make_params(11);
  cg::AdamW opt_a({{"x", a[0]}, {"y", a[1]}, {"z", a[2]}}, {});
  for (int k = 0; k < 3; ++k) fake_backward(a, k), opt_a.step(1e-2), opt_a.zero_grad();
  // "Checkpoint": clone params and state, rebuild a fresh optimizer, load.
  std::vector<at::Tensor> b;
  for (auto& t : a) b.push_back(t.detach().clone().requires_grad_());
  std::vector<std::pair<std::string, at::Tensor>> saved;
  for (auto& [n, t] : opt_a.state()) saved.emplace_back(n, t.clone());
  cg::AdamW opt_b({{"x", b[0]}, {"y", b[1]}, {"z", b[2]}}, {});
  opt_b.load_state(saved);
  for (int k = 3; k < 6; ++k) {
    fake_backward(a, k), opt_a.step(1e-2), opt_a.zero_grad();
    fake_backward(b, k), opt_b.step(1e-2), opt_b.zero_grad();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  saved.pop_back();  // z.step missing
  EXPECT_THROW(opt_b.load_state(saved), std::exception);
}

// A state tensor of another shape is refused naming it, even where it would broadcast into the moment ([1, 3] into
// [4, 3]); a name given twice is refused: its moments and step would be shared or lost.
TEST(AdamW, StateOfAnotherShapeAndTwiceNamedParamsAreRefused) {
  auto p = make_params(13);
  cg::AdamW opt({{"x", p[0]}, {"y", p[1]}}, {});
  auto saved = opt.state();
  ASSERT_EQ(saved[0].first, "x.exp_avg");
  saved[0].second = torch::ones({1, 3});
  try {
    opt.load_state(saved);
    ADD_FAILURE() << "a [1, 3] exp_avg was loaded into a [4, 3] parameter";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer state x.exp_avg has shape 1x3, parameter has 4x3"),
              std::string::npos) << e.what();
  }
  try {
    cg::AdamW twice({{"x", p[0]}, {"x", p[1]}}, {});
    ADD_FAILURE() << "two parameters named x were accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("parameter name x appears twice"), std::string::npos) << e.what();
  }
}

}  // namespace
