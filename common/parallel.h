// parallel_chunks: a loop over independent items on a process-wide pool of plain threads plus the calling thread.
// at::parallel_for runs in parallel only in translation units compiled with OpenMP, and GPU builds compile ours
// without it (the pip torch brings its own OpenMP runtime; see docs/gpu.md), so host-side work that must be parallel
// on every build (random init, per-row sampling) uses this instead.
#pragma once

#include <cstdint>
#include <functional>

namespace cg {

// Calls f(b, e) on disjoint, ordered ranges covering [begin, end) (n items): min(threads, n / grain) ranges, at
// least one, of n / ranges items each rounded down or up (so at least `grain` when there are several); the first
// runs on the calling thread. Returns when all have run; rethrows the first exception. Serial (one f(begin, end))
// when one range suffices, threads <= 1, or inside another parallel_chunks (nested calls never wait on a pool they
// occupy).
void parallel_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f);

}  // namespace cg
