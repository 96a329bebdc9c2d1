// dist/ without MPI: grid validation, the self comm, TP ops as identities at tp = 1, and vocab-parallel
// cross-entropy at tp = 1 against torch's cross_entropy and against finite differences.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/fmt/fmt.h>

#include "common/blas_threads.h"
#include "common/error.h"
#include "dist/cpu_threads.h"
#include "dist/mpi_comm.h"
#include "dist/parallel_dims.h"
#include "dist/runtime.h"
#include "dist/tp_ops.h"
#include "dist/vocab_parallel_ce.h"

namespace cg::dist {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// An environment of the given variables only (a process started by hand has none of a launcher's).
EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

GridShape resolve_grid(int world, int tp, int dp) { return cg::dist::resolve_grid(world, tp, dp, env_of({})); }

TEST(ResolveGrid, ValidLayouts) {
  EXPECT_EQ(resolve_grid(8, 2, 0).dp, 4);  // dp = 0: world / tp
  EXPECT_EQ(resolve_grid(8, 2, 4).dp, 4);
  EXPECT_EQ(resolve_grid(8, 8, 1).tp, 8);
  EXPECT_EQ(resolve_grid(1, 1, 0).dp, 1);
  EXPECT_EQ(resolve_grid(6, 3, 0).dp, 2);
}

TEST(ResolveGrid, ErrorsNameTheNumbers) {
  EXPECT_NE(error_of([] { resolve_grid(8, 3, 0); }).find("tp 3 does not divide world 8"), std::string::npos);
  // The fix offered is both ways round: the ranks the grid needs, or the dp that fits the world (8 / tp 2 = 4).
  EXPECT_NE(error_of([] { resolve_grid(8, 2, 2); })
                .find("tp 2 x dp 2 = 4 ranks but the job has world 8; launch 4 ranks (mpirun -np 4 ...) or set "
                      "parallel.dp=4"),
            std::string::npos);
  EXPECT_NE(error_of([] { resolve_grid(6, 3, 1); }).find("launch 3 ranks (mpirun -np 3 ...) or set parallel.dp=2"),
            std::string::npos);
  EXPECT_NE(error_of([] { resolve_grid(4, 0, 0); }).find("parallel.tp 0"), std::string::npos);
  EXPECT_NE(error_of([] { resolve_grid(4, 2, -1); }).find("parallel.dp -1"), std::string::npos);
  EXPECT_NE(error_of([] { resolve_grid(2, 4, 0); }).find("tp 4 does not divide world 2; launch a multiple of 4 ranks "
                                                           "(mpirun -np 4 ...), or set parallel.tp to a divisor of 2"),
            std::string::npos);
  // configs/tiny.yaml (tp 2) started without a launcher: the error says so, and names both launchers.
  EXPECT_NE(error_of([] { resolve_grid(1, 2, 0); })
                .find("tp 2 does not divide world 1 (one process: not started by mpirun or srun); launch a multiple "
                      "of 2 ranks (mpirun -np 2 ..., or under Slurm srun --ntasks=2 ...)"),
            std::string::npos);
}

// The grid's errors say which launcher started the process, from the variables each one sets (as a Slurm 23 srun
// step, a batch script and OpenMPI 4's mpirun set them), and what to change in that launcher.
TEST(ResolveGrid, ErrorsSayWhatToChangeInTheLauncherThatStartedTheJob) {
  const auto error = [](int world, int tp, int dp, std::map<std::string, std::string> vars) {
    return error_of([&] { cg::dist::resolve_grid(world, tp, dp, env_of(std::move(vars))); });
  };
  // srun --ntasks=1 in a job script (the task's own variables, and the job's).
  const std::string srun1 = error(1, 2, 0, {{"SLURM_JOB_ID", "77"}, {"SLURM_NTASKS", "1"},
                                            {"SLURM_STEP_NUM_TASKS", "1"}, {"SLURM_PROCID", "0"}});
  EXPECT_NE(srun1.find("tp 2 does not divide world 1 (started by srun with 1 task); launch a multiple of 2 ranks "
                       "(srun --ntasks=2 ..., in a Slurm job of at least 2 tasks (#SBATCH --nodes and "
                       "--ntasks-per-node)), or set parallel.tp to a divisor of 1"),
            std::string::npos) << srun1;
  EXPECT_EQ(srun1.find("mpirun"), std::string::npos) << srun1;
  // srun with 3 tasks, parallel.dp=1 of tp 2: the dp error says the same.
  EXPECT_NE(error(3, 3, 2, {{"SLURM_JOB_ID", "77"}, {"SLURM_STEP_NUM_TASKS", "3"}})
                .find("tp 3 x dp 2 = 6 ranks but the job has world 3 (started by srun with 3 tasks); launch 6 ranks "
                      "(srun --ntasks=6 ..., in a Slurm job of at least 6 tasks"),
            std::string::npos);
  // srun started 2 tasks that MPI did not join (each a world of 1): asking for 2 tasks again would not help.
  const std::string unjoined = error(1, 2, 0, {{"SLURM_JOB_ID", "77"}, {"SLURM_STEP_NUM_TASKS", "2"}});
  EXPECT_NE(unjoined.find("(srun started 2 tasks, but MPI sees a world of 1: srun's MPI plugin does not match this MPI "
                          "library); launch a multiple of 2 ranks (srun --mpi=pmix --ntasks=2 ..., or the --mpi type "
                          "your MPI was built for: srun --mpi=list)"),
            std::string::npos) << unjoined;
  // A command in the job script itself, without srun: the batch step has the job's variables but no step's.
  EXPECT_NE(error(1, 2, 0, {{"SLURM_JOB_ID", "77"}, {"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}})
                .find("tp 2 does not divide world 1 (one process of Slurm job 77, not started by srun); launch a "
                      "multiple of 2 ranks (srun --ntasks=2 ... in the job script, or launch/run.sh --srun, in a "
                      "Slurm job of at least 2 tasks"),
            std::string::npos);
  // mpirun inside a Slurm job: its ranks have the step variables of the srun that started mpirun's daemons too.
  const std::string mpirun_in_job = error(1, 2, 0, {{"OMPI_COMM_WORLD_SIZE", "1"}, {"SLURM_JOB_ID", "77"},
                                                    {"SLURM_STEP_NUM_TASKS", "1"}});
  EXPECT_NE(mpirun_in_job.find("tp 2 does not divide world 1 (started by mpirun); launch a multiple of 2 ranks "
                               "(mpirun -np 2 ..., in a Slurm job of at least 2 tasks"),
            std::string::npos) << mpirun_in_job;
  EXPECT_EQ(mpirun_in_job.find("srun --ntasks"), std::string::npos) << mpirun_in_job;
  EXPECT_NE(error(3, 2, 0, {{"OMPI_COMM_WORLD_SIZE", "3"}})
                .find("tp 2 does not divide world 3 (started by mpirun); launch a multiple of 2 ranks (mpirun -np 2 "
                      "...), or set parallel.tp to a divisor of 3"),
            std::string::npos);
  // A count that is no count is not a launcher's, nor is one that only starts with digits.
  for (const char* junk : {"x", "2x", "0", "-2", ""})
    EXPECT_NE(error(1, 2, 0, {{"SLURM_STEP_NUM_TASKS", junk}}).find("(one process: not started by mpirun or srun)"),
              std::string::npos) << "SLURM_STEP_NUM_TASKS=" << junk;
}

TEST(GpuForLocalRank, NodeGpusOrOneBoundGpuPerRank) {
  EXPECT_EQ(gpu_for_local_rank(0, 1, 1), 0);
  EXPECT_EQ(gpu_for_local_rank(5, 8, 8), 5);   // mpirun: every rank sees the node's 8 GPUs
  EXPECT_EQ(gpu_for_local_rank(3, 4, 8), 3);   // fewer ranks than GPUs
  EXPECT_EQ(gpu_for_local_rank(7, 8, 1), 0);   // Slurm --gpus-per-task=1: each rank sees its own GPU as device 0
  EXPECT_NE(error_of([] { gpu_for_local_rank(4, 8, 4); }).find("local rank 4 of 8 ranks on this node has no GPU: "
                                                               "the process sees 4 GPU(s); launch at most 4 ranks"),
            std::string::npos);
  EXPECT_NE(error_of([] { gpu_for_local_rank(0, 2, 0); }).find("sees no GPU"), std::string::npos);
  // model.device=cpu alone does not leave NCCL: the message names the backend too.
  EXPECT_NE(error_of([] { gpu_for_local_rank(0, 2, 0); }).find("model.device=cpu and parallel.backend=mpi"),
            std::string::npos);
  // Bound GPUs differ by PCI bus id; two ranks on one GPU are named (ids unknown: nothing to say).
  EXPECT_EQ(duplicate_gpu_message({"0000:1a:00.0", "0000:1b:00.0", "0000:3d:00.0"}), "");
  EXPECT_NE(duplicate_gpu_message({"0000:1a:00.0", "0000:1b:00.0", "0000:1a:00.0"})
                .find("local ranks 0 and 2 of this node would share GPU 0000:1a:00.0"),
            std::string::npos);
  EXPECT_EQ(duplicate_gpu_message({"", ""}), "");
}

// MpiComm's wait for late ranks, on hand-made nodes: asleep on one node (the extra round costs microseconds there)
// and wherever a node has more threads than cores; polling across nodes that each have a core per thread.
TEST(CollectiveWait, AutoSleepsOnOneNodeOrAnOversubscribedOneAndPollsAcrossFreeNodes) {
  using W = CollectiveWait;
  EXPECT_EQ(resolve_collective_wait(W::Auto, 1, false), W::AsleepFirst);
  EXPECT_EQ(resolve_collective_wait(W::Auto, 1, true), W::AsleepFirst);
  EXPECT_EQ(resolve_collective_wait(W::Auto, 2, false), W::Polling);
  EXPECT_EQ(resolve_collective_wait(W::Auto, 4, true), W::AsleepFirst);
  EXPECT_EQ(resolve_collective_wait(W::Polling, 1, true), W::Polling);  // asked for: kept
  EXPECT_EQ(resolve_collective_wait(W::AsleepFirst, 3, false), W::AsleepFirst);
}

// parallel.mpi_wait's names, both ways; a wrong one names the key and its choices.
TEST(CollectiveWait, ConfigNamesReadBothWaysAndAWrongOneNamesTheChoices) {
  using W = CollectiveWait;
  EXPECT_EQ(collective_wait_from_name("auto"), W::Auto);
  EXPECT_EQ(collective_wait_from_name("sleep"), W::AsleepFirst);
  EXPECT_EQ(collective_wait_from_name("poll"), W::Polling);
  for (W w : {W::Auto, W::AsleepFirst, W::Polling}) EXPECT_EQ(collective_wait_from_name(collective_wait_name(w)), w);
  EXPECT_NE(error_of([] { collective_wait_from_name("spin"); }).find("parallel.mpi_wait 'spin' is not one of auto, "
                                                                     "sleep, poll"),
            std::string::npos);
}

TEST(CollectiveWait, ANodeIsOversubscribedPastItsCores) {
  EXPECT_FALSE(node_oversubscribed(2, 2));  // 2 ranks x 1 thread on 2 cores: the tiny tp 2 run
  EXPECT_TRUE(node_oversubscribed(4, 2));   // 2 ranks x 2 threads on 2 cores
  EXPECT_TRUE(node_oversubscribed(17, 16));
  EXPECT_FALSE(node_oversubscribed(8, 16));
  EXPECT_TRUE(node_oversubscribed(1, 0));  // cores unknown (no affinity mask): the sparing wait
}

TEST(ParallelDims, SingleProcess) {
  ParallelDims d = single_process_dims();
  EXPECT_EQ(d.describe(), "tp 1 x dp 1 (world 1, mpi)");
  ASSERT_TRUE(d.tp_comm && d.dp_comm && d.host_world_comm && d.host_tp_comm && d.host_dp_comm);
  EXPECT_EQ(d.tp_comm->size(), 1);
  EXPECT_EQ(d.dp_comm->rank(), 0);
}

TEST(ParallelDims, BackendNames) {
  EXPECT_EQ(backend_from_name("auto", true), Backend::Nccl);
  EXPECT_EQ(backend_from_name("auto", false), Backend::Mpi);
  EXPECT_EQ(backend_from_name("mpi", true), Backend::Mpi);
  EXPECT_EQ(backend_from_name("nccl", false), Backend::Nccl);
  EXPECT_NE(error_of([] { backend_from_name("gloo", false); }).find("'gloo'"), std::string::npos);
}

TEST(SelfComm, CollectivesAreIdentity) {
  CommPtr c = make_self_comm();
  at::Tensor t = torch::tensor({1.0, -2.0, 3.0});
  c->all_reduce(t, ReduceOp::Sum);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.0, -2.0, 3.0})));
  at::Tensor g = c->all_gather(t.view({3, 1}), 1);
  EXPECT_TRUE(torch::equal(g, t.view({3, 1})));
  EXPECT_NE(g.data_ptr(), t.data_ptr());  // a new tensor, as with a real group
  c->broadcast(t, 0);
  EXPECT_THROW(c->broadcast(t, 1), c10::Error);
  c->barrier();
}

