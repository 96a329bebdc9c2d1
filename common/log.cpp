#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cmath>

namespace cg {

void init_logging(int rank, int world, const std::string& level, bool all_ranks) {
  // Idempotent: a second call (e.g. after the rank becomes known) replaces the logger.
  const std::string name = fmt::format("rank{}", rank);
  spdlog::drop(name);
  auto logger = spdlog::stderr_color_mt(name);
  if (world > 1)
    logger->set_pattern(fmt::format("[%H:%M:%S.%e] [%^%l%$] [r{}] %v", rank));
  else
    logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  auto lvl = spdlog::level::from_str(level);
  logger->set_level((rank == 0 || all_ranks) ? lvl : std::max(lvl, spdlog::level::warn));
  spdlog::set_default_logger(logger);
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(b) >= 1024.0 && u < 4) { b /= 1024.0; ++u; }
  return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.2f} {}", b, units[u]);
}

std::string human_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = static_cast<long>(s + 0.5);
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

}  // namespace cg
