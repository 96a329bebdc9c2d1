// Local sweep execution with stub tools (shell scripts standing in for cgprep/cgtrain/cgexport/cgsample/cgeval):
// cgprep runs once per data setting, status files, skipping finished points (unless their config changed),
// preemption (exit 75) stops the sweep, --keep-going past a failure, the sample/eval chain and its validity in the
// summary, the Slurm files, and signals sent to cgsweep (here: the test process) during a sweep.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>
#include <fstream>
#include <algorithm>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "common/file_lock.h"
#include "launch/sweep_runner.h"
#include "launch/sweep_slurm.h"
#include "trainer/config.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

namespace fs = std::filesystem;
using namespace cg::sweep;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

size_t lines(const fs::path& p) {
  const std::string s = slurp(p);
  return size_t(std::count(s.begin(), s.end(), '\n'));
}

void script(const fs::path& p, const std::string& body) {
  std::ofstream(p) << "#!/usr/bin/env bash\nset -e\n" << body;
  fs::permissions(p, fs::perms::owner_all);
}

// The end of a stand-in that waits for a signal (its traps set above): it writes `flag`, then sleeps up to 30 s and
// exits 1. `flag` is written inside the loop, which bash has parsed whole before it runs: a trapped signal that
// arrives while bash 5.2 parses a line holding a command substitution (`for i in $(seq 300)` right after an
// `echo started` line) makes it fail with "unexpected EOF while looking for matching `)'" and exit 2, its trap
// not run (9 times in 300 with the signal sent as soon as the flag appeared).
std::string wait_for_signal(const fs::path& flag) {
  return "for ((i = 0; i < 300; i++)); do\n  ((i > 0)) || echo started > " + flag.string() +
         "\n  sleep 0.1\ndone\nexit 1\n";
}

// Stubs read what they need from the point.yaml they are given (simple `  key: value` lines, as to_yaml writes).
struct StubSweep {
  fs::path dir, bin, calls;
  StubSweep() {
    dir = fs::path(::testing::TempDir()) / ("cg_test_sweep_runner_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    bin = dir / "bin";
    calls = dir / "calls.log";
    fs::create_directories(bin);
    std::ofstream(dir / "base.yaml") << "train:\n  steps: 3\n";
    const std::string get = "get() { sed -n \"/^$1:/,/^$/s/^  $2: *\\\"\\{0,1\\}\\([^\\\" ]*\\).*/\\1/p\" \"$3\"; }\n";
    script(bin / "cgprep", get + "echo \"prep $(get data shards_dir $1)\" >>" + calls.string() +
                               "\nmkdir -p \"$(get data shards_dir $1)\"\n");
    // cgtrain: val loss = 2 - r/16 (+0.5 without translate); exits with $STUB_TRAIN_RC_<r> when set.
    script(bin / "cgtrain", get +
                                "r=$(get lora r $1); run=$(get train run_dir $1); tr=$(get data translate $1)\n"
                                "echo \"train r=$r $*\" >>" + calls.string() + "\n"
                                "echo \"training r=$r\"\n"
                                "v=$(awk -v r=$r -v t=$tr 'BEGIN{print 2 - r/16 + (t==\"true\"?0:0.5)}')\n"
                                "mkdir -p $run\n"
                                "echo \"{\\\"step\\\": 3, \\\"loss\\\": 2.5, \\\"val_loss\\\": $v, "
                                "\\\"tokens_per_s\\\": 10}\" >> $run/metrics.jsonl\n"
                                // STUB_TRAIN_WAIT_<r>: write `started`, then `sleep` until a signal ends it,
                                // or (=trap) until SIGTERM/SIGINT, which it survives, then exit 0.
                                "w=STUB_TRAIN_WAIT_$r\n"
                                "if [ \"${!w:-}\" = trap ]; then\n"
                                "  trap 'got=1' TERM INT; echo started > " + (dir / "started").string() + "\n"
                                "  while [ -z \"${got:-}\" ]; do sleep 0.1; done; exit 0\n"
                                "elif [ -n \"${!w:-}\" ]; then\n"
                                "  echo started > " + (dir / "started").string() + "; exec sleep 30\n"
                                "fi\n"
                                "rc_var=STUB_TRAIN_RC_$r; exit ${!rc_var:-0}\n");
    script(bin / "cgexport",
           "echo \"export $*\" >>" + calls.string() + "\nmkdir -p \"$3\"\nexit ${STUB_EXPORT_RC:-0}\n");
    // cgsample: dies of signal $STUB_SAMPLE_SIG when set (a Slurm USR1 meant for cgtrain).
    script(bin / "cgsample", get + "echo \"sample $(get sample adapter $1)\" >>" + calls.string() +
                                 "\n[ -z \"${STUB_SAMPLE_SIG:-}\" ] || kill -$STUB_SAMPLE_SIG $$"
                                 "\nmkdir -p \"$(get sample out_dir $1)\"\n");
    script(bin / "cgeval", get + "out=$(get eval input $1)/eval; echo \"eval $out\" >>" + calls.string() +
                               "\nmkdir -p $out; echo '{\"structural_validity\": 0.5, \"counts\": {\"valid\": 3}}' > $out/report.json\n");
  }
  ~StubSweep() { fs::remove_all(dir); }
  SweepPlan plan(const std::string& body) {
    const SweepSpec spec = parse_sweep_spec("base: base.yaml\nout_dir: " + (dir / "out").string() + "\n" + body,
                                            (dir / "sweep.yaml").string());
    SweepPlan p = plan_sweep(spec, [](const std::string& base, const std::vector<std::string>& ov,
                                      const std::vector<std::string>& origins) {
      return cg::to_yaml(cg::load_config(base, ov, origins));
    });
    write_point_configs(p);
    return p;
  }
  RunOptions options() const {
    RunOptions o;
    o.bin_dir = bin.string();
    o.launcher = "env";  // the stub needs no mpirun
    return o;
  }
};

// Sends `sig` to the thread that made it (the test's main thread, standing in for cgsweep) from another thread once
// `flag` exists. Sent to that thread, not to the process: cgsweep has one thread, which blocks the signals while it
// starts a stage and names it for forwarding; a signal sent to this process in that window would be handled by the
// sender thread instead, with no stage named yet, and never reach the stand-in.
struct SignalWhen {
  std::atomic<bool> stop{false};
  const pthread_t target = ::pthread_self();
  std::thread sender;
  SignalWhen(const fs::path& flag, int sig) : sender([this, flag, sig] {
    while (!stop && !fs::exists(flag)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!stop) ::pthread_kill(target, sig);
  }) {}
  ~SignalWhen() {
    stop = true;
    sender.join();
  }
};

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST(SweepRunner, TwoByTwoGridPreparesEachDataSettingOnce) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8]\n  data.translate: [true, false]\n");
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  const std::string calls = slurp(s.calls);
  size_t preps = 0;
  for (size_t pos = calls.find("prep "); pos != std::string::npos; pos = calls.find("prep ", pos + 1)) ++preps;
  EXPECT_EQ(preps, 2u) << calls;
  EXPECT_NE(calls.find("train r=8 " + (s.dir / "out" / "r8-translate0" / "point.yaml").string()), std::string::npos)
      << calls;
  for (const auto& p : plan.points) {
    EXPECT_EQ(slurp(fs::path(p.run_dir) / "status"), "done\n") << p.name;
    EXPECT_NE(slurp(fs::path(p.run_dir) / "logs" / "train.log").find("training r="), std::string::npos);
  }
  // Summary rows from the run folders.
  summarize(plan);
  const auto rows = collect_rows(plan);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_DOUBLE_EQ(rows[0].rank, 4);
  EXPECT_DOUBLE_EQ(*rows[0].metrics.best_val_loss, 1.75);  // 2 - 4/16
  EXPECT_DOUBLE_EQ(*rows[3].metrics.best_val_loss, 2.0);   // 2 - 8/16 + 0.5
  const std::string csv = slurp(s.dir / "out" / "summary.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
  EXPECT_NE(csv.find("r8-translate1,8,true,done,3,1.5000,3,2.5000,10.0,"), std::string::npos) << csv;
  const std::string svg = slurp(s.dir / "out" / "val_loss_vs_rank.svg");
  EXPECT_NE(svg.find("data-label=\"translate1\""), std::string::npos);
  EXPECT_NE(svg.find("data-label=\"translate0\""), std::string::npos);

  // A second run skips finished points.
  const size_t before = lines(s.calls);
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  EXPECT_EQ(lines(s.calls), before);
}

