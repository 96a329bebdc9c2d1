// NcclComm: Comm over NCCL for CUDA tensors. Compiled only when nccl.h and cuda_runtime.h exist (see CMakeLists.txt);
// links against CPU-only libtorch too: it touches tensors through data_ptr() and includes no c10/cuda header.
//
// Streams: every call runs on the legacy default stream (cudaStream_t 0), which is libtorch's default stream, so it
// is ordered after the kernels that produced its input and before those that consume its output, and the caching
// allocator may reuse a temporary freed right after the call. Callers must not switch torch to another stream.
// Failure handling: the communicator is non-blocking (ncclCommInitRankConfig, blocking = 0), so init can time out;
// every enqueued collective records a CUDA event that a watchdog thread polls together with ncclCommGetAsyncError.
// Work stuck longer than CG_NCCL_TIMEOUT_S seconds (default 600), or an asynchronous NCCL error, aborts the
// communicator (ncclCommAbort) and then the whole job (abort_all) instead of hanging every rank.
#include "dist/nccl_comm.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <spdlog/spdlog.h>

#include <ATen/ops/empty.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "dist/check.h"
#include "dist/runtime.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 14, 0)
#error "cgtrain's NCCL backend needs NCCL >= 2.14 (non-blocking communicators); configure with -DCG_WITH_NCCL=OFF"
#endif

namespace cg::dist {

namespace {

using Clock = std::chrono::steady_clock;

double nccl_timeout_s() {
  const char* env = std::getenv("CG_NCCL_TIMEOUT_S");
  if (!env || !*env) return 600.0;
  char* end = nullptr;
  const double s = std::strtod(env, &end);
  CG_CHECK(end && *end == '\0' && s > 0, "CG_NCCL_TIMEOUT_S='{}' is not a positive number of seconds", env);
  return s;
}

ncclDataType_t nccl_type(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kChar: return ncclInt8;
    case at::kByte:
    case at::kBool: return ncclUint8;
    default: CG_FAIL("NcclComm does not handle dtype {}; convert to a float or integer type", at::toString(s));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  CG_FAIL("unknown ReduceOp {}", static_cast<int>(op));
}

// Makes `device` current for the scope and restores the previous one. make_parallel_dims makes the rank's GPU
// current (set_cuda_device) before any communicator exists, so this switches nothing in a run; restoring never
// opens a context on a device this process has not used (cudaSetDevice does since CUDA 12: every rank of a node
// would otherwise hold one on GPU 0).
// `checked` false: errors ignored (destructors must not throw).
struct DeviceGuard {
  explicit DeviceGuard(int device, bool checked = true) {
    if (!checked) {
      switched_ = cudaGetDevice(&prev_) == cudaSuccess && prev_ != device && cudaSetDevice(device) == cudaSuccess;
      return;
    }
    CG_CHECK_CUDA(cudaGetDevice(&prev_));
    if (prev_ != device) {
      CG_CHECK_CUDA(cudaSetDevice(device));
      switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(prev_);
  }
  int prev_ = 0;
  bool switched_ = false;
};

constexpr cudaStream_t kStream = 0;  // legacy default stream = libtorch's default stream

class NcclComm final : public Comm {
 public:
  NcclComm(const CommPtr& group, int device) : device_(device), timeout_s_(nccl_timeout_s()) {
    CG_CHECK(group && group->backend() != "nccl", "make_nccl_comm needs an MPI group to carry the unique id");
    rank_ = group->rank();
    size_ = group->size();
    DeviceGuard guard(device_);

    // Rank 0 of the group makes the id; MPI carries it to the others.
    ncclUniqueId id;
    std::memset(&id, 0, sizeof(id));
    if (rank_ == 0) CG_CHECK_NCCL(ncclGetUniqueId(&id));
    at::Tensor buf = at::empty({static_cast<int64_t>(sizeof(id))}, at::kByte);
    std::memcpy(buf.data_ptr(), &id, sizeof(id));
    group->broadcast(buf, 0);
    std::memcpy(&id, buf.data_ptr(), sizeof(id));

    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    CG_CHECK_NCCL(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config));
    wait_enqueued("ncclCommInitRankConfig");

