// RunMetrics: what a sweep summary needs from one finished (or partial) run: metrics.jsonl and the eval report.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace cg::sweep {

struct RunMetrics {
  bool found = false;                       // metrics.jsonl exists
  int64_t last_step = -1;                   // highest step seen
  std::optional<double> best_val_loss;      // min over trained steps (> 0) with a val_loss
  int64_t best_val_step = -1;
  std::optional<double> best_val_generation;  // the generation / infill tasks' val losses at best_val_step
  std::optional<double> best_val_infill;
  std::optional<double> base_val_loss;      // val_loss at step 0: the model before training (the base, LoRA B = 0)
  std::optional<double> final_train_loss;   // loss at the highest step that has one
  std::optional<double> tokens_per_s;       // mean of a tokens_per_s field (the first step left out: warmup), else
                                            // sum(tokens) / elapsed time_s between consecutive steps of one process
  int64_t bad_lines = 0;                    // lines that were not JSON objects with a step (e.g. cut mid-write)
  std::map<std::string, double> validity;   // eval report rates: *valid* fields, uniqueness, novelty
};

// Read <file> as JSON lines {"step": N, "loss": x, "val_loss": y, "val_loss_generation": g, "val_loss_infill": i,
// "tokens": n, "time_s": t, ...} (written by
// trainer/train_loop.cpp through trainer/metrics.h; a "tokens_per_s" field is used when present);
// missing or null fields are absent from that record; a step seen twice (appended after a resume) keeps, per
// field, its last value. A missing file gives found = false.
RunMetrics read_metrics_file(const std::string& metrics_jsonl);

// The rates of cgeval's report.json (sampler/eval_report.h): top-level numeric fields whose key contains "valid"
// (structural_validity, compositional_validity, validity), plus uniqueness and novelty; nested objects (counts,
// distributions) are left out. A missing or unreadable file gives an empty map.
std::map<std::string, double> read_validity(const std::string& report_json);

}  // namespace cg::sweep
