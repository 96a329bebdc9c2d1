// MpiComm: collectives over an MPI communicator, for CPU tensors (float, double, bf16, half, int8/uint8, int32, int64, bool).
// The CPU backend of every run, and the bootstrap channel of NcclComm. MPI types stay out of this header.
#pragma once
#include "dist/comm.h"

namespace cg::dist {

// All ranks of the job (a duplicate of MPI_COMM_WORLD). Needs init_runtime.
CommPtr make_mpi_world_comm();
// Collective over the world: ranks with the same `color` form one group, ordered by `key` (MPI_Comm_split).
CommPtr make_mpi_split_comm(int color, int key);

}  // namespace cg::dist
