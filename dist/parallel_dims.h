// ParallelDims: the tp × dp process grid (tp ranks adjacent, i.e. inside a node), validated once, passed as a value.
#pragma once
#include <functional>
#include <string>

#include "dist/comm.h"
#include "dist/mpi_comm.h"

namespace cg::dist {

// Mpi: CPU tensors over MPI. Nccl: CUDA tensors over NCCL (one GPU per rank: gpu_for_local_rank);
// with Nccl every tensor given to tp_comm/dp_comm must live on this rank's GPU.
enum class Backend { Mpi, Nccl };

struct ParallelDims {
  int world = 1, tp = 1, dp = 1;
  int rank = 0, tp_rank = 0, dp_rank = 0;  // rank = dp_rank * tp + tp_rank
  Backend backend = Backend::Mpi;
  CommPtr tp_comm, dp_comm;  // the backend's groups (CUDA tensors when backend is Nccl)
  // The same groups over MPI for CPU tensors (metrics, seeds, loader positions) whatever the backend, equal to the
  // comms above when backend is Mpi; and the world over MPI (nothing needs a world-wide GPU collective, so no NCCL
  // communicator spans all ranks: at 64 ranks that would be a full-job bootstrap and buffers for nothing).
  CommPtr host_world_comm, host_tp_comm, host_dp_comm;

  std::string describe() const;  // "tp 2 x dp 2 (world 4, mpi)"
};

struct GridShape {
  int tp = 1, dp = 1;
};
// An environment variable's value, nullptr when unset: std::getenv, or a table in tests.
using EnvLookup = std::function<const char*(const char*)>;
// Validate a tp × dp layout of `world` ranks without any MPI (dp = 0 means world / tp).
// Errors name the numbers, "tp 3 does not divide world 8", and what to change in the launch (launch_advice of `env`).
GridShape resolve_grid(int world, int tp, int dp, const EnvLookup& env);

// For a grid error: how the launcher that started this process (read from the environment it gave: OpenMPI's
// mpirun sets OMPI_COMM_WORLD_SIZE, srun SLURM_STEP_NUM_TASKS, a Slurm job SLURM_JOB_ID) was started, and how to
// start `ranks` processes with it instead.
struct LaunchAdvice {
  std::string started;  // " (started by srun with 1 task)", "" when not known
  std::string how;      // "srun --ntasks=2 ..., in a Slurm job of at least 2 tasks (#SBATCH ...)"
};
LaunchAdvice launch_advice(int world, int ranks, const EnvLookup& env);

// Validate tp * dp == world (dp = 0 means world / tp) and build the groups over the MPI runtime (initialising it
// if needed), whose ranks wait for late ones as `mpi_wait` says (parallel.mpi_wait; the host groups, and tp_comm and
// dp_comm with the MPI backend). Collective: every rank calls it with the same numbers, its threads set first
// (set_cpu_threads: Auto counts them).
ParallelDims make_parallel_dims(int tp, int dp, Backend backend, CollectiveWait mpi_wait = CollectiveWait::Auto);
// A single-process grid (tp = dp = 1) with self comms; no MPI needed.
ParallelDims single_process_dims();

// The CUDA device index of this rank among the `visible` GPUs of its process: its local rank when the process sees
// the node's GPUs (mpirun, srun without binding), 0 when every rank of the node sees one GPU of its own (Slurm's
// --gpus-per-task=1 or --gpu-bind=single:1 set a per-task CUDA_VISIBLE_DEVICES). Errors name the numbers and what to
// change when the node has fewer GPUs than ranks. One GPU visible to several ranks may also be one GPU for all (an
// mpirun -np 2 on a one-GPU machine): the callers then check with check_node_gpus_distinct (dist/runtime.h).
int gpu_for_local_rank(int local_rank, int local_size, int visible);

// "mpi" | "nccl" | "auto" (nccl when `on_cuda`, else mpi), as in the config key parallel.backend.
Backend backend_from_name(const std::string& name, bool on_cuda);
const char* backend_name(Backend b);

}  // namespace cg::dist
