// JSONL metrics and progress lines.
#include "trainer/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/log.h"

namespace cg {

std::string metrics_json_line(const MetricFields& fields) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [key, value] : fields) {
    std::visit(
        [&, k = key](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, double>) {
            if (std::isfinite(v)) j[k] = v;
            else j[k] = nullptr;
          } else {
            j[k] = v;
          }
        },
        value);
  }
  return j.dump();
}

std::string trim_metrics(const std::string& path, int64_t step) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path) || fs::file_size(path, ec) == 0) return "";
  if (step == 0) {
    fs::rename(path, path + ".prev", ec);
    CG_CHECK(!ec, "cannot move the previous run's {} aside: {}; move it yourself", path, ec.message());
    return fmt::format("{} held a previous run's metrics (no checkpoint to resume): moved to {}.prev", path, path);
  }
  std::istringstream in(read_file(path, "metrics file"));
  std::string line, kept;
  int64_t dropped = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool keep = j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
                      j["step"].get<int64_t>() <= step;
    if (keep) kept += line + "\n";
    else ++dropped;
  }
  if (dropped == 0) return "";
  write_file_atomic(path, kept);
  return fmt::format("{}: dropped {} records after step {} (written after the checkpoint resumed from)", path,
                     dropped, step);
}

MetricsWriter::MetricsWriter(const std::string& path, bool append) : path_(path) {
  f_ = std::fopen(path.c_str(), append ? "a" : "w");
  if (!f_) {
    const int err = errno;
    CG_FAIL("cannot open metrics file {}: {} (errno {}); {}", path, std::strerror(err), err,
            io_advice(err, "change train.run_dir"));
  }
}

MetricsWriter::~MetricsWriter() {
  if (f_) std::fclose(f_);
}

void MetricsWriter::write(const MetricFields& fields) {
  std::string line = metrics_json_line(fields) + "\n";
  errno = 0;
  const bool ok = std::fwrite(line.data(), 1, line.size(), f_) == line.size() && std::fflush(f_) == 0;
  // Free space only for a full disk (io_advice): a file size limit or an I/O error is not fixed by it.
  const int err = errno;
  CG_CHECK(ok, "cannot write metrics file {}: {} (errno {}); {}", path_, std::strerror(err), err,
           io_advice(err, "change train.run_dir"));
}

int64_t events_left(int64_t step, int64_t total, int64_t every, bool at_last) {
  if (step >= total) return 0;
  const int64_t periodic = every > 0 ? total / every - step / every : 0;
  const bool last_counted = every > 0 && total % every == 0;
  return periodic + (at_last && !last_counted ? 1 : 0);
}

double RunClock::eta_s(int64_t step, int64_t total, int64_t val_every, int64_t ckpt_every) const {
  if (steps <= 0) return -1;
  const double left = double(std::max<int64_t>(0, total - step));
  double eta = step_s / double(steps) * left;
  // events_left counts steps after its first argument: step - 1 takes this step's own validation and save in.
  if (vals > 0 && val_every > 0) {
    const double per_val = vals > 1 ? (val_s - first_val_s) / double(vals - 1) : val_s;
    eta += per_val * double(events_left(step - 1, total, val_every, true));
  }
  if (saves > 0) eta += save_s / double(saves) * double(events_left(step - 1, total, ckpt_every, true));
  return eta;
}

double model_flops_utilisation(double tokens_per_s, double flops_per_token, double peak_flops, int devices) {
  return peak_flops > 0 ? tokens_per_s * flops_per_token / (peak_flops * devices) : -1;
}

std::string human_count(double n) {
  const char* units[] = {"", "k", "M", "G", "T"};
  int u = 0;
  while (std::fabs(n) >= 1000 && u < 4) n /= 1000, ++u;
  return u == 0 ? fmt::format("{:.0f}", n) : fmt::format("{:.{}f}{}", n, std::fabs(n) < 10 ? 2 : 1, units[u]);
}

std::string format_progress(const ProgressInfo& p) {
  double pct = p.total_steps > 0 ? 100.0 * static_cast<double>(p.step) / static_cast<double>(p.total_steps) : 0;
  std::string s = fmt::format("step {}/{} ({:.1f}%) | epoch {:.2f} | loss {:.4f} | lr {:.2e} | gnorm {:.3f}", p.step,
                              p.total_steps, pct, p.epoch, p.loss, p.lr, p.grad_norm);
  if (p.tokens_per_s > 0) s += fmt::format(" | {} tok/s", human_count(p.tokens_per_s));
  if (p.mfu >= 0) s += fmt::format(" | MFU {:.1f}%", 100 * p.mfu);
  if (p.mem_bytes >= 0) s += fmt::format(" | {} {}", p.mem_kind, human_bytes(p.mem_bytes));
  if (p.eta_s >= 0) s += fmt::format(" | ETA {}", human_duration(p.eta_s));
  return s;
}

double current_rss_bytes() {
  std::ifstream in("/proc/self/statm");
  long pages_total = 0, pages_rss = 0;
  if (!(in >> pages_total >> pages_rss)) return -1;
  return static_cast<double>(pages_rss) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double peak_rss_bytes() {
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return static_cast<double>(ru.ru_maxrss) * 1024.0;  // Linux reports KiB
}

}  // namespace cg
