// Metrics: a JSONL writer (one flushed object per line; rank 0 writes run_dir/metrics.jsonl) and the progress line.
// After a resume the file is appended to, so a step may appear twice; readers keep the last record per step.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace cg {

using MetricValue = std::variant<int64_t, double, std::string, bool>;
using MetricFields = std::vector<std::pair<std::string, MetricValue>>;

class MetricsWriter {
 public:
  // append = false truncates. Throws cg::Error naming the path when it cannot be opened.
  explicit MetricsWriter(const std::string& path, bool append = true);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // One JSON object per line, keys in the given order; non-finite doubles become null. Flushed at once.
  void write(const MetricFields& fields);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

// Before a launch appends to the metrics file `path`, so that it holds one run: resuming at `step` drops the
// records of later steps (written by a launch that ended before its next checkpoint, or a cut last line); a fresh
// start (step 0) moves a previous run's file to path.prev. Returns what it did as a warning, "" when nothing.
std::string trim_metrics(const std::string& path, int64_t step);

// One JSON object as text (no newline): the writer's line format.
std::string metrics_json_line(const MetricFields& fields);

struct ProgressInfo {
  int64_t step = 0;            // optimizer steps done
  int64_t total_steps = 0;
  double epoch = 0;            // fractional epochs over the training shards
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;        // before clipping
  double tokens_per_s = 0;     // all ranks
  double mfu = -1;             // model FLOP utilisation in [0, 1]; < 0: unknown (CPU)
  double mem_bytes = -1;       // peak RSS, or the most CUDA device memory in use seen; < 0: unknown
  const char* mem_kind = "rss";  // "rss" | "cuda"
  double eta_s = -1;           // < 0: unknown
};

// "step 120/2000 (6.0%) | epoch 0.37 | loss 1.2346 | lr 9.80e-05 | gnorm 0.512 | 12.3k tok/s | MFU 41.2% |
//  rss 2.0 GiB | ETA 1h02m"; unknown fields are left out.
std::string format_progress(const ProgressInfo& p);

// Steps k in (step, total] at which an every-N event fires: k % every == 0, and (at_last) the last step whatever
// `every` (every <= 0: the last step only when at_last, else never).
int64_t events_left(int64_t step, int64_t total, int64_t every, bool at_last);

// This launch's time, split: training steps (what tok/s and MFU measure) and the validations and checkpoint saves
// between them (what the remaining time must also count).
struct RunClock {
  double step_s = 0, val_s = 0, save_s = 0;
  int64_t steps = 0, vals = 0, saves = 0;
  double first_val_s = 0;  // the launch's first validation (warm-up included), left out of the average once more ran
  void add_val(double s) {
    if (vals == 0) first_val_s = s;
    val_s += s;
    ++vals;
  }
  // Remaining seconds after step `step` of `total` (the progress line comes before that step's validation and
  // save): the average step time × steps left, plus the average validation and save times × those still to come,
  // the current step's included (validations every val_every and at the last step when val_every > 0; saves every
  // ckpt_every and at the last step). A kind not yet timed in this launch counts 0. < 0 before any step.
  double eta_s(int64_t step, int64_t total, int64_t val_every, int64_t ckpt_every) const;
};

// Model FLOP utilisation: the model FLOPs the whole job does per second (tokens_per_s counts all ranks' tokens) over
// the peak of all its devices (`devices` of `peak_flops` each). < 0 when the peak is unknown (0: a CPU, an unlisted
// GPU).
double model_flops_utilisation(double tokens_per_s, double flops_per_token, double peak_flops, int devices);

// "12.3k" / "4.56M" style counts for throughput.
std::string human_count(double n);

// Resident set size of this process now, and its peak (bytes); < 0 when unknown.
double current_rss_bytes();
double peak_rss_bytes();

}  // namespace cg
