// cgtrain end to end on a micro LLaMA (HF checkpoint) and synthetic shards, launched under mpirun:
//   layouts: tp 1, tp 2, tp 1 × dp 2 (half the per-rank batch), tp 2 × dp 2 give the same 20 losses (1e-4) and tokens,
//   at the schedule's lr, validated every train.val_every steps and at the last step;
//   dropout masks do not depend on tp; same seed + layout is bitwise repeatable; val loss falls;
//   resume: bitwise equal to the unbroken run (same layout, with dropout), and equal to 1e-4 on another dp, tp or
//   grad_accum of the same global batch;
//   preemption (SIGUSR1): every rank saves at the same step and exits with kExitPreempted;
//   preemption (SIGTERM to every rank at a random step, checkpoint.every 0) and Ctrl-C (SIGINT, exit 130): the rerun
//   finishes bitwise equal; a SIGTERM held since before main (libtorch loading) is answered after the first step;
//   a rank killed during a save (CG_TEST_KILL_IN_SAVE): the older checkpoint stays, the rerun resumes from it;
//   bad input: tokenizer not matching the shards, tp × dp != world, non-finite losses, a run folder another cgtrain
//   holds, every checkpoint damaged → clear errors, nothing of the old run touched; a refused launch removes the
//   run folder it made (1 and 2 ranks; also when only rank 1 fails) and leaves a user's; two launches racing on one
//   new run folder (two processes, the first held inside its lock by a FIFO): the winner's folder stays, the
//   refused one leaves nothing;
//   export: PEFT adapter gathered over tp + merged HF checkpoint give the same logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <torch/torch.h>

#include "common/error.h"
#include "common/file_lock.h"
#include "common/sha256.h"
#include "data/shard.h"
#include "data/shard_settings.h"
#include "data/sp_model.h"
#include "dist/parallel_dims.h"
#include "lora/peft.h"
#include "model/base_sample.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "tests/test_util.h"  // the process's own scratch folder, error_of
#include "tests/train/train_fixture.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/config.h"
#include "trainer/signals.h"
#include "trainer/train_export.h"
#include "trainer/train_loop.h"
#include "trainer/train_model.h"

using namespace cg::test;
namespace fs = std::filesystem;

namespace {

// The process's own scratch folder (tests/test_util.h: made fresh in $TEST_TMPDIR, removed when every test passed):
// two ctest invocations in one build tree, or a folder a crashed run left, never meet a case's files. TMPDIR, where
// mpirun puts its unix sockets (107 bytes at most), stays as it was.
std::string scratch() {
  std::string d = ::testing::TempDir();  // ends in '/'
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

// The case's folder in the scratch folder, Suite.Name (not made).
std::string base_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return scratch() + "/" + info->test_suite_name() + "." + info->name();
}

// base_dir(), emptied and made.
std::string fresh_base_dir() {
  const std::string d = base_dir();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The micro setup, one per process (made at its first use; the cases only read it): every case trains on the same
// base and shards.
std::string setup() { return make_micro_setup(scratch() + "/setup"); }

// `a` with the overrides `more`: one that sets a key of `a` replaces it there (the tools refuse a key given twice on
// one command line), the others are appended.
std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  for (const std::string& m : more) {
    const size_t eq = m.find('=');
    const std::string key = eq == std::string::npos ? "" : m.substr(0, eq + 1);  // "train.steps="
    auto it = std::find_if(a.begin(), a.end(), [&](const std::string& w) { return w.rfind(key, 0) == 0; });
    if (!key.empty() && it != a.end())
      *it = m;
    else
      a.push_back(m);
  }
  return a;
}

// Runs cgtrain and expects success; returns the run's losses.
std::map<int64_t, double> train_ok(int np, const std::string& run_dir, const std::vector<std::string>& args) {
  fs::remove_all(run_dir);
  RunResult r = run_mpi(np, cgtrain_exe(), args);
  EXPECT_EQ(r.rc, 0) << r.output;
  auto losses = read_losses(run_dir);
  EXPECT_EQ(losses.size(), 20u) << r.output;
  return losses;
}

void expect_close(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b, double tol,
                  const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [step, l] : a) EXPECT_NEAR(l, b.at(step), tol) << what << " step " << step;
}

TEST(TrainLayouts, TpAndDpGiveTheSameLosses) {
  const std::string s = setup(), d = base_dir();
  // Validation every 8 steps of 20: at 0, 8, 16 and at the last step, which is no multiple of 8.
  const auto args = [&](const std::string& run, const std::vector<std::string>& more) {
    return with(with(micro_args(s, d + "/" + run), {"train.val_every=8"}), more);
  };
  const auto tp1 = train_ok(1, d + "/tp1", args("tp1", {}));
  const auto tp2 = train_ok(2, d + "/tp2", args("tp2", {"parallel.tp=2"}));
  const auto dp2 = train_ok(2, d + "/dp2", args("dp2", {"train.micro_batch=2"}));
  const auto tp2dp2 = train_ok(4, d + "/tp2dp2", args("tp2dp2", {"parallel.tp=2", "train.micro_batch=2"}));
  expect_close(tp1, tp2, 1e-4, "tp 2 vs tp 1");
  expect_close(tp1, dp2, 1e-4, "dp 2 (b 2) vs dp 1 (b 4)");
  expect_close(tp1, tp2dp2, 1e-4, "tp 2 x dp 2 (b 2) vs tp 1 (b 4)");
  // Step k runs at the schedule's lr of index k - 1 (lr 1e-2, 2 warmup steps, cosine over the other 18), and every
  // layout counts the same tokens a step, summed into tokens_seen.
  const auto lr = read_losses(d + "/tp1", "lr");
  ASSERT_EQ(lr.size(), 20u);
  EXPECT_EQ(lr.at(1), 0.0);
  EXPECT_DOUBLE_EQ(lr.at(2), 0.5e-2);
  EXPECT_DOUBLE_EQ(lr.at(3), 1e-2);
  EXPECT_NEAR(lr.at(12), 1e-2 * 0.5 * (1 + std::cos(M_PI * 9 / 18)), 1e-15);
  const auto tokens1 = read_losses(d + "/tp1", "tokens");
  for (const char* run : {"tp1", "tp2", "dp2", "tp2dp2"}) {
    const auto tokens = read_losses(d + "/" + run, "tokens"), seen = read_losses(d + "/" + run, "tokens_seen");
    ASSERT_EQ(tokens.size(), 20u) << run;
    double sum = 0;
    for (const auto& [step, n] : tokens) {
      EXPECT_GT(n, 0) << run << " step " << step;
      EXPECT_EQ(n, tokens1.at(step)) << run << " step " << step;
      EXPECT_EQ(seen.at(step), sum += n) << run << " step " << step;
    }
  }
  // Learning: validation loss falls well below its step-0 value, at every layout; and validation scores the same
  // samples at every layout and micro_batch, so the values agree as the training losses do.
  const auto val1 = read_losses(d + "/tp1", "val_loss");
  for (const char* run : {"tp1", "tp2", "dp2", "tp2dp2"}) {
    auto val = read_losses(d + "/" + run, "val_loss");
    std::vector<int64_t> steps;
    for (const auto& [step, v] : val) steps.push_back(step);
    ASSERT_EQ(steps, (std::vector<int64_t>{0, 8, 16, 20})) << run;
    EXPECT_LT(val.at(20), val.at(0) - 0.5) << run;
    expect_close(val, val1, 1e-4, run);
  }
}

TEST(TrainLayouts, DropoutMasksDoNotDependOnTpAndRunsRepeatBitwise) {
  const std::string s = setup(), d = base_dir();
  const std::vector<std::string> drop = {"lora.dropout=0.1"};
  const auto tp1 = train_ok(1, d + "/tp1", with(with(micro_args(s, d + "/tp1"), drop), {}));
  const auto tp2 = train_ok(2, d + "/tp2", with(with(micro_args(s, d + "/tp2"), drop), {"parallel.tp=2"}));
  expect_close(tp1, tp2, 1e-4, "tp 2 vs tp 1 with dropout");
  const auto again = train_ok(2, d + "/tp2b", with(with(micro_args(s, d + "/tp2b"), drop), {"parallel.tp=2"}));
  for (const auto& [step, l] : tp2) EXPECT_EQ(l, again.at(step)) << "step " << step << " not bitwise repeatable";
}

// Deletes every checkpoint but step-10 and the metrics after step 10, as if the run had died after step 10.
void crash_after_step_10(const std::string& run_dir) {
  for (const auto& e : fs::directory_iterator(run_dir + "/checkpoints"))
    if (e.path().filename() != "step-10") fs::remove_all(e.path());
}

