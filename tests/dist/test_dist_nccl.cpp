// NcclComm under mpirun, one GPU per rank: the same hand-computed collectives as test_dist_mpi on CUDA tensors,
// TP ops and vocab-parallel cross-entropy on the GPU. Skips (every rank alike) without enough CUDA devices or
// with a CPU-only libtorch, so the binary builds and passes in CI.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dist/mpi_comm.h"
#include "dist/nccl_comm.h"
#include "dist/parallel_dims.h"
#include "dist/runtime.h"
#include "dist/tp_ops.h"
#include "dist/vocab_parallel_ce.h"

namespace cg::dist {
namespace {

// Whether every rank has its own GPU and libtorch can make CUDA tensors (agreed over MPI, so all ranks skip alike).
bool gpus_ready() {
  static int ready = -1;
  if (ready < 0) {
    const Runtime& rt = runtime();
    const bool mine = nccl_compiled() && cuda_device_count() > rt.local_rank && at::hasCUDA();
    at::Tensor t = torch::tensor({int(mine)}, torch::kInt);
    make_mpi_world_comm()->all_reduce(t, ReduceOp::Min);
    ready = t.item<int>();
  }
  return ready == 1;
}

#define SKIP_WITHOUT_GPUS()                                                                                   \
  if (!gpus_ready())                                                                                          \
  GTEST_SKIP() << "needs one CUDA device per rank (found " << cuda_device_count() << ") and a CUDA libtorch " \
               << "(hasCUDA " << at::hasCUDA() << ")"

ParallelDims& grid() {
  static ParallelDims d = make_parallel_dims(runtime().world, 1, Backend::Nccl);
  return d;
}

torch::Device gpu() { return torch::Device(torch::kCUDA, runtime().local_rank); }

TEST(NcclComm, AllReduceSumOfRankPlusOne) {
  SKIP_WITHOUT_GPUS();
  CommPtr c = grid().tp_comm;
  const int n = c->size(), r = c->rank();
  EXPECT_EQ(c->backend(), "nccl");
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kInt, torch::kLong, torch::kBFloat16, torch::kHalf}) {
    at::Tensor t = torch::full({2, 3}, r + 1, torch::TensorOptions(dtype).device(gpu()));
    c->all_reduce(t);
    EXPECT_TRUE(torch::equal(t.cpu(), torch::full({2, 3}, n * (n + 1) / 2, dtype))) << dtype;
  }
  at::Tensor mx = torch::tensor({double(r), -double(r)}, torch::TensorOptions(torch::kDouble).device(gpu()));
  c->all_reduce(mx, ReduceOp::Max);
  EXPECT_TRUE(torch::equal(mx.cpu(), torch::tensor({double(n - 1), 0.0}, torch::kDouble)));
}

TEST(NcclComm, AllGatherAndBroadcast) {
  SKIP_WITHOUT_GPUS();
  CommPtr c = grid().tp_comm;
  const int n = c->size(), r = c->rank();
  at::Tensor x = torch::arange(24, torch::kDouble).view({2, 3, 4}) + 1000 * r;
  std::vector<at::Tensor> parts;
  for (int q = 0; q < n; ++q) parts.push_back(torch::arange(24, torch::kDouble).view({2, 3, 4}) + 1000 * q);
  for (int64_t dim : {0, 1, 2}) {
    at::Tensor g = c->all_gather(x.to(gpu()), dim);
    EXPECT_TRUE(torch::equal(g.cpu(), torch::cat(parts, dim))) << "dim " << dim;
  }
  at::Tensor b = torch::full({5}, r * 7, torch::TensorOptions(torch::kLong).device(gpu()));
  c->broadcast(b, n - 1);
  c->barrier();
  EXPECT_TRUE(torch::equal(b.cpu(), torch::full({5}, (n - 1) * 7, torch::kLong)));
}

TEST(NcclComm, RejectsCpuTensors) {
  SKIP_WITHOUT_GPUS();
  at::Tensor t = torch::ones({2});
  EXPECT_THROW(grid().tp_comm->all_reduce(t), c10::Error);
}

TEST(NcclComm, TpOpsAndVocabParallelCeMatchSerial) {
  SKIP_WITHOUT_GPUS();
  ParallelDims& d = grid();
  const int t = d.tp, k = d.tp_rank;
  // copy forward identity / backward all-reduce; reduce forward all-reduce.
  at::Tensor x = torch::ones({2, 3}, torch::TensorOptions(torch::kFloat).device(gpu())).requires_grad_();
  copy_to_tp(x, d.tp_comm).backward(torch::full({2, 3}, k + 1.0f, torch::TensorOptions().device(gpu())));
  EXPECT_TRUE(torch::equal(x.grad().cpu(), torch::full({2, 3}, t * (t + 1) / 2.0f)));
  at::Tensor y = reduce_from_tp(torch::full({2}, k + 1.0f, torch::TensorOptions().device(gpu())), d.tp_comm);
  EXPECT_TRUE(torch::equal(y.cpu(), torch::full({2}, t * (t + 1) / 2.0f)));

  const int64_t n = 9, v = 8 * t, v_local = 8, start = k * v_local;
  torch::manual_seed(11);
  at::Tensor full = 3 * torch::randn({n, v}, torch::kDouble);
  at::Tensor targets = torch::randint(0, v, {n}, torch::kLong);
  targets[1] = kIgnoreIndex;
  namespace F = torch::nn::functional;
  at::Tensor z_ref = full.clone().requires_grad_();
  at::Tensor ref = F::cross_entropy(z_ref, targets,
                                    F::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(kIgnoreIndex));
  ref.sum().backward();
  at::Tensor z = full.narrow(1, start, v_local).to(gpu()).requires_grad_();
  at::Tensor loss = vocab_parallel_cross_entropy(z, targets.to(gpu()), start, d.tp_comm);
  loss.sum().backward();
  EXPECT_TRUE(torch::allclose(loss.cpu(), ref, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(z.grad().cpu(), z_ref.grad().narrow(1, start, v_local), 1e-6, 1e-6));
}

}  // namespace
}  // namespace cg::dist
