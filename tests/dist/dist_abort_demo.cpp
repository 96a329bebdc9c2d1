// A job where rank 1 fails while every other rank waits in a barrier: run_main must abort them all. Run alone
// (world 1), rank 0 fails instead: a plain exit, no MPI_Abort banner. Either way the failing rank runs the
// AbortCleanup set up in main(), which nothing unwinds to: it says so on stderr.
// With `relay` (RelayAbortsToRank0), rank 0 runs its AbortCleanup too, before the job ends.
// `early` fails before MPI starts: each rank still names itself (from the launcher's environment).
// `input`: every rank fails with the same InputError (as a bad config key does): rank 0 alone says it.
// `input1`: rank 1 alone fails with an InputError while the others wait: rank 1 says it (after run_main's wait).
// `mpi1`: as cgtrain's launch (every_rank_alike, RelayAbortsToRank0), an MPI call fails on rank 1 alone: it is said at
// once, not after run_main's wait; rank 1 prints "failing at <seconds since the epoch>" first, for the timing.
// Usage: mpirun -np 2 dist_abort_demo throw|exit|relay|early|input|input1|mpi1, or dist_abort_demo throw
// (checked by check_abort.cmake)
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/input_error.h"
#include "dist/check.h"
#include "dist/mpi_comm.h"
#include "dist/runtime.h"

namespace {

int demo(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "throw";
  auto world = cg::dist::make_mpi_world_comm();
  // relay: rank 1's error reaches rank 0, which runs its cleanup (and says so) before the job ends.
  std::optional<cg::dist::RelayAbortsToRank0> relay;
  if (mode == "relay" || mode == "mpi1") relay.emplace();
  if (mode == "mpi1" && world->rank() == 1) {
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::fprintf(stderr, "failing at %.3f\n", now);
    int x = 0;
    cg::every_rank_alike([&] { CG_CHECK_MPI(MPI_Bcast(&x, -1, MPI_INT, 0, MPI_COMM_WORLD)); });  // a count < 0
  }
  if (mode == "input") throw cg::InputError("deliberate input error, the same on every rank");
  if (mode == "input1" && world->rank() == 1) throw cg::InputError("deliberate input error on rank 1 only");
  if (world->rank() == 1 || world->size() == 1) {
    if (mode == "exit") return 3;
    CG_FAIL("deliberate failure on rank {}", world->rank());
  }
  world->barrier();  // never completes: rank 1 does not come
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // early: a failure before MPI is up (as a tool's command-line error may be): the rank comes from the launcher.
  if (argc > 1 && std::string(argv[1]) == "early") cg::dist::abort_all("deliberate failure before MPI");
  const cg::dist::AbortCleanup cleanup([] {
    std::fprintf(stderr, "abort cleanup ran on rank %d\n", cg::dist::runtime().rank);
  });
  return cg::dist::run_main(argc, argv, demo);
}