TEST(SweepRunner, PreemptionStopsTheSweepAndFailuresAreRecorded) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8, 16]\n");
  ::setenv("STUB_TRAIN_RC_8", "75", 1);
  EXPECT_EQ(run_sweep(plan, s.options()), kExitPreempted);
  EXPECT_EQ(slurp(fs::path(plan.points[1].run_dir) / "status"), "preempted\n");
  EXPECT_FALSE(fs::exists(fs::path(plan.points[2].run_dir) / "status"));  // not started
  EXPECT_EQ(collect_rows(plan)[2].status, "pending");  // as the summary shows it (docs/cluster.md)

  ::setenv("STUB_TRAIN_RC_8", "3", 1);
  {  // without --keep-going the sweep stops at the failure and says what it left
    const std::string log = cg::test::log_of([&] { EXPECT_EQ(run_sweep(plan, s.options()), 3); });
    EXPECT_NE(log.find("sweep stopped at the failed point r8: 1 later point(s) not attempted"), std::string::npos)
        << log;
    EXPECT_FALSE(fs::exists(fs::path(plan.points[2].run_dir) / "status"));
  }
  RunOptions keep = s.options();
  keep.keep_going = true;
  const std::string log = cg::test::log_of([&] { EXPECT_EQ(run_sweep(plan, keep), 3); });
  EXPECT_NE(log.find("1 of 3 points failed: r8 (their <point>/status and logs say why"), std::string::npos) << log;
  EXPECT_EQ(slurp(fs::path(plan.points[1].run_dir) / "status"), "failed: train (exit 3)\n");
  EXPECT_EQ(slurp(fs::path(plan.points[2].run_dir) / "status"), "done\n");  // ran after the failure
  ::unsetenv("STUB_TRAIN_RC_8");
  EXPECT_EQ(collect_rows(plan)[1].status, "failed: train (exit 3)");
}

TEST(SweepRunner, SampleAndEvalPerPointFeedTheSummary) {
  StubSweep s;
  const SweepPlan plan = s.plan("sample: true\ngrid:\n  lora.r: [4]\n");
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  const fs::path run = plan.points[0].run_dir;
  const std::string calls = slurp(s.calls);
  EXPECT_NE(calls.find("export " + run.string() + " --out " + (run / "adapter").string()), std::string::npos) << calls;
  EXPECT_NE(calls.find("sample " + (run / "adapter").string()), std::string::npos) << calls;
  EXPECT_NE(calls.find("eval " + (run / "samples" / "eval").string()), std::string::npos) << calls;
  const auto rows = collect_rows(plan);
  EXPECT_EQ(rows[0].metrics.validity, (std::map<std::string, double>{{"structural_validity", 0.5}}));
}

TEST(SweepRunner, MissingToolNamesWhereItLooked) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");
  RunOptions o = s.options();
  o.bin_dir = (s.dir / "nothing").string();
  const std::string path = std::getenv("PATH");
  ::setenv("PATH", "/nonexistent", 1);
  std::string error;
  try {
    run_point(plan, plan.points[0], o);
  } catch (const cg::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("cannot find 'cgprep'"), std::string::npos) << error;
  EXPECT_NE(error.find("--bin-dir"), std::string::npos) << error;
  // Found before the point starts: no status says it is running, nothing ran.
  EXPECT_FALSE(fs::exists(fs::path(plan.points[0].run_dir) / "status"));
  // A tool missing with the first ones there: the same, before any point (cgeval with sample: true).
  const SweepPlan sampled = s.plan("sample: true\ngrid:\n  lora.r: [4]\n");
  fs::create_directories(s.dir / "some");
  for (const char* t : {"cgprep", "cgtrain", "cgexport", "cgsample"})
    fs::copy_file(s.bin / t, s.dir / "some" / t);
  o.bin_dir = (s.dir / "some").string();
  error.clear();
  try {
    run_sweep(sampled, o);
  } catch (const cg::Error& e) {
    error = e.what();
  }
  ::setenv("PATH", path.c_str(), 1);
  EXPECT_NE(error.find("cannot find 'cgeval'"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(fs::path(sampled.points[0].run_dir) / "status"));
  EXPECT_EQ(slurp(s.calls), "");
}

TEST(SweepSlurm, ArrayScriptAndPointsTable) {
  StubSweep s;
  SweepPlan plan = s.plan("np: 8\nslurm: {nodes: 2, gpus_per_node: 4, signal_seconds: 120, partition: gpu}\n"
                          "grid:\n  lora.r: [4, 8, 16]\n");
  SlurmOptions so;
  so.cgsweep = "/opt/cg/cgsweep";
  so.workdir = s.dir.string();
  so.extra_args = {"train.steps=7"};
  const std::string sb = write_slurm_files(plan, so);
  const std::string text = slurp(sb);
  const std::string requeue_sh = "source '" + std::string(CG_SOURCE_DIR) + "/launch/requeue.sh'";
  const std::vector<std::string> wants = {"#SBATCH --array=0-2\n", "#SBATCH --nodes=2\n",
                                         "#SBATCH --ntasks-per-node=4\n", "#SBATCH --gpus-per-node=4\n",
                                         "#SBATCH --signal=B:USR1@120\n", "#SBATCH --partition=gpu\n",
                                         "--point \"$task\"", "'train.steps=7'", requeue_sh,
                                         "cg_run_with_requeue \"$CGSWEEP\""};
  for (const std::string& want : wants)
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  EXPECT_EQ(text.find("scontrol"), std::string::npos) << "a second copy of requeue.sh's logic\n" << text;
  // A CPU sweep without slurm.partition asks for no GPUs and names no partition: both are left to the cluster's
  // defaults, with no --gpus-per-node=0 or empty --partition= line for sbatch to read.
  const std::string cpu = sweep_sbatch(s.plan("np: 2\ngrid:\n  lora.r: [4]\n"), so);
  EXPECT_NE(cpu.find("#SBATCH --ntasks-per-node=2\n"), std::string::npos) << cpu;
  EXPECT_EQ(cpu.find("--gpus-per-node"), std::string::npos) << cpu;
  EXPECT_EQ(cpu.find("--partition"), std::string::npos) << cpu;
  EXPECT_TRUE((fs::status(sb).permissions() & fs::perms::owner_exec) != fs::perms::none);
  const std::string tsv = slurp(s.dir / "out" / "points.tsv");
  EXPECT_EQ(std::count(tsv.begin(), tsv.end(), '\n'), 4);
  EXPECT_NE(tsv.find("1\tr8\t" + plan.points[1].run_dir + "\t" + plan.points[1].shards_dir + "\tlora.r=8\n"),
            std::string::npos) << tsv;

  // The script itself: a task whose point was preempted requeues its own array element; stubs stand in.
  const fs::path fake = s.dir / "fakebin";
  fs::create_directories(fake);
  script(fake / "scontrol", "echo \"$*\" > " + (s.dir / "requeued").string() + "\n");
  script(s.dir / "cgsweep_stub", "echo \"$*\" > " + (s.dir / "task_args").string() + "\nexit 75\n");
  const std::string cmd = "env PATH=" + fake.string() + ":/usr/bin:/bin SLURM_ARRAY_TASK_ID=1 SLURM_JOB_ID=991 "
                          "CGSWEEP=" + (s.dir / "cgsweep_stub").string() + " bash " + sb + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(slurp(s.dir / "requeued"), "requeue 991\n");
  EXPECT_NE(slurp(s.dir / "task_args").find("--point 1 --launcher srun --kill-on-bad-exit=1 --serial-launcher srun "
                                            "--nodes=1 --ntasks=1 --cpus-per-task=1 train.steps=7"),
            std::string::npos) << slurp(s.dir / "task_args");

  // Restarted CG_MAX_REQUEUES times already: the task is not put back again, it ends with the 75.
  fs::remove(s.dir / "requeued");
  const std::string capped = "env SLURM_RESTART_COUNT=5000 CG_MAX_REQUEUES=3 " + cmd.substr(4);
  const int rc = std::system(capped.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 75) << rc;
  EXPECT_FALSE(fs::exists(s.dir / "requeued"));
}