TEST(TpOps, SharedCopyKeepsNothingAfterItsLastReader) {
  // Three readers of one input under autograd: the first makes the copy, the other two get that very tensor, and
  // then the hook holds no reference (an activation must not outlive its layer through it).
  CommPtr c = make_self_comm();
  const auto hook = shared_copy_to_tp(c, 3);
  at::Tensor x = torch::randn({2, 4}).requires_grad_();
  const auto base = x.use_count();
  at::Tensor a = hook(x);
  EXPECT_GT(x.use_count(), base + 1);  // held for the readers to come (a itself is x at tp 1)
  at::Tensor b = hook(x), d = hook(x);
  EXPECT_TRUE(a.is_same(b) && b.is_same(d));
  a.reset(), b.reset(), d.reset();
  EXPECT_EQ(x.use_count(), base);
  // A new input (or the same one changed in place) is copied afresh; without autograd nothing is held at all.
  at::Tensor y = torch::randn({2, 4});
  {
    at::NoGradGuard g;
    at::Tensor e = hook(y);
    e.reset();
    EXPECT_EQ(y.use_count(), 1);
  }
}

// A group of two ranks whose other rank always holds what this one does: a sum all-reduce doubles. It stands in for
// a tp group where copy_to_tp is a real autograd op (at tp 1 it is the identity, which no test can tell apart).
struct TwinComm : Comm {
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string backend() const override { return "twin"; }
  void all_reduce(at::Tensor& t, ReduceOp op) override {
    ASSERT_EQ(op, ReduceOp::Sum);
    t.mul_(2);
  }
  at::Tensor all_gather(const at::Tensor&, int64_t) override { throw std::logic_error("not used"); }
  void broadcast(at::Tensor&, int) override { throw std::logic_error("not used"); }
  void barrier() override {}
};

