// dist/ under mpirun (1, 2 or 4 ranks): each collective with rank-dependent inputs and hand-computed results,
// the tp × dp grid, TP autograd ops forward and backward, and vocab-parallel cross-entropy == torch's at tp = 2/4.
// Every rank runs the same collectives in the same order; values are checked with EXPECT after the collectives,
// so a failed check never leaves a peer waiting.
#include <gtest/gtest.h>
// The C API only, as in dist/.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <spdlog/fmt/ranges.h>
#include <torch/torch.h>

#include <time.h>

#include <chrono>
#include <functional>
#include <limits>
#include <thread>

#include "common/error.h"
#include "common/input_error.h"
#include "dist/mpi_comm.h"
#include "dist/parallel_dims.h"
#include "dist/runtime.h"
#include "dist/tp_ops.h"
#include "dist/vocab_parallel_ce.h"

namespace cg::dist {
namespace {

CommPtr world() {
  static CommPtr w = make_mpi_world_comm();
  return w;
}

// The tp sizes this world can be split into with tp ranks adjacent: 1, 2, ..., world (divisors only).
std::vector<int> tp_sizes() {
  std::vector<int> out;
  for (int tp = 1; tp <= world()->size(); ++tp)
    if (world()->size() % tp == 0) out.push_back(tp);
  return out;
}

TEST(Runtime, MatchesWorldComm) {
  const Runtime& rt = runtime();
  EXPECT_EQ(rt.rank, world()->rank());
  EXPECT_EQ(rt.world, world()->size());
  EXPECT_EQ(world()->backend(), "mpi");
  // mpirun on one machine: every rank shares the node.
  EXPECT_EQ(rt.local_size, rt.world);
  EXPECT_EQ(rt.local_rank, rt.rank);
}

// OpenMPI's own blocking waits (those outside MpiComm's collectives) give the core away while they poll:
// init_runtime sets mpi_yield_when_idle, which OpenMPI turns on by itself only on an oversubscribed node. Read back
// from OpenMPI through the MPI tool interface.
TEST(Runtime, OpenMpiYieldsTheCoreWhenIdle) {
#ifndef OPEN_MPI
  GTEST_SKIP() << "OpenMPI's setting";
#else
  int provided = 0;
  ASSERT_EQ(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
  int index = -1, count = 0;
  int yield = 0;  // OpenMPI writes a bool cvar as one byte (MPI_C_BOOL): the rest stays 0
  ASSERT_EQ(MPI_T_cvar_get_index("mpi_yield_when_idle", &index), MPI_SUCCESS);
  MPI_T_cvar_handle handle{};
  ASSERT_EQ(MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count), MPI_SUCCESS);
  ASSERT_EQ(count, 1);
  EXPECT_EQ(MPI_T_cvar_read(handle, &yield), MPI_SUCCESS);
  MPI_T_cvar_handle_free(&handle);
  MPI_T_finalize();
  EXPECT_EQ(yield, 1);
#endif
}

// Every rank throws when one rank's text is not rank 0's, with the lowest such rank's own description of it (long
// texts too: the broadcast is chunked by length); the same text everywhere passes on every rank. The error is an
// InputError, so that run_main says it once, from rank 0 (each rank said it).
TEST(Runtime, CheckSameAsRank0FailsOnEveryRankNamingTheFirstThatDiffers) {
  const auto& rt = cg::dist::runtime();
  const std::string big(3 << 20, 'x');
  EXPECT_NO_THROW(cg::dist::check_same_as_rank0(big, "config", [](const std::string&, const std::string&) {
    return std::string("never asked");
  }));
  if (rt.world < 2) GTEST_SKIP() << "needs 2 ranks";
  const int odd = rt.world - 1;  // the last rank and, at 4 ranks, also rank 2 differ: rank 2 is named
  const int first = rt.world >= 4 ? 2 : odd;
  const std::string mine = big + (rt.rank == odd || (rt.world >= 4 && rt.rank == 2) ? "y" + std::to_string(rt.rank) : "");
  try {
    cg::dist::check_same_as_rank0(mine, "config", [&](const std::string& first_text, const std::string& text) {
      return "asked on rank " + std::to_string(rt.rank) + " (" + std::to_string(first_text.size()) + " vs " +
             std::to_string(text.size()) + " bytes)";
    });
    ADD_FAILURE() << "no throw on rank " << rt.rank;
  } catch (const cg::InputError& e) {
    const std::string want = "rank " + std::to_string(first) + " was given another config than rank 0: asked on rank " +
                             std::to_string(first) + " (" + std::to_string(big.size()) + " vs " +
                             std::to_string(big.size() + 2) + " bytes)";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
}

// rank0_text: rank 0's text on every rank, made there alone; rank 0's error on every rank, its own exception there and
// an InputError elsewhere (run_main says it once, from rank 0: each rank said it).
TEST(Runtime, Rank0TextGivesRank0sTextOrItsErrorOnEveryRank) {
  const auto& rt = cg::dist::runtime();
  int made = 0;
  EXPECT_EQ(cg::dist::rank0_text([&] { return std::to_string(++made) + " made on rank " + std::to_string(rt.rank); }),
            "1 made on rank 0");
  EXPECT_EQ(made, rt.rank == 0 ? 1 : 0);
  struct Rank0Own : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  try {
    cg::dist::rank0_text([]() -> std::string { throw Rank0Own("shards/x.csv does not exist; run cgprep"); });
    ADD_FAILURE() << "no throw on rank " << rt.rank;
  } catch (const Rank0Own& e) {
    EXPECT_EQ(rt.rank, 0);
    EXPECT_STREQ(e.what(), "shards/x.csv does not exist; run cgprep");
  } catch (const cg::InputError& e) {
    EXPECT_NE(rt.rank, 0);
    EXPECT_STREQ(e.what(), "shards/x.csv does not exist; run cgprep");
  }
}

TEST(MpiComm, AllReduceSumOfRankPlusOneEveryDtype) {
  const int n = world()->size(), r = world()->rank();
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kInt, torch::kLong, torch::kBFloat16, torch::kHalf}) {
    at::Tensor t = torch::full({2, 3}, r + 1, dtype);
    world()->all_reduce(t, ReduceOp::Sum);
    EXPECT_EQ(t.scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(t, torch::full({2, 3}, n * (n + 1) / 2, dtype))) << dtype << t;
  }
}

TEST(MpiComm, AllReducePerElementAndMaxMin) {
  const int n = world()->size(), r = world()->rank();
  at::Tensor t = torch::arange(5, torch::kLong) * r;  // element i: i * r  ->  i * n(n-1)/2
  world()->all_reduce(t);
  at::Tensor big = torch::full({3}, 1e15 + r, torch::kDouble);  // exact in double, not in float
  world()->all_reduce(big);
  at::Tensor mx = torch::tensor({double(r), -double(r)});
  at::Tensor mn = mx.clone();
  world()->all_reduce(mx, ReduceOp::Max);
  world()->all_reduce(mn, ReduceOp::Min);
  EXPECT_TRUE(torch::equal(t, torch::arange(5, torch::kLong) * (n * (n - 1) / 2)));
  EXPECT_EQ(big[2].item<double>(), n * 1e15 + n * (n - 1) / 2);
  EXPECT_TRUE(torch::equal(mx, torch::tensor({double(n - 1), 0.0})));
  EXPECT_TRUE(torch::equal(mn, torch::tensor({0.0, -double(n - 1)})));
}

TEST(MpiComm, AllReduceRejectsNonContiguous) {
  at::Tensor t = torch::zeros({4, 4}).t();
  EXPECT_THROW(world()->all_reduce(t), c10::Error);  // before any MPI call, on every rank alike
}

// Rank r's (2, 3) block: value 16 r + 4 i + j (small integers, exact in bf16).
at::Tensor block(int r, torch::Dtype dtype) {
  return (torch::arange(2, torch::kLong).view({2, 1}) * 4 + torch::arange(3, torch::kLong) + 16 * r).to(dtype);
}

TEST(MpiComm, AllGatherDim0And1) {
  const int n = world()->size(), r = world()->rank();
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kInt, torch::kLong, torch::kBFloat16}) {
    at::Tensor g0 = world()->all_gather(block(r, dtype), 0);  // (2n, 3)
    at::Tensor g1 = world()->all_gather(block(r, dtype), 1);  // (2, 3n)
    at::Tensor gl = world()->all_gather(block(r, dtype), -1);
    ASSERT_EQ(g0.sizes(), (std::vector<int64_t>{2 * n, 3}));
    ASSERT_EQ(g1.sizes(), (std::vector<int64_t>{2, 3 * n}));
    for (int q = 0; q < n; ++q)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) {
          EXPECT_EQ(g0[2 * q + i][j].item<double>(), 16 * q + 4 * i + j);
          EXPECT_EQ(g1[i][3 * q + j].item<double>(), 16 * q + 4 * i + j);
        }
    EXPECT_TRUE(torch::equal(gl, g1));
  }
}

