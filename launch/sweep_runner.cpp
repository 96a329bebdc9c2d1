// Local execution of sweep points: process spawning with per-stage logs, shared shard preparation, status files.
#include "launch/sweep_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/log.h"

namespace fs = std::filesystem;

namespace cg::sweep {
namespace {

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p);
  CG_CHECK(f, "cannot write {}", p.string());
  f << text << "\n";
}

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Last lines of a log, for the error message of a failed stage.
std::string tail(const fs::path& log, size_t lines) {
  std::vector<std::string> all;
  std::ifstream f(log);
  for (std::string l; std::getline(f, l);) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

// The running stage's pid: SIGTERM / SIGUSR1 / SIGINT sent to cgsweep are passed on to it, so a preempted sweep's
// cgtrain still saves and exits 75 (and cgsweep then stops with 75).
std::atomic<pid_t> g_child{0};

void forward_signal(int sig) {
  const pid_t c = g_child.load();
  if (c > 0) ::kill(c, sig);
}

void install_forwarding() {
  static bool done = false;
  if (done) return;
  done = true;
  struct sigaction sa = {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) ::sigaction(sig, &sa, nullptr);
}

// An exclusive flock on <path>, held for the object's lifetime.
struct FileLock {
  int fd = -1;
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd = ::open(path.c_str(), O_CREAT | O_RDWR, 0644);
    CG_CHECK(fd >= 0, "cannot open lock file {}", path.string());
    CG_CHECK(::flock(fd, LOCK_EX) == 0, "cannot lock {}", path.string());
  }
  ~FileLock() {
    if (fd >= 0) ::close(fd);  // releases the lock
  }
};

// Run one stage of a point; on failure record the status and log the tail of the stage's log.
int stage(const PlannedPoint& p, const std::string& name, const std::vector<std::string>& argv, bool dry_run) {
  const fs::path log = fs::path(p.run_dir) / "logs" / (name + ".log");
  if (dry_run) {
    spdlog::info("  [{}] {}", name, join(argv));
    return 0;
  }
  spdlog::info("  [{}] {}  (log: {})", name, join(argv), log.string());
  const int rc = run_logged(argv, log.string());
  if (rc == kExitPreempted && name == "train") {
    write_text(fs::path(p.run_dir) / "status", "preempted");
    spdlog::warn("point {}: cgtrain was preempted (exit 75) after saving; rerun the sweep to resume", p.name);
  } else if (rc != 0) {
    write_text(fs::path(p.run_dir) / "status", fmt::format("failed: {} (exit {})", name, rc));
    spdlog::error("point {}: {} failed with exit {}; last lines of {}:\n{}", p.name, name, rc, log.string(),
                  tail(log, 15));
  }
  return rc;
}

// find_tool, except that a dry run tolerates a tool not built yet (prints its bare name).
std::string tool(const RunOptions& opt, const std::string& name) {
  if (!opt.dry_run) return find_tool(opt.bin_dir, name);
  try {
    return find_tool(opt.bin_dir, name);
  } catch (const Error&) {
    return name;
  }
}

}  // namespace

std::string default_launcher() {
  return std::string("mpirun ") + (::geteuid() == 0 ? "--allow-run-as-root " : "") +
         "--oversubscribe --bind-to none -np {np}";
}

std::vector<std::string> launcher_argv(const std::string& launcher, int64_t np) {
  std::vector<std::string> out;
  std::stringstream ss(launcher);
  for (std::string w; ss >> w;) {
    for (size_t pos; (pos = w.find("{np}")) != std::string::npos;) w.replace(pos, 4, std::to_string(np));
    out.push_back(w);
  }
  return out;
}

