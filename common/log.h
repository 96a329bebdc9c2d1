// Logging setup: spdlog everywhere; rank 0 speaks at info, other ranks only warn unless asked.
#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace cg {

// Call once per process after the rank is known (rank 0 before MPI is up).
// level: "trace" | "debug" | "info" | "warn" | "error". all_ranks: every rank logs at `level`.
void init_logging(int rank, int world, const std::string& level = "info", bool all_ranks = false);

// Human-readable byte counts and durations for progress lines ("1.5 GiB", "1h02m").
std::string human_bytes(double bytes);
std::string human_duration(double seconds);

}  // namespace cg
