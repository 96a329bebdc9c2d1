#include "dist/cpu_threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <spdlog/spdlog.h>

#include "common/blas_threads.h"
#include "common/error.h"

namespace cg::dist {

int cpu_threads(int64_t requested, int local_size) {
  // More threads than hardware threads only slows a rank down (and a slip like 100000 starts that many).
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (requested > 0) {
    CG_CHECK(requested <= cores, "train.threads={} is more than this machine's {} hardware threads: set "
             "train.threads to at most {} (0: OMP_NUM_THREADS, else cores / ranks on this node)", requested, cores,
             cores);
    return static_cast<int>(requested);
  }
  if (const char* e = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(e);
    if (n > cores) {
      spdlog::warn("OMP_NUM_THREADS={} is more than this machine's {} hardware threads: using {}", n, cores, cores);
      return cores;
    }
    if (n > 0) return n;
  }
  return std::max(1, cores / std::max(1, local_size));
}

void set_cpu_threads(int n) {
  CG_CHECK(n >= 1, "thread count must be >= 1, got {}", n);
  at::set_num_threads(n);
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) set_openblas_threads(n);
  keep_freed_heap_memory();
}

void keep_freed_heap_memory() {
#if defined(__GLIBC__)
  // glibc's defaults give a training step's freed activations back to the kernel (a block above the mmap threshold
  // is unmapped on free; the heap's top is trimmed past the trim threshold), and the next step pays a page fault
  // and a zeroed page for every 4 KB of them again: 19k-41k faults and 150-220 ms of system time in a 1.1 s tiny
  // step on CPU (docs/performance.md). Fixing both thresholds keeps blocks up to 32 MB (glibc's largest mmap
  // threshold) in the heap for reuse; larger ones are still mapped and unmapped. Memory stays at the step's peak.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace cg::dist
