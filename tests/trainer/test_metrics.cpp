// Metrics: JSONL lines, progress-line formatting, MFU and ETA arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <limits>

#include "tests/test_util.h"
#include "trainer/metrics.h"

TEST(Metrics, JsonLinesInOrderNonFiniteIsNullAndFlushed) {
  std::string path = ::testing::TempDir() + "/metrics_test.jsonl";
  {
    cg::MetricsWriter w(path, /*append=*/false);
    w.write({{"step", int64_t{1}}, {"loss", 2.5}, {"kind", std::string("train")}, {"skipped", false}});
    // Flushed: readable before the writer closes.
    std::ifstream in(path);
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_EQ(line, R"({"step":1,"loss":2.5,"kind":"train","skipped":false})");
    w.write({{"step", int64_t{2}}, {"loss", std::numeric_limits<double>::quiet_NaN()}});
  }
  {
    cg::MetricsWriter again(path);  // append
    again.write({{"step", int64_t{3}}});
  }
  std::ifstream in(path);
  std::string l1, l2, l3, l4;
  std::getline(in, l1), std::getline(in, l2), std::getline(in, l3);
  EXPECT_EQ(l2, R"({"step":2,"loss":null})");
  EXPECT_EQ(l3, R"({"step":3})");
  EXPECT_FALSE(std::getline(in, l4));
  EXPECT_THROW(cg::MetricsWriter("/proc/definitely/not/here.jsonl"), std::exception);
}

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
}  // namespace

// A launch's metrics file holds one run: a resume at step k keeps records of steps <= k (a crashed launch's later
// records and a cut last line go), a fresh start moves a previous run's file aside.
TEST(Metrics, TrimKeepsTheResumedRunOnly) {
  const std::string path = ::testing::TempDir() + "/metrics_trim.jsonl";
  std::remove((path + ".prev").c_str());
  const std::string kept = "{\"step\":0,\"val_loss\":3.5}\n{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":1.5}\n";
  std::ofstream(path) << kept << "{\"step\":3,\"loss\":1.25}\n{\"step\":2,\"loss\":9}\n{\"step\":4,\"lo";
  const std::string said = cg::trim_metrics(path, 2);
  EXPECT_NE(said.find("dropped 2 records after step 2"), std::string::npos) << said;
  // The step-2 record written after step 3 belongs to the crashed launch too, but records of a step are kept in
  // order; only records of later steps and unparsable lines go.
  EXPECT_EQ(slurp(path), kept + "{\"step\":2,\"loss\":9}\n");
  std::ofstream(path) << kept;
  EXPECT_EQ(cg::trim_metrics(path, 2), "");  // nothing to drop: untouched
  EXPECT_EQ(slurp(path), kept);
  EXPECT_EQ(cg::trim_metrics(::testing::TempDir() + "/no_such_metrics.jsonl", 5), "");
  // Fresh start over a previous run's file: moved to .prev, whole.
  const std::string moved = cg::trim_metrics(path, 0);
  EXPECT_NE(moved.find(".prev"), std::string::npos) << moved;
  EXPECT_EQ(slurp(path + ".prev"), kept);
  EXPECT_FALSE(std::ifstream(path).good());
}

// Only a full disk is told to free space: a file size limit (EFBIG) says its own fix; both name train.run_dir.
TEST(Metrics, AWriteFailureSaysItsReasonAndOnlyAFullDiskIsToldToFreeSpace) {
  cg::test::TempDir d("cg_metrics");
  const std::string path = d / "metrics.jsonl";
  {
    cg::MetricsWriter w(path, /*append=*/false);
    w.write({{"step", int64_t{1}}});
    cg::test::FileSizeLimit cap(std::filesystem::file_size(path) + 4);
    const std::string err = cg::test::error_of([&] { w.write({{"step", int64_t{2}}, {"loss", 1.5}}); });
    EXPECT_TRUE(cg::test::contains(err, "cannot write metrics file " + path + ": File too large (errno 27); the file "
                                   "is larger than the file system or this process's file size limit (ulimit -f) "
                                   "allows: raise that limit or change train.run_dir")) << err;
    EXPECT_FALSE(cg::test::contains(err, "free")) << err;
  }
  std::string err = cg::test::error_of([&] { cg::MetricsWriter w(d.path.string()); });  // a folder in its place
  EXPECT_TRUE(cg::test::contains(err, "cannot open metrics file " + d.path.string() + ": Is a directory (errno 21); a "
                                 "folder is where a file should be")) << err;
  EXPECT_TRUE(cg::test::contains(err, "or change train.run_dir")) << err;

  cg::test::TmpfsMount tmpfs(d / "tmpfs", 4 * 4096);
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  const std::string full = tmpfs.dir + "/metrics.jsonl";
  cg::MetricsWriter w(full, /*append=*/false);
  err = cg::test::error_of([&] {
    for (int i = 0; i < 10000; ++i) w.write({{"step", int64_t{i}}, {"kind", std::string(200, 'x')}});
  });
  EXPECT_TRUE(cg::test::contains(err, "cannot write metrics file " + full + ": No space left on device (errno 28); the "
                                 "disk is full: free disk space or change train.run_dir")) << err;
}

