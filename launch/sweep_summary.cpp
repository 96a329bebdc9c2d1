// Summary table (Markdown + CSV) of a sweep.
#include "launch/sweep_summary.h"

#include <spdlog/fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/file_set.h"

namespace cg::sweep {
namespace {

std::string setting_of(const SummaryRow& r, const std::string& key) {
  for (const auto& s : r.settings)
    if (s.key == key) return s.value;
  return "";
}

std::string opt(const std::optional<double>& v, int decimals = 4) {
  return v ? fmt::format("{:.{}f}", *v, decimals) : "";
}

std::vector<std::string> validity_columns(const std::vector<SummaryRow>& rows) {
  std::set<std::string> cols;
  for (const auto& r : rows)
    for (const auto& kv : r.metrics.validity) cols.insert(kv.first);
  return {cols.begin(), cols.end()};
}

// Whether any run's validation held both tasks (its metrics have the per-task losses).
bool have_task_losses(const std::vector<SummaryRow>& rows) {
  return std::any_of(rows.begin(), rows.end(), [](const SummaryRow& r) {
    return r.metrics.best_val_generation && r.metrics.best_val_infill;
  });
}

std::vector<std::vector<std::string>> table(const std::vector<std::string>& keys, const std::vector<SummaryRow>& rows,
                                            std::vector<std::string>& header) {
  const auto vcols = validity_columns(rows);
  const bool by_task = have_task_losses(rows);
  header = {"point"};
  header.insert(header.end(), keys.begin(), keys.end());
  for (const char* h : {"status", "steps", "best_val_loss", "best_val_step"}) header.push_back(h);
  if (by_task) header.insert(header.end(), {"val_generation", "val_infill"});
  for (const char* h : {"final_train_loss", "tokens_per_s"}) header.push_back(h);
  header.insert(header.end(), vcols.begin(), vcols.end());
  header.push_back("run_dir");
  std::vector<std::vector<std::string>> out;
  for (const auto& r : rows) {
    const auto& m = r.metrics;
    std::vector<std::string> row = {r.name};
    for (const auto& k : keys) row.push_back(setting_of(r, k));
    row.push_back(r.status);
    row.push_back(m.last_step >= 0 ? std::to_string(m.last_step) : "");
    row.push_back(opt(m.best_val_loss));
    row.push_back(m.best_val_loss ? std::to_string(m.best_val_step) : "");
    if (by_task) {
      row.push_back(opt(m.best_val_generation));
      row.push_back(opt(m.best_val_infill));
    }
    row.push_back(opt(m.final_train_loss));
    row.push_back(opt(m.tokens_per_s, 1));
    for (const auto& c : vcols) {
      auto it = m.validity.find(c);
      row.push_back(it == m.validity.end() ? "" : fmt::format("{:.4f}", it->second));
    }
    row.push_back(r.run_dir);
    out.push_back(std::move(row));
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// A Markdown table cell: '|' would end the cell and a line break the row, so they are escaped ("\|", "<br>"); a
// '\' before them is doubled so it stays a backslash.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "<br>";
    else if (c == '\r' || c == '\t') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string summary_markdown(const std::vector<std::string>& keys, const std::vector<SummaryRow>& rows) {
  std::vector<std::string> header;
  const auto body = table(keys, rows, header);
  std::string out = "|";
  for (const auto& h : header) out += " " + md_cell(h) + " |";
  out += "\n|";
  for (size_t i = 0; i < header.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& row : body) {
    out += "|";
    for (const auto& c : row) out += " " + md_cell(c) + " |";
    out += "\n";
  }
  // The best point by val loss, when any has one.
  const SummaryRow* best = nullptr;
  for (const auto& r : rows)
    if (r.metrics.best_val_loss && (!best || *r.metrics.best_val_loss < *best->metrics.best_val_loss)) best = &r;
  if (best) {
    out += fmt::format("\nBest val loss: {:.4f} at step {} ({})", *best->metrics.best_val_loss,
                       best->metrics.best_val_step, best->name);
    if (best->metrics.base_val_loss)
      out += fmt::format("; before training (step 0) it scored {:.4f}", *best->metrics.base_val_loss);
    out += ".\n";
  }
  // Every swept data key but these changes the validation samples or their tokens (val is never translated or
  // permuted; copies are train's).
  static const std::set<std::string> same_val = {"data.translate", "data.permute", "data.copies", "data.shard_samples",
                                                 "data.shards_dir", "data.train_csv", "data.test_csv"};
  std::vector<std::string> changing;
  for (const std::string& k : keys)
    if (k.rfind("data.", 0) == 0 && !same_val.count(k)) changing.push_back(k);
  if (!changing.empty())
    out += fmt::format("\nNote: the points differ in {}, which change{} the validation samples or their tokens: "
                       "compare their val losses with care (sampling metrics are comparable{}).\n",
                       fmt::join(changing, ", "), changing.size() == 1 ? "s" : "",
                       have_task_losses(rows) ? "; val_generation and val_infill each score one task" : "");
  // Whatever the keys, the untrained model's val loss says whether the points validate on the same tokens: with
  // data.tokenizer=train each data setting fits its own tokenizer to its augmented text.
  double lo = 0, hi = 0;
  std::string step0;
  bool any = false;
  for (const auto& r : rows) {
    if (!r.metrics.base_val_loss) continue;
    const double v = *r.metrics.base_val_loss;
    lo = any ? std::min(lo, v) : v, hi = any ? std::max(hi, v) : v, any = true;
    step0 += fmt::format("{}{} {:.4f}", step0.empty() ? "" : ", ", r.name, v);
  }
  if (any && hi - lo > 1e-4)
    out += fmt::format("\nNote: before training (step 0) the points' val losses differ ({}), so they are not scored "
                       "on the same tokens (with data.tokenizer=train every data setting fits its own tokenizer): "
                       "compare each point's drop from its step-0 loss rather than the val losses.\n", step0);
  return out;
}

std::string summary_csv(const std::vector<std::string>& keys, const std::vector<SummaryRow>& rows) {
  std::vector<std::string> header;
  const auto body = table(keys, rows, header);
  std::string out;
  for (size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + csv_field(header[i]);
  out += "\n";
  for (const auto& row : body) {
    for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + csv_field(row[i]);
    out += "\n";
  }
  return out;
}

std::vector<PlotSeries> rank_series(const std::vector<std::string>& keys, const std::vector<SummaryRow>& rows) {
  std::vector<std::string> other;
  for (const auto& k : keys)
    if (k != "lora.r") other.push_back(k);
  std::vector<PlotSeries> out;
  std::map<std::string, size_t> index;
  for (const auto& r : rows) {
    if (!r.metrics.best_val_loss) continue;
    std::string label = other.empty() ? "all" : point_name(other, r.settings);
    auto [it, fresh] = index.emplace(label, out.size());
    if (fresh) out.push_back({label, {}});
    out[it->second].xy.emplace_back(r.rank, *r.metrics.best_val_loss);
  }
  for (auto& s : out) std::sort(s.xy.begin(), s.xy.end());
  return out;
}

void write_summary(const std::string& dir, const std::string& title, const std::vector<std::string>& keys,
                   const std::vector<SummaryRow>& rows) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  // The three replaced together (a full disk leaves the previous three, not a new summary.md beside an old
  // summary.csv), through temporary names unique to this process: concurrent Slurm array tasks may summarize at the
  // same time.
  write_file_set(dir,
                 {{"summary.md", "# " + title + "\n\n" + summary_markdown(keys, rows) +
                                     "\n![val loss vs rank](val_loss_vs_rank.svg)\n"},
                  {"summary.csv", summary_csv(keys, rows)},
                  {"val_loss_vs_rank.svg",
                   line_plot_svg(rank_series(keys, rows), title + ": best val loss vs LoRA rank", "LoRA rank r",
                                 "best val loss")}},
                 shared_tmp_suffix());
}

}  // namespace cg::sweep