TEST(SweepRunner, OneProcessStagesRunUnderTheSerialLauncher) {
  StubSweep s;
  const SweepPlan plan = s.plan("sample: true\ngrid:\n  lora.r: [4]\n");
  // Stands in for `srun --nodes=1 --ntasks=1`: logs, then runs the tool.
  script(s.dir / "step", "echo \"step $(basename $1)\" >>" + s.calls.string() + "\nexec \"$@\"\n");
  RunOptions o = s.options();
  o.serial_launcher = (s.dir / "step").string() + " ";
  ASSERT_EQ(run_sweep(plan, o), 0);
  const std::string calls = slurp(s.calls);
  for (const char* tool : {"step cgprep\nprep ", "step cgexport\nexport ", "step cgeval\neval "})
    EXPECT_NE(calls.find(tool), std::string::npos) << tool << "\n" << calls;
  EXPECT_EQ(count(calls, "step "), 3u) << calls;  // train and sample go through the (np-rank) launcher instead
}

TEST(SweepRunner, PointConfigsAreRewrittenOnlyWhenChanged) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");  // writes point.yaml
  const fs::path file = fs::path(plan.points[0].run_dir) / "point.yaml";
  const auto before = fs::last_write_time(file);
  fs::last_write_time(file, before - std::chrono::hours(1));
  write_point_configs(plan);
  EXPECT_EQ(fs::last_write_time(file), before - std::chrono::hours(1));  // same content: untouched
  std::ofstream(file, std::ios::app) << "# edited\n";
  write_point_configs(plan);
  EXPECT_EQ(slurp(file).find("# edited"), std::string::npos);  // different content: rewritten
  EXPECT_EQ(cg::load_config_string(slurp(file)).lora.r, 4);
}

// --slurm while another cgsweep runs a point (its lock held): that point's point.yaml, which its later stages read,
// stays as that cgsweep wrote it; the other points' are written, and no lock file is left where there was none.
TEST(SweepRunner, PointConfigsLeaveAPointAnotherCgsweepRuns) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8]\n");
  const fs::path running = fs::path(plan.points[1].run_dir), idle = fs::path(plan.points[0].run_dir);
  std::ofstream(running / "point.yaml", std::ios::app) << "# the running one's config\n";
  std::ofstream(idle / "point.yaml", std::ios::app) << "# an old config\n";
  std::optional<cg::FileLock> other(std::in_place, (running / ".cgsweep.lock").string());  // "the other cgsweep"
  ASSERT_TRUE(other->locked());
  write_point_configs(plan);
  EXPECT_NE(slurp(running / "point.yaml").find("# the running one's config"), std::string::npos);
  EXPECT_EQ(slurp(idle / "point.yaml").find("# an old config"), std::string::npos);
  EXPECT_FALSE(fs::exists(idle / ".cgsweep.lock"));
  other.reset();  // that cgsweep is done with it: the next --slurm writes it
  write_point_configs(plan);
  EXPECT_EQ(slurp(running / "point.yaml").find("# the running one's config"), std::string::npos);
}

// A point's lock held for a moment (--slurm writing its point.yaml) delays a run of it; it is not refused.
TEST(SweepRunner, PointLockHeldForAMomentIsWaitedFor) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");
  const fs::path run(plan.points[0].run_dir);
  std::optional<cg::FileLock> writer(std::in_place, (run / ".cgsweep.lock").string());
  ASSERT_TRUE(writer->locked());
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    writer.reset();
  });
  int rc = -1;
  try {
    rc = run_point(plan, plan.points[0], s.options());
  } catch (const cg::Error& e) {
    ADD_FAILURE() << e.what();
  }
  release.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(slurp(run / "status"), "done\n");
}

