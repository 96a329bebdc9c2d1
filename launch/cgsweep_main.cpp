// cgsweep: LoRA / augmentation sweeps. Expands a sweep file (base config x grid or explicit points) into one run
// folder per point, validates each point's resolved config, then runs the points here in sequence (cgprep once per
// data setting, mpirun cgtrain, optionally cgexport + cgsample + cgeval), or writes a Slurm array job (--slurm).
// Ends with summary.md, summary.csv and val_loss_vs_rank.svg in the sweep's out_dir.
#include <CLI/CLI.hpp>
#include <spdlog/fmt/ranges.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "common/cli_usage.h"
#include "common/durable_file.h"
#include "common/error.h"
#include "common/log.h"
#include "data/shard.h"
#include "launch/sweep_plan.h"
#include "launch/sweep_runner.h"
#include "launch/sweep_slurm.h"
#include "sampler/sample_jobs.h"
#include "sampler/untrained_conditions.h"
#include "trainer/config.h"

namespace fs = std::filesystem;
using namespace cg::sweep;

namespace {

const char* kSweepKeys = R"(Sweep file keys:
  base: CONFIG.yaml            base config (relative to the current folder, else to the sweep file's folder)
  out_dir: runs/sweep          one folder per point below it, shards/ and summary.{md,csv}, val_loss_vs_rank.svg
  np: 1                        ranks per point (mpirun -np; Slurm tasks)
  launcher: ""                 default "mpirun --oversubscribe --bind-to none -np {np}"; {np} is replaced; split
                               into words as a shell does ('a b', "a b", a\ b), without expansions
  bin_dir: ""                  build folder holding cgprep/cgtrain/...; --bin-dir, then $CG_BIN_DIR win over it;
                               default: the folder above cgsweep's own (<build>/launch/cgsweep -> <build>),
                               then $PATH
  sample: false                per point after training: cgexport, cgsample, cgeval (validity in the summary)
  overrides: {key: value}      config overrides applied to every point (e.g. train.steps: 100)
  grid: {key: [v1, v2]}        cartesian product over dotted config keys (last key varies fastest), <= 10000 points
  points: [{key: v, ...}, ...] or an explicit list of points (instead of grid), <= 10000
)";

// The slurm: line, with SweepSpec's own defaults (so --help cannot drift from them).
const char* kSlurmKeys = R"(  slurm: {{time: {}, partition: "{}", nodes: {}, gpus_per_node: {}, cpus_per_task: {},
          signal_seconds: {}}}      header of sweep.sbatch (--slurm); gpus_per_node 0 asks for no GPU, and a
                               sweep of GPU points (model.device cuda, parallel.backend nccl) is refused then
)";

const char* kSweepNaming = R"(Point folders are named from their settings, e.g. r8-alpha32-translate1
(numbers in 6 significant digits, or every digit the value needs, lr0.00012345678; a value with characters other
than [A-Za-z0-9.+_-], or over 40 characters, ends in _ and 8 hex digits of its hash); points with equal data.*
settings share one prepared shards folder (out_dir/shards/data-<hash>). Extra key=value words override every
point's config (after overrides:); a key the sweep file sweeps is refused there.
Config keys (the keys grid:, points:, overrides: and key=value words set): `cgtrain --help` or docs/config.md.
)";

std::string sweep_keys_help() {
  const cg::sweep::SweepSpec d;
  return kSweepKeys +
         fmt::format(kSlurmKeys, d.slurm_time, d.slurm_partition, d.slurm_nodes, d.slurm_gpus_per_node,
                     d.slurm_cpus_per_task, d.slurm_signal_seconds) +
         kSweepNaming;
}

// Where the tools are: --bin-dir, else $CG_BIN_DIR (launch/run.sh's variable, docs/cluster.md section 0), else the
// sweep file's bin_dir, else the build folder cgsweep lives in (<build>/launch/cgsweep -> <build>).
std::string pick_bin_dir(const std::string& option, const std::string& from_file) {
  if (!option.empty()) return option;
  if (const char* env = std::getenv("CG_BIN_DIR"); env && *env) return env;
  if (!from_file.empty()) return from_file;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : self.parent_path().parent_path().string();
}

