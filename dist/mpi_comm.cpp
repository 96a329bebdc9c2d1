// MpiComm: Comm over an MPI communicator for CPU tensors.
// bf16/half: all_reduce goes through a float copy (MPI has no 16-bit float sums); gather/broadcast move the raw bits.
// A collective first waits asleep for the whole group (wait_for_group) where the group's CollectiveWait says so, so a
// rank waiting for a late one sleeps.
#include "dist/mpi_comm.h"

#include <sched.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <limits>

#include "dist/check.h"
#include "dist/mpi_wait.h"
#include "dist/runtime.h"

namespace cg::dist {

namespace {

MPI_Datatype mpi_type(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    case at::kChar: return MPI_INT8_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kBool: return MPI_UINT8_T;  // 0/1 bytes: max = or, min = and
    case at::kBFloat16:
    case at::kHalf: return MPI_UINT16_T;  // bits only: valid for gather and broadcast, not for reductions
    default: CG_FAIL("MpiComm does not handle dtype {}; convert to float, double, int32 or int64", at::toString(s));
  }
}

MPI_Op mpi_op(ReduceOp op, at::ScalarType s) {
  CG_CHECK(s != at::kBool || op != ReduceOp::Sum, "all_reduce(Sum) of a bool tensor is not defined; use Max (or) or Min (and)");
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  CG_FAIL("unknown ReduceOp {}", static_cast<int>(op));
}

// The cores this process may run on (its CPU affinity mask) as bits, to be OR-ed over a node's ranks.
using CoreBits = std::array<uint64_t, CPU_SETSIZE / 64>;

CoreBits my_cores() {
  CoreBits bits{};
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return bits;  // unknown: no bits, counted as oversubscribed
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) bits[size_t(c / 64)] |= uint64_t(1) << (c % 64);
  return bits;
}

// Whether the job's ranks on this node, with the thread counts they have now, are more threads than cores.
// Collective over the world's ranks (each calls it for the ranks of its own node).
bool this_node_oversubscribed() {
  MPI_Comm node = MPI_COMM_NULL;
  CG_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int threads = at::get_num_threads();
  CoreBits cores = my_cores();
  CG_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &threads, 1, MPI_INT, MPI_SUM, node));
  CG_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, cores.data(), int(cores.size()), MPI_UINT64_T, MPI_BOR, node));
  CG_CHECK_MPI(MPI_Comm_free(&node));
  int count = 0;
  for (uint64_t word : cores) count += __builtin_popcountll(word);
  return node_oversubscribed(threads, count);
}

// MPI counts are int: large tensors go in chunks of at most this many elements.
constexpr int64_t kMaxChunk = std::numeric_limits<int>::max() / 2;

class MpiComm final : public Comm {
 public:
  // node_oversubscribed: this rank's node's, for CollectiveWait::Auto (this_node_oversubscribed).
  MpiComm(MPI_Comm comm, CollectiveWait wait, bool node_oversubscribed) : comm_(comm) {
    CG_CHECK_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    CG_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
    CG_CHECK_MPI(MPI_Comm_size(comm_, &size_));
    if (wait == CollectiveWait::Auto && size_ > 1) wait = agreed_wait(node_oversubscribed);
    asleep_first_ = wait != CollectiveWait::Polling;
  }
  ~MpiComm() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Comm_free(&comm_);  // a group outliving MPI_Finalize (static state) is simply dropped
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  CollectiveWait wait() const { return asleep_first_ ? CollectiveWait::AsleepFirst : CollectiveWait::Polling; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    check_tensor(t, "all_reduce");
    if (t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf) {
      at::Tensor f = t.to(at::kFloat);
      all_reduce(f, op);
      t.copy_(f);
      return;
    }
    const MPI_Datatype type = mpi_type(t.scalar_type());
    const MPI_Op mop = mpi_op(op, t.scalar_type());
    before_collective();
    char* p = static_cast<char*>(t.data_ptr());
    for (int64_t off = 0; off < t.numel(); off += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, t.numel() - off));
      CG_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, p + off * t.element_size(), n, type, mop, comm_));
    }
  }

  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    return all_gather_via_dim0(t, dim, size_, [&](const at::Tensor& x, at::Tensor& out) {
      check_tensor(x, "all_gather");
      const int64_t n = x.numel();
      CG_CHECK(n <= std::numeric_limits<int>::max(), "all_gather of {} elements per rank is over MPI's int count; "
               "gather smaller pieces", n);
      before_collective();
      CG_CHECK_MPI(MPI_Allgather(x.data_ptr(), static_cast<int>(n), mpi_type(x.scalar_type()), out.data_ptr(),
                                 static_cast<int>(n), mpi_type(x.scalar_type()), comm_));
    });
  }

  void broadcast(at::Tensor& t, int root) override {
    TORCH_CHECK(root >= 0 && root < size_, "broadcast root ", root, " is not a rank of this group of ", size_);
    check_tensor(t, "broadcast");
    const MPI_Datatype type = mpi_type(t.scalar_type());
    before_collective();
    char* p = static_cast<char*>(t.data_ptr());
    for (int64_t off = 0; off < t.numel(); off += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, t.numel() - off));
      CG_CHECK_MPI(MPI_Bcast(p + off * t.element_size(), n, type, root, comm_));
    }
  }

  void barrier() override { wait_for_group(); }

 private:
  // Returns once every rank of the group has called it, the wait spent asleep (wait_sparingly). A collective
  // (AsleepFirst) waits here first and then runs OpenMPI's blocking call, which polls, with every rank there: a rank
  // waiting for a late one no longer holds a core, and the collective keeps OpenMPI's fastest algorithm. Its
  // nonblocking versions (libnbc), waited on asleep, took 2.4x as long for a balanced 2 MB all-reduce on 2 ranks, and
  // tp 2 of configs/tiny.yaml 23% longer on a quiet machine (bench_comm_wait, docs/performance.md "Ranks waiting").
  // Costs one message round of a nonblocking barrier per collective (~µs on one node; a network round trip across
  // nodes, hence CollectiveWait). barrier() is this alone.
  void wait_for_group() {
    if (size_ > 1) wait_asleep_for_all(comm_);
  }

  // Polling skips the barrier's round: OpenMPI's call polls (yielding, mpi_yield_when_idle) until the late ones come.
  void before_collective() {
    if (asleep_first_) wait_for_group();
  }

  // Auto's wait, the same on every rank of the group: the nodes the group spans and whether any is oversubscribed.
  CollectiveWait agreed_wait(bool node_oversubscribed) {
    MPI_Comm node = MPI_COMM_NULL;
    CG_CHECK_MPI(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    int node_rank = 0;
    CG_CHECK_MPI(MPI_Comm_rank(node, &node_rank));
    CG_CHECK_MPI(MPI_Comm_free(&node));
    int counts[2] = {node_rank == 0 ? 1 : 0, node_oversubscribed ? 1 : 0};  // nodes, oversubscribed ones
    CG_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT, MPI_SUM, comm_));
    return resolve_collective_wait(CollectiveWait::Auto, counts[0], counts[1] > 0);
  }

  void check_tensor(const at::Tensor& t, const char* what) const {
    TORCH_CHECK(t.defined(), "MpiComm::", what, ": undefined tensor");
    TORCH_CHECK(t.device().is_cpu(), "MpiComm::", what, " moves CPU tensors but got one on ", t.device(),
                "; set parallel.backend=nccl for GPU tensors");
    TORCH_CHECK(t.is_contiguous(), "MpiComm::", what, " needs a contiguous tensor (call .contiguous())");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  bool asleep_first_ = true;  // CollectiveWait::AsleepFirst, else Polling
};

