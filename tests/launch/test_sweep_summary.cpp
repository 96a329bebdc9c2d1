// Sweep summaries from fake run folders: metrics.jsonl reading (resume duplicates, bad lines), the eval report's
// validity fields, the Markdown/CSV table, and the SVG plot (one line per augmentation setting, y order = loss order).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include <unistd.h>

#include <iterator>

#include "common/durable_file.h"
#include "launch/line_plot_svg.h"
#include "launch/run_metrics.h"
#include "launch/sweep_summary.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace cg::sweep;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d =
      fs::path(::testing::TempDir()) / ("cg_test_sweep_summary_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

// A row with a best val loss (metrics set directly: the table and plot do not read files).
SummaryRow row(const std::string& name, int r, const std::string& translate, double val) {
  SummaryRow x;
  x.name = name;
  x.settings = {{"lora.r", std::to_string(r)}, {"data.translate", translate}};
  x.rank = r;
  x.status = "done";
  x.run_dir = "runs/sw/" + name;
  x.metrics.found = true;
  x.metrics.last_step = 100;
  x.metrics.best_val_loss = val;
  x.metrics.best_val_step = 100;
  x.metrics.final_train_loss = val + 0.25;
  x.metrics.tokens_per_s = 1000.0 * r;
  return x;
}

}  // namespace

TEST(RunMetrics, LastValuePerStepAfterResumeAndBadLines) {
  const fs::path d = temp_dir("metrics");
  put(d / "metrics.jsonl",
      "{\"step\": 10, \"loss\": 2.0, \"tokens_per_s\": 50.0}\n"       // first logged step: warmup, left out of tok/s
      "{\"step\": 20, \"loss\": 1.8, \"tokens_per_s\": 100.0}\n"
      "{\"step\": 20, \"val_loss\": 1.5}\n"
      "{\"step\": 30, \"loss\": 1.6, \"tok\n"                          // cut mid-write by a preemption
      "{\"step\": 30, \"loss\": 1.4, \"tokens_per_s\": 300.0}\n"       // after the resume: step 30 again
      "{\"step\": 30, \"val_loss\": null}\n"                          // non-finite val loss written as null
      "{\"step\": 40, \"val_loss\": 1.2}\n"
      "\n"
      "{\"step\": 40, \"loss\": 1.3, \"tokens_per_s\": 200.0}\n"
      "{\"event\": \"saved\"}\n");
  const RunMetrics m = read_metrics_file((d / "metrics.jsonl").string());
  EXPECT_TRUE(m.found);
  EXPECT_EQ(m.last_step, 40);
  ASSERT_TRUE(m.best_val_loss);
  EXPECT_DOUBLE_EQ(*m.best_val_loss, 1.2);
  EXPECT_EQ(m.best_val_step, 40);
  ASSERT_TRUE(m.final_train_loss);
  EXPECT_DOUBLE_EQ(*m.final_train_loss, 1.3);
  ASSERT_TRUE(m.tokens_per_s);
  EXPECT_DOUBLE_EQ(*m.tokens_per_s, (100.0 + 300.0 + 200.0) / 3);
  EXPECT_EQ(m.bad_lines, 2);  // the cut line and the step-less event
  EXPECT_FALSE(read_metrics_file((d / "missing.jsonl").string()).found);
  fs::remove_all(d);
}

