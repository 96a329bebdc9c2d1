// ParallelDims: the tp × dp process grid (tp ranks adjacent, i.e. inside a node), validated once, passed as a value.
#pragma once
#include <string>

#include "dist/comm.h"

namespace cg::dist {

enum class Backend { Mpi, Nccl };

struct ParallelDims {
  int world = 1, tp = 1, dp = 1;
  int rank = 0, tp_rank = 0, dp_rank = 0;  // rank = dp_rank * tp + tp_rank
  Backend backend = Backend::Mpi;
  CommPtr world_comm, tp_comm, dp_comm;

  std::string describe() const;  // "tp 2 x dp 2 (world 4, mpi)"
};

// Validate tp * dp == world (dp = 0 means world / tp) and build the groups over the MPI runtime.
// Errors name the numbers ("tp 3 does not divide world 8").
ParallelDims make_parallel_dims(int tp, int dp, Backend backend);
// A single-process grid (tp = dp = 1) with self comms; no MPI needed.
ParallelDims single_process_dims();

}  // namespace cg::dist