TEST(TrainResume, SameLayoutIsBitwiseOtherLayoutsClose) {
  const std::string s = setup(), d = base_dir();
  // Same layout with dropout: RNG, optimizer, loader and LoRA state all carry over exactly.
  const auto drop = with(micro_args(s, d + "/a"), {"parallel.tp=2", "lora.dropout=0.1"});
  const auto full = train_ok(2, d + "/a", drop);
  crash_after_step_10(d + "/a");
  RunResult r = run_mpi(2, cgtrain_exe(), drop);
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  auto recs = read_records(d + "/a");
  ASSERT_EQ(recs.size(), 20u);  // 1..10, then 11..20 of the rerun (the first launch's 11..20 dropped at the resume)
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(recs[i].first, int64_t(i) + 1);
    EXPECT_EQ(recs[i].second, full.at(recs[i].first)) << "resumed step " << recs[i].first << " differs";
  }
  // Validated before step 1 and at steps 10 and 20 (train.val_every=10), once each: the resumed launch does not
  // validate its first step again (the step-10 record the first launch wrote is that step's).
  std::vector<int64_t> val_steps;
  for (const auto& [step, loss] : read_records(d + "/a", "val_loss")) val_steps.push_back(step);
  EXPECT_EQ(val_steps, (std::vector<int64_t>{0, 10, 20}));

  // Another dp (same global batch), the global batch as micro-steps (grad_accum) and another tp (re-sharded LoRA +
  // AdamW state), without dropout.
  const auto plain = with(micro_args(s, d + "/b"), {"parallel.tp=2"});
  const auto ref = train_ok(2, d + "/b", plain);
  crash_after_step_10(d + "/b");
  for (const auto& [name, np, more] :
       {std::tuple<std::string, int, std::vector<std::string>>{"dp2", 4, {"parallel.tp=2", "train.micro_batch=2"}},
        {"accum2", 2, {"parallel.tp=2", "train.micro_batch=2", "train.grad_accum=2"}},
        {"tp1", 1, {"parallel.tp=1"}}}) {
    const std::string run = d + "/b-" + name;
    fs::remove_all(run);
    fs::copy(d + "/b", run, fs::copy_options::recursive);
    RunResult rr = run_mpi(np, cgtrain_exe(), with(with(micro_args(s, run), {"parallel.tp=2"}), more));
    ASSERT_EQ(rr.rc, 0) << rr.output;
    auto losses = read_records(run);
    ASSERT_EQ(losses.size(), 20u) << name;
    for (size_t i = 10; i < 20; ++i)
      EXPECT_NEAR(losses[i].second, ref.at(losses[i].first), 1e-4) << name << " step " << losses[i].first;
  }
}

