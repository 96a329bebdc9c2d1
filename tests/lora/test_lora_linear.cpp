// LoraAdapter on one process: scale, init (Kaiming bound, B zero), forward/backward against hand-written formulas,
// dtype handling, dropout determinism, full-factor round trip and the merge delta.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "common/error.h"
#include "lora/lora_linear.h"

using namespace cg::lora;

namespace {
LoraSpec spec(int64_t r, double alpha, double dropout = 0.0, bool rslora = false) {
  LoraSpec s;
  s.r = r;
  s.alpha = alpha;
  s.dropout = dropout;
  s.rslora = rslora;
  s.seed = 7;
  return s;
}
}  // namespace

TEST(LoraScale, AlphaOverRAndRsLora) {
  EXPECT_DOUBLE_EQ(lora_scale(spec(8, 32)), 4.0);
  EXPECT_DOUBLE_EQ(lora_scale(spec(16, 32)), 2.0);
  EXPECT_DOUBLE_EQ(lora_scale(spec(16, 32, 0, true)), 8.0);  // 32 / √16
  EXPECT_DOUBLE_EQ(lora_scale(spec(4, 2, 0, true)), 1.0);
  EXPECT_THROW(lora_scale(spec(0, 1)), cg::Error);
}

TEST(LoraInit, KaimingBoundAndZeroB) {
  LoraAdapter a("model.layers.0.self_attn.q_proj", 64, 48, Split::None, spec(8, 16), nullptr);
  ASSERT_EQ(a->A.sizes(), (std::vector<int64_t>{8, 64}));
  ASSERT_EQ(a->B.sizes(), (std::vector<int64_t>{48, 8}));
  EXPECT_EQ(a->A.scalar_type(), at::kFloat);
  const double bound = 1.0 / std::sqrt(64.0);  // kaiming_uniform_(a=√5) on fan_in 64
  EXPECT_LE(a->A.abs().max().item<double>(), bound);
  EXPECT_GT(a->A.abs().max().item<double>(), 0.8 * bound);  // 512 draws: the max is close to the bound
  EXPECT_NEAR(a->A.mean().item<double>(), 0.0, 0.02);
  EXPECT_EQ(a->B.abs().sum().item<double>(), 0.0);
  // B = 0: the adapter adds exactly nothing at step 0.
  at::Tensor x = torch::randn({3, 5, 64});
  EXPECT_EQ(a->forward(x).abs().max().item<double>(), 0.0);
  EXPECT_EQ(a->parameters().size(), 2u);
}

TEST(LoraInit, SameSeedSameNameSameA) {
  at::Tensor a1 = init_full_A("model.layers.0.self_attn.q_proj", 4, 32, 3);
  at::Tensor a2 = init_full_A("model.layers.0.self_attn.q_proj", 4, 32, 3);
  at::Tensor a3 = init_full_A("model.layers.0.self_attn.v_proj", 4, 32, 3);
  at::Tensor a4 = init_full_A("model.layers.0.self_attn.q_proj", 4, 32, 4);
  EXPECT_TRUE(a1.equal(a2));
  EXPECT_FALSE(a1.equal(a3));
  EXPECT_FALSE(a1.equal(a4));
}