// The Slurm job id when this cgsweep is the array task that sweep.sbatch starts for `point` (its task id is the
// point's index), whose preemption launch/requeue.sh answers by requeueing it; "" otherwise.
std::string array_task_job(int point) {
  const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* job = std::getenv("SLURM_JOB_ID");
  if (point < 0 || !task || !job || !*job || std::to_string(point) != task) return "";
  return job;
}

// Option combinations and values CLI11 does not check; errors say what to pass instead.
void check_options(const CLI::App& app, int point, int64_t np, bool slurm, bool summary_only) {
  CG_CHECK(!app.count("--point") || point >= 0, "--point {}: give a point index >= 0 (points.tsv lists them)", point);
  CG_CHECK(!app.count("--np") || np >= 1, "--np {}: give the ranks per point, >= 1", np);
  CG_CHECK(!(slurm && summary_only), "--slurm and --summary do not combine: write and submit the job with --slurm, "
           "then run --summary once its tasks are done");
}

// Each point's sample stage builds its prompts from its config before it loads a model; build them here for every
// point (once per distinct sampling setting), so a bad sample.formula or conditions CSV fails before the first
// point trains, and in a dry run.
// configs[i]: plan.points[i]'s config, resolved. Returns the conditions each point's prompts state
// (cg::conditions_stated), indexed as plan.points.
std::vector<std::set<std::string>> check_sample_stages(const SweepPlan& plan, const std::vector<cg::Config>& configs) {
  std::map<std::string, std::set<std::string>> checked;  // data key | sample section -> conditions stated
  std::vector<std::set<std::string>> stated;
  for (size_t i = 0; i < plan.points.size(); ++i) {
    const PlannedPoint& p = plan.points[i];
    // What make_sample_jobs reads: the point's data settings (its data key) and sample section, less the folders
    // cgsweep gives each point. Points alike in both are checked once.
    YAML::Node sample = YAML::Clone(YAML::Load(p.config_yaml)["sample"]);
    sample.remove("out_dir");
    sample.remove("adapter");
    YAML::Emitter text;
    text << sample;
    const std::string key = p.data_key + "|" + text.c_str();
    if (const auto it = checked.find(key); it != checked.end()) {
      stated.push_back(it->second);
      continue;
    }
    try {
      stated.push_back(cg::conditions_stated(cg::make_sample_jobs(configs[i])));
    } catch (const std::exception& e) {
      CG_FAIL("sweep point {} ({}): its sample stage would fail: {}", p.index, p.name, e.what());
    }
    checked[key] = stated.back();
  }
  return stated;
}

// Right after a point's cgprep, before it trains: the conditions its sample stage states (`stated`) that no training
// prompt of its shards states, said on cgsweep's own console (cgsample says it again in the point's logs/sample.log,
// but only once the training is spent). A dry run checks the shards already there, and says once that the check
// waits for cgprep where there are none yet. Shards of an older cgprep (no property_counts) cannot be checked: said
// once per folder, with what to do. `warned`: what was said already (shards folder and conditions), said once.
void warn_untrained_conditions(const PlannedPoint& p, const std::set<std::string>& stated, bool dry_run,
                               std::set<std::string>* warned) {
  if (stated.empty() || !warned->insert(fmt::format("{}|{}", p.shards_dir, fmt::join(stated, ","))).second) return;
  std::vector<std::string> train;
  try {
    train = cg::list_shards(p.shards_dir, "train");
  } catch (const std::exception&) {
    // Not prepared yet: only a dry run gets here (a run calls this after cgprep; without a train shard cgtrain says
    // so).
    if (dry_run && warned->insert("not prepared").second)
      spdlog::info("--dry-run: whether the training prompts state what the sample stages ask for ({}) is checked "
                   "once a point's shards are prepared, after its cgprep and before it trains ({} holds none yet)",
                   fmt::join(stated, ", "), p.shards_dir);
    return;
  }
  cg::ShardMeta meta;
  try {
    meta = cg::read_shard_meta(train.front());
  } catch (const std::exception&) {
    return;  // a train shard that does not read: cgtrain says so
  }
  const auto u = cg::untrained_conditions(stated, meta.property_counts, meta.source_path);
  if (!u) {
    if (warned->insert("older cgprep|" + p.shards_dir).second)
      spdlog::warn("sweep point {} ({}): the shards in {} predate cgprep's record of the properties their crystals "
                   "carry (property_counts), so whether its training prompts state {} (what its sample stage asks "
                   "for) is not checked; to have it checked, delete {} so that the sweep prepares it again with this "
                   "cgprep, or rerun cgprep {}/point.yaml", p.index, p.name, p.shards_dir, fmt::join(stated, ", "),
                   p.shards_dir, p.run_dir);
    return;
  }
  if (u->never.empty()) return;
  const char* them = u->never.size() > 1 ? "them" : "it";
  spdlog::warn("sweep point {} ({}): its sample stage's prompts state {}, but the training prompts of its shards {} "
               "never state {} {}: the model it trains will not learn to follow {}; condition on what the data "
               "carries, or train on data with those properties (docs/formats.md)", p.index, p.name,
               fmt::join(u->never, ", "), p.shards_dir, them, u->counts, them);
}