TEST(MpiComm, AllGatherMiddleDimOfNonContiguous) {
  const int n = world()->size(), r = world()->rank();
  at::Tensor x = torch::arange(24, torch::kDouble).view({2, 3, 4}).transpose(1, 2) + 1000 * r;  // (2, 4, 3)
  at::Tensor g = world()->all_gather(x, 1);                                                      // (2, 4n, 3)
  std::vector<at::Tensor> parts;
  for (int q = 0; q < n; ++q)
    parts.push_back(torch::arange(24, torch::kDouble).view({2, 3, 4}).transpose(1, 2) + 1000 * q);
  EXPECT_TRUE(torch::equal(g, torch::cat(parts, 1)));
}

TEST(MpiComm, BroadcastFromLastRank) {
  const int n = world()->size(), r = world()->rank();
  at::Tensor l = torch::full({4}, r * 7, torch::kLong);
  at::Tensor d = torch::full({2, 2}, 0.5 + r, torch::kDouble);
  at::Tensor f = torch::full({3}, 1.25f * r, torch::kFloat);
  at::Tensor h = torch::full({3}, r, torch::kBFloat16);
  world()->broadcast(l, n - 1);
  world()->broadcast(d, n - 1);
  world()->broadcast(f, n - 1);
  world()->broadcast(h, n - 1);
  world()->barrier();
  EXPECT_TRUE(torch::equal(l, torch::full({4}, (n - 1) * 7, torch::kLong)));
  EXPECT_TRUE(torch::equal(d, torch::full({2, 2}, 0.5 + (n - 1), torch::kDouble)));
  EXPECT_TRUE(torch::equal(f, torch::full({3}, 1.25f * (n - 1), torch::kFloat)));
  EXPECT_TRUE(torch::equal(h, torch::full({3}, n - 1, torch::kBFloat16)));
  EXPECT_THROW(world()->broadcast(l, n), c10::Error);
}

