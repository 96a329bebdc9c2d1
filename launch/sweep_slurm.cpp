// Emission of the Slurm array job of a sweep.
#include "launch/sweep_slurm.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <yaml-cpp/yaml.h>

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

// A points.tsv cell: a tab or line break would start a new column or row, so they (and '\\') are written escaped.
std::string tsv_cell(const std::string& s) {
  std::string out;
  for (char c : s)
    out += c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\\' ? "\\\\" : std::string(1, c);
  return out;
}

// sbatch's --job-name: the sweep file's name, in characters no shell, sbatch or squeue reads specially.
std::string job_name(const std::string& sweep_path) {
  std::string n = fs::path(sweep_path).stem().string();
  for (char& c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return "cgsweep-" + n;
}

// The value of #SBATCH --output: double-quoted (sbatch splits the line on spaces and ends it at an unquoted '#'),
// '%' doubled (sbatch reads %A, %a, ... as patterns). A '"' or '\\' cannot be written there safely: refused.
std::string sbatch_output(const std::string& out_abs, const std::string& sweep_path) {
  CG_CHECK(out_abs.find_first_of("\"\\") == std::string::npos, "the sweep's out_dir (out_dir: in {}, or --out-dir) "
           "= {} contains '\"' or '\\', which #SBATCH --output cannot hold; pick a folder name without them",
           sweep_path, out_abs);
  std::string out;
  for (char c : out_abs) out += c == '%' ? std::string("%%") : std::string(1, c);
  return "\"" + out + "/slurm-%A_%a.out\"";
}

}  // namespace

std::string shell_quote(const std::string& word) {
  static const std::string plain = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=./:,@%";
  if (!word.empty() && word.find_first_not_of(plain) == std::string::npos) return word;
  return sq(word);
}

std::string shell_join(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + shell_quote(w);
  return s;
}

std::string default_requeue_script() {
  // <repo>/build/launch/cgsweep -> <repo>/launch/requeue.sh: the checkout cgsweep runs from, wherever it was moved;
  // then the source folder it was built from.
  std::vector<fs::path> tried;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) tried.push_back(self.parent_path().parent_path().parent_path() / "launch" / "requeue.sh");
  tried.push_back(fs::path(CG_SOURCE_DIR) / "launch" / "requeue.sh");
  for (const auto& p : tried)
    if (fs::is_regular_file(p)) return normalized_path(p.string());
  std::string where;
  for (const auto& p : tried) where += (where.empty() ? "" : ", ") + p.string();
  CG_FAIL("cannot find launch/requeue.sh, which every task of sweep.sbatch sources (looked at {}); run the cgsweep "
          "of a build folder inside the repository (<repo>/build/launch/cgsweep), or restore launch/requeue.sh",
          where);
}

std::string summary_command(const SweepPlan& plan, const SlurmOptions& opt) {
  std::string c = "cd " + shell_quote(fs::absolute(opt.workdir).string()) + " && " + shell_quote(opt.cgsweep) + " " +
                  shell_quote(normalized_path(plan.spec.path));
  for (const auto& a : opt.extra_args) c += " " + shell_quote(a);
  return c + " --summary";
}

std::string points_table(const SweepPlan& plan) {
  std::string out = "index\tname\trun_dir\tshards_dir\tsettings\n";
  for (const auto& p : plan.points) {
    std::string settings;
    for (const auto& s : p.settings) settings += (settings.empty() ? "" : " ") + s.key + "=" + s.value;
    out += fmt::format("{}\t{}\t{}\t{}\t{}\n", p.index, tsv_cell(p.name), tsv_cell(p.run_dir),
                       tsv_cell(p.shards_dir), tsv_cell(settings));
  }
  return out;
}

void check_points_table(const SweepPlan& plan, size_t index) {
  const fs::path table = fs::path(plan.spec.out_dir) / "points.tsv";
  std::ifstream f(table);
  if (!f) return;
  std::string was;  // the name points.tsv gives the index, "" when it lists no such index
  for (std::string line; std::getline(f, line);) {
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || line.substr(0, tab) != std::to_string(index)) continue;
    was = line.substr(tab + 1, line.find('\t', tab + 1) - tab - 1);
    break;
  }
  const std::string now = index < plan.points.size() ? plan.points[index].name : "";
  CG_CHECK(was == now, "--point {}: the sweep {} {}, but {}, written with its Slurm job by cgsweep --slurm, has {} "
           "there: the sweep file or the overrides changed since, and the job's array tasks would run other points "
           "than it was written for (one twice, another never); write the job again (cgsweep --slurm, done points "
           "are skipped) and submit the new sweep.sbatch, or restore the sweep file", index, plan.spec.path,
           now.empty() ? fmt::format("has points 0..{} only", plan.points.size() - 1)
                       : fmt::format("makes point {} {}", index, now),
           table.string(), was.empty() ? "no such point" : was);
}