// The eval stage's inputs that exist before it runs: its novelty and distribution references, and the test split of
// the invariance check (which cgsweep runs as one process: tp 1). Checked for every point before the first trains,
// and in a dry run, rather than after hours of training and sampling.
void check_eval_stages(const SweepPlan& plan, const std::vector<cg::Config>& configs) {
  for (size_t i = 0; i < plan.points.size(); ++i) {
    const PlannedPoint& p = plan.points[i];
    const cg::Config& c = configs[i];
    const auto fail = [&](const std::string& why) {
      CG_FAIL("sweep point {} ({}): its eval stage would fail: {}", p.index, p.name, why);
    };
    for (const auto& [key, value] : {std::pair{"eval.train_csv", c.eval.train_csv}, {"eval.ref_csv", c.eval.ref_csv}}) {
      std::string path;
      try {
        path = cg::resolve_csv(value, c);
      } catch (const cg::Error& e) {  // a key-like value that is no CSV key
        fail(fmt::format("{}: {}", key, e.what()));
      }
      if (!path.empty() && !fs::exists(path))
        fail(fmt::format("{}={} names {}, which does not exist from {} (relative paths are read from the folder "
                         "cgsweep runs in); give an existing CSV or CIF folder, or leave {} empty to skip", key, value,
                         path, fs::current_path().string(), key));
    }
    if (!c.eval.invariance) continue;
    if (c.parallel.tp != 1)
      fail(fmt::format("eval.invariance=true: cgsweep runs cgeval as one process, which cannot hold parallel.tp={}; "
                       "set eval.invariance=false in the sweep and run cgeval with it under mpirun -np {} afterwards",
                       c.parallel.tp, c.parallel.tp));
    if (c.data.test_csv.empty() || !fs::exists(c.data.test_csv))
      fail(fmt::format("eval.invariance=true scores crystals of data.test_csv, which is {}; set data.test_csv or "
                       "eval.invariance=false", c.data.test_csv.empty() ? "empty"
                                                                        : c.data.test_csv + ", not found from " +
                                                                              fs::current_path().string()));
  }
}