// CPU seconds this thread has used (a rank's collectives wait on the calling thread).
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// The last rank comes 200 ms late to each collective; the others wait for it. They must get the same results, and
// wait asleep: the CPU time beyond what the same collective costs with nobody late (its own work: a 4 MB reduction
// takes 10-30 ms of CPU on a busy machine) under a fifth of the wait (MpiComm's waits sleep once a wait is long;
// OpenMPI's blocking calls polled through all of it, a core's worth of CPU).
TEST(MpiComm, RanksWaitingForALateOneSleepAndGetTheSameResults) {
  const int n = world()->size(), r = world()->rank();
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  const bool late = r == n - 1;
  std::vector<std::string> slow;  // the waits of this rank that cost too much CPU
  auto timed = [&](const char* what, const std::function<void()>& collective) {
    world()->barrier();
    const double punctual0 = thread_cpu_s();
    collective();  // nobody late: what the collective itself costs (its result is checked on the late run's)
    const double punctual = thread_cpu_s() - punctual0;
    world()->barrier();
    if (late) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const double cpu0 = thread_cpu_s();
    const auto t0 = std::chrono::steady_clock::now();
    collective();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = thread_cpu_s() - cpu0;
    if (!late && (wall < 0.1 || cpu - punctual > wall / 5))
      slow.push_back(fmt::format("{}: waited {:.3f} s, {:.3f} s of CPU ({:.3f} s with nobody late)", what, wall, cpu,
                                 punctual));
  };
  at::Tensor sum;
  timed("all_reduce", [&] {
    sum = torch::full({1 << 20}, float(r + 1));  // 4 MB: more than one message of the reduction
    world()->all_reduce(sum);
  });
  at::Tensor gathered;
  timed("all_gather", [&] { gathered = world()->all_gather(block(r, torch::kFloat), 0); });
  at::Tensor from_late = torch::full({3}, double(r));
  timed("broadcast", [&] { world()->broadcast(from_late, n - 1); });
  timed("barrier", [&] { world()->barrier(); });
  EXPECT_TRUE(torch::equal(sum, torch::full({1 << 20}, float(n * (n + 1) / 2))));
  for (int q = 0; q < n; ++q) EXPECT_TRUE(torch::equal(gathered.slice(0, 2 * q, 2 * q + 2), block(q, torch::kFloat)));
  EXPECT_TRUE(torch::equal(from_late, torch::full({3}, double(n - 1))));
  EXPECT_TRUE(slow.empty()) << "rank " << r << ": " << fmt::format("{}", fmt::join(slow, "; "));
}