TEST(LoraForward, MatchesFormulaAndGradients) {
  torch::manual_seed(0);
  LoraAdapter a("m", 12, 10, Split::None, spec(4, 8), nullptr);
  a->load_full(torch::randn({4, 12}), torch::randn({10, 4}));
  const double s = 2.0;  // 8 / 4
  at::Tensor x = torch::randn({2, 3, 12});
  at::Tensor y = a->forward(x);  // (2, 3, 10)
  at::Tensor A = a->A.detach(), B = a->B.detach();
  at::Tensor ref = s * torch::matmul(torch::matmul(x, A.t()), B.t());
  EXPECT_TRUE(torch::allclose(y, ref, 1e-5, 1e-5));

  // loss = Σ w ⊙ y; dB = s · wᵀ (x Aᵀ), dA = s · (w B)ᵀ x (sums over every row of the flattened batch).
  at::Tensor w = torch::randn({2, 3, 10});
  (y * w).sum().backward();
  at::Tensor xf = x.reshape({6, 12}), wf = w.reshape({6, 10});
  at::Tensor dB = s * torch::matmul(wf.t(), torch::matmul(xf, A.t()));
  at::Tensor dA = s * torch::matmul(torch::matmul(wf, B).t(), xf);
  EXPECT_TRUE(torch::allclose(a->B.grad(), dB, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(a->A.grad(), dA, 1e-4, 1e-4));
}

TEST(LoraForward, ForwardAddIsTheBaseOutputPlusTheDelta) {
  // forward_add (what the base layer's hook calls: the sum inside the last matmul) against y + forward(x): values in
  // fp32 and bf16 (3-d inputs, flattened for the matmul), and the gradients reaching y, x, A and B.
  torch::manual_seed(2);
  LoraAdapter a("m", 12, 10, Split::None, spec(4, 8), nullptr);
  a->load_full(torch::randn({4, 12}), torch::randn({10, 4}));
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    const at::Tensor x0 = torch::randn({2, 3, 12}).to(dtype), y0 = torch::randn({2, 3, 10}).to(dtype);
    const at::Tensor w = torch::randn({2, 3, 10});
    auto run = [&](bool fused) {
      a->zero_grad();
      at::Tensor x = x0.clone().requires_grad_(true), y = y0.clone().requires_grad_(true);
      at::Tensor out = fused ? a->forward_add(x, y) : y + a->forward(x);
      (out.to(at::kFloat) * w).sum().backward();
      return std::vector<at::Tensor>{out.detach().to(at::kFloat), x.grad().to(at::kFloat), y.grad().to(at::kFloat),
                                     a->A.grad().clone(), a->B.grad().clone()};
    };
    const auto fused = run(true), plain = run(false);
    EXPECT_EQ(a->forward_add(x0, y0).scalar_type(), dtype);
    const double tol = dtype == at::kFloat ? 1e-5 : 3e-2;
    for (size_t i = 0; i < fused.size(); ++i)
      EXPECT_TRUE(torch::allclose(fused[i], plain[i], tol, tol)) << "tensor " << i << " in " << dtype;
    EXPECT_TRUE(fused[2].equal(w.to(dtype).to(at::kFloat)));  // d out / d y is the identity
  }
}

TEST(LoraForward, Bf16InputComputesInBf16WithFp32MasterWeights) {
  // Mixed precision: bf16 activations stay bf16 through the LoRA path (factors cast to bf16), the parameters and
  // their gradients stay fp32, and both match the fp32 computation to bf16 precision.
  torch::manual_seed(1);
  LoraAdapter a("m", 16, 8, Split::None, spec(2, 2), nullptr);
  a->load_full(torch::randn({2, 16}), torch::randn({8, 2}));
  const at::Tensor x32 = torch::randn({4, 16}).to(at::kBFloat16).to(at::kFloat);  // bf16-representable
  at::Tensor y = a->forward(x32.to(at::kBFloat16));
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_EQ(a->A.scalar_type(), at::kFloat);
  const at::Tensor A = a->A.detach(), B = a->B.detach();
  at::Tensor ref = torch::matmul(torch::matmul(x32, A.t()), B.t());  // scale 1 (alpha 2 / r 2)
  // Exactly the bf16 computation (the factors rounded to bf16, scale folded into B):
  const at::Tensor xb = x32.to(at::kBFloat16);
  EXPECT_TRUE(y.equal(torch::matmul(torch::matmul(xb, A.to(at::kBFloat16).t()), B.to(at::kBFloat16).t())));
  const double tol = 2e-2 * ref.abs().max().item<double>();
  EXPECT_LT((y.to(at::kFloat) - ref).abs().max().item<double>(), tol);
  const at::Tensor w = torch::randn({4, 8});
  (y.to(at::kFloat) * w).sum().backward();
  ASSERT_EQ(a->A.grad().scalar_type(), at::kFloat);
  ASSERT_EQ(a->B.grad().scalar_type(), at::kFloat);
  const at::Tensor dB = torch::matmul(w.t(), torch::matmul(x32, A.t()));
  const at::Tensor dA = torch::matmul(torch::matmul(w, B).t(), x32);
  EXPECT_LT((a->B.grad() - dB).abs().max().item<double>(), 2e-2 * dB.abs().max().item<double>());
  EXPECT_LT((a->A.grad() - dA).abs().max().item<double>(), 2e-2 * dA.abs().max().item<double>());
}

