// Emission of the Slurm array job of a sweep.
#include "launch/sweep_slurm.h"

#include <filesystem>
#include <fstream>

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

std::string summary_command(const SweepPlan& plan, const SlurmOptions& opt) {
  std::string c = "cd " + sq(fs::absolute(opt.workdir).string()) + " && " + sq(opt.cgsweep) + " " +
                  sq(fs::absolute(plan.spec.path).string());
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
  // USR1 reaches the job steps (srun'd cgtrain ranks): they save a checkpoint and exit 75.
  h += fmt::format("#SBATCH --signal=USR1@{}\n", s.slurm_signal_seconds);
  h += "#SBATCH --requeue\n#SBATCH --open-mode=append\n";
  h += "#SBATCH --output=" + out_abs + "/slurm-%A_%a.out\n";
  h += "set -uo pipefail\n";
  h += "cd " + sq(fs::absolute(opt.workdir).string()) + " || exit 1\n";
  h += "CGSWEEP=${CGSWEEP:-" + sq(opt.cgsweep) + "}\n";
  h += "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n";
  h += "task=${SLURM_ARRAY_TASK_ID:?run this script with sbatch (SLURM_ARRAY_TASK_ID picks the sweep point)}\n";
  h += "\"$CGSWEEP\" " + sq(fs::absolute(s.path).string()) +
       " --point \"$task\" --launcher 'srun --kill-on-bad-exit=1'";
  for (const auto& a : opt.extra_args) h += " " + sq(a);
  h += "\nrc=$?\n";
  // Same logic as launch/requeue.sh: a preempted point is put back in the queue and resumes from its checkpoint.
  h += "if [ \"$rc\" -eq 75 ]; then\n"
       "  echo \"cgsweep: point $task preempted (exit 75); requeueing job $SLURM_JOB_ID\"\n"
       "  scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
       "fi\n"
       "exit \"$rc\"\n";
  return h;
}

std::string write_slurm_files(const SweepPlan& plan, const SlurmOptions& opt) {
  const fs::path out(plan.spec.out_dir);
  fs::create_directories(out);
  const fs::path sb = out / "sweep.sbatch";
  {
    std::ofstream f(sb);
    CG_CHECK(f, "cannot write {}", sb.string());
    f << sweep_sbatch(plan, opt);
  }
  fs::permissions(sb, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
  std::ofstream t(out / "points.tsv");
  CG_CHECK(t, "cannot write {}/points.tsv", out.string());
  t << points_table(plan);
  return sb.string();
}

}  // namespace cg::sweep