TEST(SweepRunner, PointConfigsAreReplacedByRenameNeverRewrittenInPlace) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");
  const fs::path file = fs::path(plan.points[0].run_dir) / "point.yaml";
  struct stat before {};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);
  std::ofstream(file, std::ios::app) << "# edited\n";
  write_point_configs(plan);
  struct stat after {};
  ASSERT_EQ(::stat(file.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);  // a new file renamed over it: a reader sees the old or the new one
  for (const auto& e : fs::directory_iterator(file.parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(SweepRunner, PointConfigsDoNotDependOnHowTheSweepFileIsNamed) {
  StubSweep s;
  std::ofstream(s.dir / "s.yaml") << "base: base.yaml\nout_dir: " << (s.dir / "out").string()
                                  << "\ngrid:\n  lora.r: [4, 8]\n";
  const Resolver resolve = [](const std::string& base, const std::vector<std::string>& ov,
                              const std::vector<std::string>& origins) {
    return cg::to_yaml(cg::load_config(base, ov, origins));
  };
  const SweepPlan a = plan_sweep(load_sweep_spec((s.dir / "s.yaml").string()), resolve);
  write_point_configs(a);
  const fs::path file = fs::path(a.points[1].run_dir) / "point.yaml";
  const auto old = fs::last_write_time(file) - std::chrono::hours(1);
  fs::last_write_time(file, old);
  // What each array task does: the same file named another way (here relative, through ./ and ..).
  const std::string other = (fs::relative(s.dir, fs::current_path()) / "bin" / ".." / "." / "s.yaml").string();
  const SweepPlan b = plan_sweep(load_sweep_spec(other), resolve);
  EXPECT_EQ(b.spec.path, a.spec.path);
  write_point_configs(b);
  EXPECT_EQ(fs::last_write_time(file), old) << slurp(file);  // same content: left alone
}

// The stub sweep's grid planned with out_dir spelled as `out`.
SweepPlan plan_with_out_dir(const StubSweep& s, const std::string& out, const std::string& grid) {
  SweepSpec spec = parse_sweep_spec("base: base.yaml\nout_dir: " + out + "\n" + grid, (s.dir / "sweep.yaml").string());
  return plan_sweep(spec, [](const std::string& base, const std::vector<std::string>& ov,
                             const std::vector<std::string>& origins) {
    return cg::to_yaml(cg::load_config(base, ov, origins));
  });
}

TEST(SweepRunner, FinishedPointsAreUnchangedWhateverTheOutDirSpelling) {
  StubSweep s;
  const std::string grid = "sample: true\ngrid:\n  lora.r: [4, 8]\n";  // sample.adapter is a folder too
  const SweepPlan plan = s.plan(grid);
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  const size_t before = lines(s.calls);
  // The same out_dir relative to the current folder, with ./ and a trailing /: same folders, skipped.
  const std::string rel = (fs::relative(s.dir, fs::current_path()) / "." / "bin" / ".." / "out" / "").string();
  const SweepPlan again = plan_with_out_dir(s, rel, grid);
  EXPECT_EQ(again.spec.out_dir, (s.dir / "out").string());
  EXPECT_EQ(again.points[1].run_dir, plan.points[1].run_dir);
  EXPECT_NO_THROW(check_finished_points(again));
  ASSERT_EQ(run_sweep(again, s.options()), 0);
  EXPECT_EQ(lines(s.calls), before);

  // Finished by an older cgsweep that recorded the folders as spelled on its command line: still unchanged.
  const fs::path r8 = plan.points[1].run_dir;
  std::string yaml = slurp(r8 / "point.yaml");
  for (size_t pos; (pos = yaml.find("/out/r8")) != std::string::npos;) yaml.replace(pos, 7, "/./out//r8");
  std::ofstream(r8 / "point.yaml") << yaml;
  std::ofstream(r8 / "point.hash") << "0123456789abcdef\n";  // the hash of that spelling
  EXPECT_NO_THROW(check_finished_points(again));
  ASSERT_EQ(run_sweep(again, s.options()), 0);
  EXPECT_EQ(lines(s.calls), before);

  // Through a symbolic link to out_dir (the same folders): unchanged and skipped, not refused as "config changed"
  // because the folders are spelled through the link.
  fs::create_directory_symlink(s.dir / "out", s.dir / "outlink");
  const SweepPlan linked = plan_with_out_dir(s, (s.dir / "outlink").string(), grid);
  EXPECT_NO_THROW(check_finished_points(linked));
  write_point_configs(linked);
  ASSERT_EQ(run_sweep(linked, s.options()), 0);
  EXPECT_EQ(lines(s.calls), before);
}

TEST(SweepRunner, SignalsReachTheRunningStage) {
  StubSweep s;
  // The stage saves and exits 75 on USR1, like cgtrain; the signal is sent to this process (cgsweep). The stage
  // writes `started` after installing its trap, so the signal cannot arrive before the trap.
  const fs::path stage = s.dir / "stage";
  script(stage, "trap 'echo saved; exit 75' USR1\n" + wait_for_signal(s.dir / "started"));
  int rc = 0;
  {
    SignalWhen usr1(s.dir / "started", SIGUSR1);
    rc = run_logged({stage.string()}, (s.dir / "stage.log").string());
  }
  EXPECT_EQ(rc, kExitPreempted);
  EXPECT_NE(slurp(s.dir / "stage.log").find("saved"), std::string::npos);
}

TEST(SweepRunner, FinishedPointWithChangedConfigIsRefusedNotSkipped) {
  StubSweep s;
  // A warmup of 1 step: the cosine decay has begun by step 3, so a longer train.steps does not train on (see below).
  const std::string grid = "overrides:\n  train.warmup_steps: 1\ngrid:\n  lora.r: [4, 8]\n";
  const std::string steps5 = "overrides:\n  train.warmup_steps: 1\n  train.steps: 5\ngrid:\n  lora.r: [4, 8]\n";
  const SweepPlan plan = s.plan(grid);
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  const size_t before = lines(s.calls);
  const fs::path r8 = plan.points[1].run_dir;
  EXPECT_TRUE(fs::exists(r8 / "point.hash"));

  // train.steps 3 -> 5 for every point: both finished points are named, with the change and what to do.
  const SweepPlan changed = s.plan(steps5);
  std::string error;
  try {
    run_sweep(changed, s.options());
  } catch (const cg::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("point r8's config changed since it ran (train.steps 3 -> 5; it would train on from step 3 only "
                       "if the steps it trained kept their learning rate under train.steps=5, as under "
                       "train.schedule=constant, but train.schedule=cosine decays over all of train.steps: the run "
                       "trained on would be neither a 3-step nor a 5-step run)"), std::string::npos) << error;
  EXPECT_NE(error.find("point r4's config changed"), std::string::npos) << error;
  EXPECT_NE(error.find("delete " + r8.string()), std::string::npos) << error;
  EXPECT_NE(error.find("restore the sweep file"), std::string::npos) << error;
  EXPECT_THROW(run_point(changed, changed.points[1], s.options()), cg::Error);  // a Slurm array task: same
  EXPECT_EQ(lines(s.calls), before);                                           // nothing ran
  EXPECT_EQ(cg::load_config_string(slurp(r8 / "point.yaml")).train.steps, 3);  // the config it ran with
  EXPECT_EQ(slurp(r8 / "status"), "done\n");

  // Sweep file restored: skipped again. Folder deleted: runs with the new config.
  ASSERT_EQ(run_sweep(s.plan(grid), s.options()), 0);
  EXPECT_EQ(lines(s.calls), before);
  fs::remove_all(r8);
  const SweepPlan again = s.plan(steps5);
  EXPECT_THROW(run_sweep(again, s.options()), cg::Error);  // r4 still differs
  ASSERT_EQ(run_point(again, again.points[1], s.options()), 0);
  EXPECT_EQ(cg::load_config_string(slurp(r8 / "point.yaml")).train.steps, 5);
  EXPECT_NE(slurp(s.calls).find("train r=8", before), std::string::npos);

  // Marked done by an older cgsweep (no point.hash): skipped as before.
  fs::remove(fs::path(plan.points[0].run_dir) / "point.hash");
  const size_t now = lines(s.calls);
  EXPECT_EQ(run_sweep(s.plan(steps5), s.options()), 0);
  EXPECT_EQ(lines(s.calls), now);
}

// A finished sweep run again with a larger train.steps, under a schedule that keeps the learning rate of the steps
// already trained (constant): each done point trains on from its last checkpoint (cgtrain resumes; no cgprep) and
// runs its later stages again, gets the new point.yaml and hash, and is then skipped as done. A smaller train.steps,
// or a larger one with another change, is refused as any changed config is.
TEST(SweepRunner, AFinishedPointTrainsOnToALargerTrainStepsAndRunsItsLaterStagesAgain) {
  StubSweep s;
  const auto sweep = [](const std::string& steps, const std::string& more = "") {
    return "sample: true\noverrides:\n  train.schedule: constant\n  train.steps: " + steps + "\n" + more +
           "grid:\n  lora.r: [4, 8]\n";
  };
  const SweepPlan plan = s.plan(sweep("3"));
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  const size_t before = slurp(s.calls).size();
  const std::string hash = slurp(fs::path(plan.points[1].run_dir) / "point.hash");

  const SweepPlan longer = s.plan(sweep("6"));
  RunOptions dry = s.options();
  dry.dry_run = true;
  const std::string dry_log = cg::test::log_of([&] { EXPECT_EQ(run_sweep(longer, dry), 0); });
  EXPECT_TRUE(cg::test::contains(dry_log, "point 1 (r8) is done at train.steps=3; it would train on to "
                                          "train.steps=6 from its last checkpoint")) << dry_log;
  EXPECT_EQ(slurp(s.calls).size(), before);
  for (const auto& p : longer.points)  // planning and a dry run leave a done point's config as it ran
    EXPECT_EQ(cg::load_config_string(slurp(fs::path(p.run_dir) / "point.yaml")).train.steps, 3);
  const std::string log = cg::test::log_of([&] { EXPECT_EQ(run_sweep(longer, s.options()), 0); });
  EXPECT_TRUE(cg::test::contains(log, "point 1 (r8) is done at train.steps=3; training on to train.steps=6 from its "
                                      "last checkpoint, then its later stages again")) << log;
  const std::string calls = slurp(s.calls).substr(before);
  for (const auto& p : longer.points) {
    const fs::path run = p.run_dir;
    EXPECT_EQ(count(calls, "train r=" + p.name.substr(1) + " " + (run / "point.yaml").string()), 1u) << calls;
    EXPECT_EQ(count(calls, "export " + run.string() + " "), 1u) << calls;
    EXPECT_EQ(count(calls, "sample " + (run / "adapter").string()), 1u) << calls;
    EXPECT_EQ(count(calls, "eval " + (run / "samples" / "eval").string()), 1u) << calls;
    EXPECT_EQ(slurp(run / "status"), "done\n");
    EXPECT_EQ(cg::load_config_string(slurp(run / "point.yaml")).train.steps, 6);
  }
  EXPECT_EQ(count(calls, "prep "), 0u) << calls;  // the shards are there
  EXPECT_NE(slurp(fs::path(plan.points[1].run_dir) / "point.hash"), hash);
  const size_t after = slurp(s.calls).size();
  ASSERT_EQ(run_sweep(longer, s.options()), 0);  // done at 6: skipped
  EXPECT_EQ(slurp(s.calls).size(), after);

  const std::string fewer = cg::test::error_of([&] { run_sweep(s.plan(sweep("4")), s.options()); });
  EXPECT_TRUE(cg::test::contains(fewer, "point r8's config changed since it ran (train.steps 6 -> 4): delete"))
      << fewer;
  const std::string also = cg::test::error_of([&] { run_sweep(s.plan(sweep("9", "  lora.alpha: 8\n")), s.options()); });
  EXPECT_TRUE(cg::test::contains(also, "point r8's config changed since it ran (lora.alpha 32.0 -> 8.0, train.steps "
                                       "6 -> 9): delete")) << also;
  EXPECT_EQ(slurp(s.calls).size(), after);  // nothing ran
}

TEST(SweepRunner, InterruptStopsTheSweepEvenWithKeepGoing) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8, 16]\n");
  ::setenv("STUB_TRAIN_WAIT_8", "1", 1);  // r8's cgtrain runs until Ctrl-C
  RunOptions keep = s.options();
  keep.keep_going = true;
  int rc = 0;
  {
    SignalWhen ctrl_c(s.dir / "started", SIGINT);
    rc = run_sweep(plan, keep);
  }
  ::unsetenv("STUB_TRAIN_WAIT_8");
  EXPECT_EQ(rc, 130);
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "done\n");
  EXPECT_EQ(slurp(fs::path(plan.points[1].run_dir) / "status"), "interrupted: train\n");
  EXPECT_FALSE(fs::exists(fs::path(plan.points[2].run_dir) / "status"));  // not started
  EXPECT_EQ(slurp(s.calls).find("train r=16"), std::string::npos);
}