TEST(TrainResume, PreemptionSavesAndExits) {
  const std::string s = setup(), d = fresh_base_dir();
  // A long run signalled once it has made progress; every rank must stop at the same step boundary.
  std::vector<std::string> args = with(micro_args(s, d), {"parallel.tp=2", "train.steps=100000", "train.val_every=0",
                                                         "checkpoint.every=0"});
  const std::string log = d + "/../preempt.log";
  const int pid = spawn_mpi(2, cgtrain_exe(), args, log);
  const auto t0 = std::chrono::steady_clock::now();
  while (read_losses(d).size() < 3 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGUSR1);  // mpirun forwards SIGUSR1 to every rank
  const int rc = wait_exit_code(pid);
  std::ifstream lf(log);
  const std::string out((std::istreambuf_iterator<char>(lf)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, cg::kExitPreempted) << out;
  EXPECT_NE(out.find("preempted"), std::string::npos) << out;
  const auto losses = read_losses(d);
  ASSERT_FALSE(losses.empty());
  const int64_t last = losses.rbegin()->first;
  EXPECT_LT(last, 100000);
  EXPECT_TRUE(fs::exists(d + "/checkpoints/step-" + std::to_string(last) + "/manifest.json")) << out;
  EXPECT_TRUE(fs::exists(d + "/checkpoints/step-" + std::to_string(last) + "/rank-00001.safetensors"));
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Pids of the cgtrain processes descending from `root` (mpirun), found through /proc.
std::vector<int> cgtrain_ranks(int root) {
  std::map<int, int> parent;
  std::map<int, std::string> comm;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_text(e.path().string() + "/stat");  // pid (comm) state ppid ...
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    parent[std::stoi(name)] = ppid;
    comm[std::stoi(name)] = stat.substr(open + 1, close - open - 1);
  }
  std::vector<int> out;
  for (const auto& [pid, ppid] : parent) {
    if (comm[pid] != "cgtrain") continue;
    for (int p = ppid; p > 1 && parent.count(p); p = parent[p])
      if (p == root) {
        out.push_back(pid);
        break;
      }
  }
  return out;
}

// TrainPreempt's runs: the micro run at tp 2 in `run`, saving every `every` steps (0: only when stopped).
std::vector<std::string> preempt_args(const std::string& run, int every) {
  return with(micro_args(setup(), run), {"parallel.tp=2", "checkpoint.every=" + std::to_string(every)});
}

// The losses of TrainPreempt's uninterrupted run (saving nothing), trained once per process: its cases all train on
// the process's one setup() at preempt_args, and when or whether a run saves changes none of its losses, so one
// reference serves them all (RankKilledDuringSaveKeepsTheOlderCheckpoint, saving every 5 steps, checks that too).
const std::map<int64_t, double>& preempt_reference() {
  static std::map<int64_t, double> ref;
  if (ref.size() != 20) {
    const std::string run = scratch() + "/TrainPreempt.reference";
    ref = train_ok(2, run, preempt_args(run, 0));
  }
  return ref;
}

// A stop signal to every rank after a random number of steps, the save at that step with checkpoint.every=0, and the
// rerun on the same run_dir finishing with the losses of an uninterrupted run, bitwise. SIGTERM is the scheduler's
// preemption (mpirun itself turns SIGTERM into a kill of the job, so it goes to the ranks), exit 75; SIGINT is a
// Ctrl-C in a terminal, exit 130.
void stop_at_random_step_then_resume(int sig, int expected_rc, const std::string& said) {
  const std::string d = fresh_base_dir();
  const auto args = [&](const std::string& run) { return preempt_args(d + "/" + run, 0); };
  const auto& ref = preempt_reference();
  ASSERT_EQ(ref.size(), 20u);

  std::random_device rd;
  const size_t wait_steps = std::uniform_int_distribution<size_t>(3, 12)(rd);
  std::cout << "[ preempt  ] signal " << sig << " once " << wait_steps << " steps are logged" << std::endl;
  const std::string run = d + "/run", log = d + "/preempt.log";
  const int pid = spawn_mpi(2, cgtrain_exe(), args("run"), log);
  const auto t0 = std::chrono::steady_clock::now();
  while (read_losses(run).size() < wait_steps && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::vector<int> ranks = cgtrain_ranks(pid);
  EXPECT_EQ(ranks.size(), 2u);
  for (int r : ranks) kill(r, sig);
  const int rc = wait_exit_code(pid);
  const std::string out = read_text(log);
  ASSERT_EQ(rc, expected_rc) << out;
  EXPECT_NE(out.find(said), std::string::npos) << out;
  const auto before = read_losses(run);
  ASSERT_FALSE(before.empty());
  const int64_t last = before.rbegin()->first;
  std::cout << "[ preempt  ] stopped after step " << last << std::endl;
  ASSERT_GE(last, int64_t(wait_steps));
  ASSERT_LT(last, 20) << "the run finished before the signal; " << out;
  EXPECT_EQ(cg::verify_checkpoint(run + "/checkpoints/step-" + std::to_string(last)), "") << out;

  RunResult r = run_mpi(2, cgtrain_exe(), args("run"));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from " + run + "/checkpoints/step-" + std::to_string(last)), std::string::npos)
      << r.output;
  const auto losses = read_losses(run);  // the last record per step
  ASSERT_EQ(losses.size(), 20u);
  for (const auto& [step, l] : losses)
    EXPECT_EQ(l, ref.at(step)) << "step " << step << " (stopped after " << last << ")";
  EXPECT_EQ(read_records(run).size(), 20u);  // one record per step: the stopped launch's end is not repeated
  EXPECT_EQ(read_records(run).back().first, 20);
}

TEST(TrainPreempt, SigtermAtRandomStepThenResumeIsBitwise) {
  stop_at_random_step_then_resume(SIGTERM, cg::kExitPreempted, "preempted");
}

TEST(TrainPreempt, CtrlCAtRandomStepSavesExits130ThenResumeIsBitwise) {
  stop_at_random_step_then_resume(SIGINT, cg::kExitInterrupted, "interrupted after step");
}

// A SIGTERM that arrives while cgtrain is still loading (libtorch's initialisers, before main) waits, blocked since
// the first instruction (.preinit_array), and is answered like one during training: save after the first step, exit
// 75. Emulated deterministically: the signal is made pending and blocked before exec, as it is once
// hold_stop_signals has run; once main's handlers are up it must be let in, both when cgtrain sets OMP_WAIT_POLICY
// itself and when the user set the policy.
TEST(TrainPreempt, SignalWhileLoadingIsAnsweredAfterTheFirstStep) {
  const std::string s = setup();
  for (const bool policy_set : {true, false}) {
    const std::string d = base_dir() + (policy_set ? "-policy-set" : "-policy-unset");
    fs::remove_all(d);
    fs::create_directories(d);
    // 30 steps: a signal that is never let in would let the run finish (exit 0) instead of stopping it.
    std::vector<std::string> args = with(micro_args(s, d), {"train.steps=30", "train.val_every=0",
                                                           "checkpoint.every=0"});
    std::vector<char*> argv;
    const std::string exe = cgtrain_exe();
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = d + "/../" + fs::path(d).filename().string() + ".log";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      sigset_t term;
      sigemptyset(&term);
      sigaddset(&term, SIGTERM);
      sigprocmask(SIG_BLOCK, &term, nullptr);
      raise(SIGTERM);  // pending: blocked
      ::setenv("OMP_NUM_THREADS", "1", 1);
      if (policy_set) ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1); else ::unsetenv("OMP_WAIT_POLICY");
      if (!std::freopen(log.c_str(), "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(126);
      execv(exe.c_str(), argv.data());
      _exit(127);
    }
    const int rc = wait_exit_code(int(pid));
    const std::string out = read_text(log);
    EXPECT_EQ(rc, cg::kExitPreempted) << (policy_set ? "OMP_WAIT_POLICY set: " : "OMP_WAIT_POLICY unset: ") << out;
    EXPECT_TRUE(fs::exists(d + "/checkpoints/step-1/manifest.json")) << out;
    EXPECT_EQ(read_losses(d).size(), 1u) << out;
  }
}

// Rank 1 SIGKILLs itself in the middle of the step-10 save (rank file written, no manifest, no rename): the job
// fails, step-5 stays complete, no step-10/ appears, and the rerun resumes from step 5 and matches an unbroken run
// (preempt_reference, which saved nothing: the saves change no loss either).
TEST(TrainPreempt, RankKilledDuringSaveKeepsTheOlderCheckpoint) {
  const std::string d = fresh_base_dir();
  const auto args = [&](const std::string& run) { return preempt_args(d + "/" + run, 5); };
  const auto& ref = preempt_reference();
  ASSERT_EQ(ref.size(), 20u);

  const std::string run = d + "/run";
  ::setenv("CG_TEST_KILL_IN_SAVE", "10", 1);  // mpirun passes its environment on to the (local) ranks
  RunResult r = run_mpi(2, cgtrain_exe(), args("run"));
  ::unsetenv("CG_TEST_KILL_IN_SAVE");
  ASSERT_NE(r.rc, 0) << r.output;
  const std::string ck = run + "/checkpoints";
  cg::Manifest m;
  EXPECT_EQ(cg::verify_checkpoint(ck + "/step-5", &m), "") << r.output;
  EXPECT_EQ(m.step, 5);
  EXPECT_FALSE(fs::exists(ck + "/step-10")) << r.output;
  EXPECT_TRUE(fs::exists(ck + "/step-10.tmp/rank-00001.safetensors")) << r.output;  // killed after its rank file
  EXPECT_FALSE(fs::exists(ck + "/step-10.tmp/manifest.json"));
  auto latest = cg::find_latest_complete(run);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->step, 5);

  r = run_mpi(2, cgtrain_exe(), args("run"));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from " + ck + "/step-5 "), std::string::npos) << r.output;
  const auto recs = read_records(run);
  ASSERT_FALSE(recs.empty());
  const auto losses = read_losses(run);  // the last record per step: 6..20 come from the rerun
  ASSERT_EQ(losses.size(), 20u);
  for (int64_t step = 6; step <= 20; ++step) EXPECT_EQ(losses.at(step), ref.at(step)) << "step " << step;
  // The killed run's records after step 5 were dropped at the resume: steps 1..20 once each.
  ASSERT_EQ(recs.size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(recs[i].first, int64_t(i + 1));
}

// train.lr=10 with lora.alpha=64 blows the LoRA weights up without a NaN (step 13 on this micro model): every output
// saturates and the gradient norm becomes exactly 0.
// The run stops after kZeroGradientSteps such steps, naming the first, and saves nothing after it.
TEST(TrainBadInput, ZeroGradientStops) {
  const std::string s = setup(), d = fresh_base_dir();
  const std::string run = d + "/zero_grad";
  fs::remove_all(run);
  RunResult r = run_mpi(1, cgtrain_exe(), with(micro_args(s, run), {"train.lr=10", "lora.alpha=64", "train.warmup_steps=0",
                                                                     "train.steps=80", "checkpoint.every=4",
                                                                     "train.val_every=0"}));
  EXPECT_EQ(r.rc, 1) << r.output;
  const std::string msg = "the gradient norm has been exactly 0 for " + std::to_string(cg::kZeroGradientSteps) +
                          " steps in a row (steps ";
  const size_t at = r.output.find(msg);
  ASSERT_NE(at, std::string::npos) << r.output;
  int64_t first = 0, last = 0;
  ASSERT_EQ(std::sscanf(r.output.c_str() + at + msg.size(), "%ld-%ld", &first, &last), 2) << r.output;
  EXPECT_EQ(last - first + 1, cg::kZeroGradientSteps);
  const auto norms = read_losses(run, "grad_norm");
  ASSERT_EQ(norms.rbegin()->first, last);  // stopped at once
  for (const auto& [step, g] : norms) {
    if (step >= first) EXPECT_EQ(g, 0.0) << "step " << step;
  }
  ASSERT_TRUE(norms.count(first - 1)) << "the gradient vanished at step 1: no trained step to tell it from";
  EXPECT_GT(norms.at(first - 1), 0.0);
  EXPECT_NE(r.output.find("resume from a checkpoint before step " + std::to_string(first)), std::string::npos);
  // Nothing saved once the gradient vanished (such saves would rotate the good ones out), so the newest checkpoint
  // is one from before it, as the message says.
  for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
    EXPECT_LT(std::stoll(e.path().filename().string().substr(5)), first) << e.path();
  EXPECT_EQ(cg::find_latest_complete(run)->step, (first - 1) / 4 * 4);
  EXPECT_NE(r.output.find("checkpoint not saved: the gradient norm has been exactly 0"), std::string::npos);
}

// Resuming with more steps recomputes the cosine over them: said, with the step and both lrs. Resuming with train.steps
// not above the checkpoint's step trains nothing: said, and the run ends as it was.
TEST(TrainResume, ScheduleChangeAndStepsBelowTheCheckpointAreSaid) {
  const std::string s = setup(), d = base_dir();
  const std::string run = d + "/schedule";
  fs::remove_all(run);
  const auto args = with(micro_args(s, run), {"train.steps=4", "checkpoint.every=2", "train.val_every=0"});
  ASSERT_EQ(run_mpi(1, cgtrain_exe(), args).rc, 0);
  RunResult r = run_mpi(1, cgtrain_exe(), with(args, {"train.steps=8"}));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("the learning-rate schedule is recomputed from the new settings: step 5 goes on at lr "),
            std::string::npos) << r.output;
  EXPECT_EQ(read_losses(run).size(), 8u);
  r = run_mpi(1, cgtrain_exe(), with(args, {"train.steps=6"}));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("train.steps=6 is not above the checkpoint's step 8: there is nothing left to train"),
            std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("learning-rate schedule is recomputed"), std::string::npos) << r.output;
  EXPECT_EQ(read_losses(run).size(), 8u);
  // The same launch again (its settings unchanged, so no warning above): the run is complete, and that is said.
  r = run_mpi(1, cgtrain_exe(), with(args, {"train.steps=8"}));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("the run is complete (step 8 of train.steps=8): nothing to train; raise train.steps"),
            std::string::npos) << r.output;
  EXPECT_EQ(read_losses(run).size(), 8u);
  // What the loader refuses (another train.seed, another global batch) is refused before the model is built: on a
  // 70B base the load it would come after takes minutes.
  r = run_mpi(1, cgtrain_exe(), with(args, {"train.steps=10", "train.seed=7"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("loader state has seed 5, this run 7: resume with the same train.seed (the run folder's "
                          "config.yaml holds it), or start a new train.run_dir"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("elements on rank 0"), std::string::npos)
      << "refused after the model was built: " << r.output;
  r = run_mpi(1, cgtrain_exe(), with(args, {"train.steps=10", "train.grad_accum=2"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("keep the product unchanged to resume"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("elements on rank 0"), std::string::npos)
      << "refused after the model was built: " << r.output;
  EXPECT_EQ(read_losses(run).size(), 8u);
}

TEST(TrainBadInput, ClearErrorsBeforeStepZero) {
  const std::string s = setup(), d = fresh_base_dir();
  // A tokenizer that is not the shards' one.
  const std::string other = d + "/other.model";
  std::ofstream(other) << "another tokenizer";
  RunResult r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/tok"), {"data.tokenizer=" + other}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("another tokenizer"), std::string::npos) << r.output;
  EXPECT_TRUE(read_losses(d + "/tok").empty());
  // Sequences longer than the base model's positions.
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/long"), {"train.seq_len=300"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("train.seq_len 300 is longer than the model's max_position_embeddings 256"),
            std::string::npos) << r.output;
  // tp × dp != world.
  r = run_mpi(2, cgtrain_exe(), with(micro_args(s, d + "/grid"), {"parallel.tp=2", "parallel.dp=2"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("world 2"), std::string::npos) << r.output;
  // A LoRA scale of 2.5e29: step 1's clipped update already overflows the outputs; the non-finite steps after it
  // are skipped, then the run aborts.
  fs::remove_all(d + "/nan");
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/nan"), {"lora.alpha=1e30", "train.warmup_steps=0",
                                                                 "train.max_bad_steps=3"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("4 non-finite steps in a row (more than train.max_bad_steps=3)"), std::string::npos)
      << r.output;
  {  // three skipped steps logged, the fourth ends the run
    std::ifstream mf(d + "/nan/metrics.jsonl");
    int skipped = 0;
    for (std::string line; std::getline(mf, line);) skipped += line.find("\"skipped\":true") != std::string::npos;
    EXPECT_EQ(skipped, 3);
  }
  // A file where the checkpoints folder goes: refused before step 0, not at the first save.
  fs::remove_all(d + "/ckfile");
  fs::create_directories(d + "/ckfile");
  std::ofstream(d + "/ckfile/checkpoints") << "not a folder";
  r = run_mpi(1, cgtrain_exe(), micro_args(s, d + "/ckfile"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("train.run_dir's checkpoints folder = " + d + "/ckfile/checkpoints is a file, not a folder"),
            std::string::npos) << r.output;
  EXPECT_TRUE(read_losses(d + "/ckfile").empty());
  // A LoRA scale of 2.5e29: step 1 passes (clipped), then the adapted weights give NaN; step 2 is skipped, and the
  // final validation says the saved model diverged.
  fs::remove_all(d + "/diverged");
  const std::vector<std::string> diverge{"lora.alpha=1e30", "train.warmup_steps=0", "train.max_bad_steps=5"};
  r = run_mpi(1, cgtrain_exe(), with(with(micro_args(s, d + "/diverged"), diverge), {"train.steps=2"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("nan: the model diverged (step 2 is saved"), std::string::npos) << r.output;
  // Resumed from that checkpoint for two more steps, fewer than max_bad_steps, each non-finite (the weights never
  // change): the run does not end as a success.
  r = run_mpi(1, cgtrain_exe(), with(with(micro_args(s, d + "/diverged"), diverge), {"train.steps=4"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("every one of the 2 steps this run took (steps 3-4) had a non-finite loss or gradient and "
                          "was skipped"), std::string::npos) << r.output;
  // Validation on shards without a val split: the error says how to go without.
  const std::string noval = d + "/noval";
  fs::remove_all(noval);
  fs::create_directories(noval);
  for (const char* f : {"tokenizer.model", "train-00000.h5"}) fs::copy_file(s + "/shards/" + f, noval + "/" + f);
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/noval_run"), {"data.shards_dir=" + noval}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("or set train.val_every=0"), std::string::npos) << r.output;
  // The base's own tokenizer differs from the shards' (same size, other pieces): refused before step 0, the first
  // differing piece named. Two sentencepiece models of the micro vocabulary's 97 pieces, differing from id 3 on.
  {
    const auto sp_model = [](char letter) {
      cg::SpModelSpec spec;
      spec.byte_fallback = false;
      using T = cg::SpPieceType;
      spec.pieces = {{"<unk>", 0, T::kUnknown}, {"<s>", 0, T::kControl}, {"</s>", 0, T::kControl}};
      for (int i = 3; i < 97; ++i)
        spec.pieces.push_back({std::string(1, letter) + std::to_string(i), -float(i), T::kNormal});
      return cg::serialize_sp_model(spec);
    };
    const std::string shards = d + "/tok_shards", hf = d + "/tok_hf";
    fs::remove_all(shards), fs::remove_all(hf), fs::remove_all(d + "/tok_base");
    fs::create_directories(shards);
    fs::copy(s + "/hf", hf);
    std::ofstream(shards + "/tokenizer.model") << sp_model('a');
    std::ofstream(hf + "/tokenizer.model") << sp_model('b');
    for (const char* split : {"train", "val"}) {
      cg::ShardMeta m;
      const cg::SampleSet set = cg::read_shard(cg::shard_path(s + "/shards", split, 0), &m);
      m.tokenizer_sha256 = cg::sha256_file(shards + "/tokenizer.model");
      cg::write_shard(cg::shard_path(shards, split, 0), set, m);
    }
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/tok_base"), {"data.shards_dir=" + shards,
                                                                       "model.hf_dir=" + hf}));
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.output.find("differ in 94 piece(s); e.g. id 3 is 'b3' there, 'a3' here"), std::string::npos)
        << r.output;
    EXPECT_TRUE(read_losses(d + "/tok_base").empty());
    std::ofstream(hf + "/tokenizer.model") << sp_model('a');  // the same pieces: trains
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/tok_base"), {"data.shards_dir=" + shards,
                                                                       "model.hf_dir=" + hf, "train.steps=2"}));
    EXPECT_EQ(r.rc, 0) << r.output;
    // A base with Hugging Face's tokenizer.json only is compared by its model.vocab; an added <pad> past it is no
    // piece of the data's.
    fs::remove(hf + "/tokenizer.model");
    const auto tokenizer_json = [](char letter) {
      nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
      for (int i = 3; i < 97; ++i) vocab[std::string(1, letter) + std::to_string(i)] = i;
      return nlohmann::json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
                            {"added_tokens", {{{"id", 97}, {"content", "<pad>"}}}}}.dump();
    };
    std::ofstream(hf + "/tokenizer.json") << tokenizer_json('b');
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/tok_json"), {"data.shards_dir=" + shards,
                                                                       "model.hf_dir=" + hf, "train.steps=2"}));
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.output.find("the base model's tokenizer " + hf + "/tokenizer.json (97 pieces) and the shards'"),
              std::string::npos) << r.output;
    EXPECT_NE(r.output.find("cgtok hf-json " + hf + "/tokenizer.json OUT.model"), std::string::npos) << r.output;
    std::ofstream(hf + "/tokenizer.json") << tokenizer_json('a');
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/tok_json2"), {"data.shards_dir=" + shards,
                                                                        "model.hf_dir=" + hf, "train.steps=2"}));
    EXPECT_EQ(r.rc, 0) << r.output;
  }
  // Shards made with other data settings than the config's: said, key by key; data.loss_on is cgtrain's own.
  {
    const std::string shards = d + "/settings_shards";
    for (const char* old : {"/settings_shards", "/settings_run", "/settings_run2", "/settings_run3"})
      fs::remove_all(d + old);
    fs::create_directories(shards);
    fs::copy_file(s + "/shards/tokenizer.model", shards + "/tokenizer.model");
    cg::DataConfig made = cg::Config{}.data;
    made.copies = 3;
    made.loss_on = "completion";
    // The samples came from mine.csv (the shards record its path and digest).
    const std::string mine = d + "/mine.csv";
    std::ofstream(mine) << "material_id,cif\n";
    for (const char* split : {"train", "val"}) {
      cg::ShardMeta m;
      const cg::SampleSet set = cg::read_shard(cg::shard_path(s + "/shards", split, 0), &m);
      m.settings_json = cg::settings_json(made, cg::text_options(made));
      m.source_path = mine;
      m.source_sha256 = cg::sha256_file(mine);
      cg::write_shard(cg::shard_path(shards, split, 0), set, m);
    }
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/settings_run"), {"data.shards_dir=" + shards,
                                                                           "train.steps=1", "train.val_every=0"}));
    EXPECT_EQ(r.rc, 0) << r.output;
    EXPECT_NE(r.output.find("were made with other data settings than this config's (data.copies: 3 in the shards, 1 "
                            "in the config)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("data.loss_on is all here, but the shards' cgprep config said otherwise"),
              std::string::npos) << r.output;
    // The config names other data than the shards came from: config.yaml (and cgeval's novelty reference) would
    // misdescribe the run. Said, with the key to set; naming mine.csv, nothing is said.
    EXPECT_NE(r.output.find("the train shards in " + shards + " were made from " + mine + ", "), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("(and cgeval and cgsweep take it as the novelty reference); set data.train_csv=" + mine),
              std::string::npos) << r.output;
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/settings_run2"),
                                       {"data.shards_dir=" + shards, "data.train_csv=" + mine, "data.val_csv=" + mine,
                                        "train.steps=1", "train.val_every=1"}));
    EXPECT_EQ(r.rc, 0) << r.output;
    EXPECT_EQ(r.output.find("were made from"), std::string::npos) << r.output;
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/settings_run3"),
                                       {"data.shards_dir=" + shards, "data.train_csv=" + mine, "data.val_csv=",
                                        "train.steps=1", "train.val_every=1"}));
    EXPECT_EQ(r.rc, 0) << r.output;
    EXPECT_NE(r.output.find("the val shards in " + shards + " were made from " + mine + ", and data.val_csv is empty "
                            "here: training reads the shards, but the run's config.yaml records data.val_csv; set "
                            "data.val_csv=" + mine), std::string::npos) << r.output;
  }
  // Shards made with a data.columns mapping the config leaves out (given to cgprep alone): said, and config.yaml
  // records the shards' mapping, which cgsample and cgeval read data.*_csv with. The same mapping: nothing said.
  {
    const std::string shards = d + "/columns_shards";
    for (const char* old : {"/columns_shards", "/columns_run", "/columns_run2"}) fs::remove_all(d + old);
    fs::create_directories(shards);
    fs::copy_file(s + "/shards/tokenizer.model", shards + "/tokenizer.model");
    for (const char* split : {"train", "val"}) {
      cg::ShardMeta m;
      const cg::SampleSet set = cg::read_shard(cg::shard_path(s + "/shards", split, 0), &m);
      cg::DataConfig made = cg::Config{}.data;
      made.columns = {"material_id=id", "formation_energy_per_atom=heat_ref"};
      m.settings_json = cg::settings_json(made, cg::text_options(made));
      cg::write_shard(cg::shard_path(shards, split, 0), set, m);
    }
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/columns_run"), {"data.shards_dir=" + shards,
                                                                          "train.steps=1", "train.val_every=0"}));
    EXPECT_EQ(r.rc, 0) << r.output;
    EXPECT_NE(r.output.find("the shards in " + shards + " were made with data.columns=[material_id=id, "
                            "formation_energy_per_atom=heat_ref], but this config says data.columns=[]: training "
                            "reads the samples the shards hold, and config.yaml records data.columns=[material_id=id, "
                            "formation_energy_per_atom=heat_ref]"), std::string::npos) << r.output;
    EXPECT_EQ(cg::load_saved_config(d + "/columns_run/config.yaml").data.columns,
              (std::vector<std::string>{"material_id=id", "formation_energy_per_atom=heat_ref"}));
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/columns_run2"),
                                       {"data.shards_dir=" + shards, "train.steps=1", "train.val_every=0",
                                        "data.columns=[formation_energy_per_atom=heat_ref, material_id=id, cif=cif]"}));
    EXPECT_EQ(r.rc, 0) << r.output;
    EXPECT_EQ(r.output.find("data.columns"), std::string::npos) << r.output;
    EXPECT_EQ(cg::load_saved_config(d + "/columns_run2/config.yaml").data.columns,
              (std::vector<std::string>{"formation_energy_per_atom=heat_ref", "material_id=id", "cif=cif"}));
  }
  // A base with more embedding rows than the tokenizer has pieces (an added <pad> row, or padding to a multiple):
  // trains, the extra rows said; fewer rows are refused.
  for (const int64_t rows : {100, 96}) {
    cg::model::LlamaConfig lc = cg::test::micro_llama();
    lc.vocab_size = rows;
    cg::model::Llama base(lc);
    cg::model::init_weights(*base, 7);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& p : base->param_specs()) tensors.emplace_back(p.name, p.param.detach());
    const std::string hf = d + "/hf_rows_" + std::to_string(rows);
    fs::remove_all(hf);
    cg::model::write_hf_checkpoint(hf, tensors, lc);
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/rows_" + std::to_string(rows)),
                                       {"model.hf_dir=" + hf, "train.steps=2", "train.val_every=0"}));
    if (rows > 97) {
      EXPECT_EQ(r.rc, 0) << r.output;
      EXPECT_NE(r.output.find("vocab_size 100 has 3 row(s) past"), std::string::npos) << r.output;
    } else {
      EXPECT_NE(r.rc, 0);
      EXPECT_NE(r.output.find("the model has vocab_size 96 but tokenizer"), std::string::npos) << r.output;
    }
  }
  // A micro-batch larger than the whole train split: trains, with a warning that says what to lower.
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, d + "/huge_batch"), {"train.micro_batch=600", "train.steps=1",
                                                                        "train.val_every=0"}));
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("fewer than one global batch (train.micro_batch 600 x dp 1 x train.grad_accum 1 = 600)"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lower train.micro_batch x train.grad_accum to 512 or less"), std::string::npos) << r.output;
  // checkpoint.resume=false in a run folder that holds checkpoints: refused, nothing of the old run touched.
  const std::string used = d + "/used";
  fs::remove_all(used);
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, used), {"train.steps=4", "checkpoint.every=2"}));
  ASSERT_EQ(r.rc, 0) << r.output;
  const std::string metrics_before = read_text(used + "/metrics.jsonl");
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, used), {"train.steps=2", "checkpoint.resume=false"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("already holds checkpoints (newest step-4)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checkpoint.resume=true"), std::string::npos) << r.output;
  EXPECT_EQ(read_text(used + "/metrics.jsonl"), metrics_before);
  EXPECT_EQ(cg::verify_checkpoint(used + "/checkpoints/step-4"), "");
  EXPECT_EQ(cg::verify_checkpoint(used + "/checkpoints/step-2"), "");
  // Another cgtrain holds the run folder (here: this test holds its lock): refused, nothing touched.
  {
    cg::FileLock other(used + "/.cgtrain.lock");
    ASSERT_TRUE(other.locked());
    setenv("CG_LOCK_WAIT_S", "1", 1);  // not the 2 minutes a requeued job gives a dead node's NFS lock
    r = run_mpi(1, cgtrain_exe(), with(micro_args(s, used), {"train.steps=6", "checkpoint.every=2"}));
    unsetenv("CG_LOCK_WAIT_S");
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.output.find("waiting up to 1 s (CG_LOCK_WAIT_S) for it to end: it is running on this machine"),
              std::string::npos) << r.output;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    EXPECT_NE(r.output.find("is in use by another cgtrain right now (process " + std::to_string(::getpid()) +
                            " on host " + host + " holds " + used + "/.cgtrain.lock)"), std::string::npos)
        << r.output;
    EXPECT_EQ(read_text(used + "/metrics.jsonl"), metrics_before);
    EXPECT_FALSE(fs::exists(used + "/checkpoints/step-6"));
  }
  // Resuming onto another base (here a random one where the checkpoint had model.hf_dir): refused, nothing touched.
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, used), {"train.steps=6", "checkpoint.every=2", "model.hf_dir=",
                                                           "model.flavor=tiny"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("was trained on model.hf_dir=" + s + "/hf, this launch has a random base "
                          "(model.init_seed="), std::string::npos) << r.output;
  EXPECT_EQ(read_text(used + "/metrics.jsonl"), metrics_before);
  // Every checkpoint damaged: refused rather than started over beside them (which would replace them); the damaged
  // folders and the metrics stay as they were.
  for (const char* step : {"step-2", "step-4"})
    fs::resize_file(used + "/checkpoints/" + step + "/rank-00000.safetensors", 100);
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, used), {"train.steps=4", "checkpoint.every=2"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("holds 2 checkpoint folders (newest step-4) and none can be resumed"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_text(used + "/metrics.jsonl"), metrics_before);
  for (const char* step : {"step-2", "step-4"})
    EXPECT_EQ(fs::file_size(used + "/checkpoints/" + step + "/rank-00000.safetensors"), 100u) << step;
}

