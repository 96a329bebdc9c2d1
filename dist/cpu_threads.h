// CPU compute threads per rank: torch's intra-op pool and OpenBLAS's own pool, set together.
//
// at::set_num_threads sets only the OpenMP pool; Debian's pthread OpenBLAS keeps its own pool of one thread per core
// for every matmul, so 2 ranks x 1 thread on 2 cores ran 4 BLAS threads. Matching the two measured 7.5k against
// 2.8-6.8k tokens/s for the tiny model at tp 2 on 2 cores, and 6.7-8.3k against 5.4-5.7k at dp 2
// (docs/performance.md).
#pragma once
#include <cstdint>

namespace cg::dist {

// The thread count for one rank: requested > 0, else OMP_NUM_THREADS (when a positive integer), else the cores
// divided among the ranks on this node (at least 1).
int cpu_threads(int64_t requested, int local_size);

// torch's intra-op threads := n, and OpenBLAS's pool := n unless OPENBLAS_NUM_THREADS is set (the user's value
// wins). OpenBLAS is found at run time (dlsym), so other BLAS libraries are simply left alone. n >= 1.
// Also calls keep_freed_heap_memory: every tool that runs torch on the CPU sets its threads here.
void set_cpu_threads(int n);

// glibc's malloc keeps freed blocks of up to 32 MB for reuse instead of returning them to the kernel, so that a
// training or decode step does not fault in its activations' pages again each step. Results are unchanged (the same
// allocations, other addresses); the process keeps its peak heap. No-op without glibc.
void keep_freed_heap_memory();

}  // namespace cg::dist
