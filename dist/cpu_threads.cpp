#include "dist/cpu_threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

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
}

}  // namespace cg::dist