TEST(TpOps, SharedCopyOfAnInputChangedInPlaceIsMadeAfresh) {
  // A reader after the shared input was changed in place gets a copy of its own, whose backward all-reduces the
  // gradient (x2 here). The earlier reader's copy is a view of the input as it was: torch refuses a backward through
  // it once the input changed (the custom backward would be lost), so handing it on would fail the step.
  const CommPtr twin = std::make_shared<TwinComm>();
  const auto hook = shared_copy_to_tp(twin, 2);
  at::Tensor w = torch::ones({3}, torch::kDouble).requires_grad_();
  at::Tensor x = w * 1;
  at::Tensor a = hook(x);
  x.mul_(3);
  at::Tensor b = hook(x);
  b.sum().backward();
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({3}, 6.0, torch::kDouble))) << w.grad();  // 2 (all-reduce) x 3
  // The control: two readers of an unchanged input share one copy, and backward all-reduces their sum once.
  w.mutable_grad().reset();
  at::Tensor y = w * 1;
  at::Tensor c = hook(y), d = hook(y);
  EXPECT_TRUE(c.is_same(d));
  (c + d).sum().backward();
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({3}, 4.0, torch::kDouble))) << w.grad();
}

TEST(TpOps, IdentityAtTp1) {
  CommPtr c = make_self_comm();
  at::Tensor x = torch::randn({2, 4}, torch::kDouble).requires_grad_();
  at::Tensor w = torch::randn({2, 4}, torch::kDouble);
  at::Tensor y = gather_from_tp(scatter_to_tp(reduce_from_tp(copy_to_tp(x, c), c), c), c);
  EXPECT_TRUE(torch::equal(y, x));
  (y * w).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), w));  // every backward is the identity too
}

