// Emission of the Slurm array job of a sweep.
#include "launch/sweep_slurm.h"

#include <filesystem>

#include "common/durable_file.h"
#include "common/error.h"

namespace fs = std::filesystem;

namespace cg::sweep {
namespace {

// Single-quote for bash.
std::string sq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string default_requeue_script() { return std::string(CG_SOURCE_DIR) + "/launch/requeue.sh"; }

std::string summary_command(const SweepPlan& plan, const SlurmOptions& opt) {
  std::string c = "cd " + sq(fs::absolute(opt.workdir).string()) + " && " + sq(opt.cgsweep) + " " +
                  sq(normalized_path(plan.spec.path));
  for (const auto& a : opt.extra_args) c += " " + sq(a);
  return c + " --summary";
}

std::string points_table(const SweepPlan& plan) {
  std::string out = "index\tname\trun_dir\tshards_dir\tsettings\n";
  for (const auto& p : plan.points) {
    std::string settings;
    for (const auto& s : p.settings) settings += (settings.empty() ? "" : " ") + s.key + "=" + s.value;
    out += fmt::format("{}\t{}\t{}\t{}\t{}\n", p.index, p.name, p.run_dir, p.shards_dir, settings);
  }
  return out;
}

std::string sweep_sbatch(const SweepPlan& plan, const SlurmOptions& opt) {
  const auto& s = plan.spec;
  CG_CHECK(!plan.points.empty(), "sweep {} has no points", s.path);
  const int64_t per_node = divide(s.np, s.slurm_nodes, "sweep np (ranks per point) over slurm.nodes");
  const std::string out_abs = fs::absolute(s.out_dir).string();
  std::string h = "#!/usr/bin/env bash\n";
  h += fmt::format("# Slurm array job for sweep {} ({} points; table in points.tsv), written by cgsweep --slurm.\n",
                   s.path, plan.points.size());
  h += "# Submit: sbatch " + out_abs + "/sweep.sbatch\n# When all tasks are done: " + summary_command(plan, opt) + "\n";
  h += fmt::format("#SBATCH --job-name=cgsweep-{}\n", fs::path(s.path).stem().string());
  h += fmt::format("#SBATCH --array=0-{}\n", plan.points.size() - 1);
  h += fmt::format("#SBATCH --nodes={}\n#SBATCH --ntasks-per-node={}\n", s.slurm_nodes, per_node);
  if (s.slurm_gpus_per_node > 0) h += fmt::format("#SBATCH --gpus-per-node={}\n", s.slurm_gpus_per_node);
  h += fmt::format("#SBATCH --cpus-per-task={}\n#SBATCH --time={}\n", s.slurm_cpus_per_task, s.slurm_time);
  if (!s.slurm_partition.empty()) h += "#SBATCH --partition=" + s.slurm_partition + "\n";
  // USR1 (no B:) reaches the job steps, not this script: every stage runs as one (srun), cgtrain saves a checkpoint
  // and exits 75, the other tools die of it and the point is marked preempted at that stage.
  h += fmt::format("#SBATCH --signal=USR1@{}\n", s.slurm_signal_seconds);
  h += "#SBATCH --requeue\n#SBATCH --open-mode=append\n";
  h += "#SBATCH --output=" + out_abs + "/slurm-%A_%a.out\n";
  const std::string requeue = opt.requeue_script.empty() ? default_requeue_script() : opt.requeue_script;
  h += "set -uo pipefail\n";
  h += "cd " + sq(fs::absolute(opt.workdir).string()) + " || exit 1\n";
  // The requeue rule of launch/slurm.sbatch: on exit 75 `scontrol requeue`, at most CG_MAX_REQUEUES (default 50) times.
  h += "source " + sq(requeue) + " || { echo \"sweep.sbatch: cannot read " + requeue +
       "; the repository must be at the same path on every node\" >&2; exit 2; }\n";
  h += "CGSWEEP=${CGSWEEP:-" + sq(opt.cgsweep) + "}\n";
  h += "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n";
  h += "task=${SLURM_ARRAY_TASK_ID:?run this script with sbatch (SLURM_ARRAY_TASK_ID picks the sweep point)}\n";
  h += "cg_run_with_requeue \"$CGSWEEP\" " + sq(normalized_path(s.path)) +
       " --point \"$task\" --launcher 'srun --kill-on-bad-exit=1' --serial-launcher " +
       sq(fmt::format("srun --nodes=1 --ntasks=1 --cpus-per-task={}", s.slurm_cpus_per_task));
  for (const auto& a : opt.extra_args) h += " " + sq(a);
  h += "\nexit $?\n";
  return h;
}

std::string write_slurm_files(const SweepPlan& plan, const SlurmOptions& opt) {
  const fs::path out(plan.spec.out_dir);
  fs::create_directories(out);
  const fs::path sb = out / "sweep.sbatch";
  write_file_atomic(sb.string(), sweep_sbatch(plan, opt));  // a full disk leaves no cut script to submit
  fs::permissions(sb, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
  write_file_atomic((out / "points.tsv").string(), points_table(plan));
  return sb.string();
}

}  // namespace cg::sweep