// Only Auto needs to know the node (a collective over the world, as the comm's making is). It counts the threads the
// ranks have now, so every tool sets them (set_cpu_threads) before it makes a group: cgtrain (train), cgsample and
// cgeval (before sampling_dims) and bench_train_step do (bench_comm_wait asks for its wait: no count). A group made
// first would be judged on torch's default of a thread per core: oversubscribed, asleep first, where ranks share a
// node.
bool oversubscribed_for(CollectiveWait wait) {
  return wait == CollectiveWait::Auto && runtime().world > 1 && this_node_oversubscribed();
}

}  // namespace

bool node_oversubscribed(int threads_on_node, int cores_on_node) {
  return cores_on_node <= 0 || threads_on_node > cores_on_node;
}

CollectiveWait resolve_collective_wait(CollectiveWait asked, int group_nodes, bool some_node_oversubscribed) {
  if (asked != CollectiveWait::Auto) return asked;
  return group_nodes <= 1 || some_node_oversubscribed ? CollectiveWait::AsleepFirst : CollectiveWait::Polling;
}

CollectiveWait collective_wait_from_name(const std::string& name) {
  if (name == "auto") return CollectiveWait::Auto;
  if (name == "sleep") return CollectiveWait::AsleepFirst;
  if (name == "poll") return CollectiveWait::Polling;
  CG_FAIL("parallel.mpi_wait '{}' is not one of auto, sleep, poll", name);
}

const char* collective_wait_name(CollectiveWait w) {
  switch (w) {
    case CollectiveWait::Auto: return "auto";
    case CollectiveWait::AsleepFirst: return "sleep";
    case CollectiveWait::Polling: return "poll";
  }
  CG_FAIL("unknown CollectiveWait {}", static_cast<int>(w));
}

CollectiveWait collective_wait_of(const Comm& comm) {
  const auto* mpi = dynamic_cast<const MpiComm*>(&comm);
  CG_CHECK(mpi, "internal: collective_wait_of a {} group, which is not an MpiComm", comm.backend());
  return mpi->wait();
}

CommPtr make_mpi_world_comm(CollectiveWait wait) {
  runtime();  // throws with a hint when init_runtime was not called
  const bool oversubscribed = oversubscribed_for(wait);
  MPI_Comm c = MPI_COMM_NULL;
  CG_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c));
  return std::make_shared<MpiComm>(c, wait, oversubscribed);
}

CommPtr make_mpi_split_comm(int color, int key, CollectiveWait wait) {
  runtime();
  CG_CHECK(color >= 0, "MPI_Comm_split color must be >= 0, got {}", color);
  const bool oversubscribed = oversubscribed_for(wait);
  MPI_Comm c = MPI_COMM_NULL;
  CG_CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, color, key, &c));
  return std::make_shared<MpiComm>(c, wait, oversubscribed);
}

}  // namespace cg::dist