// Slurm's USR1 passed on to a cgtrain (or mpirun) still starting up, before its handlers, kills it: the point was
// preempted (the rerun resumes from its newest checkpoint), not failed, and the sweep exits 75 to be requeued.
TEST(SweepRunner, TrainingKilledByThePassedOnUsr1IsPreempted) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8]\n");
  ::setenv("STUB_TRAIN_WAIT_4", "1", 1);  // r4's cgtrain has no handler: SIGUSR1 kills it (exit 138)
  int rc = 0;
  {
    SignalWhen usr1(s.dir / "started", SIGUSR1);
    rc = run_sweep(plan, s.options());
  }
  ::unsetenv("STUB_TRAIN_WAIT_4");
  EXPECT_EQ(rc, kExitPreempted);
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "preempted\n");
  EXPECT_FALSE(fs::exists(fs::path(plan.points[1].run_dir) / "status"));
}

// A signal that reaches cgsweep while no stage runs, after it last checked for one before starting the next stage,
// is passed to that stage as soon as it starts, instead of going unheeded until the stage ends by itself.
TEST(SweepRunner, ASignalJustBeforeAStageStartsReachesIt) {
  StubSweep s;
  ASSERT_EQ(run_logged({"true"}, (s.dir / "true.log").string()), 0);  // cgsweep's handlers are up
  ::raise(SIGUSR1);  // no stage runs
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_logged({"sleep", "30"}, (s.dir / "sleep.log").string()), 128 + SIGUSR1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(25));  // killed, not run to its end
}

TEST(SweepRunner, TermBetweenStagesStopsBeforeTheNextAndTheRerunResumesThere) {
  StubSweep s;
  const SweepPlan plan = s.plan("sample: true\ngrid:\n  lora.r: [4, 8]\n");
  ::setenv("STUB_TRAIN_WAIT_4", "trap", 1);  // r4's cgtrain survives SIGTERM and finishes (exit 0)
  int rc = 0;
  {
    SignalWhen term(s.dir / "started", SIGTERM);
    rc = run_sweep(plan, s.options());
  }
  ::unsetenv("STUB_TRAIN_WAIT_4");
  EXPECT_EQ(rc, 143);
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "interrupted: export\n");
  EXPECT_EQ(slurp(s.calls).find("export "), std::string::npos) << slurp(s.calls);
  EXPECT_FALSE(fs::exists(fs::path(plan.points[1].run_dir) / "status"));

  // The rerun goes on at export (training finished) and then runs r8.
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  const std::string calls = slurp(s.calls);
  EXPECT_EQ(count(calls, "train r=4"), 1u) << calls;
  EXPECT_EQ(count(calls, "export "), 2u) << calls;
  EXPECT_EQ(count(calls, "train r=8"), 1u) << calls;
  for (const auto& p : plan.points) EXPECT_EQ(slurp(fs::path(p.run_dir) / "status"), "done\n") << p.name;
}

// A signal to cgsweep while an mpirun stage trains. The mpirun stand-in acts like OpenMPI's: SIGTERM and SIGINT kill
// the ranks (exit 1), SIGUSR1 is passed on (cgtrain saves: 75). It records what it got and its process group.
static void signal_to_mpirun_stage(int sig, int want_rc, const std::string& want_status) {
  StubSweep s;
  const fs::path mpirun = s.dir / "mpi" / "mpirun";
  fs::create_directories(mpirun.parent_path());
  const fs::path got = s.dir / "mpirun_got", pgrp = s.dir / "mpirun_pgrp";
  const auto on = [&](const std::string& name, int rc) {
    return "trap 'echo " + name + " > " + got.string() + "; exit " + std::to_string(rc) + "' " + name + "\n";
  };
  script(mpirun, "awk '{print $5}' /proc/$$/stat > " + pgrp.string() + "\n" + on("USR1", 75) + on("TERM", 1) +
                     on("INT", 1) + wait_for_signal(s.dir / "started"));
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8]\n");
  RunOptions o = s.options();
  o.launcher = mpirun.string() + " -np {np}";
  int rc = 0;
  {
    SignalWhen send(s.dir / "started", sig);
    rc = run_sweep(plan, o);
  }
  EXPECT_EQ(rc, want_rc);
  EXPECT_EQ(slurp(got), "USR1\n");  // what mpirun forwards to its ranks
  EXPECT_NE(std::stol(slurp(pgrp)), long(::getpgrp()));  // its own group: a terminal's Ctrl-C reaches cgsweep only
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), want_status + "\n");
  EXPECT_FALSE(fs::exists(fs::path(plan.points[1].run_dir) / "status"));
}

TEST(SweepRunner, TermToAnMpirunStageIsSentAsUsr1) { signal_to_mpirun_stage(SIGTERM, kExitPreempted, "preempted"); }

// Ctrl-C: cgtrain saves too, but the point is interrupted (not requeued) and the sweep exits 130.
TEST(SweepRunner, CtrlCToAnMpirunStageIsSentAsUsr1) { signal_to_mpirun_stage(SIGINT, 130, "interrupted: train"); }

// A second cgsweep on a point another one is running (its lock held) is refused before it touches the point.
TEST(SweepRunner, PointBeingRunByAnotherCgsweepIsRefused) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8]\n");
  const fs::path run(plan.points[1].run_dir);
  fs::create_directories(run);
  std::optional<cg::FileLock> other(std::in_place, (run / ".cgsweep.lock").string());  // "the other cgsweep"
  ASSERT_TRUE(other->locked());
  std::string error;
  try {
    run_point(plan, plan.points[1], s.options());
  } catch (const cg::Error& e) {
    error = e.what();
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_NE(error.find("point 1 (r8) is being run by another cgsweep right now (process " + std::to_string(::getpid()) +
                       " on host " + host + " holds "), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(run / "status"));
  EXPECT_EQ(slurp(s.calls).find("train r=8"), std::string::npos);
  other.reset();  // the other one finished: now it runs
  ASSERT_EQ(run_point(plan, plan.points[1], s.options()), 0);
  EXPECT_EQ(slurp(run / "status"), "done\n");
}

// A stage after training that failed (a full disk at export, say) is run again by the rerun without training again.
TEST(SweepRunner, FailedExportResumesThereWithoutTraining) {
  StubSweep s;
  const SweepPlan plan = s.plan("sample: true\ngrid:\n  lora.r: [4]\n");
  ::setenv("STUB_EXPORT_RC", "3", 1);
  const int rc = run_sweep(plan, s.options());
  ::unsetenv("STUB_EXPORT_RC");
  EXPECT_EQ(rc, 3);
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "failed: export (exit 3)\n");
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  const std::string calls = slurp(s.calls);
  EXPECT_EQ(count(calls, "train r=4"), 1u) << calls;
  EXPECT_EQ(count(calls, "export "), 2u) << calls;
  EXPECT_EQ(count(calls, "eval "), 1u) << calls;
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "done\n");
}