// A launch refused before training starts leaves no folder where there was none (train.run_dir and every folder made
// on the way to it, `..` steps included; 1 rank and 2), and in a run folder that was there, the user's file stays as
// it was and the checkpoints/ the launch made goes. (A launch that fails once training has started keeps its folder:
// the "nan" run above.)
TEST(TrainBadInput, RefusedLaunchLeavesNoFolderItMade) {
  const std::string s = setup(), d = fresh_base_dir();
  // model.dtype=fp16 is refused where the model is built: after the run folder, its lock and the data checks.
  const std::vector<std::string> refused{"model.dtype=fp16"};
  for (const int np : {1, 2}) {
    // Spelled with a step back: parent/b is made on the way though it is no parent of parent/run.
    const std::string parent = d + "/new" + std::to_string(np), run_dir = parent + "/b/../run";
    RunResult r = run_mpi(np, cgtrain_exe(), with(micro_args(s, run_dir), refused));
    EXPECT_NE(r.rc, 0) << r.output;
    EXPECT_NE(r.output.find("model.dtype=fp16 cannot train"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(parent)) << np << " rank(s): " << r.output;
  }
  const std::string kept = d + "/kept";
  fs::create_directories(kept);
  std::ofstream(kept + "/notes.txt") << "the user's";
  RunResult r = run_mpi(1, cgtrain_exe(), with(micro_args(s, kept), refused));
  EXPECT_NE(r.rc, 0) << r.output;
  EXPECT_EQ(read_text(kept + "/notes.txt"), "the user's");
  EXPECT_FALSE(fs::exists(kept + "/checkpoints")) << r.output;
  EXPECT_FALSE(fs::exists(kept + "/config.yaml")) << r.output;
  EXPECT_FALSE(fs::exists(kept + "/.cgtrain.lock")) << "the lock file this launch created: " << r.output;
  // The same folder trains: nothing of the refused launch is in the way.
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, kept), {"train.steps=2", "train.val_every=0"}));
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(read_text(kept + "/notes.txt"), "the user's");
  EXPECT_EQ(cg::verify_checkpoint(kept + "/checkpoints/step-2"), "");
  // A run that trained keeps its lock file; a refused launch later leaves it, as it was there before.
  EXPECT_TRUE(fs::exists(kept + "/.cgtrain.lock"));
  r = run_mpi(1, cgtrain_exe(), with(micro_args(s, kept), refused));
  EXPECT_NE(r.rc, 0) << r.output;
  EXPECT_TRUE(fs::exists(kept + "/.cgtrain.lock")) << r.output;
}