TEST(LoraDropout, SeededMaskIsReproducibleAndOffInEval) {
  const double p = 0.5;
  auto make = [&](uint64_t seed) {
    LoraAdapter a("m", 64, 4, Split::None, spec(64, 64, p), nullptr, make_dropout_gen(seed, at::kCPU));
    a->load_full(torch::eye(64), torch::ones({4, 64}));  // y[j] = Σ_i dropout(x)_i
    return a;
  };
  at::Tensor x = torch::ones({1000, 64});
  LoraAdapter a1 = make(5), a2 = make(5), a3 = make(6);
  at::Tensor y1 = a1->forward(x), y2 = a2->forward(x), y3 = a3->forward(x);
  EXPECT_TRUE(y1.equal(y2));
  EXPECT_FALSE(y1.equal(y3));
  // Each kept x_i becomes 1 / (1 - p) = 2: the row sum is 2 · (kept count), mean 64.
  EXPECT_NEAR(y1.select(1, 0).mean().item<double>(), 64.0, 1.0);
  at::Tensor kept = (y1.select(1, 0) / 2.0);
  EXPECT_TRUE(kept.equal(kept.round()));
  a1->eval();
  EXPECT_TRUE(torch::allclose(a1->forward(x), 64.0 * torch::ones({1000, 4})));
}

TEST(LoraDropout, DropsInputElementsScalesTheRestAndGradientsFollowTheMask) {
  // A = B = I, scale 1: forward(x) = dropout(x) itself, so the output shows the mask: every element is 0 or
  // x / (1 - p), about p of them 0; the input's gradient is the upstream one through the same mask; the same seed
  // draws the same mask. On the CPU (keep_mask, the 1 / (1 - p) folded into A) and, with a GPU, on it (one fused
  // kernel, bf16 too).
  const double p = 0.25;
  std::vector<std::pair<c10::Device, at::ScalarType>> cases{{c10::Device(c10::kCPU), at::kFloat}};
  if (torch::cuda::is_available())
    for (auto dt : {at::kFloat, at::kBFloat16}) cases.emplace_back(c10::Device(c10::kCUDA, 0), dt);
  for (const auto& [dev, dt] : cases) {
    auto make = [&, dev = dev](uint64_t seed) {
      LoraAdapter a("m", 64, 64, Split::None, spec(64, 64, p), nullptr, make_dropout_gen(seed, dev));
      a->load_full(torch::eye(64), torch::eye(64));
      a->to(dev);
      return a;
    };
    LoraAdapter a1 = make(7), a2 = make(7);
    const at::Tensor x = (torch::rand({512, 64}) + 0.5).to(dev, dt).requires_grad_(true);  // no zeros
    const at::Tensor dy = torch::randn({512, 64}).to(dev, dt);
    const at::Tensor y = a1->forward(x);
    y.backward(dy);
    const at::Tensor kept = y.detach() != 0;
    const double tol = dt == at::kFloat ? 1e-5 : 1e-2;
    const auto masked = [&](const at::Tensor& t) { return (t.detach() * kept / (1.0 - p)).to(at::kFloat).cpu(); };
    EXPECT_TRUE(at::allclose(y.detach().to(at::kFloat).cpu(), masked(x), tol, tol)) << dev << " " << dt;
    EXPECT_TRUE(at::allclose(x.grad().to(at::kFloat).cpu(), masked(dy), tol, tol)) << dev << " " << dt;
    const double n = 512 * 64, keep_rate = kept.to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(keep_rate, 1 - p, 5 * std::sqrt(p * (1 - p) / n)) << dev << " " << dt;
    EXPECT_TRUE(a2->forward(x).equal(y)) << dev << " " << dt;
  }
}