TEST(Metrics, EventsLeftCountPeriodicAndLastSteps) {
  EXPECT_EQ(cg::events_left(0, 40, 10, true), 4);     // 10 20 30 40
  EXPECT_EQ(cg::events_left(10, 40, 10, true), 3);    // 20 30 40
  EXPECT_EQ(cg::events_left(0, 45, 10, true), 5);     // 10 20 30 40 and the last, 45
  EXPECT_EQ(cg::events_left(0, 45, 10, false), 4);
  EXPECT_EQ(cg::events_left(44, 45, 10, true), 1);
  EXPECT_EQ(cg::events_left(45, 45, 10, true), 0);
  EXPECT_EQ(cg::events_left(3, 45, 0, true), 1);      // checkpoint.every 0: the final save only
  EXPECT_EQ(cg::events_left(3, 45, 0, false), 0);
}

TEST(Metrics, EtaCountsStepsValidationsAndSavesToCome) {
  cg::RunClock c;
  EXPECT_LT(c.eta_s(100, 1000, 0, 0), 0);  // nothing timed yet: unknown
  // Resumed at step 100, now at 150 after 50 s of steps: 1 s/step, 850 steps left.
  c.step_s = 50, c.steps = 50;
  EXPECT_DOUBLE_EQ(c.eta_s(150, 1000, 0, 0), 850.0);
  // No validation or save timed yet in this launch: they count nothing (yet).
  EXPECT_DOUBLE_EQ(c.eta_s(150, 1000, 100, 100), 850.0);
  // One validation took 6 s, one save 2 s: 9 validations (200..1000) and 9 saves to come.
  c.val_s = 6, c.vals = 1, c.save_s = 2, c.saves = 1;
  EXPECT_DOUBLE_EQ(c.eta_s(150, 1000, 100, 100), 850.0 + 9 * 6.0 + 9 * 2.0);
  // At step 200 its own validation and save are still to come (the line comes first): 200..1000, 9 each.
  EXPECT_DOUBLE_EQ(c.eta_s(200, 1000, 100, 100), 800.0 + 9 * 6.0 + 9 * 2.0);
  // Validation off: its time is not counted even when timed; checkpoint.every 0 still saves at the end.
  EXPECT_DOUBLE_EQ(c.eta_s(150, 1000, 0, 0), 850.0 + 2.0);
  EXPECT_DOUBLE_EQ(c.eta_s(1000, 1000, 100, 100), 6.0 + 2.0);  // the last step: its validation and save
  // The launch's first validation carries start-up costs (first forward, allocations): once others ran, the
  // average leaves it out.
  cg::RunClock w;
  w.step_s = 50, w.steps = 50;
  w.add_val(20);
  EXPECT_DOUBLE_EQ(w.eta_s(150, 1000, 100, 0), 850.0 + 9 * 20.0);
  w.add_val(5);
  w.add_val(7);
  EXPECT_DOUBLE_EQ(w.eta_s(150, 1000, 100, 0), 850.0 + 9 * 6.0);
}

// 8 GPUs of 989 TFLOP/s (H100 dense bf16) at 100k tokens/s of a 7B model (6 x 7e9 FLOPs a token): 4.2e15 / 7.912e15.
TEST(Metrics, MfuIsTheJobsModelFlopsOverAllItsDevicesPeak) {
  EXPECT_NEAR(cg::model_flops_utilisation(1e5, 4.2e10, 989e12, 8), 4.2e15 / 7.912e15, 1e-12);
  EXPECT_NEAR(cg::model_flops_utilisation(1e5, 4.2e10, 989e12, 1), 4.2e15 / 989e12, 1e-12);
  EXPECT_LT(cg::model_flops_utilisation(1e5, 4.2e10, 0, 8), 0);  // a CPU or an unlisted GPU: unknown
}

TEST(Metrics, ProgressLineFormatting) {
  cg::ProgressInfo p;
  p.step = 120;
  p.total_steps = 2000;
  p.epoch = 0.3749;
  p.loss = 1.23456;
  p.lr = 9.8e-5;
  p.grad_norm = 0.5123;
  p.tokens_per_s = 12345;
  p.mfu = 0.4123;
  p.mem_bytes = 2.0 * 1024 * 1024 * 1024;
  p.mem_kind = "cuda";
  p.eta_s = 3725;
  EXPECT_EQ(cg::format_progress(p),
            "step 120/2000 (6.0%) | epoch 0.37 | loss 1.2346 | lr 9.80e-05 | gnorm 0.512 | 12.3k tok/s | "
            "MFU 41.2% | cuda 2.00 GiB | ETA 1h02m");
  cg::ProgressInfo q;  // unknowns are left out
  q.step = 1;
  q.total_steps = 4;
  EXPECT_EQ(cg::format_progress(q), "step 1/4 (25.0%) | epoch 0.00 | loss 0.0000 | lr 0.00e+00 | gnorm 0.000");
  EXPECT_EQ(cg::human_count(999), "999");
  EXPECT_EQ(cg::human_count(1000), "1.00k");  // a thousand is the first count with a unit
  EXPECT_EQ(cg::human_count(4560000), "4.56M");
  EXPECT_GT(cg::current_rss_bytes(), 0);
  EXPECT_GE(cg::peak_rss_bytes(), cg::current_rss_bytes() * 0.5);
}
