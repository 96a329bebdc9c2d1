// Slurm array job for a sweep: sweep.sbatch (one array task per point, SLURM_ARRAY_TASK_ID picks it) and
// points.tsv (the index -> point table). Each task runs `cgsweep SWEEP.yaml --point $SLURM_ARRAY_TASK_ID` with every
// stage as a job step (srun); `--signal=B:USR1@N` reaches the batch script, which passes it on to cgsweep, which
// passes it on to whichever stage runs (or stops between stages), and the task requeues itself through
// launch/requeue.sh (capped by CG_MAX_REQUEUES) when the point was preempted (exit 75): it continues from there.
#pragma once
#include <string>
#include <vector>

#include "launch/sweep_plan.h"

namespace cg::sweep {

struct SlurmOptions {
  std::string cgsweep;                  // absolute path of cgsweep (the script's default for $CGSWEEP)
  std::string workdir;                  // folder the tasks cd into (relative paths in configs resolve from here)
  std::vector<std::string> extra_args;  // passed through to every task (overrides, --bin-dir DIR, ...)
  std::string requeue_script;           // launch/requeue.sh sourced by the tasks; empty: the one of this source tree
};

// launch/requeue.sh of the checkout the running program was built in (<repo>/build/launch/cgsweep ->
// <repo>/launch/requeue.sh), else of the source folder it was compiled from; throws when neither exists. The
// repository must be at the same path on every node, like the build.
std::string default_requeue_script();

// `word` as one shell word: unchanged when it needs no quoting, else in single quotes; for the commands cgsweep
// prints, so they can be pasted into a shell.
std::string shell_quote(const std::string& word);
// Words joined by spaces, each through shell_quote.
std::string shell_join(const std::vector<std::string>& words);

// points.tsv: index, name, run_dir, shards_dir, settings ("lora.r=8 data.translate=true").
std::string points_table(const SweepPlan& plan);
// For --point `index` (what a Slurm array task runs): throws, saying what to do, when <out_dir>/points.tsv, written
// with the job, names another point at that index than the sweep makes now, or one it no longer has (its file or
// overrides changed since --slurm: the job's tasks would run other points than it was written for, one twice and
// another never). Nothing to check without a points.tsv.
void check_points_table(const SweepPlan& plan, size_t index);
// The command that writes the summary once every array task is done (same sweep file and arguments).
std::string summary_command(const SweepPlan& plan, const SlurmOptions& opt);
// The sbatch script text. Throws, naming the setting and what to change, when a value cannot be written into it
// safely (a line break anywhere, a '"' or '\\' in out_dir).
std::string sweep_sbatch(const SweepPlan& plan, const SlurmOptions& opt);
// Write <out_dir>/sweep.sbatch (executable) and <out_dir>/points.tsv; returns the sbatch path.
std::string write_slurm_files(const SweepPlan& plan, const SlurmOptions& opt);

}  // namespace cg::sweep
