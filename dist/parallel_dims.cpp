// ParallelDims: validation of the tp × dp layout and the MPI_Comm_split that builds its groups.
#include "dist/parallel_dims.h"

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/input_error.h"
#include "dist/mpi_comm.h"
#include "dist/nccl_comm.h"
#include "dist/runtime.h"

namespace cg::dist {

std::string ParallelDims::describe() const {
  return fmt::format("tp {} x dp {} (world {}, {})", tp, dp, world, backend_name(backend));
}

GridShape resolve_grid(int world, int tp, int dp) {
  CG_CHECK(world >= 1, "world size {} must be at least 1", world);
  CG_CHECK(tp >= 1, "parallel.tp {} must be at least 1", tp);
  CG_CHECK(dp >= 0, "parallel.dp {} must be at least 1 (or 0 for world / tp)", dp);
  // World 1 is mostly a command run without mpirun (the README's commands start cgtrain and cgsample under it).
  CG_CHECK(world % tp == 0, "tp {} does not divide world {}{}; launch a multiple of {} ranks (mpirun -np {} ...), or "
           "set parallel.tp to a divisor of {}", tp, world, world == 1 ? " (one process: not started by mpirun)" : "",
           tp, tp, world);
  if (dp == 0) dp = world / tp;
  CG_CHECK(tp * dp == world, "tp {} x dp {} = {} ranks but the job has world {}; launch {} ranks or set parallel.dp={}",
           tp, dp, tp * dp, world, tp * dp, world / tp);
  return {tp, dp};
}

int gpu_for_local_rank(int local_rank, int local_size, int visible) {
  CG_CHECK(visible > 0, "local rank {} sees no GPU (CUDA_VISIBLE_DEVICES, the driver), and NCCL collectives need one "
           "per rank: run on a GPU node, or on CPUs set model.device=cpu and parallel.backend=mpi (or auto, which picks "
           "mpi on cpu)", local_rank);
  if (local_rank < visible) return local_rank;
  if (visible == 1 && local_size > 1) return 0;  // a GPU of its own per rank (per-task CUDA_VISIBLE_DEVICES)
  CG_FAIL("local rank {} of {} ranks on this node has no GPU: the process sees {} GPU(s); launch at most {} ranks "
          "per node (one per GPU), or bind one GPU to each rank (Slurm --gpus-per-task=1)", local_rank, local_size,
          visible, visible);
}

namespace {

// "tp sleep, dp poll, world sleep": the wait each host group uses (the first rank's; Auto agrees it in a group).
std::string waits_of(const ParallelDims& d) {
  return fmt::format("tp {}, dp {}, world {}", collective_wait_name(collective_wait_of(*d.host_tp_comm)),
                     collective_wait_name(collective_wait_of(*d.host_dp_comm)),
                     collective_wait_name(collective_wait_of(*d.host_world_comm)));
}

}  // namespace

ParallelDims make_parallel_dims(int tp, int dp, Backend backend, CollectiveWait mpi_wait) {
  const Runtime& rt = init_runtime(nullptr, nullptr);
  // The grid's errors come from parallel.tp / parallel.dp and the world size, the same on every rank: said once
  // (cg::InputError, run_main), not once per rank.
  GridShape g;
  try {
    g = resolve_grid(rt.world, tp, dp);
  } catch (const Error& e) {
    throw InputError(e.what());
  }
  ParallelDims d;
  d.world = rt.world;
  d.tp = g.tp;
  d.dp = g.dp;
  d.rank = rt.rank;
  d.tp_rank = rt.rank % g.tp;  // tp ranks adjacent: rank = dp_rank * tp + tp_rank
  d.dp_rank = rt.rank / g.tp;
  d.backend = backend;
  d.host_world_comm = make_mpi_world_comm(mpi_wait);
  d.host_tp_comm = make_mpi_split_comm(/*color=*/d.dp_rank, /*key=*/d.tp_rank, mpi_wait);  // ranks of one dp replica
  d.host_dp_comm = make_mpi_split_comm(/*color=*/d.tp_rank, /*key=*/d.dp_rank, mpi_wait);  // one shard, all replicas
  if (backend == Backend::Mpi) {
    d.tp_comm = d.host_tp_comm;
    d.dp_comm = d.host_dp_comm;
  } else {
    CG_CHECK(nccl_compiled(), "parallel.backend=nccl but this build has no NCCL (nccl.h/cuda_runtime.h not found at "
             "configure time); use parallel.backend=mpi or rebuild as in docs/gpu.md");
    const int gpu = gpu_for_local_rank(rt.local_rank, rt.local_size, cuda_device_count());
    check_node_gpus_distinct(cuda_device_pci_bus_id(gpu));  // collective over the node's ranks
    set_cuda_device(gpu);  // this rank's GPU, before any communicator or tensor touches one
    d.tp_comm = make_nccl_comm(d.host_tp_comm, gpu);
    d.dp_comm = make_nccl_comm(d.host_dp_comm, gpu);
  }
  CG_CHECK(d.tp_comm->size() == d.tp && d.tp_comm->rank() == d.tp_rank && d.dp_comm->size() == d.dp &&
               d.dp_comm->rank() == d.dp_rank,
           "internal: process groups do not match the grid {}", d.describe());
  if (rt.rank == 0) {  // once, not a line per rank; what Auto chose, for a cluster's user to weigh (docs/cluster.md)
    spdlog::info("parallel grid: {}", d.describe());
    spdlog::info("ranks waiting in MPI collectives (parallel.mpi_wait={}): {}", collective_wait_name(mpi_wait),
                 waits_of(d));
  }
  return d;
}

ParallelDims single_process_dims() {
  ParallelDims d;
  d.tp_comm = d.dp_comm = make_self_comm();
  d.host_world_comm = d.host_tp_comm = d.host_dp_comm = d.tp_comm;
  return d;
}

Backend backend_from_name(const std::string& name, bool on_cuda) {
  if (name == "mpi") return Backend::Mpi;
  if (name == "nccl") return Backend::Nccl;
  if (name == "auto") return on_cuda ? Backend::Nccl : Backend::Mpi;
  CG_FAIL("parallel.backend '{}' is not one of auto, mpi, nccl", name);
}

const char* backend_name(Backend b) { return b == Backend::Nccl ? "nccl" : "mpi"; }

}  // namespace cg::dist
