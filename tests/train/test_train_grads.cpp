// TrainGrads under mpirun (tp × dp = world): the dp all-reduce, normalisation by the global loss tokens, the global
// norm (sharded tensors summed over shards, replicated ones counted once) and clipping, against hand-computed values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>

#include "dist/parallel_dims.h"
#include "trainer/train_grads.h"

using namespace cg;

namespace {

int world_size() {
  const char* w = std::getenv("OMPI_COMM_WORLD_SIZE");
  return w ? std::atoi(w) : 1;
}

dist::ParallelDims& dims() {
  static dist::ParallelDims d = [] {
    const int world = world_size();
    const int tp = world % 2 == 0 ? 2 : 1;
    return dist::make_parallel_dims(tp, 0, dist::Backend::Mpi);
  }();
  return d;
}

// The full tensors every rank can compute: sharded S (4·tp, 3) split on dim 0, replicated R (5); rank grads are
// functions of (dp_rank, tp_rank) so the expected sums are known in closed form.
at::Tensor grad_S_full(int dp_rank, int tp) {
  return torch::arange(4 * tp * 3, torch::kFloat).reshape({4 * tp, 3}) * 0.01 * (dp_rank + 1);
}
model::ParamSpec spec(const std::string& name, const at::Tensor& p, int64_t shard_dim) {
  model::ParamSpec s;
  s.name = name;
  s.param = p;
  s.shard_dim = shard_dim;
  return s;
}

at::Tensor grad_R(int dp_rank) { return torch::linspace(-1, 1, 5) * (dp_rank + 2); }

TEST(TrainGrads, ReduceNormalizeNormClip) {
  const auto& d = dims();
  at::Tensor S = torch::zeros({4, 3}, torch::requires_grad());
  at::Tensor R = torch::zeros({5}, torch::requires_grad());
  S.mutable_grad() = grad_S_full(d.dp_rank, d.tp).chunk(d.tp, 0)[d.tp_rank].clone();
  R.mutable_grad() = grad_R(d.dp_rank);
  // Replicated params list after sharded ones in any order: the order given here is deliberately mixed.
  TrainGrads g({spec("R", R, -1), spec("S", S, 0)}, d);
  EXPECT_EQ(g.numel(), 12 + 5);

  // Rank-dependent loss sums and token counts (the same on every tp rank of a dp replica).
  const double loss_sum = 10.0 * (d.dp_rank + 1);
  const int64_t tokens = 4 + d.dp_rank, real_tokens = 7 + 2 * d.dp_rank;  // real tokens: loss tokens + a prompt
  GradStats s = g.reduce(torch::tensor(loss_sum), tokens, real_tokens);

  double total_loss = 0, total_tokens = 0, total_real = 0;
  at::Tensor S_sum = torch::zeros({4 * d.tp, 3}), R_sum = torch::zeros({5});
  for (int r = 0; r < d.dp; ++r) {
    total_loss += 10.0 * (r + 1);
    total_tokens += 4 + r;
    total_real += 7 + 2 * r;
    S_sum += grad_S_full(r, d.tp);
    R_sum += grad_R(r);
  }
  EXPECT_DOUBLE_EQ(s.loss_tokens, total_tokens);
  EXPECT_DOUBLE_EQ(s.real_tokens, total_real);  // summed over dp for tokens/s and tokens_seen
  EXPECT_NEAR(s.loss, total_loss / total_tokens, 1e-6);
  at::Tensor S_expect = S_sum / total_tokens, R_expect = R_sum / total_tokens;
  EXPECT_TRUE(torch::allclose(S.grad(), S_expect.chunk(d.tp, 0)[d.tp_rank], 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(R.grad(), R_expect, 1e-6, 1e-7));
  const double norm = std::sqrt(S_expect.pow(2).sum().item<double>() + R_expect.pow(2).sum().item<double>());
  EXPECT_NEAR(s.grad_norm, norm, 1e-5 * norm);
  EXPECT_TRUE(s.finite);

  // Clip to half the norm: every grad scales by the same factor.
  const double f = g.clip(norm / 2, s.grad_norm);
  EXPECT_NEAR(f, 0.5, 1e-5);
  EXPECT_TRUE(torch::allclose(R.grad(), R_expect * f, 1e-6, 1e-7));
  EXPECT_DOUBLE_EQ(g.clip(10 * norm, s.grad_norm), 1.0);
  EXPECT_DOUBLE_EQ(g.clip(0, s.grad_norm), 1.0);
  g.zero_grad();
  EXPECT_EQ(S.grad().abs().sum().item<float>(), 0.f);
  EXPECT_EQ(R.grad().abs().sum().item<float>(), 0.f);

  // Autograd accumulates into the installed grads (views of the flat buffer) across two backward passes, and the
  // next reduce sees exactly their sum: S.grad = Σ_dp 3·c_dp / tokens, c_dp = dp_rank + 1 on every element.
  const double c = d.dp_rank + 1;
  (S * c).sum().backward();
  (S * (2 * c)).sum().backward();
  (R * 0).sum().backward();
  GradStats s2 = g.reduce(torch::tensor(1.0), 1);
  double sum_c = 0;
  for (int r = 0; r < d.dp; ++r) sum_c += r + 1;
  EXPECT_TRUE(torch::allclose(S.grad(), torch::full({4, 3}, 3 * sum_c / d.dp), 1e-6, 1e-7));
  EXPECT_EQ(R.grad().abs().sum().item<float>(), 0.f);
  EXPECT_NEAR(s2.grad_norm, 3 * sum_c / d.dp * std::sqrt(12.0 * d.tp), 1e-4);
}

// Chunked fp64 Σ x²: the sum a straightforward fp64 reduction gives, for chunks that divide the length, that leave a
// remainder and that exceed it.
TEST(TrainGrads, SumOfSquaresInFp64ByChunks) {
  at::Tensor x = torch::cat({torch::ones({1 << 20}), torch::full({1000}, 1e-4f), torch::randn({7})}).reshape({-1, 1});
  const double ref = x.to(at::kDouble).pow(2).sum().item<double>();
  for (int64_t chunk : {int64_t(1) << 10, int64_t(999), int64_t(1) << 24}) {
    const at::Tensor s = sum_of_squares_fp64(x, chunk);
    EXPECT_EQ(s.scalar_type(), at::kDouble);
    EXPECT_NEAR(s.item<double>(), ref, 1e-9 * ref) << chunk;
  }
  EXPECT_EQ(sum_of_squares_fp64(torch::zeros({0})).item<double>(), 0.0);
}

TEST(TrainGrads, NonFiniteLossIsSeenByEveryRank) {
  const auto& d = dims();
  at::Tensor P = torch::zeros({2}, torch::requires_grad());
  P.mutable_grad() = torch::ones({2});
  TrainGrads g({spec("P", P, -1)}, d);
  // Only the last dp replica sees a NaN; after the all-reduce every rank must report non-finite.
  const double l = d.dp_rank == d.dp - 1 ? std::nan("") : 1.0;
  GradStats s = g.reduce(torch::tensor(l), 3);
  EXPECT_FALSE(s.finite);
}

}  // namespace
