// bench_comm_wait: what MpiComm's sleeping wait (CollectiveWait::AsleepFirst) costs a balanced all-reduce, against
// OpenMPI's blocking MPI_Allreduce (how MpiComm waited before, and how it waits with CollectiveWait::Polling). Every
// rank busy-works WORK_MS (the last rank 5% longer: a balanced step's skew), then all-reduces ELEMS floats; ITERS
// rounds each way, alternating, 3 times. Prints wall time a round and rank 0's CPU time a round (its work included):
// the wait's extra CPU is the CPU above WORK_MS.
//   mpirun -np 2 build/bench/bench_comm_wait [ELEMS] [ITERS] [WORK_MS]     defaults 524288 (2 MB: a tiny-model
//                                                                          activation at micro-batch 4) 200 0
#define OMPI_SKIP_MPICXX 1  // the C API only, as in dist/
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "dist/cpu_threads.h"
#include "dist/mpi_comm.h"
#include "dist/runtime.h"

namespace {

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

void busy_ms(double ms) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() < ms) {
  }
}

int run(int argc, char** argv) {
  const int64_t elems = argc > 1 ? std::atoll(argv[1]) : 524288;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 200;
  const double work_ms = argc > 3 ? std::atof(argv[3]) : 0;
  cg::dist::set_cpu_threads(1);  // one thread a rank, as cgtrain's 2 ranks on 2 cores
  // AsleepFirst, not Auto (which polls across nodes with a core per thread): the bench weighs the barrier's round
  // against no barrier on any layout, two nodes included (mpirun -H a,b), to tell what it costs there.
  cg::dist::CommPtr comm = cg::dist::make_mpi_world_comm(cg::dist::CollectiveWait::AsleepFirst);
  const bool last = comm->rank() == comm->size() - 1;
  at::Tensor t = at::ones({elems});
  for (int pass = 0; pass < 3; ++pass) {
    for (const bool blocking : {true, false}) {
      comm->barrier();
      const double c0 = cpu_s();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) {
        busy_ms(work_ms * (last ? 1.05 : 1.0));
        if (blocking)
          MPI_Allreduce(MPI_IN_PLACE, t.data_ptr<float>(), static_cast<int>(elems), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else
          comm->all_reduce(t);
        t.fill_(1.0f);
      }
      const double wall_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      const double cpu_us = (cpu_s() - c0) * 1e6;
      if (comm->rank() == 0)
        std::printf("%d ranks, %lld floats, work %.1f ms: %-26s %9.1f us wall, %9.1f us CPU a round\n", comm->size(),
                    static_cast<long long>(elems), work_ms,
                    blocking ? "MPI_Allreduce (blocking)" : "MpiComm::all_reduce", wall_us / iters, cpu_us / iters);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cg::dist::run_main(argc, argv, run); }