TEST(LoraDropout, KeepMaskFrequenciesAndIndependence) {
  // 16-bit lanes of 64-bit draws: the keep rate overall and in each lane position (i mod 4) is `keep` within 5
  // sigma, neighbours are uncorrelated, an odd length is filled to the end, and the same generator state gives
  // the same mask.
  auto gen = make_dropout_gen(3, at::kCPU);
  for (double keep : {0.95, 0.5, 0.1}) {
    const int64_t n = 1 << 20;
    const at::Tensor m = keep_mask({n}, keep, gen.get(), at::kCPU);
    ASSERT_EQ(m.scalar_type(), at::kBool);
    const at::Tensor f = m.to(at::kDouble);
    const double sigma = std::sqrt(keep * (1 - keep) / n);
    EXPECT_NEAR(f.mean().item<double>(), keep, 5 * sigma) << keep;
    const at::Tensor lanes = f.view({n / 4, 4}).mean(0);
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(lanes[j].item<double>(), keep, 10 * sigma) << keep << " lane " << j;
    const at::Tensor c = f - keep;
    const double corr = (c.narrow(0, 0, n - 1) * c.narrow(0, 1, n - 1)).mean().item<double>() / (keep * (1 - keep));
    EXPECT_LT(std::abs(corr), 0.01) << keep;
  }
  const at::Tensor odd = keep_mask({3, 7}, 0.5, gen.get(), at::kCPU);
  EXPECT_GT(odd.sum().item<int64_t>(), 0);
  EXPECT_LT(odd.sum().item<int64_t>(), 21);
  auto g1 = make_dropout_gen(11, at::kCPU), g2 = make_dropout_gen(11, at::kCPU);
  EXPECT_TRUE(keep_mask({5, 9}, 0.7, g1.get(), at::kCPU).equal(keep_mask({5, 9}, 0.7, g2.get(), at::kCPU)));
  EXPECT_TRUE(keep_mask({100}, 1.0, g1.get(), at::kCPU).all().item<bool>());
  EXPECT_THROW(keep_mask({4}, 0.0, g1.get(), at::kCPU), cg::Error);
}

// The dropout stream is its own: the seed alone fixes it (a fresh mt19937 of that seed, as torch's CPU generator
// seeded so), whatever torch's default generator has drawn before or draws between its masks.
TEST(LoraDropout, GeneratorIsPrivateAndSeeded) {
  auto reference = at::make_generator<at::CPUGeneratorImpl>(11);
  at::manual_seed(1);
  (void)torch::rand({100});
  auto gen = make_dropout_gen(11, at::kCPU);
  ASSERT_NE(gen->unsafeGetGeneratorImpl(), at::globalContext().defaultGenerator(at::kCPU).unsafeGetGeneratorImpl());
  const at::Tensor a = keep_mask({257}, 0.6, gen.get(), at::kCPU);
  (void)torch::rand({1000});  // the default generator moves; the dropout stream does not
  const at::Tensor b = keep_mask({257}, 0.6, gen.get(), at::kCPU);
  const at::Tensor ra = keep_mask({257}, 0.6, &reference, at::kCPU), rb = keep_mask({257}, 0.6, &reference, at::kCPU);
  EXPECT_TRUE(a.equal(ra));
  EXPECT_TRUE(b.equal(rb));
  EXPECT_FALSE(a.equal(b));
}

TEST(LoraFull, RoundTripAndDeltaWeight) {
  torch::manual_seed(2);
  LoraAdapter a("m", 6, 5, Split::None, spec(3, 6), nullptr);
  at::Tensor A = torch::randn({3, 6}), B = torch::randn({5, 3});
  a->load_full(A, B);
  EXPECT_TRUE(a->full_A().equal(A));
  EXPECT_TRUE(a->full_B().equal(B));
  EXPECT_TRUE(torch::allclose(a->delta_weight_local(), 2.0 * torch::matmul(B, A)));
  // The merged weight reproduces base + delta for any input.
  at::Tensor W = torch::randn({5, 6}), x = torch::randn({7, 6});
  at::Tensor y = torch::matmul(x, W.t()) + a->forward(x);
  at::Tensor y_merged = torch::matmul(x, (W + a->delta_weight_local()).t());
  EXPECT_TRUE(torch::allclose(y, y_merged, 1e-5, 1e-5));
  EXPECT_THROW(a->load_full(torch::randn({4, 6}), B), cg::Error);
  EXPECT_THROW(a->load_full(A, torch::randn({5, 4})), cg::Error);
}