TEST(TpOps, NullCommIsAnError) {
  at::Tensor x = torch::ones({2});
  EXPECT_THROW(copy_to_tp(x, nullptr), c10::Error);
}

// Logits, targets with ignored entries, and per-token weights for the reduction to a scalar.
struct CeCase {
  at::Tensor logits, targets, weights;
};
CeCase make_case(torch::Dtype dtype, int64_t n = 9, int64_t v = 12) {
  torch::manual_seed(7);
  CeCase c;
  c.logits = (3 * torch::randn({n, v}, torch::kDouble)).to(dtype);
  c.targets = torch::randint(0, v, {n}, torch::kLong);
  c.targets[1] = kIgnoreIndex;
  c.targets[5] = kIgnoreIndex;
  c.targets[2] = v - 1;  // the edges of the vocabulary
  c.targets[3] = 0;
  c.weights = torch::rand({n}, torch::kDouble).to(dtype) + 0.5;
  return c;
}

void expect_matches_torch(torch::Dtype dtype) {
  CeCase c = make_case(dtype);
  at::Tensor z_ref = c.logits.clone().requires_grad_();
  namespace F = torch::nn::functional;
  at::Tensor ref = F::cross_entropy(z_ref, c.targets,
                                    F::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(kIgnoreIndex));
  (ref * c.weights).sum().backward();

  at::Tensor z = c.logits.clone().requires_grad_();
  at::Tensor loss = vocab_parallel_cross_entropy(z, c.targets, 0, make_self_comm());
  (loss * c.weights).sum().backward();
  EXPECT_EQ(loss.scalar_type(), dtype);
  EXPECT_EQ(loss[1].item<double>(), 0.0);  // ignored target: zero loss
  EXPECT_TRUE(torch::allclose(loss, ref, 1e-6, 1e-6)) << loss << ref;
  EXPECT_TRUE(torch::allclose(z.grad(), z_ref.grad(), 1e-6, 1e-6)) << z.grad() - z_ref.grad();
  EXPECT_TRUE(torch::equal(z.grad()[5], torch::zeros({12}, dtype)));  // ignored row: zero gradient
}

