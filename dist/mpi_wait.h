// Waits on MPI that sleep: for MpiComm's collectives and the runtime's rank-0 exchanges (rank0_text). Includes mpi.h,
// so it is for dist's own .cpp files; MPI types stay out of the headers other code includes.
#pragma once
// The C API only: OpenMPI's mpi.h otherwise pulls in the deprecated C++ bindings (and their library).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

namespace cg::dist {

// Waits for `req` without holding a core: MPI_Test in a loop for the first 100 us (meant for the partners of a
// balanced step, whose wait a sleep would lengthen), then a sleep between tests of an eighth of the time waited so
// far, at most 1 ms: a long wait ends at most ~1/8 later than it could and costs a few ms of CPU a second.
// OpenMPI's blocking calls poll a core at 100% for as long as they wait: two ranks on a 2-core machine shared with
// other work spent about half their CPU time waiting for each other (docs/performance.md, "Ranks waiting").
void wait_sparingly(MPI_Request& req);

// Returns once every rank of `comm` has called it, the wait spent asleep (a nonblocking barrier, wait_sparingly).
// A blocking call made next, with every rank there, waits for nobody.
void wait_asleep_for_all(MPI_Comm comm);

}  // namespace cg::dist
