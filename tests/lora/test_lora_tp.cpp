// LoRA on a tensor-parallel linear equals LoRA on the full linear (run under mpirun, tp = world): outputs, the
// gradients of A, B and x, dropout masks, the full-factor gather and the merge, for column- and row-parallel bases.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "dist/parallel_dims.h"
#include "dist/tp_ops.h"
#include "lora/inject.h"

using namespace cg;
using namespace cg::lora;

namespace {

dist::ParallelDims& dims() {
  static dist::ParallelDims d = [] {
    int world = 1;
    const char* w = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (w) world = std::atoi(w);
    return dist::make_parallel_dims(world, 1, dist::Backend::Mpi);
  }();
  return d;
}

// A parent module holding one model::Linear, so inject_lora walks it like a model.
struct Holder : torch::nn::Module {
  model::Linear lin{nullptr};
};

struct Case {
  model::ParallelStyle style;
  double dropout;
};

class LoraTp : public ::testing::TestWithParam<Case> {};

TEST_P(LoraTp, MatchesFullLayer) {
  const auto& d = dims();
  const int tp = d.tp, rank = d.tp_rank;
  const Case c = GetParam();
  const int64_t in = 12, out = 8, r = 4;
  LoraSpec spec;
  spec.r = r;
  spec.alpha = 8;
  spec.dropout = c.dropout;
  spec.seed = 11;
  const double s = 2.0;

  // The same full tensors on every rank.
  torch::manual_seed(123);
  at::Tensor W = torch::randn({out, in});     // (out, in)
  at::Tensor B = torch::randn({out, r});      // (out, r)
  at::Tensor x = torch::randn({3, 5, in});    // (B, T, in)
  at::Tensor w = torch::randn({3, 5, out});   // upstream gradient of y

  // Serial reference: the full layer with a tp-1 adapter.
  LoraAdapter ref("model.layers.0.mlp.up_proj", in, out, Split::None, spec, nullptr,
                  make_dropout_gen(99, at::kCPU));
  ref->load_full(ref->full_A(), B);
  at::Tensor xr = x.clone().requires_grad_(true);
  at::Tensor y_ref = torch::matmul(xr, W.t()) + ref->forward(xr);
  (y_ref * w).sum().backward();

  // The parallel layer: a local weight slice, its TP hooks, and an injected adapter.
  const bool col = c.style == model::ParallelStyle::Column;
  auto holder = std::make_shared<Holder>();
  holder->lin = holder->register_module(
      "up_proj", model::Linear("model.layers.0.mlp.up_proj", in, out, c.style, model::TpShape{rank, tp},
                               at::TensorOptions().dtype(at::kFloat)));
  auto& lin = holder->lin;
  {
    at::NoGradGuard g;
    lin->weight.copy_(col ? W.chunk(tp, 0)[rank] : W.chunk(tp, 1)[rank]);
  }
  if (col) lin->pre = [&](const at::Tensor& t) { return dist::copy_to_tp(t, d.tp_comm); };
  else lin->post = [&](const at::Tensor& t) { return dist::reduce_from_tp(t, d.tp_comm); };
  LoraSet set = inject_lora(*holder, spec, {"up_proj"}, d.tp_comm, at::kCPU, make_dropout_gen(99, at::kCPU));
  ASSERT_EQ(set.size(), 1u);
  freeze_base(*holder, set);
  EXPECT_FALSE(lin->weight.requires_grad());
  auto& a = set.entries[0].adapter;
  // Init: the gathered A is the serial A whatever tp.
  EXPECT_TRUE(a->full_A().equal(ref->A.detach()));
  const std::map<std::string, at::Tensor> full = {{"model.layers.0.mlp.up_proj.lora_A.weight", ref->A.detach()},
                                                  {"model.layers.0.mlp.up_proj.lora_B.weight", B}};
  set.load_full(full);
  // params() (what checkpoints save and load per rank) places each local factor in the full one: the full factor
  // narrowed at (shard_dim, shard_start, shard_len) is this rank's; one factor of the two is split at tp > 1.
  int sharded = 0;
  for (const auto& sp : set.params()) {
    const at::Tensor& f = full.at(sp.name);
    EXPECT_EQ(sp.full_shape, f.sizes().vec()) << sp.name;
    const at::Tensor mine = sp.shard_dim < 0 ? f : f.narrow(sp.shard_dim, sp.shard_start, sp.shard_len);
    EXPECT_TRUE(sp.param.detach().equal(mine)) << sp.name << " on rank " << rank;
    sharded += sp.shard_dim >= 0;
  }
  if (tp > 1) EXPECT_EQ(sharded, 1);

  at::Tensor x_in = (col ? x.clone() : x.chunk(tp, -1)[rank].contiguous()).requires_grad_(true);
  at::Tensor y = holder->lin->forward(x_in);  // Column: (.., out_local); Row: (.., out)
  at::Tensor y_expect = col ? y_ref.detach().chunk(tp, -1)[rank] : y_ref.detach();
  EXPECT_TRUE(torch::allclose(y, y_expect, 1e-5, 1e-5)) << (y - y_expect).abs().max().item<double>();
  at::Tensor w_local = col ? w.chunk(tp, -1)[rank] : w;
  (y * w_local).sum().backward();

  at::Tensor dA = ref->A.grad(), dB = ref->B.grad(), dx = xr.grad();
  at::Tensor dA_expect = col ? dA : dA.chunk(tp, 1)[rank];
  at::Tensor dB_expect = col ? dB.chunk(tp, 0)[rank] : dB;
  at::Tensor dx_expect = col ? dx : dx.chunk(tp, -1)[rank];
  EXPECT_TRUE(torch::allclose(a->A.grad(), dA_expect, 1e-4, 1e-5)) << "dA";
  EXPECT_TRUE(torch::allclose(a->B.grad(), dB_expect, 1e-4, 1e-5)) << "dB";
  EXPECT_TRUE(torch::allclose(x_in.grad(), dx_expect, 1e-4, 1e-5)) << "dx";
  EXPECT_FALSE(lin->weight.grad().defined());

  // Full factors gather back; the merge turns base + LoRA into a plain layer with the same output.
  EXPECT_TRUE(set.gather_full().at("model.layers.0.mlp.up_proj.lora_B.weight").equal(B));
  holder->eval();
  at::Tensor y_eval = holder->lin->forward(x_in.detach());
  merge_lora(set);
  EXPECT_FALSE(lin->delta);
  at::Tensor y_merged = holder->lin->forward(x_in.detach());
  EXPECT_TRUE(torch::allclose(y_eval, y_merged, 1e-4, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Styles, LoraTp,
                         ::testing::Values(Case{model::ParallelStyle::Column, 0.0},
                                           Case{model::ParallelStyle::Row, 0.0},
                                           Case{model::ParallelStyle::Column, 0.3},
                                           Case{model::ParallelStyle::Row, 0.3}),
                         [](const auto& info) {
                           return std::string(model::to_string(info.param.style)) +
                                  (info.param.dropout > 0 ? "_dropout" : "");
                         });

}  // namespace
