// Sweep summary: one row per point (settings, status, best val loss, final train loss, tokens/s, sample validity),
// written as summary.md + summary.csv, plus the val_loss_vs_rank.svg plot.
#pragma once
#include <string>
#include <vector>

#include "launch/line_plot_svg.h"
#include "launch/run_metrics.h"
#include "launch/sweep_spec.h"

namespace cg::sweep {

struct SummaryRow {
  std::string name;                // point name
  std::vector<Setting> settings;   // swept settings
  double rank = 0;                 // resolved lora.r (the plot's x)
  std::string status;              // done | failed: <stage> | pending | ...
  std::string run_dir;
  RunMetrics metrics;
};

std::string summary_markdown(const std::vector<std::string>& keys, const std::vector<SummaryRow>& rows);
std::string summary_csv(const std::vector<std::string>& keys, const std::vector<SummaryRow>& rows);

// The plot's lines: points grouped by every swept setting except lora.r (e.g. the augmentation setting), x = rank,
// y = best val loss; points without a val loss are left out.
std::vector<PlotSeries> rank_series(const std::vector<std::string>& keys, const std::vector<SummaryRow>& rows);

// Write <dir>/summary.md, <dir>/summary.csv and <dir>/val_loss_vs_rank.svg.
void write_summary(const std::string& dir, const std::string& title, const std::vector<std::string>& keys,
                   const std::vector<SummaryRow>& rows);

}  // namespace cg::sweep