// While rank 0 makes its text (cgexport's whole export), the other ranks wait for it asleep: under a fifth of the wait
// in CPU (OpenMPI's broadcast alone polled through all of it).
TEST(Runtime, Rank0TextWaitersSleep) {
  const int n = world()->size(), r = world()->rank();
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  world()->barrier();
  const double cpu0 = thread_cpu_s();
  const auto t0 = std::chrono::steady_clock::now();
  const std::string got = cg::dist::rank0_text([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return std::string("exported");
  });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = thread_cpu_s() - cpu0;
  EXPECT_EQ(got, "exported");
  if (r != 0) {
    EXPECT_GE(wall, 0.25);
    EXPECT_LT(cpu, wall / 5) << "rank " << r << " waited " << wall << " s for rank 0's text using " << cpu
                             << " s of CPU";
  }
}

// Each wait, asked for, gives every collective its hand-computed result, with a late rank as with none.
TEST(MpiComm, EveryCollectiveWaitGetsTheSameResults) {
  const int n = world()->size(), r = world()->rank();
  for (CollectiveWait wait : {CollectiveWait::AsleepFirst, CollectiveWait::Polling}) {
    CommPtr comm = make_mpi_world_comm(wait);
    for (int late : {0, 1}) {
      if (late && r == n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      at::Tensor sum = torch::full({5}, double(r + 1));
      comm->all_reduce(sum);
      at::Tensor gathered = comm->all_gather(block(r, torch::kFloat), 0);
      at::Tensor from_last = torch::full({3}, int64_t(r));
      comm->broadcast(from_last, n - 1);
      comm->barrier();
      const std::string what = fmt::format("wait {}, late {}", static_cast<int>(wait), late);
      EXPECT_TRUE(torch::equal(sum, torch::full({5}, double(n * (n + 1) / 2)))) << what;
      for (int q = 0; q < n; ++q)
        EXPECT_TRUE(torch::equal(gathered.slice(0, 2 * q, 2 * q + 2), block(q, torch::kFloat))) << what;
      EXPECT_TRUE(torch::equal(from_last, torch::full({3}, int64_t(n - 1)))) << what;
    }
  }
}

// parallel.mpi_wait reaches every host group: asked for, kept (also poll on one node, where Auto would sleep);
// Auto, on the one node these tests run on, sleeps. The groups then give the hand-computed sum either way.
TEST(ParallelDims, GroupsWaitAsAskedAndAutoSleepsOnOneNode) {
  const int n = world()->size();
  for (CollectiveWait asked : {CollectiveWait::Polling, CollectiveWait::AsleepFirst, CollectiveWait::Auto}) {
    ParallelDims d = make_parallel_dims(n, 1, Backend::Mpi, asked);
    const CollectiveWait expected = asked == CollectiveWait::Auto ? CollectiveWait::AsleepFirst : asked;
    for (const CommPtr& c : {d.host_world_comm, d.host_tp_comm, d.host_dp_comm, d.tp_comm, d.dp_comm})
      EXPECT_EQ(collective_wait_of(*c), expected) << "asked " << collective_wait_name(asked);
    at::Tensor sum = torch::full({2}, double(world()->rank() + 1));
    d.tp_comm->all_reduce(sum);
    EXPECT_TRUE(torch::equal(sum, torch::full({2}, double(n * (n + 1) / 2)))) << collective_wait_name(asked);
  }
  EXPECT_THROW(collective_wait_of(*make_self_comm()), std::exception);
}

TEST(ParallelDims, GroupsFollowTheLayout) {
  for (int tp : tp_sizes()) {
    ParallelDims d = make_parallel_dims(tp, 0, Backend::Mpi);
    const int r = world()->rank();
    EXPECT_EQ(d.tp, tp);
    EXPECT_EQ(d.dp, world()->size() / tp);
    EXPECT_EQ(d.tp_rank, r % tp);
    EXPECT_EQ(d.dp_rank, r / tp);
    EXPECT_EQ(d.describe(), fmt::format("tp {} x dp {} (world {}, mpi)", tp, d.dp, d.world));
    // Members of each group, by global rank, in group-rank order.
    at::Tensor me = torch::tensor({int64_t(r)});
    at::Tensor tp_members = d.tp_comm->all_gather(me, 0);
    at::Tensor dp_members = d.dp_comm->all_gather(me, 0);
    at::Tensor all = d.host_world_comm->all_gather(me, 0);
    EXPECT_TRUE(torch::equal(tp_members, torch::arange(tp, torch::kLong) + d.dp_rank * tp));
    EXPECT_TRUE(torch::equal(dp_members, torch::arange(d.dp, torch::kLong) * tp + d.tp_rank));
    EXPECT_TRUE(torch::equal(all, torch::arange(d.world, torch::kLong)));
    EXPECT_EQ(d.host_tp_comm, d.tp_comm);  // Mpi backend: host comms are the comms
  }
}

TEST(ParallelDims, BadLayoutsFailOnEveryRankWithTheNumbers) {
  const int n = world()->size();
  auto message = [](int tp, int dp) -> std::string {
    try {
      make_parallel_dims(tp, dp, Backend::Mpi);
    } catch (const cg::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(3, 0).find(fmt::format("tp 3 does not divide world {}", n)), std::string::npos);
  EXPECT_NE(message(1, n + 1).find(fmt::format("tp 1 x dp {} = {} ranks but the job has world {}", n + 1, n + 1, n)),
            std::string::npos);
  world()->barrier();  // nobody got stuck in a split
}

// The tp groups exercised by the TP tests: tp = world, and tp = 2 x dp = 2 at world 4.
std::vector<ParallelDims> tp_grids() {
  std::vector<ParallelDims> out;
  out.push_back(make_parallel_dims(world()->size(), 1, Backend::Mpi));
  if (world()->size() == 4) out.push_back(make_parallel_dims(2, 2, Backend::Mpi));
  return out;
}

TEST(TpOps, CopyForwardIdentityBackwardAllReduce) {
  for (const ParallelDims& d : tp_grids()) {
    const int t = d.tp, k = d.tp_rank;
    at::Tensor x = torch::arange(6, torch::kDouble).view({2, 3}).requires_grad_();
    at::Tensor y = copy_to_tp(x, d.tp_comm);
    y.backward(torch::full({2, 3}, k + 1.0, torch::kDouble));
    EXPECT_TRUE(torch::equal(y, x));
    EXPECT_TRUE(torch::equal(x.grad(), torch::full({2, 3}, t * (t + 1) / 2.0, torch::kDouble)));
  }
}

TEST(TpOps, ReduceForwardAllReduceBackwardIdentity) {
  for (const ParallelDims& d : tp_grids()) {
    const int t = d.tp, k = d.tp_rank;
    at::Tensor x = torch::full({2, 3}, k + 1.0, torch::kFloat).requires_grad_();
    at::Tensor y = reduce_from_tp(x, d.tp_comm);
    y.backward(torch::full({2, 3}, 10.0 * (k + 1), torch::kFloat));
    EXPECT_TRUE(torch::equal(y, torch::full({2, 3}, t * (t + 1) / 2.0f, torch::kFloat)));
    EXPECT_TRUE(torch::equal(x.grad(), torch::full({2, 3}, 10.0f * (k + 1), torch::kFloat)));
    EXPECT_TRUE(torch::equal(x, torch::full({2, 3}, k + 1.0, torch::kFloat)));  // input untouched
  }
}

TEST(TpOps, ScatterForwardSliceBackwardAllGather) {
  for (const ParallelDims& d : tp_grids()) {
    const int t = d.tp, k = d.tp_rank;
    // x[i][j] = 10 i + j over (2, 2t); rank k keeps columns [2k, 2k + 2).
    at::Tensor x = (torch::arange(2, torch::kDouble).view({2, 1}) * 10 + torch::arange(2 * t, torch::kDouble))
                       .requires_grad_();
    at::Tensor y = scatter_to_tp(x, d.tp_comm);  // (2, 2)
    y.backward(torch::full({2, 2}, k + 1.0, torch::kDouble));
    EXPECT_TRUE(torch::equal(y, torch::tensor({{2.0 * k, 2.0 * k + 1}, {10 + 2.0 * k, 11 + 2.0 * k}}, torch::kDouble)));
    // x.grad[i][j] = (j / 2) + 1: each rank's gradient lands on its own columns.
    at::Tensor expect = (torch::arange(2 * t, torch::kLong).div(2, "floor") + 1).to(torch::kDouble).expand({2, 2 * t});
    EXPECT_TRUE(torch::equal(x.grad(), expect)) << x.grad();
  }
}

TEST(TpOps, GatherForwardAllGatherBackwardSlice) {
  for (const ParallelDims& d : tp_grids()) {
    const int t = d.tp, k = d.tp_rank;
    at::Tensor x = (torch::arange(2, torch::kDouble).view({2, 1}) * 10 + torch::arange(2, torch::kDouble) + 100 * k)
                       .requires_grad_();  // (2, 2): 100 k + 10 i + j
    at::Tensor y = gather_from_tp(x, d.tp_comm);  // (2, 2t)
    at::Tensor g = torch::arange(2 * t, torch::kDouble).expand({2, 2 * t}).contiguous();  // g[i][j] = j, same on all
    y.backward(g);
    ASSERT_EQ(y.size(1), 2 * t);
    for (int q = 0; q < t; ++q)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) EXPECT_EQ(y[i][2 * q + j].item<double>(), 100 * q + 10 * i + j);
    EXPECT_TRUE(torch::equal(x.grad(), torch::tensor({{2.0 * k, 2.0 * k + 1}, {2.0 * k, 2.0 * k + 1}}, torch::kDouble)));
  }
}

TEST(TpOps, ColumnThenRowParallelMlpEqualsSerial) {
  // y = relu(x W1) W2 with W1 split on columns and W2 on rows (Megatron's MLP): output and input gradient match serial.
  for (const ParallelDims& d : tp_grids()) {
    const int t = d.tp, k = d.tp_rank;
    torch::manual_seed(3);  // same full tensors on every rank
    at::Tensor x0 = torch::randn({5, 6}, torch::kDouble), w1 = torch::randn({6, 4 * t}, torch::kDouble);
    at::Tensor w2 = torch::randn({4 * t, 3}, torch::kDouble), c = torch::randn({5, 3}, torch::kDouble);
    at::Tensor xs = x0.clone().requires_grad_();
    at::Tensor ys = torch::relu(xs.mm(w1)).mm(w2);
    (ys * c).sum().backward();

    at::Tensor xp = x0.clone().requires_grad_();
    at::Tensor h_local = torch::relu(copy_to_tp(xp, d.tp_comm).mm(w1.narrow(1, 4 * k, 4)));  // (5, 4)
    at::Tensor yp = reduce_from_tp(h_local.mm(w2.narrow(0, 4 * k, 4)), d.tp_comm);             // (5, 3)
    (yp * c).sum().backward();
    EXPECT_TRUE(torch::allclose(yp, ys, 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(xp.grad(), xs.grad(), 1e-12, 1e-12));
  }
}

namespace F = torch::nn::functional;

void check_ce_against_torch(const ParallelDims& d, torch::Dtype dtype) {
  const int64_t n = 9, v = 24, v_local = v / d.tp, start = d.tp_rank * v_local;
  torch::manual_seed(11);
  at::Tensor full = (3 * torch::randn({n, v}, torch::kDouble)).to(dtype);
  at::Tensor targets = torch::randint(0, v, {n}, torch::kLong);
  targets[0] = v - 1;
  targets[1] = kIgnoreIndex;
  targets[2] = 0;
  targets[6] = kIgnoreIndex;
  at::Tensor w = torch::rand({n}, torch::kDouble).to(dtype) + 0.5;

  at::Tensor z_ref = full.clone().requires_grad_();
  at::Tensor ref = F::cross_entropy(z_ref, targets,
                                    F::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(kIgnoreIndex));
  (ref * w).sum().backward();

  at::Tensor z = full.narrow(1, start, v_local).clone().requires_grad_();  // (N, V_local)
  at::Tensor loss = vocab_parallel_cross_entropy(z, targets, start, d.tp_comm);
  (loss * w).sum().backward();
  EXPECT_TRUE(torch::allclose(loss, ref, 1e-6, 1e-6)) << d.describe() << " " << dtype << (loss - ref);
  EXPECT_TRUE(torch::allclose(z.grad(), z_ref.grad().narrow(1, start, v_local), 1e-6, 1e-6))
      << d.describe() << " " << dtype;
  EXPECT_EQ(loss[1].item<double>(), 0.0);
}

TEST(VocabParallelCe, MatchesTorchFp64AndFp32) {
  for (const ParallelDims& d : tp_grids()) {
    check_ce_against_torch(d, torch::kDouble);
    check_ce_against_torch(d, torch::kFloat);
  }
}

TEST(VocabParallelCe, BackwardMatchesFiniteDifferences) {
  // Every rank steps through every global logit in lockstep; the owner perturbs it, all evaluate the loss.
  ParallelDims d = make_parallel_dims(world()->size(), 1, Backend::Mpi);
  const int64_t n = 4, v = 12, v_local = v / d.tp, start = d.tp_rank * v_local;
  torch::manual_seed(5);
  at::Tensor full = torch::randn({n, v}, torch::kDouble);
  at::Tensor targets = torch::tensor({int64_t{3}, kIgnoreIndex, int64_t{11}, int64_t{0}}, torch::kLong);
  at::Tensor w = torch::tensor({0.7, 1.3, 1.1, 0.9}, torch::kDouble);
  at::Tensor base = full.narrow(1, start, v_local).clone();
  auto f = [&](const at::Tensor& z) {
    return (vocab_parallel_cross_entropy(z, targets, start, d.tp_comm) * w).sum().item<double>();
  };
  at::Tensor z = base.clone().requires_grad_();
  (vocab_parallel_cross_entropy(z, targets, start, d.tp_comm) * w).sum().backward();
  const double h = 1e-6;
  at::Tensor fd = torch::zeros_like(base);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < v; ++j) {
      const bool mine = j >= start && j < start + v_local;
      at::Tensor zp = base.clone(), zm = base.clone();
      if (mine) {
        zp[i][j - start] += h;
        zm[i][j - start] -= h;
      }
      const double diff = (f(zp) - f(zm)) / (2 * h);
      if (mine) fd[i][j - start] = diff;
    }
  EXPECT_TRUE(torch::allclose(z.grad(), fd, 1e-6, 1e-7)) << z.grad() - fd;
}

TEST(VocabParallelCe, RankHoldingOnlyVocabularyPaddingGivesFiniteLoss) {
  // The model pads the vocabulary to a multiple of tp with -inf logits; with 3 columns per rank and 3 (tp - 1) real
  // ids, the last rank holds padding only (at tp 1 there is no padding).
  ParallelDims d = make_parallel_dims(world()->size(), 1, Backend::Mpi);
  const int64_t n = 5, v_local = 3, v_pad = v_local * d.tp, v_real = d.tp > 1 ? v_pad - v_local : v_pad;
  const int64_t start = d.tp_rank * v_local;
  torch::manual_seed(3);
  at::Tensor full = torch::randn({n, v_pad}, torch::kDouble);
  full.narrow(1, v_real, v_pad - v_real).fill_(-std::numeric_limits<double>::infinity());
  at::Tensor targets = torch::randint(0, v_real, {n}, torch::kLong);
  targets[2] = kIgnoreIndex;
  at::Tensor z_ref = full.narrow(1, 0, v_real).clone().requires_grad_();
  at::Tensor ref = F::cross_entropy(z_ref, targets,
                                    F::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(kIgnoreIndex));
  ref.sum().backward();
  at::Tensor z = full.narrow(1, start, v_local).clone().requires_grad_();
  at::Tensor loss = vocab_parallel_cross_entropy(z, targets, start, d.tp_comm);
  loss.sum().backward();
  EXPECT_TRUE(torch::allclose(loss, ref, 1e-9, 1e-9)) << d.describe() << " " << loss << ref;
  at::Tensor g_ref = torch::zeros({n, v_pad}, torch::kDouble);
  g_ref.narrow(1, 0, v_real).copy_(z_ref.grad());
  EXPECT_TRUE(torch::allclose(z.grad(), g_ref.narrow(1, start, v_local), 1e-9, 1e-9)) << d.describe();
}

TEST(VocabParallelCe, TargetOutsideVocabularyFailsOnEveryRank) {
  ParallelDims d = make_parallel_dims(world()->size(), 1, Backend::Mpi);
  at::Tensor z = torch::zeros({2, 3});
  const int64_t v = 3 * d.tp;
  EXPECT_THROW(vocab_parallel_cross_entropy(z, torch::tensor({0, v}, torch::kLong), 3 * d.tp_rank, d.tp_comm),
               c10::Error);
  world()->barrier();
}

}  // namespace
}  // namespace cg::dist