namespace {

// A point that runs on GPUs, in a job that asks for fewer GPUs a node than it starts ranks there, fails only once
// Slurm starts it, after its wait in the queue ("local rank 0 sees no GPU"): said here, before anything is submitted.
void check_gpus(const SweepPlan& plan, int64_t ranks_per_node) {
  const auto& s = plan.spec;
  for (const auto& p : plan.points) {
    const YAML::Node root = YAML::Load(p.config_yaml);
    const std::string device = root["model"]["device"].as<std::string>("auto");
    const std::string backend = root["parallel"]["backend"].as<std::string>("auto");
    if (device != "cuda" && backend != "nccl") continue;
    CG_CHECK(s.slurm_gpus_per_node >= ranks_per_node,
             "sweep file {}: point {} ({}) runs on GPUs (model.device={}, parallel.backend={}), one a rank, {} ranks a "
             "node (np {} over slurm.nodes {}), but slurm.gpus_per_node is {}: set it in the sweep file's slurm: "
             "block (e.g. slurm: {{gpus_per_node: {}}}), or for a CPU sweep set model.device=cpu and "
             "parallel.backend=mpi", s.path, p.index, p.name, device, backend, ranks_per_node, s.np, s.slurm_nodes,
             s.slurm_gpus_per_node, ranks_per_node);
  }
}

}  // namespace

std::string sweep_sbatch(const SweepPlan& plan, const SlurmOptions& opt) {
  const auto& s = plan.spec;
  CG_CHECK(!plan.points.empty(), "sweep {} has no points", s.path);
  const int64_t per_node = divide(s.np, s.slurm_nodes, "sweep np (ranks per point) over slurm.nodes");
  const std::string out_abs = fs::absolute(s.out_dir).string();
  const std::string requeue = opt.requeue_script.empty() ? default_requeue_script() : opt.requeue_script;
  // A line break in any of these would end a comment or a command and start a line of its own in the script.
  check_no_control_chars(s.path, "the sweep file's path", "rename the file or its folder");
  check_no_control_chars(out_abs, "the sweep's out_dir", "pick a folder name without them");
  check_no_control_chars(opt.workdir, "the current folder (where every task runs)", "run cgsweep from another folder");
  check_no_control_chars(opt.cgsweep, "cgsweep's path", "move the build folder");
  check_no_control_chars(requeue, "launch/requeue.sh's path", "move the repository");
  for (const auto& a : opt.extra_args) check_no_control_chars(a, "the argument", "give it on one line");
  check_gpus(plan, per_node);
  std::string h = "#!/usr/bin/env bash\n";
  h += fmt::format("# Slurm array job for sweep {} ({} points; table in points.tsv), written by cgsweep --slurm.\n",
                   s.path, plan.points.size());
  h += "# Submit: sbatch " + shell_quote(out_abs + "/sweep.sbatch") + "\n# When all tasks are done: " +
       summary_command(plan, opt) + "\n";
  h += "#SBATCH --job-name=" + job_name(s.path) + "\n";
  h += fmt::format("#SBATCH --array=0-{}\n", plan.points.size() - 1);
  h += fmt::format("#SBATCH --nodes={}\n#SBATCH --ntasks-per-node={}\n", s.slurm_nodes, per_node);
  if (s.slurm_gpus_per_node > 0) h += fmt::format("#SBATCH --gpus-per-node={}\n", s.slurm_gpus_per_node);
  h += fmt::format("#SBATCH --cpus-per-task={}\n#SBATCH --time={}\n", s.slurm_cpus_per_task, s.slurm_time);
  if (!s.slurm_partition.empty()) h += "#SBATCH --partition=" + s.slurm_partition + "\n";
  // USR1 to this script alone (B:): requeue.sh passes it on to cgsweep, which passes it on to the running stage (srun
  // forwards it to its tasks: cgtrain saves a checkpoint and exits 75, the other tools die of it and the point is
  // marked preempted at that stage) or, between stages, stops before the next one; either way the task exits 75.
  h += fmt::format("#SBATCH --signal=B:USR1@{}\n", s.slurm_signal_seconds);
  h += "#SBATCH --requeue\n#SBATCH --open-mode=append\n";
  h += "#SBATCH --output=" + sbatch_output(out_abs, s.path) + "\n";
  h += "set -uo pipefail\n";
  h += "cd " + sq(fs::absolute(opt.workdir).string()) + " || exit 1\n";
  // The requeue rule of launch/slurm.sbatch: on exit 75 `scontrol requeue`, at most CG_MAX_REQUEUES (default 50) times.
  h += "source " + sq(requeue) + " || { echo " +
       sq("sweep.sbatch: cannot read " + requeue + "; the repository must be at the same path on every node") +
       " >&2; exit 2; }\n";
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