TEST(RunMetrics, ThroughputFromTokensAndTimeAcrossAResume) {
  const fs::path d = temp_dir("tps");
  // cgtrain's records: time_s counts from the start of each process; the resume at step 3 restarts it.
  put(d / "metrics.jsonl",
      "{\"step\": 0, \"val_loss\": 6.3}\n"
      "{\"step\": 1, \"loss\": 6.4, \"tokens\": 400, \"time_s\": 5.0}\n"   // first step: warmup, left out
      "{\"step\": 2, \"loss\": 6.3, \"tokens\": 300, \"time_s\": 6.0}\n"   // 300 tokens in 1 s
      "{\"step\": 3, \"loss\": 6.2, \"tokens\": 500, \"time_s\": 7.0}\n"   // 500 in 1 s, then preempted
      "{\"step\": 3, \"loss\": 6.2, \"tokens\": 500, \"time_s\": 2.5}\n"   // resumed process: its first step
      "{\"step\": 4, \"loss\": 6.1, \"tokens\": 200, \"time_s\": 4.5}\n"   // 200 in 2 s
      "{\"step\": 4, \"val_loss\": 6.0}\n");
  const RunMetrics m = read_metrics_file((d / "metrics.jsonl").string());
  ASSERT_TRUE(m.tokens_per_s);
  EXPECT_DOUBLE_EQ(*m.tokens_per_s, (300.0 + 500.0 + 200.0) / (1.0 + 1.0 + 2.0));
  EXPECT_DOUBLE_EQ(*m.final_train_loss, 6.1);
  EXPECT_DOUBLE_EQ(*m.best_val_loss, 6.0);
  EXPECT_EQ(m.best_val_step, 4);
  ASSERT_TRUE(m.base_val_loss);
  EXPECT_DOUBLE_EQ(*m.base_val_loss, 6.3);
  // The untrained model (step 0) is never the best, even when training made validation worse.
  // A later step that only ties the best leaves it at the earlier one (the checkpoint that got there first).
  put(d / "metrics.jsonl", "{\"step\": 0, \"val_loss\": 1.0}\n{\"step\": 10, \"val_loss\": 1.5}\n"
                           "{\"step\": 20, \"val_loss\": 1.25}\n{\"step\": 30, \"val_loss\": 1.25}\n");
  const RunMetrics w = read_metrics_file((d / "metrics.jsonl").string());
  EXPECT_DOUBLE_EQ(*w.best_val_loss, 1.25);
  EXPECT_EQ(w.best_val_step, 20);
  EXPECT_DOUBLE_EQ(*w.base_val_loss, 1.0);
  // Records with step_s (the step's own time): a validation and a save between steps 2 and 3 (time_s jumps by 9 s)
  // are not training time.
  put(d / "metrics.jsonl",
      "{\"step\": 1, \"loss\": 6.4, \"tokens\": 400, \"time_s\": 5.0, \"step_s\": 5.0}\n"
      "{\"step\": 2, \"loss\": 6.3, \"tokens\": 300, \"time_s\": 6.0, \"step_s\": 1.0}\n"
      "{\"step\": 2, \"val_loss\": 6.0}\n"
      "{\"step\": 3, \"loss\": 6.2, \"tokens\": 500, \"time_s\": 15.0, \"step_s\": 1.0}\n");
  const RunMetrics v = read_metrics_file((d / "metrics.jsonl").string());
  ASSERT_TRUE(v.tokens_per_s);
  EXPECT_DOUBLE_EQ(*v.tokens_per_s, (300.0 + 500.0) / 2.0);
  fs::remove_all(d);
}

// A resumed process whose first record comes later by its clock than the preempted one's last (it died early, the
// new one loaded long) still starts a new segment: its step did not advance. One record alone gives a throughput too.
TEST(RunMetrics, ThroughputOfALateResumeAndOfASingleRecord) {
  const fs::path d = temp_dir("tps_resume");
  put(d / "metrics.jsonl",
      "{\"step\": 1, \"tokens\": 100, \"time_s\": 1.0}\n"    // first step: warmup, left out
      "{\"step\": 2, \"tokens\": 100, \"time_s\": 2.0}\n"    // 100 tokens in 1 s
      "{\"step\": 3, \"tokens\": 100, \"time_s\": 3.0}\n"    // 100 in 1 s, then preempted (checkpoint at step 2)
      "{\"step\": 3, \"tokens\": 100, \"time_s\": 10.0}\n"   // resumed process's first step: left out, not 100 in 7 s
      "{\"step\": 4, \"tokens\": 100, \"time_s\": 11.0}\n");  // 100 in 1 s
  const RunMetrics late = read_metrics_file((d / "metrics.jsonl").string());
  ASSERT_TRUE(late.tokens_per_s);
  EXPECT_DOUBLE_EQ(*late.tokens_per_s, 300.0 / 3.0);
  // A run that logged one step: its tokens over its time (warmup included: there is nothing else to go by) ...
  put(d / "metrics.jsonl", "{\"step\": 1, \"loss\": 6.4, \"tokens\": 400, \"time_s\": 5.0}\n");
  const RunMetrics one = read_metrics_file((d / "metrics.jsonl").string());
  ASSERT_TRUE(one.tokens_per_s);
  EXPECT_DOUBLE_EQ(*one.tokens_per_s, 80.0);
  // ... or the tokens_per_s it logged.
  put(d / "metrics.jsonl", "{\"step\": 10, \"loss\": 2.0, \"tokens_per_s\": 50.0}\n");
  const RunMetrics logged = read_metrics_file((d / "metrics.jsonl").string());
  ASSERT_TRUE(logged.tokens_per_s);
  EXPECT_DOUBLE_EQ(*logged.tokens_per_s, 50.0);
  fs::remove_all(d);
}