// The write end of the FIFO `path`, opened once a reader has opened it (a launch reading it as its tokenizer, after
// taking the run folder's lock): -1 if `pid` exits first or none comes within 300 s. The reader then blocks until
// this end is written to or closed, so the launch holds its lock for exactly as long as the test wants.
int fifo_writer_once_read(const std::string& path, int pid) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(300)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // ENXIO: no reader yet
    if (fd >= 0) return fd;
    if (::waitpid(pid_t(pid), nullptr, WNOHANG) != 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

// Every file and folder under `dir`, relative to it, sorted.
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// Waits (up to 300 s) for `text` in the log file `path` of a spawned launch; false if it never comes.
bool wait_for_log(const std::string& path, const std::string& text) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(300)) {
    if (read_text(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Two launches on one new train.run_dir at the same instant, as two processes. A takes the lock and then blocks
// reading its tokenizer from a FIFO (data.tokenizer), so it holds the lock until the test lets it go: no sleep decides
// who wins. (1) B, refused at once because A holds the lock, leaves A's folder whole: A's lock file and
// checkpoints/. (2) B waits on A's lock (CG_LOCK_WAIT_S), A gives up (an empty tokenizer: another one than the
// shards') and removes the folders it made; B takes the lock, making them again, then fails on a check made only
// under the lock (its tokenizer is missing): it removes what it made, so nothing of either launch stays.
TEST(TrainBadInput, TwoLaunchesRacingOnANewRunFolder) {
  const std::string s = setup(), d = fresh_base_dir();
  const std::string fifo = d + "/tokenizer.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const auto launch_a = [&](const std::string& run_dir, const std::string& log) {
    return spawn_mpi(1, cgtrain_exe(), with(micro_args(s, run_dir), {"data.tokenizer=" + fifo}), log);
  };
  // (1) B refused while A holds the lock.
  {
    const std::string parent = d + "/one", run_dir = parent + "/run";
    const int a = launch_a(run_dir, d + "/one_a.log");
    const int fd = fifo_writer_once_read(fifo, a);
    ASSERT_GE(fd, 0) << "A never read its tokenizer: " << read_text(d + "/one_a.log");
    const std::vector<std::string> a_made = entries(parent);
    setenv("CG_LOCK_WAIT_S", "0", 1);
    const RunResult b = run_mpi(1, cgtrain_exe(), micro_args(s, run_dir));
    unsetenv("CG_LOCK_WAIT_S");
    EXPECT_NE(b.rc, 0) << b.output;
    EXPECT_NE(b.output.find("is in use by another cgtrain right now (process "), std::string::npos) << b.output;
    EXPECT_NE(b.output.find(" holds " + run_dir + "/.cgtrain.lock)"), std::string::npos) << b.output;
    EXPECT_EQ(a_made, (std::vector<std::string>{"run", "run/.cgtrain.lock", "run/checkpoints"}));
    EXPECT_EQ(entries(parent), a_made) << "A's folder, after B's refusal: " << b.output;
    ::close(fd);  // A reads an empty tokenizer, gives up, and removes its own folder
    EXPECT_NE(wait_exit_code(a), 0);
    const std::string a_log = read_text(d + "/one_a.log");
    EXPECT_NE(a_log.find("were made with another tokenizer"), std::string::npos) << a_log;
    EXPECT_FALSE(fs::exists(parent)) << a_log;
  }
  // (2) B waits on A's lock; both give up, A first.
  {
    const std::string parent = d + "/two", run_dir = parent + "/run";
    const int a = launch_a(run_dir, d + "/two_a.log");
    const int fd = fifo_writer_once_read(fifo, a);
    ASSERT_GE(fd, 0) << "A never read its tokenizer: " << read_text(d + "/two_a.log");
    setenv("CG_LOCK_WAIT_S", "600", 1);
    const int b = spawn_mpi(1, cgtrain_exe(), with(micro_args(s, run_dir), {"data.tokenizer=" + d + "/missing"}),
                            d + "/two_b.log");
    unsetenv("CG_LOCK_WAIT_S");
    const bool b_waits = wait_for_log(d + "/two_b.log", run_dir + "/.cgtrain.lock is held by another process");
    ::close(fd);
    ASSERT_TRUE(b_waits) << read_text(d + "/two_b.log");
    EXPECT_NE(wait_exit_code(a), 0);
    EXPECT_NE(wait_exit_code(b), 0);
    const std::string b_log = read_text(d + "/two_b.log");
    EXPECT_NE(b_log.find("tokenizer " + d + "/missing does not exist"), std::string::npos) << b_log;
    EXPECT_FALSE(fs::exists(parent)) << read_text(d + "/two_a.log") << b_log;
  }
}

// Only rank 1 fails (here: started in a working directory without the shards that data.shards_dir names
// relatively, as a node without the file would): its error reaches rank 0, which reports it and removes the run
// folder it made before the job ends; killed by rank 1's MPI_Abort, it left the folder behind.
TEST(TrainBadInput, RankOneFailingAloneLeavesNoFolder) {
  const std::string s = setup(), d = fresh_base_dir();
  fs::create_directories(d + "/w0");
  fs::create_directories(d + "/w1");
  fs::create_directory_symlink(s + "/shards", d + "/w0/shards");  // rank 0 finds the shards, rank 1 does not
  const std::string parent = d + "/new", run_dir = parent + "/run";
  std::vector<std::string> args = with(micro_args(s, run_dir), {"data.shards_dir=shards"});
  std::string quoted;
  for (const auto& a : args) quoted += " '" + a + "'";
  // mpirun's MPMD form: one rank per working directory, the same program and arguments.
  const std::string exe = "-wdir " + d + "/w0 " + cgtrain_exe() + quoted + " : -np 1 -wdir " + d + "/w1 " +
                          cgtrain_exe();
  const RunResult r = run_mpi(1, exe, args);
  EXPECT_NE(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 1] fatal: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tokenizer shards/tokenizer.model does not exist in " + d + "/w1 (relative paths are read "
                          "from the folder cgtrain runs in): run cgprep with this config first"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("[rank 0] fatal: rank 1 failed, ending the job: "), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(parent)) << r.output;
}

}  // namespace

namespace {

// cgexport of a tp-2 run: the PEFT adapter holds full factors (gathered over tp) and, loaded as lora.init_adapter
// into a tp-1 model, gives the same logits as the merged HF checkpoint (W + scale·B·A).
TEST(TrainExport, AdapterAndMergedCheckpointAgree) {
  const std::string s = setup(), d = base_dir();
  const auto args = with(micro_args(s, d + "/run"), {"parallel.tp=2", "train.steps=10", "train.val_every=0"});
  fs::remove_all(d);
  RunResult r = run_mpi(2, cgtrain_exe(), args);
  ASSERT_EQ(r.rc, 0) << r.output;
  // Each checkpoint holds the config it was trained under, listed in its manifest.
  cg::Manifest man;
  ASSERT_EQ(cg::verify_checkpoint(d + "/run/checkpoints/step-10", &man), "");
  for (const char* own : {"config.yaml", "model_config.json", "tokenizer.model"}) {
    EXPECT_TRUE(std::any_of(man.files.begin(), man.files.end(), [&](const auto& f) { return f.path == own; })) << own;
    EXPECT_EQ(read_text(d + "/run/checkpoints/step-10/" + own), read_text(d + "/run/" + own)) << own;
  }
  // model_config.json names the dtype the run's base weights had: fp32 on the CPU (model.dtype=auto), where it
  // said bfloat16 whatever the run.
  EXPECT_EQ(nlohmann::json::parse(read_text(d + "/run/checkpoints/step-10/model_config.json"))["torch_dtype"],
            "float32");
  // A relaunch that fails before resuming (another base: 1 layer instead of micro's) leaves the run folder's copies
  // as they were.
  const std::string model_json = read_text(d + "/run/model_config.json");
  r = run_mpi(2, cgtrain_exe(), with(args, {"model.hf_dir=", "model.flavor=tiny"}));
  EXPECT_NE(r.rc, 0) << r.output;
  // Refused at the resume, before the model is built, saying why (it was a race between rank 0's refusal after the
  // build and rank 1's failing load of a tensor the other base lacks).
  EXPECT_NE(r.output.find("the trained adapter would sit on another base"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("elements on rank 0"), std::string::npos)
      << "refused after the model was built: " << r.output;
  EXPECT_EQ(read_text(d + "/run/model_config.json"), model_json);
  // A later launch with another LoRA scale (nothing left to train) rewrites run/config.yaml; the export still
  // takes the checkpoint's own alpha.
  r = run_mpi(2, cgtrain_exe(), with(args, {"lora.alpha=64"}));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("with 1 changed setting: lora.alpha 8.0 -> 64.0 (lora.alpha / lora.rslora rescale"),
            std::string::npos) << r.output;
  EXPECT_NE(read_text(d + "/run/config.yaml").find("alpha: 64"), std::string::npos);
  // Another LoRA rank would need other tensors: refused before the model is built, naming the key and the fix. The
  // seven projections listed one by one are all-linear's own: accepted.
  r = run_mpi(2, cgtrain_exe(), with(args, {"lora.alpha=64", "lora.r=8"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("cannot go on with lora.r 4 -> 8: its trainable tensors are other ones, or of other shapes; "
                          "set lora.r back to the checkpoint's value (its config.yaml), or start a new train.run_dir"),
            std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("elements on rank 0"), std::string::npos)
      << "refused after the model was built: " << r.output;
  r = run_mpi(2, cgtrain_exe(), with(args, {"lora.alpha=64", "lora.targets=[up_proj,down_proj]"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("cannot go on with lora.targets"), std::string::npos) << r.output;
  r = run_mpi(2, cgtrain_exe(), with(args, {"lora.alpha=64", "lora.targets=[q_proj,k_proj,v_proj,o_proj,gate_proj,"
                                                             "up_proj,down_proj]"}));
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.output.find("lora.targets [all-linear] ->"), std::string::npos) << "not a change: " << r.output;
  EXPECT_NE(r.output.find("with 1 changed setting: lora.alpha"), std::string::npos) << r.output;
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--out", d + "/out", "--merge"});
  ASSERT_EQ(r.rc, 0) << r.output;
  // The checkpoint records its base's sample, and the exported adapter carries it.
  const std::string sample = cg::model::sample_base(s + "/hf").to_json();
  EXPECT_TRUE(std::any_of(man.files.begin(), man.files.end(), [](const auto& f) { return f.path == "base_sample.json"; }));
  EXPECT_EQ(read_text(d + "/run/checkpoints/step-10/base_sample.json"), sample);
  EXPECT_EQ(nlohmann::json::parse(read_text(d + "/out/adapter/cgtrain_source.json"))["base_sample"].dump(), sample);
  // So does what it was trained on: the train shards' property counts, for cgsample's check of the conditions asked.
  EXPECT_TRUE(std::any_of(man.files.begin(), man.files.end(),
                          [](const auto& f) { return f.path == "training_data.json"; }));
  const auto trained_on = nlohmann::json::parse(read_text(d + "/run/checkpoints/step-10/training_data.json"));
  EXPECT_EQ(trained_on["property_counts"],
            nlohmann::json::parse(cg::read_shard_meta(s + "/shards/train-00000.h5").property_counts));
  EXPECT_EQ(trained_on["property_counts"]["spacegroup"], 512);
  EXPECT_EQ(trained_on["shards_dir"], s + "/shards");
  EXPECT_EQ(nlohmann::json::parse(read_text(d + "/out/adapter/cgtrain_source.json"))["training_data"], trained_on);
  // The base's weights in bf16 elsewhere are the same base; shifted by 0.01 (a fine-tune of it) they are not: a merge
  // into those is refused before anything is written.
  cg::test::write_base_variant(s + "/hf", d + "/bf16", "BF16", 0);
  cg::test::write_base_variant(s + "/hf", d + "/tuned", "F32", 0.01);
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--out", d + "/out_tuned", "--merge", "--base", d + "/tuned"});
  EXPECT_NE(r.rc, 0);
  const std::string n_values = std::to_string(4 * cg::model::HfCheckpoint(s + "/hf").keys().size());
  EXPECT_NE(r.output.find("was trained on other weights than model.hf_dir=" + d + "/tuned holds: " + n_values + " of " +
                          n_values + " sampled weight values differ"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--base must be the folder of the weights it was trained on"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d + "/out_tuned"));
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--out", d + "/out_tuned", "--base", d + "/tuned"});  // adapter only
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("--base must be the folder of the weights it was trained on"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d + "/out_tuned"));
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--out", d + "/out_bf16", "--merge", "--base", d + "/bf16"});
  EXPECT_EQ(r.rc, 0) << r.output;

  cg::lora::PeftAdapter a = cg::lora::read_peft_adapter(d + "/out/adapter");
  EXPECT_EQ(a.config.lora_alpha, 8);  // micro_args' lora.alpha
  const auto lc = micro_llama();
  EXPECT_EQ(a.factors.size(), 2u * 7u * size_t(lc.num_hidden_layers));
  for (const auto& [name, t] : a.factors) {
    EXPECT_EQ(t.size(name.find("lora_A") != std::string::npos ? 0 : 1), 4) << name;  // r
    EXPECT_GT(t.abs().sum().item<double>(), 0) << name;                                 // trained (B left zero init)
  }

  // tp-1 model from the adapter vs the merged checkpoint (under the config the checkpoint was trained with).
  const std::string trained_cfg = d + "/run/checkpoints/step-10/config.yaml";
  cg::Config c = cg::load_config(trained_cfg, {"parallel.tp=1", "lora.init_adapter=" + d + "/out/adapter"});
  const auto dims = cg::dist::single_process_dims();
  cg::TrainModel with_adapter = cg::build_train_model(c, dims, lc.vocab_size, at::kCPU);
  cg::Config cm = cg::load_config(trained_cfg, {"parallel.tp=1", "model.hf_dir=" + d + "/out",
                                                            "lora.enabled=false"});
  cg::TrainModel merged = cg::build_train_model(cm, dims, lc.vocab_size, at::kCPU);
  with_adapter.llama->eval();
  merged.llama->eval();
  at::NoGradGuard g;
  at::Tensor tokens = torch::randint(3, 35, {2, 24}, torch::kLong);
  at::Tensor la = with_adapter.llama->forward(tokens), lm = merged.llama->forward(tokens);
  EXPECT_TRUE(torch::allclose(la, lm, 1e-4, 1e-4)) << (la - lm).abs().max().item<double>();
  // The adapter under another scale than it was trained with is refused, naming the setting to change.
  cg::Config other = c;
  other.lora.alpha = 16;
  std::string err = error_of([&] { cg::build_train_model(other, dims, lc.vocab_size, at::kCPU); });
  EXPECT_TRUE(contains(err, "set lora.alpha=8 lora.rslora=false")) << err;
  // An adapter with a module on some layers only is refused as such (as cgsample does), not by naming the
  // lora.targets it already has; a cgexport --merge folder given as the adapter: its adapter/ is named.
  {
    cg::lora::PeftAdapter some = cg::lora::read_peft_adapter(d + "/out/adapter");
    const std::string last = "model.layers." + std::to_string(lc.num_hidden_layers - 1) + ".self_attn.v_proj";
    ASSERT_EQ(some.factors.erase(last + ".lora_A.weight") + some.factors.erase(last + ".lora_B.weight"), 2u);
    cg::lora::write_peft_adapter(d + "/adapter_some", some.config, some.factors);
    cg::Config partial = c;
    partial.lora.init_adapter = d + "/adapter_some";
    // What building the model under `partial` throws.
    const auto partial_error = [&] {
      return error_of([&] { cg::build_train_model(partial, dims, lc.vocab_size, at::kCPU); });
    };
    err = partial_error();
    EXPECT_TRUE(contains(err, "lora.init_adapter " + d + "/adapter_some has v_proj factors for " +
                              std::to_string(lc.num_hidden_layers - 1) + " of the model's " +
                              std::to_string(lc.num_hidden_layers) + " layers: adapters on some layers only")) << err;
    // adapter_config.json listing a module its tensors do not adapt (o_proj's factors taken out): under lora.targets
    // naming o_proj, that module starts fresh (lora_A as a fresh run draws it, lora_B zero), as PEFT's is_trainable
    // load gives it, with a warning naming it; the other modules start from the adapter's factors (it was refused).
    cg::lora::PeftAdapter no_o = cg::lora::read_peft_adapter(d + "/out/adapter");
    for (auto it = no_o.factors.begin(); it != no_o.factors.end();)
      it = it->first.find(".o_proj.") != std::string::npos ? no_o.factors.erase(it) : std::next(it);
    cg::lora::write_peft_adapter(d + "/adapter_no_o", no_o.config, no_o.factors);
    partial.lora.init_adapter = d + "/adapter_no_o";
    {
      std::optional<cg::TrainModel> m;
      const std::string log = log_of([&] { m.emplace(cg::build_train_model(partial, dims, lc.vocab_size, at::kCPU)); });
      EXPECT_TRUE(contains(log, "lora.init_adapter " + d + "/adapter_no_o: adapter_config.json target_modules lists "
                                "[o_proj], but adapter_model.safetensors holds no factors for it: lora.targets adapts "
                                "it, so that module starts fresh (lora_A random, lora_B zero)")) << log;
      EXPECT_FALSE(contains(log, "gets no update")) << log;
      cg::Config scratch = partial;
      scratch.lora.init_adapter = "";
      const auto fresh = cg::build_train_model(scratch, dims, lc.vocab_size, at::kCPU).lora.gather_full();
      ASSERT_TRUE(m);
      const auto loaded = m->lora.gather_full();
      EXPECT_EQ(loaded.size(), 2u * 7u * size_t(lc.num_hidden_layers));
      for (const auto& [k, t] : loaded) {
        const bool o = k.find(".o_proj.") != std::string::npos;
        EXPECT_TRUE(torch::equal(t, o ? fresh.at(k) : no_o.factors.at(k))) << k;
        if (o && k.find("lora_B") != std::string::npos) EXPECT_EQ(t.abs().sum().item<double>(), 0) << k;
        if (o && k.find("lora_A") != std::string::npos) EXPECT_GT(t.abs().sum().item<double>(), 0) << k;
      }
    }
    // A module adapter_config.json does not list at all (o_proj gone from target_modules too) is refused under
    // lora.targets naming it, naming the modules its tensors adapt.
    {
      cg::lora::PeftConfig six_cfg = no_o.config;
      six_cfg.target_modules.erase(std::remove(six_cfg.target_modules.begin(), six_cfg.target_modules.end(), "o_proj"),
                                   six_cfg.target_modules.end());
      cg::lora::write_peft_adapter(d + "/adapter_unlisted", six_cfg, no_o.factors);
      cg::Config unlisted = partial;
      unlisted.lora.init_adapter = d + "/adapter_unlisted";
      err = error_of([&] { cg::build_train_model(unlisted, dims, lc.vocab_size, at::kCPU); });
      EXPECT_TRUE(contains(err, "has no 'model.layers.0.self_attn.o_proj.lora_A.weight' / "
                                "'model.layers.0.self_attn.o_proj.lora_B.weight': set lora.targets=["
                                "down_proj,gate_proj,k_proj,q_proj,up_proj,v_proj], the modules its tensors adapt"))
          << err;
      EXPECT_FALSE(contains(err, "model.hf_dir")) << err;
    }
    // Under the modules the tensors hold it loads, with a warning that o_proj gets no update, as cgsample does.
    {
      cg::Config six = partial;
      six.lora.targets = {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"};
      const std::string log = log_of([&] { cg::build_train_model(six, dims, lc.vocab_size, at::kCPU); });
      EXPECT_TRUE(contains(log, "lora.init_adapter " + d + "/adapter_no_o: adapter_config.json target_modules lists "
                                "[o_proj], but adapter_model.safetensors holds no factors for it: that module gets no "
                                "update")) << log;
    }
    // A factor of another base model's shape (q_proj's lora_A 8 columns wider) at the same r: the fix is the base,
    // not lora.targets (it was "set lora.targets to its target_modules [...] (and model.hf_dir to its base)").
    cg::lora::PeftAdapter wide = cg::lora::read_peft_adapter(d + "/out/adapter");
    at::Tensor& qa = wide.factors.at("model.layers.0.self_attn.q_proj.lora_A.weight");
    qa = at::cat({qa, at::zeros({qa.size(0), 8})}, 1);
    cg::lora::write_peft_adapter(d + "/adapter_wide", wide.config, wide.factors);
    partial.lora.init_adapter = d + "/adapter_wide";
    err = partial_error();
    EXPECT_TRUE(contains(err, "lora.init_adapter " + d + "/adapter_wide: model.layers.0.self_attn.q_proj: lora_A has "
                              "shape")) << err;
    EXPECT_TRUE(contains(err, "; its r is lora.r's (4), so its factors are shaped for another base model: set "
                              "model.hf_dir to the base it was trained on (its adapter_config.json "
                              "base_model_name_or_path: " + wide.config.base_model_name_or_path + ")")) << err;
    EXPECT_FALSE(contains(err, "lora.targets")) << err;
    // Factors of a layer this model lacks, under the lora.targets its tensors adapt: another base, said so.
    cg::lora::PeftAdapter deeper = cg::lora::read_peft_adapter(d + "/out/adapter");
    const std::string extra = "model.layers." + std::to_string(lc.num_hidden_layers) + ".self_attn.q_proj";
    for (const char* f : {".lora_A.weight", ".lora_B.weight"})
      deeper.factors[extra + f] = deeper.factors.at("model.layers.0.self_attn.q_proj" + std::string(f));
    cg::lora::write_peft_adapter(d + "/adapter_deeper", deeper.config, deeper.factors);
    partial.lora.init_adapter = d + "/adapter_deeper";
    err = partial_error();
    EXPECT_TRUE(contains(err, "holds '" + extra + ".lora_A.weight', which is no LoRA layer of this model: an adapter "
                              "of a base model with other layers: set model.hf_dir to the base it was trained on"))
        << err;
    EXPECT_FALSE(contains(err, "lora.targets")) << err;
    partial.lora.init_adapter = d + "/out";
    err = partial_error();
    EXPECT_TRUE(contains(err, "the adapter is in " + d + "/out/adapter/, give that")) << err;
  }
  // The same scale spelled otherwise (rsLoRA: 4 / sqrt(4) = 8 / 4) is the same update: loaded, same logits.
  cg::Config same_scale = c;
  same_scale.lora.alpha = 4;
  same_scale.lora.rslora = true;
  cg::TrainModel rs = cg::build_train_model(same_scale, dims, lc.vocab_size, at::kCPU);
  rs.llama->eval();
  EXPECT_TRUE(torch::allclose(rs.llama->forward(tokens), la, 1e-6, 1e-6));
  // The adapter on a fine-tune of its base is refused, naming the base it was trained on.
  cg::Config tuned = c;
  tuned.model.hf_dir = d + "/tuned";
  err = error_of([&] { cg::build_train_model(tuned, dims, lc.vocab_size, at::kCPU); });
  EXPECT_TRUE(contains(err, "lora.init_adapter " + d + "/out/adapter was trained on other weights than model.hf_dir=" +
                            d + "/tuned holds")) << err;
  EXPECT_TRUE(contains(err, "base_model_name_or_path: " + fs::absolute(s + "/hf").string())) << err;
  // Without its cgtrain_source.json (no base sample) the adapter goes onto other weights on purpose: loaded, with a
  // warning naming the base folder it names, which still exists.
  fs::copy(d + "/out/adapter", d + "/adapter_nosrc");
  fs::remove(d + "/adapter_nosrc/" + std::string(cg::kAdapterSourceFile));
  tuned.lora.init_adapter = d + "/adapter_nosrc";
  {
    const std::string log = log_of([&] { cg::build_train_model(tuned, dims, lc.vocab_size, at::kCPU); });
    EXPECT_TRUE(contains(log, "lora.init_adapter " + d + "/adapter_nosrc names the base " +
                              fs::absolute(s + "/hf").string() + " (base_model_name_or_path), but model.hf_dir is " +
                              d + "/tuned")) << log;
  }
  // ... and differs from the base model: the adapter did something.
  cg::Config cb = cg::load_config(trained_cfg, {"parallel.tp=1", "lora.enabled=false"});
  cg::TrainModel base = cg::build_train_model(cb, dims, lc.vocab_size, at::kCPU);
  EXPECT_GT((base.llama->forward(tokens) - lm).abs().max().item<double>(), 1e-3);

  // A same-step re-save cut between its two renames (filesystems without RENAME_EXCHANGE) leaves step-10.old: it
  // is step 10 for cgexport --step and for a resume, which carries on from it.
  fs::rename(d + "/run/checkpoints/step-10", d + "/run/checkpoints/step-10.old");
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--step", "10", "--out", d + "/out_old"});
  ASSERT_EQ(r.rc, 0) << r.output;
  // A step with no checkpoint: the error lists the steps there are; a negative step is no step.
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--step", "3", "--out", d + "/out_3"});
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find(d + "/run has no checkpoint of step 3 (no " + d + "/run/checkpoints/step-3); its "
                          "checkpoints are of steps 10"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d + "/out_3/adapter_model.safetensors"));
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--step", "-1", "--out", d + "/out_neg"});
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("--step"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d + "/out_neg/adapter_model.safetensors"));
  // A resume onto a fine-tune of the base is refused, nothing written; onto a copy of it elsewhere it goes on, said.
  r = run_mpi(2, cgtrain_exe(), with(args, {"train.steps=12", "model.hf_dir=" + d + "/tuned"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("was trained on other weights than model.hf_dir=" + d + "/tuned holds"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("resume with the base it was trained on (its config.yaml names model.hf_dir=" + s + "/hf)"),
            std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d + "/run/checkpoints/step-12"));
  cg::test::write_base_variant(s + "/hf", d + "/moved", "F32", 0);
  r = run_mpi(2, cgtrain_exe(), with(args, {"train.steps=12", "model.hf_dir=" + d + "/moved"}));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("model.hf_dir " + s + "/hf -> " + d + "/moved: its base weights are there"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("with 1 changed setting: train.steps 10 -> 12"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("step-10.old (step 10"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::is_directory(d + "/run/checkpoints/step-12"));
}

// The tokenizer a run trained with travels with its checkpoints: shards made again with another tokenizer are
// refused at the resume (the adapter would read other token ids), and cgexport copies the checkpoint's tokenizer,
// not whatever the shards folder holds now. A resumed run does not need its lora.init_adapter any more.
TEST(TrainResume, TokenizerTravelsWithTheCheckpointAndInitAdapterIsNotReread) {
  const std::string s = setup(), d = fresh_base_dir();
  const std::string shards = d + "/shards";
  fs::copy(s + "/shards", shards, fs::copy_options::recursive);
  const std::string trained_tok = read_text(shards + "/tokenizer.model");
  const auto args = with(micro_args(s, d + "/run"), {"data.shards_dir=" + shards, "train.steps=4",
                                                      "checkpoint.every=2", "train.val_every=0"});
  RunResult r = run_mpi(1, cgtrain_exe(), args);
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(read_text(d + "/run/checkpoints/step-4/tokenizer.model"), trained_tok);
  EXPECT_EQ(read_text(d + "/run/tokenizer.model"), trained_tok);

  // cgprep again with another tokenizer of the same size: same vocabulary, other pieces.
  std::ofstream(shards + "/tokenizer.model") << "another micro tokenizer, also 97 pieces";
  for (const char* split : {"train", "val"}) {
    cg::ShardMeta m;
    const std::string path = cg::shard_path(shards, split, 0);
    cg::SampleSet samples = cg::read_shard(path, &m);
    m.tokenizer_sha256 = cg::sha256_file(shards + "/tokenizer.model");
    cg::write_shard(path, samples, m);
  }
  r = run_mpi(1, cgtrain_exe(), with(args, {"train.steps=6"}));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("was trained with another tokenizer"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("data.tokenizer=" + d + "/run/tokenizer.model"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d + "/run/checkpoints/step-6"));
  EXPECT_EQ(read_text(d + "/run/tokenizer.model"), trained_tok);  // the failed launch changed nothing
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--out", d + "/adapter"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(read_text(d + "/adapter/tokenizer.model"), trained_tok);
  // ... and records its digest beside the adapter, which cgsample compares with the tokenizer it is given.
  EXPECT_EQ(nlohmann::json::parse(read_text(d + "/adapter/cgtrain_source.json")).value("tokenizer_sha256", ""),
            cg::sha256_hex(trained_tok.data(), trained_tok.size()));
  // With --merge the adapter moves to merged/adapter/, and its tokenizer goes with it (cgsample reads that folder's).
  r = run_mpi(1, cgexport_exe(), {d + "/run", "--out", d + "/merged", "--merge"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(read_text(d + "/merged/tokenizer.model"), trained_tok);
  EXPECT_EQ(read_text(d + "/merged/adapter/tokenizer.model"), trained_tok);

  // A run started from that adapter, then resumed after the adapter folder is gone.
  const auto from = with(micro_args(s, d + "/from"), {"lora.init_adapter=" + d + "/adapter", "train.steps=2",
                                                       "checkpoint.every=2", "train.val_every=0"});
  r = run_mpi(1, cgtrain_exe(), from);
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("lora.init_adapter: starting from " + d + "/adapter ("), std::string::npos) << r.output;
  fs::remove_all(d + "/adapter");
  r = run_mpi(1, cgtrain_exe(), with(from, {"train.steps=4"}));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from " + d + "/from/checkpoints/step-2"), std::string::npos) << r.output;
  EXPECT_EQ(read_losses(d + "/from").size(), 4u);
}

}  // namespace