std::string find_tool(const std::string& bin_dir, const std::string& tool) {
  std::vector<fs::path> tried;
  if (!bin_dir.empty()) {
    tried.push_back(fs::path(bin_dir) / tool);
    for (const char* sub : {"data", "trainer", "sampler", "launch"}) tried.push_back(fs::path(bin_dir) / sub / tool);
  }
  for (const auto& p : tried)
    if (fs::exists(p) && ::access(p.c_str(), X_OK) == 0) return fs::absolute(p).string();
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');) {
      const fs::path p = fs::path(d.empty() ? "." : d) / tool;
      if (fs::exists(p) && ::access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  std::string where;
  for (const auto& p : tried) where += " " + p.string();
  CG_FAIL("cannot find '{}' (looked in{} and $PATH); build it (./scripts/build.sh) or pass --bin-dir BUILD_DIR", tool,
          where);
}

int run_logged(const std::vector<std::string>& argv, const std::string& log_path) {
  CG_CHECK(!argv.empty(), "run_logged: empty command");
  fs::create_directories(fs::path(log_path).parent_path());
  const int fd = ::open(log_path.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
  CG_CHECK(fd >= 0, "cannot open log {}", log_path);
  install_forwarding();
  const pid_t pid = ::fork();
  CG_CHECK(pid >= 0, "fork failed running {}", argv[0]);
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    const std::string msg = "cgsweep: cannot execute " + argv[0] + "\n";
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(fd);
  g_child = pid;
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    CG_CHECK(errno == EINTR, "waitpid failed for {}", argv[0]);
  }
  g_child = 0;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

void write_point_configs(const SweepPlan& plan) {
  for (const auto& p : plan.points) {
    const std::string header = fmt::format(
        "# cgsweep point {} ({}) of {}; base {} with overrides:\n", p.index, p.name, plan.spec.path, plan.base_path);
    std::string ov;
    for (const auto& o : p.overrides) ov += "#   " + o + "\n";
    // Unchanged files are left alone: Slurm array tasks call this while other points' cgtrain may read theirs.
    const fs::path file = fs::path(p.run_dir) / "point.yaml";
    std::string text = header + ov + p.config_yaml;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (fs::exists(file) && read_text(file) == text) continue;
    write_text(file, text);
  }
}

int run_point(const SweepPlan& plan, const PlannedPoint& p, const RunOptions& opt) {
  const fs::path run(p.run_dir);
  if (!opt.dry_run && read_text(run / "status") == "done") {
    spdlog::info("point {} ({}) is done; skipped", p.index, p.name);
    return 0;
  }
  spdlog::info("point {} ({}) -> {}", p.index, p.name, p.run_dir);
  const std::string cfg = (run / "point.yaml").string();
  if (!opt.dry_run) write_text(run / "status", "running");

  // Shards: once per data setting. The lock makes concurrent array tasks wait for the first one's cgprep.
  const fs::path shards(p.shards_dir);
  const fs::path marker = shards / ".cgsweep-prepared";
  if (opt.dry_run) {
    spdlog::info("  [prep] {} {}  (unless {} exists)", tool(opt, "cgprep"), cfg, marker.string());
  } else {
    FileLock lock(shards.string() + ".lock");
    if (!fs::exists(marker)) {
      const int rc = stage(p, "prep", {tool(opt, "cgprep"), cfg}, false);
      if (rc != 0) return rc;
      write_text(marker, p.data_key);
    } else {
      spdlog::info("  [prep] shards for data-{} already prepared in {}", p.data_key, p.shards_dir);
    }
  }

  std::vector<std::string> train =
      launcher_argv(opt.launcher.empty() ? default_launcher() : opt.launcher, plan.spec.np);
  train.push_back(tool(opt, "cgtrain"));
  train.push_back(cfg);
  if (const int rc = stage(p, "train", train, opt.dry_run); rc != 0) return rc;

  if (plan.spec.sample) {
    const std::string adapter = (run / "adapter").string();
    if (int rc = stage(p, "export", {tool(opt, "cgexport"), p.run_dir, "--out", adapter}, opt.dry_run))
      return rc;
    // cgsample runs at the point's tp like cgtrain (all tp ranks draw the same tokens).
    std::vector<std::string> sample = launcher_argv(opt.launcher.empty() ? default_launcher() : opt.launcher,
                                                    plan.spec.np);
    sample.push_back(tool(opt, "cgsample"));
    sample.push_back(cfg);
    if (int rc = stage(p, "sample", sample, opt.dry_run)) return rc;
    if (int rc = stage(p, "eval", {tool(opt, "cgeval"), cfg}, opt.dry_run)) return rc;
  }
  if (!opt.dry_run) write_text(run / "status", "done");
  return 0;
}

int run_sweep(const SweepPlan& plan, const RunOptions& opt) {
  int worst = 0;
  for (const auto& p : plan.points) {
    const int rc = run_point(plan, p, opt);
    if (rc == kExitPreempted) return rc;
    if (rc != 0) {
      worst = rc;
      if (!opt.keep_going) return rc;
    }
  }
  return worst;
}

std::vector<SummaryRow> collect_rows(const SweepPlan& plan) {
  std::vector<SummaryRow> rows;
  for (const auto& p : plan.points) {
    SummaryRow r;
    r.name = p.name;
    r.settings = p.settings;
    r.run_dir = p.run_dir;
    const fs::path run(p.run_dir);
    r.status = fs::exists(run / "status") ? read_text(run / "status") : "pending";
    r.metrics = read_metrics_file((run / "metrics.jsonl").string());
    const YAML::Node cfg = YAML::Load(p.config_yaml);
    if (cfg["lora"] && cfg["lora"]["r"]) r.rank = cfg["lora"]["r"].as<double>();
    // cgeval writes its report to eval.out, by default <eval.input>/eval.
    std::string eval_dir = cfg["eval"] && cfg["eval"]["out"] ? cfg["eval"]["out"].as<std::string>() : "";
    if (eval_dir.empty()) eval_dir = (run / "samples" / "eval").string();
    if (fs::is_directory(eval_dir)) {
      for (const char* name : {"report.json", "summary.json", "metrics.json"})
        if (fs::exists(fs::path(eval_dir) / name)) {
          r.metrics.validity = read_validity((fs::path(eval_dir) / name).string());
          break;
        }
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

void summarize(const SweepPlan& plan) {
  const std::string title = "Sweep " + fs::path(plan.spec.path).stem().string();
  write_summary(plan.spec.out_dir, title, plan.spec.keys, collect_rows(plan));
  spdlog::info("summary: {}/summary.md, {}/summary.csv, {}/val_loss_vs_rank.svg", plan.spec.out_dir,
               plan.spec.out_dir, plan.spec.out_dir);
}

}  // namespace cg::sweep