TEST(RunMetrics, ValidityFieldsFromTheEvalReport) {
  const fs::path d = temp_dir("report");
  // The layout of sampler/eval_report.cpp's report_json.
  put(d / "report.json", R"({"input": "runs/x/samples", "kind": "samples", "total": 64, "parsed": 60,
      "parse_rate": 0.9375, "structural_validity": 0.875, "compositional_validity": 0.75, "validity": 0.625,
      "counts": {"structurally_valid": 56, "valid": 40}, "uniqueness": 0.95, "novelty": 0.5,
      "distributions": {"wdist_num_atoms": 1.5}, "note": "valid-ish string"})");
  const auto v = read_validity((d / "report.json").string());
  EXPECT_EQ(v, (std::map<std::string, double>{{"structural_validity", 0.875}, {"compositional_validity", 0.75},
                                              {"validity", 0.625}, {"uniqueness", 0.95}, {"novelty", 0.5}}));
  EXPECT_TRUE(read_validity((d / "none.json").string()).empty());
  fs::remove_all(d);
}

TEST(SweepSummary, MarkdownAndCsvTables) {
  std::vector<SummaryRow> rows = {row("r4-translate1", 4, "true", 1.5), row("r8-translate1", 8, "true", 1.25)};
  rows[1].metrics.validity = {{"structural_validity", 0.875}};
  SummaryRow pending;
  pending.name = "r16-translate1";
  pending.settings = {{"lora.r", "16"}, {"data.translate", "true"}};
  pending.status = "failed: train (exit 3)";
  pending.run_dir = "runs/sw/r16,x";
  rows.push_back(pending);
  const std::vector<std::string> keys = {"lora.r", "data.translate"};

  const std::string md = summary_markdown(keys, rows);
  EXPECT_NE(md.find("| point | lora.r | data.translate | status | steps | best_val_loss | best_val_step | "
                    "final_train_loss | tokens_per_s | structural_validity | run_dir |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| r8-translate1 | 8 | true | done | 100 | 1.2500 | 100 | 1.5000 | 8000.0 | 0.8750 | "
                    "runs/sw/r8-translate1 |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| r4-translate1 | 4 | true | done | 100 | 1.5000 | 100 | 1.7500 | 4000.0 |  |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("Best val loss: 1.2500 at step 100 (r8-translate1)."), std::string::npos) << md;
  // A tie names the first point in sweep order.
  EXPECT_NE(summary_markdown(keys, {rows[0], row("r16-translate1", 16, "true", 1.5)})
                .find("Best val loss: 1.5000 at step 100 (r4-translate1)."), std::string::npos);
  // Augmentation leaves val as it is: no caution. A key that changes the val samples gets one.
  EXPECT_EQ(md.find("Note:"), std::string::npos) << md;
  // Nor do the other keys that leave val's samples and tokens alone.
  const std::vector<std::string> same_val = {"data.translate", "data.permute", "data.copies", "data.shard_samples",
                                             "data.train_csv", "data.test_csv", "lora.r"};
  EXPECT_EQ(summary_markdown(same_val, rows).find("Note:"), std::string::npos);
  rows[1].metrics.base_val_loss = 1.75;
  const std::string md2 = summary_markdown({"lora.r", "data.infill_fraction"}, rows);
  EXPECT_NE(md2.find("Best val loss: 1.2500 at step 100 (r8-translate1); before training (step 0) it scored 1.7500."),
            std::string::npos) << md2;
  EXPECT_NE(md2.find("Note: the points differ in data.infill_fraction, which changes"), std::string::npos) << md2;
  EXPECT_EQ(md2.find("before training (step 0) the points' val losses differ"), std::string::npos) << md2;  // one
  // Every val-changing key is named; step-0 val losses that differ (data.tokenizer=train: a tokenizer per data
  // setting) get their own note with each point's, even for keys that leave the val samples alone.
  EXPECT_NE(summary_markdown({"data.seed", "data.angle_mode"}, rows)
                .find("differ in data.seed, data.angle_mode, which change the validation"), std::string::npos);
  rows[0].metrics.base_val_loss = 1.75004;
  EXPECT_EQ(summary_markdown(keys, rows).find("Note:"), std::string::npos);  // within 1e-4: the same tokens
  rows[0].metrics.base_val_loss = 1.8;
  const std::string md3 = summary_markdown(keys, rows);
  EXPECT_NE(md3.find("Note: before training (step 0) the points' val losses differ (r4-translate1 1.8000, "
                     "r8-translate1 1.7500)"), std::string::npos) << md3;
  rows[0].metrics.base_val_loss.reset();

  const std::string csv = summary_csv(keys, rows);
  EXPECT_EQ(count(csv, "\n"), 4u);  // header + 3 rows
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "point,lora.r,data.translate,status,steps,best_val_loss,best_val_step,final_train_loss,tokens_per_s,"
            "structural_validity,run_dir");
  EXPECT_NE(csv.find("r16-translate1,16,true,failed: train (exit 3),,,,,,,\"runs/sw/r16,x\"\n"), std::string::npos)
      << csv;
}

// summary.csv fields that hold a quote or a line break are quoted as RFC 4180 has it (a quote doubled), so a
// spreadsheet reads one field, not a broken row.
TEST(SweepSummary, CsvFieldsQuoteQuotesAndLineBreaks) {
  SummaryRow r = row("f_q", 4, "true", 1.5);
  r.settings = {{"sample.formula", "say \"LiFePO4\""}, {"data.translate", "true"}};
  r.status = "failed: train\n(exit 3)";
  const std::string csv = summary_csv({"sample.formula", "data.translate"}, {r});
  EXPECT_NE(csv.find("\nf_q,\"say \"\"LiFePO4\"\"\",true,\"failed: train\n(exit 3)\",100,1.5000,"), std::string::npos)
      << csv;
}

// Runs whose validation holds both tasks: the per-task losses of the best step, in columns of their own, and the
// caution about infill_fraction points says they compare by task.
TEST(SweepSummary, PerTaskValLossesAtTheBestStep) {
  const fs::path d = temp_dir("tasks");
  put(d / "metrics.jsonl",
      "{\"step\": 0, \"val_loss\": 3.0, \"val_loss_generation\": 2.9, \"val_loss_infill\": 3.2}\n"
      "{\"step\": 10, \"val_loss\": 1.4, \"val_loss_generation\": 1.3, \"val_loss_infill\": 1.6}\n"
      "{\"step\": 20, \"val_loss\": 1.5, \"val_loss_generation\": 1.2, \"val_loss_infill\": 2.1}\n"
      "{\"step\": 30, \"val_loss\": 1.45, \"val_loss_generation\": 1.25, \"val_loss_infill\": null}\n");
  const RunMetrics m = read_metrics_file((d / "metrics.jsonl").string());
  ASSERT_TRUE(m.best_val_loss && m.best_val_generation && m.best_val_infill);
  EXPECT_EQ(m.best_val_step, 10);  // by the mean in all, as before
  EXPECT_DOUBLE_EQ(*m.best_val_generation, 1.3);
  EXPECT_DOUBLE_EQ(*m.best_val_infill, 1.6);
  fs::remove_all(d);

  std::vector<SummaryRow> rows = {row("f0", 4, "true", 1.5), row("f5", 4, "true", 1.4)};
  rows[0].settings = {{"lora.r", "4"}, {"data.infill_fraction", "0"}};
  rows[1].settings = {{"lora.r", "4"}, {"data.infill_fraction", "0.5"}};
  rows[1].metrics.best_val_generation = 1.3;
  rows[1].metrics.best_val_infill = 1.6;
  const std::vector<std::string> keys = {"lora.r", "data.infill_fraction"};
  const std::string md = summary_markdown(keys, rows);
  EXPECT_NE(md.find("| best_val_loss | best_val_step | val_generation | val_infill | final_train_loss |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| f5 | 4 | 0.5 | done | 100 | 1.4000 | 100 | 1.3000 | 1.6000 | 1.6500 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| f0 | 4 | 0 | done | 100 | 1.5000 | 100 |  |  | 1.7500 |"), std::string::npos) << md;
  EXPECT_NE(md.find("val_generation and val_infill each score one task"), std::string::npos) << md;
  const std::string csv = summary_csv(keys, rows);
  EXPECT_NE(csv.find("f5,4,0.5,done,100,1.4000,100,1.3000,1.6000,1.6500,"), std::string::npos) << csv;
}

TEST(SweepSummary, RankSeriesOneLinePerAugmentationSetting) {
  const std::vector<SummaryRow> rows = {row("a", 16, "true", 1.1), row("b", 4, "true", 1.5), row("c", 4, "false", 1.7),
                                        row("d", 16, "false", 1.3)};
  const auto series = rank_series({"lora.r", "data.translate"}, rows);
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].label, "translate1");
  EXPECT_EQ(series[1].label, "translate0");
  EXPECT_EQ(series[0].xy, (std::vector<std::pair<double, double>>{{4, 1.5}, {16, 1.1}}));  // sorted by rank
  EXPECT_EQ(series[1].xy, (std::vector<std::pair<double, double>>{{4, 1.7}, {16, 1.3}}));
  EXPECT_EQ(rank_series({"lora.r"}, {row("a", 4, "true", 1.0)})[0].label, "all");
  // A point with no val loss yet (pending, failed before validating) has nothing to plot.
  SummaryRow pending = row("e", 8, "true", 0);
  pending.metrics.best_val_loss.reset();
  const auto without = rank_series({"lora.r", "data.translate"}, {row("b", 4, "true", 1.5), pending});
  ASSERT_EQ(without.size(), 1u);
  EXPECT_EQ(without[0].xy, (std::vector<std::pair<double, double>>{{4, 1.5}}));
}

