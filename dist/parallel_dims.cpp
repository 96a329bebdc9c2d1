// ParallelDims: validation of the tp × dp layout and the MPI_Comm_split that builds its groups.
#include "dist/parallel_dims.h"

#include <cstdlib>

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

namespace {

// A launcher's count of processes, 0 when unset or not a count.
int count_in(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 && n <= 1 << 30 ? int(n) : 0;
}

}  // namespace

LaunchAdvice launch_advice(int world, int ranks, const EnvLookup& env) {
  // mpirun inside a Slurm job starts its daemons with srun, so its ranks have Slurm's step variables too: OpenMPI's
  // own comes first.
  const bool in_job = env("SLURM_JOB_ID") != nullptr;
  const std::string job_tasks =
      in_job ? fmt::format(", in a Slurm job of at least {} tasks (#SBATCH --nodes and --ntasks-per-node)", ranks) : "";
  if (count_in(env, "OMPI_COMM_WORLD_SIZE") > 0)
    return {" (started by mpirun)", fmt::format("mpirun -np {} ...{}", ranks, job_tasks)};
  if (const int step_tasks = count_in(env, "SLURM_STEP_NUM_TASKS"); step_tasks > 0) {
    // Each task its own world: srun started them without the MPI plugin this MPI library talks to.
    if (step_tasks > world)
      return {fmt::format(" (srun started {} tasks, but MPI sees a world of {}: srun's MPI plugin does not match "
                          "this MPI library)", step_tasks, world),
              fmt::format("srun --mpi=pmix --ntasks={} ..., or the --mpi type your MPI was built for: srun --mpi=list",
                          ranks)};
    return {fmt::format(" (started by srun with {} task{})", step_tasks, step_tasks == 1 ? "" : "s"),
            fmt::format("srun --ntasks={} ...{}", ranks, job_tasks)};
  }
  if (in_job && world == 1)  // a plain command in the job script (the batch step), or in salloc's shell
    return {fmt::format(" (one process of Slurm job {}, not started by srun)", env("SLURM_JOB_ID")),
            fmt::format("srun --ntasks={} ... in the job script, or launch/run.sh --srun{}", ranks, job_tasks)};
  if (world == 1)
    return {" (one process: not started by mpirun or srun)",
            fmt::format("mpirun -np {} ..., or under Slurm srun --ntasks={} ...", ranks, ranks)};
  return {"", fmt::format("mpirun -np {} ...{}", ranks, job_tasks)};  // another launcher (MPICH's mpiexec, ...)
}

GridShape resolve_grid(int world, int tp, int dp, const EnvLookup& env) {
  CG_CHECK(world >= 1, "world size {} must be at least 1", world);
  CG_CHECK(tp >= 1, "parallel.tp {} must be at least 1", tp);
  CG_CHECK(dp >= 0, "parallel.dp {} must be at least 1 (or 0 for world / tp)", dp);
  // World 1 is mostly a command run without mpirun (the README's commands start cgtrain and cgsample under it), or
  // a job step with too few tasks: the message says which, and what to change there.
  if (world % tp != 0) {
    const LaunchAdvice a = launch_advice(world, tp, env);
    CG_FAIL("tp {} does not divide world {}{}; launch a multiple of {} ranks ({}), or set parallel.tp to a divisor "
            "of {}", tp, world, a.started, tp, a.how, world);
  }
  if (dp == 0) dp = world / tp;
  if (tp * dp != world) {
    const LaunchAdvice a = launch_advice(world, tp * dp, env);
    CG_FAIL("tp {} x dp {} = {} ranks but the job has world {}{}; launch {} ranks ({}) or set parallel.dp={}", tp,
            dp, tp * dp, world, a.started, tp * dp, a.how, world / tp);
  }
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
    g = resolve_grid(rt.world, tp, dp, [](const char* name) { return std::getenv(name); });
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