    CG_CHECK_CUDA(cudaMalloc(&barrier_buf_, sizeof(float)));
    CG_CHECK_CUDA(cudaMemset(barrier_buf_, 0, sizeof(float)));
    watchdog_ = std::thread([this] { watch(); });
    spdlog::debug("NCCL group rank {}/{} on cuda:{} (timeout {}s)", rank_, size_, device_, timeout_s_);
  }

  ~NcclComm() override {
    stop_ = true;
    if (watchdog_.joinable()) watchdog_.join();
    DeviceGuard guard(device_, /*checked=*/false);
    cudaStreamSynchronize(kStream);
    for (auto& p : pending_) free_events_.push_back(p.event);
    for (cudaEvent_t e : free_events_) cudaEventDestroy(e);
    if (barrier_buf_) cudaFree(barrier_buf_);
    ncclComm_t comm = nullptr;
    {
      std::unique_lock<std::shared_mutex> lock(comm_mu_);
      std::swap(comm, comm_);
    }
    if (!comm) return;  // aborted after an error
    // Finalize flushes outstanding work; it is non-blocking here, so poll it (bounded) before destroying.
    ncclResult_t st = ncclCommFinalize(comm);
    const auto start = Clock::now();
    while ((st == ncclSuccess || st == ncclInProgress) && seconds_since(start) < timeout_s_) {
      if (ncclCommGetAsyncError(comm, &st) != ncclSuccess || st != ncclInProgress) break;
      std::this_thread::yield();
    }
    if (st != ncclSuccess) {  // failed or timed out: do not block at exit
      ncclCommAbort(comm);
      return;
    }
    ncclCommDestroy(comm);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    check_tensor(t, "all_reduce");
    // As MpiComm: a sum of bools would leave bytes other than 0 and 1 in a bool tensor.
    CG_CHECK(!(t.scalar_type() == at::kBool && op == ReduceOp::Sum),
             "NcclComm::all_reduce: Sum over a bool tensor; use Max (any) / Min (all), or an integer dtype");
    DeviceGuard guard(device_);
    use_comm("all_reduce", [&](ncclComm_t c) {
      return ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type()),
                           nccl_op(op), c, kStream);
    });
    after_enqueue("ncclAllReduce");
  }

  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    return all_gather_via_dim0(t, dim, size_, [&](const at::Tensor& x, at::Tensor& out) {
      check_tensor(x, "all_gather");
      DeviceGuard guard(device_);
      use_comm("all_gather", [&](ncclComm_t c) {
        return ncclAllGather(x.data_ptr(), out.data_ptr(), static_cast<size_t>(x.numel()), nccl_type(x.scalar_type()),
                             c, kStream);
      });
      after_enqueue("ncclAllGather");
    });
  }

  void broadcast(at::Tensor& t, int root) override {
    TORCH_CHECK(root >= 0 && root < size_, "broadcast root ", root, " is not a rank of this group of ", size_);
    check_tensor(t, "broadcast");
    DeviceGuard guard(device_);
    use_comm("broadcast", [&](ncclComm_t c) {
      return ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type()),
                           root, c, kStream);
    });
    after_enqueue("ncclBroadcast");
  }

  // NCCL has no barrier: a one-float all-reduce, then wait (bounded) until this rank's stream has finished it.
  void barrier() override {
    check_live("barrier");
    DeviceGuard guard(device_);
    use_comm("barrier", [&](ncclComm_t c) {
      return ncclAllReduce(barrier_buf_, barrier_buf_, 1, ncclFloat32, ncclSum, c, kStream);
    });
    after_enqueue("barrier");
    const auto start = Clock::now();
    for (;;) {
      const cudaError_t r = cudaStreamQuery(kStream);
      if (r == cudaSuccess) return;
      if (r != cudaErrorNotReady) CG_CHECK_CUDA(r);
      if (seconds_since(start) > timeout_s_) fail_timeout("barrier");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

 private:
  struct Pending {
    cudaEvent_t event;
    Clock::time_point enqueued;
    const char* what;
  };

  static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  void check_live(const char* what) const {
    std::shared_lock<std::shared_mutex> lock(comm_mu_);
    CG_CHECK(comm_, "NcclComm::{} on a communicator that was aborted after an NCCL error; restart the job", what);
  }

  // Runs one NCCL call on the communicator under a shared lock, so that an abort (exclusive lock, from the other
  // thread) never frees it during the call; the call's error is thrown. The communicator is non-blocking, so every
  // call returns at once and the lock is short. An aborted one: the thread that aborted is ending the job.
  template <class Call>
  ncclResult_t use_comm(const char* what, Call&& call, bool check = true) {
    std::shared_lock<std::shared_mutex> lock(comm_mu_);
    if (!comm_) {
      lock.unlock();
      await_abort();
    }
    const ncclResult_t r = call(comm_);
    if (check && r != ncclSuccess && r != ncclInProgress)
      CG_FAIL("NCCL {} failed on group rank {}/{}: {} ({})", what, rank_, size_, ncclGetErrorString(r),
              ncclGetLastError(comm_));
    return r;
  }

  // Aborts the communicator once, from whichever thread (caller or watchdog) gets here first; false when the other
  // already did (that thread then ends the job).
  bool abort_comm() {
    std::unique_lock<std::shared_mutex> lock(comm_mu_);
    if (!comm_) return false;
    ncclCommAbort(comm_);
    comm_ = nullptr;
    return true;
  }

  // The other thread aborted the communicator and is ending the job with its message: wait for that.
  [[noreturn]] void await_abort() {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  void check_tensor(const at::Tensor& t, const char* what) const {
    check_live(what);
    TORCH_CHECK(t.defined(), "NcclComm::", what, ": undefined tensor");
    TORCH_CHECK(t.device().is_cuda() && t.device().index() == device_, "NcclComm::", what,
                " moves tensors on cuda:", device_, " but got one on ", t.device(),
                "; move it to this rank's GPU or use parallel.backend=mpi for CPU tensors");
    TORCH_CHECK(t.is_contiguous(), "NcclComm::", what, " needs a contiguous tensor (call .contiguous())");
  }

  // A non-blocking communicator may still be enqueueing when a call returns ncclInProgress: poll until done.
  void wait_enqueued(const char* what) {
    const auto start = Clock::now();
    ncclResult_t st = ncclInProgress;
    std::string last;
    for (;;) {
      use_comm("ncclCommGetAsyncError", [&](ncclComm_t c) {
        const ncclResult_t r = ncclCommGetAsyncError(c, &st);
        if (st != ncclSuccess && st != ncclInProgress) last = ncclGetLastError(c);
        return r;
      });
      if (st != ncclInProgress) break;
      if (seconds_since(start) > timeout_s_) fail_timeout(what);
      std::this_thread::yield();
    }
    if (st != ncclSuccess) {
      // Like the watchdog: abort the communicator and end the job (a thrown error would unwind into ~NcclComm,
      // which would wait for a watchdog that may be waiting for this thread).
      const std::string msg = fmt::format("NCCL {} failed on group rank {}/{}: {} ({})", what, rank_, size_,
                                          ncclGetErrorString(st), last);
      if (!abort_comm()) await_abort();
      abort_all(msg);
    }
  }

  void after_enqueue(const char* what) {
    wait_enqueued(what);
    std::lock_guard<std::mutex> lock(mu_);
    cudaEvent_t ev = nullptr;
    if (!free_events_.empty()) {
      ev = free_events_.back();
      free_events_.pop_back();
    } else {
      CG_CHECK_CUDA(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    }
    CG_CHECK_CUDA(cudaEventRecord(ev, kStream));
    pending_.push_back({ev, Clock::now(), what});
  }

  std::string timeout_message(const char* what) const {
    return fmt::format(
        "NCCL {} did not finish within {}s on group rank {}/{} (cuda:{}); a peer rank is probably dead or stuck. "
        "Raise CG_NCCL_TIMEOUT_S for slow starts; NCCL_DEBUG=INFO shows the transport",
        what, timeout_s_, rank_, size_, device_);
  }

  // The caller's thread: abort and end the job (or wait while the watchdog, which aborted first, does).
  [[noreturn]] void fail_timeout(const char* what) {
    const std::string msg = timeout_message(what);
    if (!abort_comm()) await_abort();
    abort_all(msg);
  }

  // Watchdog: retire finished events, abort on a stuck collective or an asynchronous NCCL error.
  void watch() {
    cudaSetDevice(device_);
    while (!stop_) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        while (!pending_.empty()) {
          const cudaError_t r = cudaEventQuery(pending_.front().event);
          if (r == cudaErrorNotReady) break;
          if (r != cudaSuccess)
            abort_all(fmt::format("CUDA error while waiting for NCCL {}: {}", pending_.front().what,
                                  cudaGetErrorString(r)));
          free_events_.push_back(pending_.front().event);
          pending_.pop_front();
        }
        if (!pending_.empty() && seconds_since(pending_.front().enqueued) > timeout_s_) {
          // The watchdog never waits: when the caller's thread aborted first, it is ending the job.
          const std::string msg = timeout_message(pending_.front().what);
          if (abort_comm()) abort_all(msg);
          return;
        }
      }
      ncclResult_t st = ncclSuccess;
      std::string last;
      {
        std::shared_lock<std::shared_mutex> lock(comm_mu_);
        if (!comm_) break;  // the caller's thread aborted it and is ending the job
        if (ncclCommGetAsyncError(comm_, &st) != ncclSuccess) st = ncclSuccess;
        if (st != ncclSuccess && st != ncclInProgress) last = ncclGetLastError(comm_);
      }
      if (st != ncclSuccess && st != ncclInProgress) {
        const std::string msg = fmt::format("asynchronous NCCL error on group rank {}/{}: {} ({})", rank_, size_,
                                            ncclGetErrorString(st), last);
        if (!abort_comm()) break;
        abort_all(msg);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  ncclComm_t comm_ = nullptr;  // null once aborted; used by the caller's thread and the watchdog
  mutable std::shared_mutex comm_mu_;  // shared: one NCCL call on comm_; exclusive: abort
  int device_ = 0, rank_ = 0, size_ = 1;
  double timeout_s_ = 600.0;
  void* barrier_buf_ = nullptr;  // one float on device_ for barrier()

  std::mutex mu_;  // guards pending_ and free_events_
  std::deque<Pending> pending_;
  std::vector<cudaEvent_t> free_events_;
  std::atomic<bool> stop_{false};
  std::thread watchdog_;
};

}  // namespace

CommPtr make_nccl_comm(const CommPtr& mpi_group, int device) {
  const int n = cuda_device_count();
  CG_CHECK(device >= 0 && device < n, "NCCL backend: CUDA device {} requested but {} visible; check "
           "CUDA_VISIBLE_DEVICES and the ranks per node", device, n);
  return std::make_shared<NcclComm>(mpi_group, device);
}

void set_cuda_device(int device) {
  const int n = cuda_device_count();
  CG_CHECK(device >= 0 && device < n, "CUDA device {} requested but {} visible; check CUDA_VISIBLE_DEVICES and the "
           "ranks per node", device, n);
  CG_CHECK_CUDA(cudaSetDevice(device));
}

bool nccl_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

std::string cuda_device_name(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return prop.name;
}

std::string cuda_device_pci_bus_id(int device) {
  char id[64] = {};
  if (cudaDeviceGetPCIBusId(id, sizeof(id), device) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return id;
}

double cuda_memory_used_bytes() {
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return static_cast<double>(total - free);
}

double cuda_device_memory_bytes(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return static_cast<double>(prop.totalGlobalMem);
}

}  // namespace cg::dist