int run(int argc, char** argv) {
  CLI::App app{"cgsweep: run a LoRA/augmentation sweep (grid or list of points) and summarize it"};
  app.formatter(std::make_shared<cg::UsageLine>(
      "usage: cgsweep SWEEP.yaml [section.key=value ...] [--slurm] [--point N] [--summary] [--dry-run] [--keep-going]\n"
      "               [--bin-dir DIR] [--out-dir DIR] [--np N] [--launcher CMD] [--serial-launcher CMD] [--help]"));
  app.footer(sweep_keys_help());
  std::string sweep_file;
  std::vector<std::string> extra;
  int point = -1;
  bool slurm = false, summary_only = false, dry_run = false, keep_going = false;
  std::string bin_dir, out_dir, launcher, serial_launcher;
  int64_t np = 0;
  app.add_option("sweep", sweep_file, "sweep YAML file")->required();
  app.add_option("overrides", extra, "section.key=value overrides applied to every point");
  app.add_flag("--slurm", slurm, "write out_dir/sweep.sbatch (array job) + points.tsv instead of running");
  app.add_option("--point", point, "run only this point (index; what each Slurm array task does)")
      ->check(cg::whole_number("a point index >= 0 (points.tsv lists them)"));
  app.add_flag("--summary", summary_only, "only (re)write the summary from the run folders");
  app.add_flag("--dry-run", dry_run, "validate the sweep and print each point's commands; write and run nothing");
  app.add_flag("--keep-going", keep_going, "continue with the next point when one fails");
  app.add_option("--bin-dir", bin_dir, "build folder with the tools (default: $CG_BIN_DIR, else the sweep's "
                 "bin_dir, else the folder above cgsweep's own: <build>/launch/cgsweep -> <build>; then $PATH)");
  app.add_option("--out-dir", out_dir, "override the sweep's out_dir");
  app.add_option("--np", np, "override the sweep's np")->check(cg::whole_number("the ranks per point, >= 1"));
  app.add_option("--launcher", launcher, "override the sweep's launcher ({np} is replaced; "
                 "quotes and backslashes as in a shell)");
  app.add_option("--serial-launcher", serial_launcher, "prefix of the one-process stages cgprep, cgexport, cgeval "
                 "(sweep.sbatch: a one-task srun); default: none, they run directly");
  if (!cg::parse_options(app, argc, argv, "cgsweep")) return 0;
  check_options(app, point, np, slurm, summary_only);

  cg::init_logging(0, 1, "info", false);
  SweepSpec spec = load_sweep_spec(sweep_file);
  if (!out_dir.empty()) spec.out_dir = out_dir;
  if (np > 0) spec.np = np;
  add_command_line_overrides(spec, extra);
  const Resolver resolve = [](const std::string& base, const std::vector<std::string>& overrides,
                              const std::vector<std::string>& origins) {
    return cg::to_yaml(cg::load_config(base, overrides, origins));
  };
  const SweepPlan plan = plan_sweep(spec, resolve);
  // The configs' relative paths are read from the folder cgsweep runs in (as every tool reads them), not from the
  // sweep file's or the base config's folder: a data file not found from here fails cgprep later, so say it now.
  std::vector<cg::Config> configs;  // each point's, read once for the checks below
  for (const auto& p : plan.points) configs.push_back(cg::load_config_string(p.config_yaml));
  std::set<std::string> missing;
  for (const cg::Config& c : configs) {
    for (const std::string& f : {c.data.train_csv, c.data.val_csv, c.data.test_csv})
      if (!f.empty() && !fs::exists(f)) missing.insert(f);
  }
  if (!missing.empty())
    spdlog::warn("data files of the sweep's config not found from {}: {}; relative paths are read from the folder "
                 "cgsweep runs in: run it from the folder they are relative to (the repository root for configs/), "
                 "or make them absolute", fs::current_path().string(), fmt::join(missing, ", "));
  // The base weights likewise: a model.hf_dir not there stops every point's cgtrain at its start, under Slurm after
  // the job's wait in the queue (launch/run.sh refuses it for a run of its own).
  std::set<std::string> no_base;
  for (const cg::Config& c : configs) {
    const std::string& hf = c.model.hf_dir;
    if (!hf.empty() && !fs::exists(fs::path(hf) / "config.json")) no_base.insert(hf);
  }
  if (!no_base.empty() && !summary_only)
    spdlog::warn("model.hf_dir of the sweep's config has no config.json from {}: {}; a point with it stops as its "
                 "cgtrain starts: download the base model there (docs/cluster.md, section 1), or set model.hf_dir to "
                 "the folder that holds it (in the sweep file's overrides: or on the command line)",
                 fs::current_path().string(), fmt::join(no_base, ", "));
  spdlog::info("sweep {}: {} points, {} data settings, out_dir {}", spec.path, plan.points.size(),
               plan.shards_dirs.size(), plan.spec.out_dir);

  RunOptions opt;
  opt.bin_dir = pick_bin_dir(bin_dir, spec.bin_dir);
  opt.launcher = !launcher.empty() ? launcher : spec.launcher;
  opt.serial_launcher = serial_launcher;
  opt.keep_going = keep_going;
  opt.dry_run = dry_run;
  opt.slurm_job = array_task_job(point);
  // A launcher that does not split (an unclosed quote) is refused now, not when the first point's training starts.
  for (const auto& [text, what] : {std::pair{opt.launcher, (launcher.empty() ? "launcher: in " + spec.path :
                                                                               std::string("--launcher"))},
                                   {opt.serial_launcher, std::string("--serial-launcher")}}) {
    try {
      launcher_argv(text, 1);
    } catch (const cg::Error& e) {
      CG_FAIL("{}: {}", what, cg::message_of(e));
    }
  }

  if (summary_only) {
    summarize(plan);
    return 0;
  }
  if (spec.sample) {
    const std::vector<std::set<std::string>> stated = check_sample_stages(plan, configs);
    check_eval_stages(plan, configs);
    opt.prepared = [stated, dry_run, warned = std::set<std::string>()](const PlannedPoint& p) mutable {
      warn_untrained_conditions(p, stated[p.index], dry_run, &warned);
    };
  }
  // A refused sweep writes nothing: finished points whose config changed are found before any point.yaml is
  // (re)written, and a dry run writes none.
  check_finished_points(plan);
  SlurmOptions so;
  if (slurm) {
    so.cgsweep = fs::absolute(fs::read_symlink("/proc/self/exe")).string();
    so.workdir = fs::current_path().string();
    so.extra_args = extra;
    so.extra_args.push_back("--bin-dir");
    so.extra_args.push_back(normalized_path(opt.bin_dir));
    if (!out_dir.empty()) so.extra_args.insert(so.extra_args.end(), {"--out-dir", plan.spec.out_dir});
    if (np > 0) so.extra_args.insert(so.extra_args.end(), {"--np", std::to_string(np)});
    sweep_sbatch(plan, so);  // a value the script cannot hold is refused before any folder is made
  }
  if (!dry_run || slurm) {
    cg::make_output_dir(plan.spec.out_dir, "the sweep's out_dir (out_dir: in " + spec.path + ", or --out-dir)");
    // A run writes each point's point.yaml as it starts the point, under the point's lock, and no other point's:
    // that would rewrite the config of a point another cgsweep runs (a Slurm array task for it, or for another
    // point, would change what that one's later stages read). --slurm writes them all, for the points to be run by
    // hand too, but not one whose lock another cgsweep holds (write_point_configs).
    if (slurm) write_point_configs(plan);
  } else {
    cg::check_output_dir_creatable(plan.spec.out_dir,
                                   "the sweep's out_dir (out_dir: in " + spec.path + ", or --out-dir)");
  }
  if (slurm) {
    const std::string sb = write_slurm_files(plan, so);
    std::cout << "wrote " << sb << " and " << (fs::path(plan.spec.out_dir) / "points.tsv").string()
              << "\nsubmit: sbatch " << shell_quote(sb) << "\nwhen all tasks are done: " << summary_command(plan, so)
              << "\n";
    return 0;
  }
  int rc = 0;
  if (point >= 0) {
    check_points_table(plan, size_t(point));
    CG_CHECK(size_t(point) < plan.points.size(), "--point {}: the sweep has points 0..{}", point,
             plan.points.size() - 1);
    rc = run_point(plan, plan.points[size_t(point)], opt);
  } else {
    rc = run_sweep(plan, opt);
  }
  if (!dry_run) summarize(plan);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    // The command line's errors name the tool already: "cgsweep: unknown option --foo; run cgsweep --help".
    const std::string m = e.what();
    std::cerr << (m.rfind("cgsweep: ", 0) == 0 ? m : "cgsweep: error: " + m) << "\n";
    return 2;
  }
}