TEST(VocabParallelCe, MatchesTorchFp64) { expect_matches_torch(torch::kDouble); }
TEST(VocabParallelCe, MatchesTorchFp32) { expect_matches_torch(torch::kFloat); }

TEST(VocabParallelCe, HandComputedUniformLogits) {
  // Equal logits over V = 4: loss = log 4; gradient = 1/4 - onehot.
  at::Tensor z = torch::zeros({1, 4}, torch::kDouble).requires_grad_();
  at::Tensor loss = vocab_parallel_cross_entropy(z, torch::tensor({2}, torch::kLong), 0, make_self_comm());
  EXPECT_NEAR(loss.item<double>(), std::log(4.0), 1e-12);
  loss.sum().backward();
  EXPECT_TRUE(torch::allclose(z.grad(), torch::tensor({{0.25, 0.25, -0.75, 0.25}}, torch::kDouble)));
}

TEST(VocabParallelCe, BackwardMatchesFiniteDifferences) {
  CeCase c = make_case(torch::kDouble, 6, 7);
  CommPtr self = make_self_comm();
  at::Tensor z = c.logits.clone().requires_grad_();
  (vocab_parallel_cross_entropy(z, c.targets, 0, self) * c.weights).sum().backward();
  auto f = [&](const at::Tensor& zz) {
    return (vocab_parallel_cross_entropy(zz, c.targets, 0, self) * c.weights).sum().item<double>();
  };
  const double h = 1e-6;
  at::Tensor fd = torch::zeros_like(c.logits);
  for (int64_t i = 0; i < c.logits.size(0); ++i)
    for (int64_t j = 0; j < c.logits.size(1); ++j) {
      at::Tensor zp = c.logits.clone(), zm = c.logits.clone();
      zp[i][j] += h;
      zm[i][j] -= h;
      fd[i][j] = (f(zp) - f(zm)) / (2 * h);
    }
  EXPECT_TRUE(torch::allclose(z.grad(), fd, 1e-6, 1e-7)) << z.grad() - fd;
}