// A point that failed after training, whose config changed since, trains again: its adapter is the old config's.
TEST(SweepRunner, FailedExportWithAChangedConfigTrainsAgain) {
  StubSweep s;
  ::setenv("STUB_EXPORT_RC", "3", 1);
  const int rc = run_sweep(s.plan("sample: true\ngrid:\n  lora.r: [4]\n"), s.options());
  ::unsetenv("STUB_EXPORT_RC");
  EXPECT_EQ(rc, 3);
  const SweepPlan changed = s.plan("sample: true\noverrides: {lora.alpha: 8}\ngrid:\n  lora.r: [4]\n");
  EXPECT_EQ(slurp(fs::path(changed.points[0].run_dir) / "status"), "failed: export (exit 3)\n");
  ASSERT_EQ(run_sweep(changed, s.options()), 0);
  const std::string calls = slurp(s.calls);
  EXPECT_EQ(count(calls, "train r=4"), 2u) << calls;
  EXPECT_EQ(count(calls, "export "), 2u) << calls;
  EXPECT_EQ(slurp(fs::path(changed.points[0].run_dir) / "status"), "done\n");
}

// A stage's log that cannot be opened (a full disk; here a folder where train.log goes) fails the sweep with the OS
// reason and what to do, before the stage runs; the point's status says it failed there and why (not "running",
// which it kept until a rerun), and so does the summary; the rerun, with the log's place free, runs it.
TEST(SweepRunner, AStageLogThatCannotBeOpenedSaysWhy) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");
  const fs::path log = fs::path(plan.points[0].run_dir) / "logs" / "train.log";
  fs::create_directories(log);
  std::string error;
  try {
    run_sweep(plan, s.options());
  } catch (const cg::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("cannot open the stage's log " + log.string() + ": Is a directory (errno 21); a folder is "
                       "where a file should be, or a file where a folder should be: move it"), std::string::npos)
      << error;
  EXPECT_EQ(slurp(s.calls).find("train r=4"), std::string::npos);
  const std::string why = "failed: train (cannot open the stage's log " + log.string() + ": Is a directory (errno 21))";
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), why + "\n");
  EXPECT_EQ(collect_rows(plan)[0].status, why);
  fs::remove(log);
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  EXPECT_EQ(count(slurp(s.calls), "train r=4"), 1u);
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "done\n");
}

// A point whose stage cannot start (here a file where its logs/ folder goes) stops the sweep with the reason, the
// point marked failed; with --keep-going the sweep goes on to the next point and ends with kExitPointError, naming the
// point that failed. The rerun, the file moved away, runs it.
TEST(SweepRunner, KeepGoingRunsThePointsAfterOneWhoseStageCannotStart) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4, 8]\n");
  const fs::path r4 = plan.points[0].run_dir, r8 = plan.points[1].run_dir;
  std::ofstream(r4 / "logs") << "in the way\n";
  const std::string why = "cannot make the folder of the stage's log " + (r4 / "logs").string() +
                          ": Not a directory (errno 20)";
  const std::string error = cg::test::error_of([&] { run_sweep(plan, s.options()); });
  EXPECT_TRUE(cg::test::contains(error, why + "; a folder is where a file should be, or a file where a folder should "
                                              "be: move it")) << error;
  EXPECT_EQ(slurp(r4 / "status"), "failed: prep (" + why + ")\n");
  EXPECT_FALSE(fs::exists(r8 / "status"));  // without --keep-going: not attempted
  EXPECT_EQ(slurp(s.calls), "");

  RunOptions keep = s.options();
  keep.keep_going = true;
  int rc = -1;
  const std::string log = cg::test::log_of([&] { rc = run_sweep(plan, keep); });
  EXPECT_EQ(rc, kExitPointError);
  EXPECT_TRUE(cg::test::contains(log, "point 0 (r4) could not run: " + why)) << log;
  EXPECT_TRUE(cg::test::contains(log, "1 of 2 points failed: r4 (their <point>/status and logs say why")) << log;
  EXPECT_EQ(slurp(r4 / "status"), "failed: prep (" + why + ")\n");
  EXPECT_EQ(slurp(r8 / "status"), "done\n");
  EXPECT_EQ(collect_rows(plan)[0].status, "failed: prep (" + why + ")");

  fs::remove(r4 / "logs");
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  EXPECT_EQ(slurp(r4 / "status"), "done\n");
  EXPECT_EQ(count(slurp(s.calls), "train r=8"), 1u);  // done: not run again
}

// Points of another data setting get past one whose shards cannot be locked (a folder where the lock file goes):
// that point is failed at prep with the reason, the others run, under --keep-going.
TEST(SweepRunner, KeepGoingRunsThePointsAfterOneWhoseShardsCannotBeLocked) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  data.translate: [true, false]\n");
  ASSERT_NE(plan.points[0].shards_dir, plan.points[1].shards_dir);
  const fs::path lock = plan.points[0].shards_dir + ".lock";
  fs::create_directories(lock);
  RunOptions keep = s.options();
  keep.keep_going = true;
  int rc = -1;
  const std::string log = cg::test::log_of([&] { rc = run_sweep(plan, keep); });
  EXPECT_EQ(rc, kExitPointError);
  const std::string status = slurp(fs::path(plan.points[0].run_dir) / "status");
  EXPECT_TRUE(status.rfind("failed: prep (cannot open lock file " + lock.string() + ": ", 0) == 0) << status;
  EXPECT_EQ(slurp(fs::path(plan.points[1].run_dir) / "status"), "done\n");
  EXPECT_EQ(slurp(s.calls), "prep " + plan.points[1].shards_dir + "\ntrain r=8 " + plan.points[1].run_dir +
                                "/point.yaml\n");
  EXPECT_TRUE(cg::test::contains(log, "1 of 2 points failed: translate1")) << log;
}

// A real full disk (a small tmpfs) when a point's status is to be written: the sweep stops, --keep-going too, saying
// to free space and what the status still says; the earlier status is kept whole, no temporary file is left, and
// nothing of the point ran. With room made, the same command goes on. Needs root to mount: skipped where it cannot.
TEST(SweepRunner, AStatusThatCannotBeWrittenOnAFullDiskStopsTheSweepKeepingTheEarlierOne) {
  StubSweep s;
  cg::test::TmpfsMount disk((s.dir / "disk").string(), 256 * 1024);
  if (!disk.mounted) GTEST_SKIP() << "cannot mount a tmpfs at " << disk.dir << " (needs root)";
  const SweepPlan plan = plan_with_out_dir(s, disk.dir + "/out", "grid:\n  lora.r: [4, 8]\n");
  write_point_configs(plan);
  const fs::path r8 = plan.points[1].run_dir;
  RunOptions keep = s.options();
  keep.keep_going = true;
  ::setenv("STUB_TRAIN_RC_8", "3", 1);
  EXPECT_EQ(run_sweep(plan, keep), 3);
  ::unsetenv("STUB_TRAIN_RC_8");
  ASSERT_EQ(slurp(r8 / "status"), "failed: train (exit 3)\n");
  const size_t calls = lines(s.calls);

  const fs::path fill = fs::path(disk.dir) / "fill";
  std::ofstream(fill) << std::string(fs::space(disk.dir).available, '\0');
  ASSERT_EQ(fs::space(disk.dir).available, 0u);
  const std::string error = cg::test::error_of([&] { run_sweep(plan, keep); });
  EXPECT_TRUE(cg::test::contains(
      error, "point r8: cannot record \"running\" in " + (r8 / "status").string() + ": cannot write " +
                 (r8 / "status.tmp.").string()))
      << error;
  EXPECT_TRUE(cg::test::contains(
      error, ": No space left on device (errno 28); the disk is full: free disk space; then run the same command "
             "again, which goes on where the sweep stopped (" + (r8 / "status").string() + " still says \"failed: "
             "train (exit 3)\")")) << error;
  EXPECT_EQ(slurp(r8 / "status"), "failed: train (exit 3)\n");
  for (const auto& e : fs::directory_iterator(r8))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_EQ(fs::space(disk.dir).available, 0u);
  EXPECT_EQ(lines(s.calls), calls);  // nothing ran

  fs::remove(fill);
  ASSERT_EQ(run_sweep(plan, keep), 0);
  EXPECT_EQ(slurp(r8 / "status"), "done\n");
  EXPECT_EQ(count(slurp(s.calls), "train r=4"), 1u);
}

