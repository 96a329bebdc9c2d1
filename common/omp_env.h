// OpenMP's and OpenBLAS's wait for CPU runs, fixed before libgomp and OpenBLAS start.
//
// libtorch's intra-op threads (libgomp) and OpenBLAS's own pthread pool (Debian's libopenblas0-pthread) share the
// cores. With libgomp's default policy an idle OpenMP thread spins for a while after every parallel region, on the
// very cores OpenBLAS's threads need for the next matmul, and vice versa: on the 2-core CI machine a 2-thread tiny
// training step took 2.0 s with the default and 0.61 s with OMP_WAIT_POLICY=PASSIVE (1 thread: 0.89 s; see
// docs/performance.md). libgomp reads the policy once, in its constructor (before main), so setting it from main is
// too late, and so is a setenv from the executable's .preinit_array: glibc 2.36 runs that before libc's own
// constructor, which then sets `environ` back to the process's initial environment (tested: libgomp still spun). So
// omp_env.cpp defines getenv in the executable: libgomp's getenv call binds to it (the executable comes first in
// the dynamic linker's lookup), and it answers PASSIVE for an unset OMP_WAIT_POLICY; every other name, and a value
// the user set (ACTIVE, PASSIVE: also how to opt out), is read from the environment as libc's getenv does. It
// replaced a re-execution of the process with the variable set, which loaded libtorch twice.
//
// OpenBLAS's pthread pool has the same habit: after each call its idle threads spin on sched_yield for 2^28 cycles
// (~0.1 s) before they sleep, and on a busy machine every yield is a trip into the kernel. A 2-thread tp 1 tiny run
// spent 2-10 s of its 10-19 s of CPU in the kernel; with OPENBLAS_THREAD_TIMEOUT=4 (2^4 cycles: they sleep at once,
// as libgomp's do under PASSIVE) 0.7-4.9 s, the losses the same (docs/performance.md, "tp 1's system time"). OpenBLAS
// reads it in its constructor too, through the same getenv, which answers 4 when it is unset.
#pragma once

namespace cg {

// Sets OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 in the environment where unset, for the processes the
// tool starts (cgsweep's stages, python helpers, MPI singletons), which the getenv above does not reach. run_main
// calls it first thing; a main that does not use run_main calls it too, and that call is also what links
// omp_env.cpp's getenv into the executable (a static library's object is added to a link only when something in it
// is referenced).
void keep_passive_omp_for_children();

// Blocks SIGTERM, SIGUSR1 and SIGINT. cgtrain calls it from .preinit_array, before any shared library's
// initialisers: loading libtorch takes 0.3 s or more (seconds on a busy node), and a preemption signal of that moment
// would otherwise kill the rank with 143 instead of the requeue code 75.
void hold_stop_signals();

// Lets in the signals hold_stop_signals blocked; run_main calls it, after main installed the tool's handlers, so a
// signal that came while the process loaded reaches them. A tool without handlers is stopped by it then.
void release_stop_signals();

}  // namespace cg
