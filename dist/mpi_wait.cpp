#include "dist/mpi_wait.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "dist/check.h"

namespace cg::dist {

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

void wait_asleep_for_all(MPI_Comm comm) {
  MPI_Request req = MPI_REQUEST_NULL;
  CG_CHECK_MPI(MPI_Ibarrier(comm, &req));
  wait_sparingly(req);
}

}  // namespace cg::dist