TEST(VocabParallelCe, Bf16LogitsComputeInFloat) {
  CeCase c = make_case(torch::kFloat);
  at::Tensor z = c.logits.to(torch::kBFloat16).requires_grad_();
  at::Tensor loss = vocab_parallel_cross_entropy(z, c.targets, 0, make_self_comm());
  EXPECT_EQ(loss.scalar_type(), torch::kFloat);
  loss.sum().backward();
  EXPECT_EQ(z.grad().scalar_type(), torch::kBFloat16);
  namespace F = torch::nn::functional;
  at::Tensor ref = F::cross_entropy(z.detach().to(torch::kFloat), c.targets,
                                    F::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(kIgnoreIndex));
  EXPECT_TRUE(torch::allclose(loss, ref, 1e-5, 1e-5));
}

TEST(VocabParallelCe, TargetOutsideVocabularyIsAnError) {
  at::Tensor z = torch::zeros({2, 4});
  EXPECT_THROW(vocab_parallel_cross_entropy(z, torch::tensor({1, 4}, torch::kLong), 0, make_self_comm()), c10::Error);
  EXPECT_THROW(vocab_parallel_cross_entropy(z, torch::tensor({-1, 0}, torch::kLong), 0, make_self_comm()),
               c10::Error);
  EXPECT_THROW(vocab_parallel_cross_entropy(z, torch::tensor({1}, torch::kLong), 0, make_self_comm()), c10::Error);
}

// Both pools follow set_cpu_threads (OpenBLAS is linked into libtorch here; the check needs it present), and a
// user's OPENBLAS_NUM_THREADS keeps OpenBLAS's pool where it is.
TEST(CpuThreads, SetsTorchAndOpenBlasTogether) {
  const int before = openblas_threads();
  if (before < 0) GTEST_SKIP() << "no OpenBLAS in this process";
  unsetenv("OPENBLAS_NUM_THREADS");
  for (int n : {1, 3, 2}) {
    set_cpu_threads(n);
    EXPECT_EQ(at::get_num_threads(), n);
    EXPECT_EQ(openblas_threads(), n);
  }
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  set_cpu_threads(3);
  EXPECT_EQ(at::get_num_threads(), 3);
  EXPECT_EQ(openblas_threads(), 2) << "OPENBLAS_NUM_THREADS is the user's: left alone";
  unsetenv("OPENBLAS_NUM_THREADS");
  set_cpu_threads(1);
  EXPECT_THROW(set_cpu_threads(0), std::exception);
}

