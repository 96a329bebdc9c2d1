// OpenMP's wait policy for CPU runs, fixed before libgomp starts.
//
// libtorch's intra-op threads (libgomp) and OpenBLAS's own pthread pool (Debian's libopenblas0-pthread) share the
// cores. With libgomp's default policy an idle OpenMP thread spins for a while after every parallel region, on the
// very cores OpenBLAS's threads need for the next matmul, and vice versa: on the 2-core CI machine a 2-thread tiny
// training step took 2.0 s with the default and 0.61 s with OMP_WAIT_POLICY=PASSIVE (1 thread: 0.89 s; see
// docs/performance.md). libgomp reads the policy once, when it is loaded (before main), so setting it from main is
// too late: the process re-executes itself with OMP_WAIT_POLICY=PASSIVE instead.
#pragma once

namespace cg {

// When OMP_WAIT_POLICY is unset: set it to PASSIVE and execv the binary again (/proc/self/exe's target, so the
// process name stays the tool's). Same pid, arguments, open files and otherwise the same environment, so it is safe
// under mpirun and srun; call it before MPI_Init. A value the user set (ACTIVE, PASSIVE) is kept, which is also how
// to opt out. Returns only when no re-exec happened (or it failed: the run goes on with the policy it started with).
// SIGTERM, SIGUSR1 and SIGINT are blocked across the exec and unblocked when the new image calls this again: install
// the tool's signal handlers before (cgtrain: in main, before run_main), and a signal of the exec's moment reaches
// them; a tool without handlers is stopped by it then, as before. Every return unblocks them, so a tool that held
// them from its first instruction (hold_stop_signals) gets them once its handlers are up, exec or not.
void reexec_with_passive_omp(char** argv);

// Blocks SIGTERM, SIGUSR1 and SIGINT; reexec_with_passive_omp lets them in. cgtrain calls it from .preinit_array,
// before any shared library's initialisers: loading libtorch takes 0.3 s or more (seconds on a busy node), and a
// preemption signal of that moment would otherwise kill the rank with 143 instead of the requeue code 75.
void hold_stop_signals();

}  // namespace cg