// RunOptions::prepared (where cgsweep warns of sample conditions the shards never carry) runs once a point's shards
// are there and before it trains, whether its cgprep ran or an earlier point's made them; in a dry run for every
// point not done (where it would be prepared, its shards there or not: cgsweep checks those there); not for a point
// that resumes after training, nor for a done one.
TEST(SweepRunner, PreparedRunsBetweenPrepAndTrain) {
  StubSweep s;
  const SweepPlan plan = s.plan("sample: true\ngrid:\n  lora.r: [4, 8]\n");
  RunOptions o = s.options();
  o.prepared = [&](const PlannedPoint& p) { std::ofstream(s.calls, std::ios::app) << "prepared " << p.index << "\n"; };
  RunOptions dry = o;
  dry.dry_run = true;
  ASSERT_EQ(run_sweep(plan, dry), 0);
  EXPECT_EQ(slurp(s.calls), "prepared 0\nprepared 1\n");  // and no tool ran
  fs::remove(s.calls);
  ::setenv("STUB_EXPORT_RC", "3", 1);
  const int rc = run_sweep(plan, o);
  ::unsetenv("STUB_EXPORT_RC");
  EXPECT_EQ(rc, 3);
  std::string calls = slurp(s.calls);
  EXPECT_EQ(count(calls, "prep "), 1u) << calls;
  EXPECT_LT(calls.find("prep "), calls.find("prepared 0")) << calls;
  EXPECT_LT(calls.find("prepared 0"), calls.find("train r=4")) << calls;
  ASSERT_EQ(run_sweep(plan, o), 0);  // point 0 resumes at export; point 1's shards are there already
  calls = slurp(s.calls);
  EXPECT_EQ(count(calls, "prepared 0"), 1u) << calls;
  EXPECT_EQ(count(calls, "prepared 1"), 1u) << calls;
  EXPECT_LT(calls.find("prepared 1"), calls.find("train r=8")) << calls;
  EXPECT_EQ(count(calls, "prep "), 1u) << calls;
  ASSERT_EQ(run_sweep(plan, dry), 0);  // both points done: skipped
  EXPECT_EQ(slurp(s.calls), calls);
}

// An error between a point's stages, in no stage's setup (here RunOptions::prepared throws, before training): the
// point's status says it failed there and why, not "running"; --keep-going goes on to the next point, and the rerun
// picks the failed one up and finishes it.
TEST(SweepRunner, AnErrorBetweenStagesMarksThePointFailedThereAndTheRerunRunsIt) {
  StubSweep s;
  const SweepPlan plan = s.plan("sample: true\ngrid:\n  lora.r: [4, 8]\n");
  const fs::path r4 = plan.points[0].run_dir, r8 = plan.points[1].run_dir;
  RunOptions o = s.options();
  o.prepared = [](const PlannedPoint& p) {
    if (p.index == 0) CG_FAIL("cannot read the shards of point {}", p.name);
  };
  const std::string error = cg::test::error_of([&] { run_sweep(plan, o); });
  EXPECT_TRUE(cg::test::contains(error, "cannot read the shards of point r4")) << error;
  EXPECT_EQ(slurp(r4 / "status"), "failed: train (cannot read the shards of point r4)\n");
  EXPECT_FALSE(fs::exists(r8 / "status"));  // without --keep-going: not attempted
  EXPECT_EQ(count(slurp(s.calls), "train "), 0u);

  RunOptions keep = o;
  keep.keep_going = true;
  int rc = -1;
  const std::string log = cg::test::log_of([&] { rc = run_sweep(plan, keep); });
  EXPECT_EQ(rc, kExitPointError);
  EXPECT_TRUE(cg::test::contains(log, "point 0 (r4) could not run: cannot read the shards of point r4")) << log;
  EXPECT_EQ(slurp(r4 / "status"), "failed: train (cannot read the shards of point r4)\n");
  EXPECT_EQ(collect_rows(plan)[0].status, "failed: train (cannot read the shards of point r4)");
  EXPECT_EQ(slurp(r8 / "status"), "done\n");

  o.prepared = nullptr;
  ASSERT_EQ(run_sweep(plan, o), 0);
  EXPECT_EQ(slurp(r4 / "status"), "done\n");
  const std::string calls = slurp(s.calls);
  EXPECT_EQ(count(calls, "train r=4"), 1u) << calls;
  EXPECT_EQ(count(calls, "train r=8"), 1u) << calls;  // done: not run again
}

// A stage whose command cannot be started (a launcher that is not on $PATH: a typo, a module not loaded) stops the
// sweep saying why and what to correct, and its status says so, not "failed: train (exit 127)" as of a command that
// ran; the rerun with the launcher put right trains the point.
TEST(SweepRunner, AStageThatCannotBeStartedSaysWhy) {
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");
  RunOptions o = s.options();
  o.launcher = "cg-no-such-launcher";
  const std::string why = "cannot start cg-no-such-launcher: No such file or directory; put it on $PATH, or correct "
                          "the launcher that names it (launcher: in the sweep file, --launcher or --serial-launcher)";
  const std::string error = cg::test::error_of([&] { run_sweep(plan, o); });
  EXPECT_TRUE(cg::test::contains(error, why)) << error;
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "failed: train (" + why + ")\n");
  EXPECT_EQ(count(slurp(s.calls), "train "), 0u);
  ASSERT_EQ(run_sweep(plan, s.options()), 0);
  EXPECT_EQ(count(slurp(s.calls), "train r=4"), 1u);
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "done\n");
}

TEST(SweepRunner, SampleKilledByUsr1IsPreemptedAndResumesThere) {
  StubSweep s;
  const SweepPlan plan = s.plan("sample: true\ngrid:\n  lora.r: [4, 8]\n");
  ::setenv("STUB_SAMPLE_SIG", "USR1", 1);  // Slurm's USR1@N reaches cgsample too; it has no handler
  RunOptions keep = s.options();
  keep.keep_going = true;
  const int rc = run_sweep(plan, keep);
  ::unsetenv("STUB_SAMPLE_SIG");
  EXPECT_EQ(rc, kExitPreempted);  // the Slurm task requeues
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "preempted: sample\n");
  EXPECT_FALSE(fs::exists(fs::path(plan.points[1].run_dir) / "status"));

  ASSERT_EQ(run_point(plan, plan.points[0], s.options()), 0);
  const std::string calls = slurp(s.calls);
  EXPECT_EQ(count(calls, "train r=4"), 1u) << calls;  // not trained again
  EXPECT_EQ(count(calls, "export "), 1u) << calls;    // nor exported
  EXPECT_EQ(count(calls, "sample "), 2u) << calls;
  EXPECT_EQ(count(calls, "eval "), 1u) << calls;
  EXPECT_EQ(slurp(fs::path(plan.points[0].run_dir) / "status"), "done\n");
}

