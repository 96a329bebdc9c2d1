// Reading of metrics.jsonl (written by cgtrain) and of the eval report (written by cgeval) for sweep summaries.
#include "launch/run_metrics.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>

namespace cg::sweep {
namespace {

std::optional<double> number(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// Top-level rates of the report: every *valid* field (structural_validity, compositional_validity, validity),
// uniqueness and novelty. Nested objects (counts, distributions) are left out.
void collect_rates(const nlohmann::json& j, std::map<std::string, double>& out) {
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number()) continue;
    std::string lk = it.key();
    std::transform(lk.begin(), lk.end(), lk.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lk.find("valid") != std::string::npos || lk == "uniqueness" || lk == "novelty")
      out[it.key()] = it->get<double>();
  }
}

}  // namespace

RunMetrics read_metrics_file(const std::string& metrics_jsonl) {
  RunMetrics m;
  std::ifstream f(metrics_jsonl);
  if (!f) return m;
  m.found = true;
  // A step can appear twice (files of builds that appended on resume): per step and field, the last value wins.
  struct StepFields {
    std::optional<double> loss, val_loss, val_generation, val_infill, tokens_per_s;
  };
  std::map<int64_t, StepFields> steps;
  // Throughput derived from cgtrain's per-step "tokens" and "time_s" (seconds since that process started training):
  // tokens over elapsed time between consecutive records of one process; a drop in time_s or in step starts a new
  // process (resume), whose first step (warmup, loading) is left out like the first step of the run. Where records
  // carry "step_s" (the step's own time), that is the elapsed time: validations and saves between steps are not
  // training throughput.
  double seg_tokens = 0, seg_seconds = 0, prev_time = -1, first_tokens = 0, first_time = 0;
  int64_t prev_step = -1;
  std::string line;
  while (std::getline(f, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) {
      ++m.bad_lines;
      continue;
    }
    StepFields& s = steps[j["step"].get<int64_t>()];
    if (auto v = number(j, "loss")) s.loss = v;
    if (auto v = number(j, "val_loss")) s.val_loss = v;
    if (auto v = number(j, "val_loss_generation")) s.val_generation = v;
    if (auto v = number(j, "val_loss_infill")) s.val_infill = v;
    if (auto v = number(j, "tokens_per_s")) s.tokens_per_s = v;
    const auto tokens = number(j, "tokens"), time = number(j, "time_s"), step_s = number(j, "step_s");
    if (tokens && time) {
      const int64_t step = j["step"].get<int64_t>();
      if (prev_time >= 0 && *time > prev_time && step > prev_step) {
        seg_tokens += *tokens;
        seg_seconds += step_s ? *step_s : *time - prev_time;
      } else if (first_time == 0) {
        first_tokens = *tokens, first_time = *time;
      }
      prev_time = *time;
      prev_step = step;
    }
  }
  double tps_sum = 0, tps_first = 0;
  int64_t tps_n = 0;
  for (const auto& [step, s] : steps) {  // ascending steps
    m.last_step = step;
    if (s.val_loss && step == 0) m.base_val_loss = s.val_loss;  // not a trained model: never "best"
    if (s.val_loss && step > 0 && (!m.best_val_loss || *s.val_loss < *m.best_val_loss)) {
      m.best_val_loss = s.val_loss;
      m.best_val_step = step;
      m.best_val_generation = s.val_generation;
      m.best_val_infill = s.val_infill;
    }
    if (s.loss) m.final_train_loss = s.loss;
    if (s.tokens_per_s) {
      if (tps_n == 0) tps_first = *s.tokens_per_s;
      tps_sum += *s.tokens_per_s;
      ++tps_n;
    }
  }
  if (tps_n == 1) m.tokens_per_s = tps_first;
  if (tps_n > 1) m.tokens_per_s = (tps_sum - tps_first) / double(tps_n - 1);
  if (!m.tokens_per_s && seg_seconds > 0) m.tokens_per_s = seg_tokens / seg_seconds;
  if (!m.tokens_per_s && first_time > 0) m.tokens_per_s = first_tokens / first_time;
  return m;
}

std::map<std::string, double> read_validity(const std::string& report_json) {
  std::map<std::string, double> out;
  std::ifstream f(report_json);
  if (!f) return out;
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  collect_rates(j, out);
  return out;
}

}  // namespace cg::sweep
