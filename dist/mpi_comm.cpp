// MpiComm: Comm over an MPI communicator for CPU tensors.
// bf16/half: all_reduce goes through a float copy (MPI has no 16-bit float sums); gather/broadcast move the raw bits.
// Every collective first waits asleep for the whole group (wait_for_group), so a rank waiting for a late one sleeps.
#include "dist/mpi_comm.h"

// The C API only: OpenMPI's mpi.h otherwise pulls in the deprecated C++ bindings (and their library).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>

#include "dist/check.h"
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

// Waits for `req` without holding a core: MPI_Test in a loop for the first kSpinFor (meant for the partners of a
// balanced step, whose wait a sleep would lengthen), then a sleep between tests of an eighth of the time waited
// so far, at most kMaxSleep: a long wait ends at most ~1/8 later than it could and costs a few ms of CPU a second.
// OpenMPI's blocking calls poll a core at 100% for as long as they wait: two ranks on a 2-core machine shared with
// other work spent about half their CPU time waiting for each other (docs/performance.md, "Ranks waiting").
void wait_sparingly(MPI_Request& req) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kSpinFor = std::chrono::microseconds(100);
  constexpr auto kMaxSleep = std::chrono::microseconds(1000);
  const Clock::time_point start = Clock::now();
  for (;;) {
    int done = 0;
    CG_CHECK_MPI(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
    if (done) return;
    const auto waited = Clock::now() - start;
    if (waited > kSpinFor) std::this_thread::sleep_for(std::min<Clock::duration>(waited / 8, kMaxSleep));
  }
}

// MPI counts are int: large tensors go in chunks of at most this many elements.
constexpr int64_t kMaxChunk = std::numeric_limits<int>::max() / 2;

class MpiComm final : public Comm {
 public:
  explicit MpiComm(MPI_Comm comm) : comm_(comm) {
    CG_CHECK_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    CG_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
    CG_CHECK_MPI(MPI_Comm_size(comm_, &size_));
  }
  ~MpiComm() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Comm_free(&comm_);  // a group outliving MPI_Finalize (static state) is simply dropped
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

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
    wait_for_group();
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
      wait_for_group();
      CG_CHECK_MPI(MPI_Allgather(x.data_ptr(), static_cast<int>(n), mpi_type(x.scalar_type()), out.data_ptr(),
                                 static_cast<int>(n), mpi_type(x.scalar_type()), comm_));
    });
  }

  void broadcast(at::Tensor& t, int root) override {
    TORCH_CHECK(root >= 0 && root < size_, "broadcast root ", root, " is not a rank of this group of ", size_);
    check_tensor(t, "broadcast");
    const MPI_Datatype type = mpi_type(t.scalar_type());
    wait_for_group();
    char* p = static_cast<char*>(t.data_ptr());
    for (int64_t off = 0; off < t.numel(); off += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, t.numel() - off));
      CG_CHECK_MPI(MPI_Bcast(p + off * t.element_size(), n, type, root, comm_));
    }
  }

  void barrier() override { wait_for_group(); }

 private:
  // Returns once every rank of the group has called it, the wait spent asleep (wait_sparingly). Each collective
  // waits here first and then runs OpenMPI's blocking call, which polls, with every rank there: a rank waiting for a
  // late one no longer holds a core, and the collective keeps OpenMPI's fastest algorithm. Its nonblocking versions
  // (libnbc), waited on asleep, took 2.4x as long for a balanced 2 MB all-reduce on 2 ranks, and tp 2 of
  // configs/tiny.yaml 23% longer on a quiet machine (bench_comm_wait, docs/performance.md "Ranks waiting").
  // Costs one message round of a nonblocking barrier per collective (~µs on one node).
  void wait_for_group() {
    if (size_ == 1) return;
    MPI_Request req = MPI_REQUEST_NULL;
    CG_CHECK_MPI(MPI_Ibarrier(comm_, &req));
    wait_sparingly(req);
  }

  void check_tensor(const at::Tensor& t, const char* what) const {
    TORCH_CHECK(t.defined(), "MpiComm::", what, ": undefined tensor");
    TORCH_CHECK(t.device().is_cpu(), "MpiComm::", what, " moves CPU tensors but got one on ", t.device(),
                "; set parallel.backend=nccl for GPU tensors");
    TORCH_CHECK(t.is_contiguous(), "MpiComm::", what, " needs a contiguous tensor (call .contiguous())");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

CommPtr make_mpi_world_comm() {
  runtime();  // throws with a hint when init_runtime was not called
  MPI_Comm c = MPI_COMM_NULL;
  CG_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c));
  return std::make_shared<MpiComm>(c);
}

CommPtr make_mpi_split_comm(int color, int key) {
  runtime();
  CG_CHECK(color >= 0, "MPI_Comm_split color must be >= 0, got {}", color);
  MPI_Comm c = MPI_COMM_NULL;
  CG_CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, color, key, &c));
  return std::make_shared<MpiComm>(c);
}

}  // namespace cg::dist