// sbatch reads #SBATCH lines itself: words split on spaces, quotes taken, an unquoted '#' starts a comment and '%'
// is a filename pattern. A sweep file and out_dir named with all of those: each directive holds the whole value, and
// the script's commands and comments hold no line break of a value.
TEST(SweepSlurm, DirectivesAndCommentsHoldAwkwardNamesWhole) {
  StubSweep s;
  const fs::path out = s.dir / "out dir's 100% #2";
  const SweepSpec spec = parse_sweep_spec("base: base.yaml\nout_dir: \"" + out.string() + "\"\ngrid:\n  lora.r: [4]\n",
                                          (s.dir / "my sweep;#1.yaml").string());
  const Resolver resolve = [](const std::string& base, const std::vector<std::string>& ov,
                              const std::vector<std::string>& origins) {
    return cg::to_yaml(cg::load_config(base, ov, origins));
  };
  const SweepPlan plan = plan_sweep(spec, resolve);
  SlurmOptions so;
  so.cgsweep = "/opt/cg/cgsweep";
  so.workdir = s.dir.string();
  const std::string text = slurp(write_slurm_files(plan, so));
  EXPECT_NE(text.find("#SBATCH --job-name=cgsweep-my_sweep__1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("#SBATCH --output=\"" + s.dir.string() + "/out dir's 100%% #2/slurm-%A_%a.out\"\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("# Submit: sbatch '" + s.dir.string() + "/out dir'\\''s 100% #2/sweep.sbatch'\n"),
            std::string::npos) << text;
  // The requeue.sh path is single-quoted in the echo too (no $, `, " read by bash there).
  EXPECT_NE(text.find("{ echo 'sweep.sbatch: cannot read "), std::string::npos) << text;
  EXPECT_EQ(std::system(("bash -n " + shell_quote((out / "sweep.sbatch").string())).c_str()), 0) << text;

  // What cannot be written safely is refused, naming the setting: a '"' in out_dir (#SBATCH --output), a line break
  // in an argument passed to every task.
  const auto error_of = [&](SweepPlan p, SlurmOptions o) {
    try {
      sweep_sbatch(p, o);
    } catch (const cg::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SweepPlan quoted = plan;
  quoted.spec.out_dir = (s.dir / "a\"b").string();
  EXPECT_NE(error_of(quoted, so).find("out_dir (out_dir: in"), std::string::npos) << error_of(quoted, so);
  SlurmOptions nl = so;
  nl.extra_args = {"--bin-dir", "/x\nrm -rf /tmp/y"};
  EXPECT_NE(error_of(plan, nl).find("contains a newline"), std::string::npos) << error_of(plan, nl);
  SweepPlan nl_time = plan;
  nl_time.spec.slurm_time = "1:00:00\ntouch /tmp/y";  // parse_sweep_spec refuses it; the script checks again
  nl_time.spec.path = s.dir.string() + "/x\ny.yaml";
  EXPECT_NE(error_of(nl_time, so).find("contains a newline"), std::string::npos) << error_of(nl_time, so);
}

// A newline in out_dir (or --out-dir) is refused before anything is written: it would break point.yaml's header
// comments and start a command of its own in sweep.sbatch.
TEST(SweepSlurm, NewlineInOutDirIsRefusedWhenPlanning) {
  StubSweep s;
  SweepSpec spec = parse_sweep_spec("base: base.yaml\ngrid:\n  lora.r: [4]\n", (s.dir / "sweep.yaml").string());
  spec.out_dir = (s.dir / "nl out\ntouch x").string();
  std::string error;
  try {
    plan_sweep(spec, [](const std::string& base, const std::vector<std::string>& ov,
                        const std::vector<std::string>& origins) {
      return cg::to_yaml(cg::load_config(base, ov, origins));
    });
  } catch (const cg::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("the sweep's out_dir (out_dir: in"), std::string::npos) << error;
  EXPECT_NE(error.find("nl out\\ntouch x"), std::string::npos) << "the value spelled out on one line: " << error;
}

// A sweep of GPU points (model.device cuda or parallel.backend nccl) whose job would give a node fewer GPUs than the
// ranks it starts there (slurm.gpus_per_node 0, the default, asks for none) is refused before sweep.sbatch is written,
// with what to set; CPU points need none.
TEST(SweepSlurm, GpuPointsNeedAGpuForEveryRankOfANode) {
  const auto error_of = [](const std::string& body) {
    StubSweep s;
    SlurmOptions so;
    so.cgsweep = "/opt/cg/cgsweep";
    so.workdir = s.dir.string();
    std::string error;
    try {
      write_slurm_files(s.plan(body + "grid:\n  lora.r: [4, 8]\n"), so);
    } catch (const cg::Error& e) {
      error = e.what();
    }
    EXPECT_EQ(fs::exists(s.dir / "out" / "sweep.sbatch"), error.empty()) << error;
    return error;
  };
  std::string e = error_of("np: 8\noverrides: {model.device: cuda}\n");
  EXPECT_NE(e.find("point 0 (r4) runs on GPUs (model.device=cuda, parallel.backend=auto), one a rank, 8 ranks a node "
                   "(np 8 over slurm.nodes 1), but slurm.gpus_per_node is 0: set it in the sweep file's slurm: block "
                   "(e.g. slurm: {gpus_per_node: 8})"), std::string::npos) << e;
  e = error_of("np: 8\nslurm: {nodes: 2, gpus_per_node: 2}\noverrides: {parallel.backend: nccl}\n");
  EXPECT_NE(e.find("(model.device=auto, parallel.backend=nccl), one a rank, 4 ranks a node (np 8 over slurm.nodes 2), "
                   "but slurm.gpus_per_node is 2"), std::string::npos) << e;
  EXPECT_EQ(error_of("np: 8\nslurm: {nodes: 2, gpus_per_node: 4}\noverrides: {model.device: cuda}\n"), "");
  EXPECT_EQ(error_of("np: 2\noverrides: {model.device: cpu, parallel.backend: mpi}\n"), "");
}

// points.tsv: one row per point, one cell per column, whatever the values hold.
TEST(SweepSlurm, PointsTableEscapesTabsAndLineBreaks) {
  StubSweep s;
  SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");
  plan.points[0].settings = {{"data.val_csv", "a\tb\nc"}};
  const std::string tsv = points_table(plan);
  EXPECT_EQ(std::count(tsv.begin(), tsv.end(), '\n'), 2) << tsv;
  EXPECT_NE(tsv.find("data.val_csv=a\\tb\\nc\n"), std::string::npos) << tsv;
}

// Commands cgsweep prints can be pasted into a shell.
TEST(SweepSlurm, PrintedCommandsAreShellQuoted) {
  EXPECT_EQ(shell_quote("/a/b-c_d.yaml"), "/a/b-c_d.yaml");
  EXPECT_EQ(shell_quote("lora.r=8"), "lora.r=8");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_join({"mpirun", "-x", "A=a b", "$HOME"}), "mpirun -x 'A=a b' '$HOME'");
}

// Launchers are split as a shell splits them (quotes, backslashes), without expansions.
TEST(SweepRunner, LaunchersSplitLikeAShell) {
  EXPECT_EQ(launcher_argv("mpirun --oversubscribe -x 'MY_VAR=a b' -np {np}", 4),
            (std::vector<std::string>{"mpirun", "--oversubscribe", "-x", "MY_VAR=a b", "-np", "4"}));
  EXPECT_EQ(split_shell_words("  a\t\"b c\"d 'e\"f' g\\ h \"\\$x \\q\" '' \"it's\" $HOME"),
            (std::vector<std::string>{"a", "b cd", "e\"f", "g h", "$x \\q", "", "it's", "$HOME"}));
  EXPECT_EQ(split_shell_words("srun \\\n --ntasks=1"), (std::vector<std::string>{"srun", "--ntasks=1"}));
  EXPECT_TRUE(split_shell_words("   ").empty());
  for (const std::string bad : {"mpirun -x 'A=b", "mpirun -x \"A=b", "srun \\"}) {
    try {
      split_shell_words(bad);
      ADD_FAILURE() << bad;
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  // The words reach the launcher whole.
  StubSweep s;
  const SweepPlan plan = s.plan("grid:\n  lora.r: [4]\n");
  script(s.dir / "lx", "printf '%s\\n' \"$@\" >" + (s.dir / "lx.args").string() + "\nshift 2\nexec \"$@\"\n");
  RunOptions o = s.options();
  o.launcher = "'" + (s.dir / "lx").string() + "' -x 'MY_VAR=a b'";
  ASSERT_EQ(run_sweep(plan, o), 0);
  EXPECT_EQ(slurp(s.dir / "lx.args").substr(0, 14), "-x\nMY_VAR=a b\n") << slurp(s.dir / "lx.args");
}
