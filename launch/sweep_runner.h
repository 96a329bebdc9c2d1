// SweepRunner: runs planned sweep points on this machine, one after another: cgprep once per shared shards folder
// (under a file lock, so parallel Slurm array tasks do not race), then the launcher + cgtrain, then optionally
// cgexport, the launcher + cgsample, cgeval (cgprep, cgexport and cgeval under the serial launcher, if any). Each stage logs to <run_dir>/logs/<stage>.log; the outcome goes to
// <run_dir>/status, and the hash of the point's resolved config to <run_dir>/point.hash when it starts.
//
// Signals: SIGTERM / SIGUSR1 / SIGINT sent to cgsweep are passed on to the running stage (SIGTERM as SIGUSR1 when
// the stage is mpirun, which kills its ranks on SIGTERM but forwards SIGUSR1 to them). After SIGINT / SIGTERM the
// sweep starts no further stage or point and exits 128 + N (75 when the stage saved and exited 75); after SIGUSR1
// it stops likewise with kExitPreempted.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "launch/sweep_plan.h"
#include "launch/sweep_summary.h"

namespace cg::sweep {

// Exit code cgtrain uses after saving on SIGTERM/SIGUSR1 (trainer's kExitPreempted); a sweep stops and passes it on.
constexpr int kExitPreempted = 75;
// Exit code cgtrain uses after saving on SIGINT (trainer's kExitInterrupted).
constexpr int kExitInterrupted = 130;
// What a point that could not run counts as under --keep-going (a stage that could not start: its log or its
// shards' lock could not be opened, its tool is gone): cgsweep's own error status, as when it stops on one.
constexpr int kExitPointError = 2;

struct RunOptions {
  std::string bin_dir;                 // where to look for cgprep/cgtrain/... first (see find_tool)
  std::string launcher;                // "mpirun ... -np {np}" or "srun"; {np} is replaced; empty: the default
  std::string serial_launcher;         // prefix of the one-process stages (cgprep, cgexport, cgeval); empty: none
  bool keep_going = false;             // a failed point does not stop the sweep
  bool dry_run = false;                // write point.yaml files and print commands, run nothing
  // The Slurm job id of the array task that runs the point (sweep.sbatch: --point with SLURM_ARRAY_TASK_ID set),
  // empty elsewhere: a preempted task is requeued by launch/requeue.sh, so the warnings say that, not to rerun.
  std::string slurm_job;
  // Called once a point's shards are ready (its cgprep ran, or they were already there), before it trains; in a dry
  // run where its [prep] line is printed (its shards may not exist yet); not for a point that is done or resumes
  // after training. cgsweep warns there of sample conditions the shards never carry. Empty: nothing.
  std::function<void(const PlannedPoint&)> prepared;
};

// "mpirun [--allow-run-as-root when root] --oversubscribe --bind-to none -np {np}".
std::string default_launcher();
// Words of a command line split as a POSIX shell splits them, without expansions: whitespace separates words,
// '...' is literal, "..." is literal but for \$ \` \" \\ (and backslash-newline), and \c outside quotes is c.
// "mpirun -x 'MY_VAR=a b' -np 2" -> {mpirun, -x, MY_VAR=a b, -np, 2}. Throws on an unclosed quote or a trailing '\\'.
std::vector<std::string> split_shell_words(const std::string& text);
// A launcher's words (split_shell_words) with {np} replaced.
std::vector<std::string> launcher_argv(const std::string& launcher, int64_t np);

// Path of a tool: <bin_dir>/<tool>, then <bin_dir>/{data,trainer,sampler,launch}/<tool>, then $PATH.
// Throws naming the places looked in.
std::string find_tool(const std::string& bin_dir, const std::string& tool);

// Run argv with stdout+stderr appended to log_path (its folder created); returns the exit status, 128+N when
// killed by signal N; throws, saying why and what to correct, when argv[0] cannot be executed (a log that cannot be
// opened throws too). SIGTERM/SIGUSR1/SIGINT received meanwhile are forwarded to it
// (SIGTERM as SIGUSR1 when argv[0] is mpirun, mpiexec or orterun), and so is one received while no stage ran since
// the sweep last checked for one before a stage (it would else go unheeded until the stage ended by itself).
int run_logged(const std::vector<std::string>& argv, const std::string& log_path);

// Write <run_dir>/point.yaml (the resolved config) for every point; returns nothing, throws on I/O errors. A file
// whose content is unchanged is left alone, others are replaced by rename (readers never see a cut file), a done
// point whose config changed keeps the point.yaml it ran with, and so does a point another cgsweep runs right now
// (its lock held: a warning names the holder), whose later stages read it. Each point's lock is held only while its
// file is written. For --slurm; a run writes each point's own as it starts it, under the point's lock.
void write_point_configs(const SweepPlan& plan);

// Throws, naming each point, its changed settings and what to do, when a done point's config differs from the one
// it ran with (recorded in point.hash; settings only one of the two has, from another cgtrain version, and folders
// spelled another way are not counted). Such a point is never skipped as done, nor run again in the folder holding
// the finished run; but one whose only change is a larger train.steps, under which the steps it trained keep their
// learning rate (train.schedule=constant, or a warmup not over by then), passes: run_point trains it on from its last
// checkpoint, as a fresh run with the larger train.steps would train, and runs its later stages again. A cosine or
// linear decay spans all of train.steps, so a longer one would have trained the finished steps at another lr: refused.
void check_finished_points(const SweepPlan& plan);

// Run one point (after check_finished_points for it); returns 0, kExitPreempted, 128 + N after signal N, or the
// failing stage's exit code. Writes <run_dir>/point.yaml as it starts the point, then <run_dir>/status: "running",
// then "done", "preempted" (cgtrain saved and exited 75), "preempted: <stage>" (a later stage died of SIGUSR1/SIGTERM,
// or SIGUSR1 arrived before it), "interrupted: <stage>" (SIGINT/SIGTERM to cgsweep) or "failed: <stage> (exit N)". A
// done point is skipped, unless it trains on to a larger train.steps (check_finished_points); one stopped at
// export/sample/eval with an unchanged config resumes at that stage. Throws, naming the holder, when another cgsweep
// holds the point's lock (<run_dir>/.cgsweep.lock) for longer than 3 s (--slurm holds it while it writes point.yaml).
int run_point(const SweepPlan& plan, const PlannedPoint& p, const RunOptions& opt);

// Run all points in order; stops at the first failure unless keep_going, and always at a preemption or signal, or
// when a point's status or point.hash cannot be written (a full disk: the error says to free space; the file keeps
// what it said).
// Returns 0, or the last failed point's exit code (kExitPointError for a point that could not run: without
// keep_going its error is thrown instead); with keep_going a summary line names the failed points.
int run_sweep(const SweepPlan& plan, const RunOptions& opt);

// One summary row per point from its folder (status file, metrics.jsonl, eval report); then write_summary().
std::vector<SummaryRow> collect_rows(const SweepPlan& plan);
void summarize(const SweepPlan& plan);

}  // namespace cg::sweep