// After set_cpu_threads, freeing and allocating the same few MB blocks again (a step's activations) finds them in
// the heap: no page faults past the first round. With glibc's defaults each round faulted in every page again
// (~9,400 faults a round for these 37 MB, measured by the same loop in C).
TEST(CpuThreads, FreedActivationsStayInTheHeap) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "glibc's malloc only";
#endif
  set_cpu_threads(1);
  auto faults = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
  };
  const size_t sizes[] = {4 << 20, 8 << 20, 3 << 20, 16 << 20, 6 << 20};
  long later = 0;
  for (int round = 0; round < 4; ++round) {
    const long f0 = faults();
    std::vector<void*> blocks;
    for (size_t n : sizes) {
      blocks.push_back(std::malloc(n));
      std::memset(blocks.back(), 1, n);
    }
    for (void* b : blocks) {
      EXPECT_EQ(static_cast<volatile char*>(b)[0], 1);  // a read, so the compiler keeps the blocks
      std::free(b);
    }
    if (round > 0) later += faults() - f0;
  }
  EXPECT_LT(later, 100) << "freed blocks went back to the kernel and were faulted in again";
}

TEST(CpuThreads, CountFromConfigThenEnvThenCores) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(cpu_threads(cores, 2), cores);
  EXPECT_EQ(cpu_threads(1, 2), 1);
  try {  // train.threads beyond the hardware: refused, naming the key and the limit
    cpu_threads(cores + 1, 1);
    ADD_FAILURE() << "train.threads above the core count was accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("train.threads={} is more than this machine's {} hardware "
                                                     "threads: set train.threads to at most {}", cores + 1, cores,
                                                     cores)), std::string::npos) << e.what();
  }
  setenv("OMP_NUM_THREADS", std::to_string(cores).c_str(), 1);
  EXPECT_EQ(cpu_threads(0, 2), cores);
  setenv("OMP_NUM_THREADS", std::to_string(4 * cores).c_str(), 1);
  EXPECT_EQ(cpu_threads(0, 2), cores) << "an OMP_NUM_THREADS beyond the hardware is cut to it";
  setenv("OMP_NUM_THREADS", "1", 1);  // CI's and the tests' setting: one thread, whatever the cores
  EXPECT_EQ(cpu_threads(0, 1), 1);
  setenv("OMP_NUM_THREADS", "junk", 1);
  EXPECT_EQ(cpu_threads(0, 1), cores);
  EXPECT_EQ(cpu_threads(0, 1000), 1);
  unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(cpu_threads(0, 2), std::max(1, cores / 2));
}

}  // namespace
}  // namespace cg::dist

// A process started without a launcher (a tool run by hand) is an MPI singleton that forks no daemon: OpenMPI's
// default forks an orted at MPI_Init, which lives as a child until MPI_Finalize.
TEST(Runtime, ASingletonForksNoDaemon) {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"})
    if (std::getenv(v)) GTEST_SKIP() << "started by a launcher (" << v << " is set)";
  int argc = 0;
  char** argv = nullptr;
  const cg::dist::Runtime& rt = cg::dist::init_runtime(&argc, &argv);
  EXPECT_EQ(rt.world, 1);
  std::string children;  // "pid (comm) " of each process whose parent is this one
  const std::string me = std::to_string(::getpid());
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "stat");
    std::string pid, comm, state, ppid;
    if (!(in >> pid >> comm >> state >> ppid)) continue;  // not a process, or gone
    if (ppid == me) children += pid + " " + comm + " ";
  }
  EXPECT_EQ(children, "") << "children after MPI_Init";
}