TEST(SweepSummary, SvgPlotPlacesPointsByValue) {
  const std::vector<PlotSeries> series = {{"translate1", {{4, 1.5}, {8, 1.25}, {16, 1.1}}},
                                          {"translate0 <&>", {{4, 1.7}, {16, 1.3}}}};
  const std::string svg = line_plot_svg(series, "t", "LoRA rank r", "best val loss");
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_EQ(count(svg, "<circle"), 5u);
  EXPECT_EQ(count(svg, "<g"), count(svg, "</g>"));
  EXPECT_NE(svg.find(">translate0 &lt;&amp;&gt;</text>"), std::string::npos);  // escaped legend
  EXPECT_NE(svg.find("(log scale)"), std::string::npos);
  // Circles: lower loss is drawn lower on the page (larger cy); rank 8 sits halfway between 4 and 16 (log2).
  std::map<std::string, std::pair<double, double>> at;  // "x/y" -> (cx, cy)
  const std::regex re("<circle cx=\"([0-9.]+)\" cy=\"([0-9.]+)\"[^>]*data-x=\"([0-9.]+)\" data-y=\"([0-9.]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    at[(*it)[3].str() + "/" + (*it)[4].str()] = {std::stod((*it)[1]), std::stod((*it)[2])};
  ASSERT_EQ(at.size(), 5u);
  EXPECT_GT(at["16/1.1"].second, at["8/1.25"].second);
  EXPECT_GT(at["8/1.25"].second, at["4/1.5"].second);
  EXPECT_GT(at["4/1.5"].second, at["4/1.7"].second);
  EXPECT_NEAR(at["8/1.25"].first, (at["4/1.5"].first + at["16/1.1"].first) / 2, 0.15);
  EXPECT_DOUBLE_EQ(at["4/1.5"].first, at["4/1.7"].first);
  // Y ticks at round values inside the padded range [1.052, 1.748]: steps of 0.2 (span / 6 = 0.116, rounded up to
  // 1, 2, 2.5 or 5 times a power of ten); 1.4 is the middle of that range, halfway down the plot area (y 40..385).
  std::vector<std::string> y_ticks;
  const std::regex tick_re("text-anchor=\"end\">([^<]*)</text>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tick_re); it != std::sregex_iterator(); ++it)
    y_ticks.push_back((*it)[1].str());
  EXPECT_EQ(y_ticks, (std::vector<std::string>{"1.2", "1.4", "1.6"}));
  EXPECT_NE(svg.find("<line x1=\"70\" y1=\"212.5\" x2=\"520\" y2=\"212.5\" stroke=\"#e0e0e0\"/>"), std::string::npos)
      << svg;
  // Nothing to plot: still a valid SVG that says so.
  EXPECT_NE(line_plot_svg({}, "t", "x", "y").find("no run has a val loss yet"), std::string::npos);
}

// A sweep of one rank (or points of equal loss) still draws its points, in the middle of the plot area (x 70..520,
// y 40..385) rather than at NaN from a zero-width range.
TEST(SweepSummary, SvgPlotOfOneRankOrOneLossCentresIt) {
  const std::regex re("<circle cx=\"([^\"]+)\" cy=\"([^\"]+)\"");
  const auto circles = [&](const std::string& svg) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
      out.emplace_back((*it)[1].str(), (*it)[2].str());
    return out;
  };
  EXPECT_EQ(circles(line_plot_svg({{"all", {{8, 1.2}}}}, "t", "x", "y")),
            (std::vector<std::pair<std::string, std::string>>{{"295.0", "212.5"}}));
  // Ranks 4 and 16 at log2 2 and 4, padded by 5% of the range: 0.1 / 2.2 and 2.1 / 2.2 of the 450 px.
  EXPECT_EQ(circles(line_plot_svg({{"all", {{4, 1.2}, {16, 1.2}}}}, "t", "x", "y")),
            (std::vector<std::pair<std::string, std::string>>{{"90.5", "212.5"}, {"499.5", "212.5"}}));
}

TEST(SweepSummary, WriteSummaryWritesThreeFiles) {
  const fs::path d = temp_dir("write");
  write_summary(d.string(), "Sweep x", {"lora.r", "data.translate"}, {row("r4-translate1", 4, "true", 1.5)});
  for (const char* f : {"summary.md", "summary.csv", "val_loss_vs_rank.svg"}) EXPECT_TRUE(fs::exists(d / f)) << f;
  std::ifstream md(d / "summary.md");
  std::string first;
  std::getline(md, first);
  EXPECT_EQ(first, "# Sweep x");
  fs::remove_all(d);
}

// A full disk (RLIMIT_FSIZE with SIGXFSZ ignored stands in for one) fails the summary with an error naming the file,
// and leaves the previous summary whole, with no temporary file behind.
TEST(SweepSummary, AFullDiskKeepsThePreviousSummary) {
  const fs::path d = temp_dir("full");
  write_summary(d.string(), "Before", {"lora.r", "data.translate"}, {row("r4-translate1", 4, "true", 1.5)});
  const auto slurp = [](const fs::path& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  };
  const std::string before = slurp(d / "summary.md");
  std::vector<SummaryRow> many;
  for (int i = 0; i < 400; ++i) many.push_back(row("r" + std::to_string(i) + "-translate1", i + 1, "true", 1.0));
  std::string msg;
  {
    cg::test::FileSizeLimit limit(2048);
    msg = cg::test::error_of([&] { write_summary(d.string(), "After", {"lora.r", "data.translate"}, many); });
  }
  EXPECT_NE(msg.find("summary.md"), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_EQ(slurp(d / "summary.md"), before);
  for (const auto& e : fs::directory_iterator(d))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  // A write that fails after summary.md is written (here a folder where this process's summary.csv temporary goes)
  // leaves the previous three as they were: not a new summary.md beside the old summary.csv and plot.
  const std::string csv = slurp(d / "summary.csv");
  const fs::path in_the_way = d / ("summary.csv" + cg::shared_tmp_suffix());
  fs::create_directory(in_the_way);
  msg = cg::test::error_of([&] { write_summary(d.string(), "After", {"lora.r", "data.translate"}, many); });
  EXPECT_NE(msg.find(in_the_way.string()), std::string::npos) << msg;
  EXPECT_EQ(slurp(d / "summary.md"), before);
  EXPECT_EQ(slurp(d / "summary.csv"), csv);
  fs::remove(in_the_way);
  fs::remove_all(d);
}

// summary.md cells hold '|' and line breaks without breaking the table (a run_dir or value may have them).
TEST(SweepSummary, MarkdownCellsEscapePipes) {
  SummaryRow r = row("v_a_b_0123abcd", 4, "true", 1.5);
  r.settings = {{"data.val_csv", "a|b"}, {"data.translate", "true"}};
  r.run_dir = "runs/a|b\\c";
  r.status = "failed: train\n(exit\t3)\r";
  const std::string md = summary_markdown({"data.val_csv", "data.translate"}, {r});
  const std::string line = md.substr(md.find("| v_a_b"), md.find('\n', md.find("| v_a_b")) - md.find("| v_a_b"));
  EXPECT_NE(line.find("| a\\|b | true | failed: train<br>(exit 3)  |"), std::string::npos) << md;
  EXPECT_NE(line.find("| runs/a\\|b\\\\c |"), std::string::npos) << md;
  // As many unescaped '|' as the header has: one row, same columns.
  const auto cells = [](const std::string& l) {
    size_t n = 0;
    for (size_t i = 0; i < l.size(); ++i)
      n += l[i] == '|' && (i == 0 || l[i - 1] != '\\' || (i >= 2 && l[i - 2] == '\\'));
    return n;
  };
  EXPECT_EQ(cells(line), cells(md.substr(0, md.find('\n')))) << md;
}
