// Local execution of sweep points: process spawning with per-stage logs, shared shard preparation, status files.
#include "launch/sweep_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <spdlog/fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/log.h"
#include "common/sha256.h"
#include "launch/sweep_slurm.h"
#include "trainer/config.h"
#include "trainer/schedule.h"

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

// Replaced through a temporary file unique to this process: other Slurm array tasks and the running stage read
// point.yaml, status and point.hash while this one writes them, and must find the old file or the new one, never a
// cut one (a full disk leaves the old one).
void write_text(const fs::path& p, const std::string& text) {
  if (std::error_code ec; !fs::create_directories(p.parent_path(), ec) && ec)
    CG_FAIL_IO(ec.value(), "cannot make the folder {}", p.parent_path().string());
  write_file_atomic_shared(p.string(), text + "\n");
}

// A command as it would be typed: words that need it single-quoted, so a printed line can be pasted into a shell.
std::string join(const std::vector<std::string>& argv) { return shell_join(argv); }

// Last lines of a log, for the error message of a failed stage.
std::string tail(const fs::path& log, size_t lines) {
  std::vector<std::string> all;
  std::ifstream f(log);
  for (std::string l; std::getline(f, l);) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

// Signals sent to cgsweep. The running stage's pid: SIGTERM / SIGUSR1 / SIGINT are passed on to it, so a
// preempted sweep's cgtrain still saves and exits 75 (and cgsweep then stops with 75), an interrupted one saves and
// exits 130 (75 under mpirun). mpirun answers SIGTERM and SIGINT by killing its ranks (SIGKILL shortly after, exit
// 1), so an mpirun stage gets SIGUSR1 instead, which it forwards to every rank. Stages run in their own process
// group: a Ctrl-C in the terminal reaches cgsweep alone, which passes it on this way. The first signal is also
// remembered: the sweep then starts no further stage or point.
std::atomic<pid_t> g_child{0};
std::atomic<bool> g_child_is_mpirun{false};
volatile std::sig_atomic_t g_signal = 0;  // SIGINT / SIGTERM (these win), else SIGUSR1; 0: none
// A signal that came while no stage ran, after the last stopped_before() check: the stage started next gets it as
// soon as it runs (else a Ctrl-C or Slurm's USR1 in that instant would go unheeded until the stage, maybe hours of
// training, ended by itself). 0: none.
volatile std::sig_atomic_t g_unforwarded = 0;
static_assert(std::atomic<pid_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

// What a stage gets for a signal cgsweep got: mpirun kills its ranks on SIGTERM / SIGINT but forwards SIGUSR1.
int forwarded(int sig, bool to_mpirun) { return sig != SIGUSR1 && to_mpirun ? SIGUSR1 : sig; }

extern "C" void on_signal(int sig) {
  if (g_signal == 0 || g_signal == SIGUSR1) g_signal = sig;
  const pid_t c = g_child.load();
  if (c > 0)
    ::kill(c, forwarded(sig, g_child_is_mpirun.load()));
  else if (g_unforwarded == 0 || g_unforwarded == SIGUSR1)
    g_unforwarded = sig;
}

void install_forwarding() {
  static bool done = false;
  if (done) return;
  done = true;
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // file I/O resumes; waitpid resumes after forwarding; the lock wait polls
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) ::sigaction(sig, &sa, nullptr);
}

// Start of run_sweep / run_point: handle the signals from here on, forget those of an earlier sweep.
void start_signal_handling() {
  install_forwarding();
  g_signal = 0;
  g_unforwarded = 0;
}

bool is_mpirun(const std::string& argv0) {
  const std::string base = fs::path(argv0).filename().string();
  return base == "mpirun" || base == "mpiexec" || base == "orterun";
}

// A point's status or point.hash that could not be written (a full disk): the sweep stops, --keep-going too, since
// it could not record what its next points do either.
struct RecordNotWritten : Error {
  using Error::Error;
};

// Writes `file`, one of point p's records (status, point.hash); write_text replaces it whole or leaves it as it was.
// Throws RecordNotWritten saying what to do and what the file still says.
void write_record(const PlannedPoint& p, const fs::path& file, const std::string& text) {
  try {
    write_text(file, text);
  } catch (const IoError& e) {
    const std::string was = fs::exists(file) ? fmt::format("still says \"{}\"", read_text(file)) : "is not there";
    throw RecordNotWritten(fmt::format(
        "point {}: cannot record \"{}\" in {}: {}; {}then run the same command again, which goes on where the sweep "
        "stopped ({} {})", p.name, text, file.string(), e.failure, io_advice_clause(e.err), file.string(), was));
  }
}

void set_status(const PlannedPoint& p, const std::string& status) {
  write_record(p, fs::path(p.run_dir) / "status", status);
}

// Marks point p "failed: <name> (<why>)", why being what `e` says. On a full disk the status may not fit either: the
// error that stopped the point is the one to tell, so a failed write is logged, not thrown.
void record_failure(const PlannedPoint& p, const std::string& name, const std::exception& e) {
  const IoError* io = dynamic_cast<const IoError*>(&e);
  const Error* cg = dynamic_cast<const Error*>(&e);
  const std::string why = io ? io->failure : cg ? message_of(*cg) : e.what();
  try {
    set_status(p, fmt::format("failed: {} ({})", name, why));
  } catch (const Error& also) {
    spdlog::error("point {}: cannot record that {} failed in its status ({}); it may still say \"running\"", p.name,
                  name, message_of(also));
  }
}

// Runs f, a part of point p's stage `name` that must succeed for the stage to run (opening its log, locking its
// shards); an error it throws marks the point "failed: <name> (<why>)" before it propagates, so that the status does
// not say "running" once cgsweep has stopped or gone on to the next point.
template <class F>
auto failing_as(const PlannedPoint& p, const std::string& name, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {  // cg::Error, or std::filesystem's error for a folder that cannot be made
    record_failure(p, name, e);
    throw;
  }
}

// How a point stopped by a preemption goes on, `from` where ("at sample", "from its checkpoint"), for the warnings:
// by itself in a Slurm array task (sweep.sbatch), whose exit 75 launch/requeue.sh answers with scontrol requeue;
// elsewhere when the sweep is run again. `status` is what the point's status file says meanwhile.
std::string how_it_resumes(const RunOptions& opt, const PlannedPoint& p, const std::string& from,
                           const std::string& status) {
  if (opt.slurm_job.empty()) return "rerun the sweep to resume " + from;
  return fmt::format("the array task exits 75 and launch/requeue.sh requeues it (its line follows), to resume {} "
                     "when Slurm starts it again: squeue -j {} shows it queued, and {} says \"{}\" until then", from,
                     opt.slurm_job, (fs::path(p.run_dir) / "status").string(), status);
}

// The same after signal `sig` (SIGINT / SIGTERM) to cgsweep. In an array task a SIGTERM is Slurm's (a preemption,
// the time limit, scancel) and reached the batch script too, whose launch/requeue.sh then tries to requeue the task
// (a cancelled job cannot be); a SIGINT is no preemption to requeue.sh: the task ends.
std::string how_it_goes_on(const RunOptions& opt, const PlannedPoint& p, int sig) {
  if (opt.slurm_job.empty()) return "rerun the sweep to go on";
  const std::string again = fmt::format("sbatch --array={} {} runs it again", p.index,
                                        (fs::path(p.run_dir).parent_path() / "sweep.sbatch").string());
  if (sig != SIGTERM) return "the array task ends here; " + again;
  return fmt::format("launch/requeue.sh, which Slurm's SIGTERM reached too, tries to requeue the array task (its line "
                     "follows; squeue -j {} shows it queued if it did); where it cannot (scancel), {}", opt.slurm_job,
                     again);
}

// Before a stage starts: when a signal has arrived, record why the point stops here and return its exit code
// (128 + SIGINT/SIGTERM, or kExitPreempted for SIGUSR1); else 0.
int stopped_before(const PlannedPoint& p, const std::string& name, const RunOptions& opt) {
  g_unforwarded = 0;  // cleared first: a signal from here on either stops the point below or reaches the stage
  const int sig = g_signal;
  if (sig == 0) return 0;
  if (sig == SIGUSR1) {
    set_status(p, "preempted: " + name);
    spdlog::warn("point {}: SIGUSR1 (preemption) before {}; stopping: {}", p.name, name,
                 how_it_resumes(opt, p, "at " + name, "preempted: " + name));
    return kExitPreempted;
  }
  set_status(p, "interrupted: " + name);
  spdlog::warn("point {}: stopped by signal {} before {}; {}", p.name, sig, name, how_it_goes_on(opt, p, sig));
  return 128 + sig;
}

// Run one stage of a point; returns 0 to go on with the next stage, else the point's exit code with its status
// written:
//   - kExitPreempted when the stage exited 75 (cgtrain saved on SIGTERM/SIGUSR1), or when a stage after training
//     died of SIGUSR1/SIGTERM (the preemption signal cgsweep passes on reaches whichever stage runs, not only
//     cgtrain), or training did after cgsweep got SIGUSR1 (passed on to a cgtrain or mpirun still starting up,
//     before its handlers): "preempted" / "preempted: <stage>"; the next run resumes (training from its newest
//     checkpoint, a later stage by running it again);
//   - 128 + N after cgsweep itself got SIGINT/SIGTERM: "interrupted: <stage>";
//   - the stage's exit code otherwise: "failed: <stage> (exit N)", with the tail of the stage's log.
// A stage that cannot start (its log cannot be opened: a full disk, a read-only folder; its command cannot be
// executed: a launcher not on $PATH) throws, the point marked "failed: <stage> (<why>)" first (failing_as), so its
// status does not say "running" after cgsweep has stopped or gone on to the next point (--keep-going).
int stage(const PlannedPoint& p, const std::string& name, const std::vector<std::string>& argv,
          const RunOptions& opt) {
  const fs::path log = fs::path(p.run_dir) / "logs" / (name + ".log");
  if (opt.dry_run) {
    spdlog::info("  [{}] {}", name, join(argv));
    return 0;
  }
  if (const int rc = stopped_before(p, name, opt)) return rc;
  spdlog::info("  [{}] {}  (log: {})", name, join(argv), log.string());
  const int rc = failing_as(p, name, [&] { return run_logged(argv, log.string()); });
  if (rc == 0) return 0;
  const int sig = g_signal;
  const bool killed_by_preemption = (rc == 128 + SIGUSR1 || rc == 128 + SIGTERM) && sig != SIGINT &&
                                    sig != SIGTERM && (name != "train" || sig == SIGUSR1);
  if ((rc == kExitPreempted && sig != SIGINT) || killed_by_preemption) {
    const std::string status = name == "train" ? "preempted" : "preempted: " + name;
    set_status(p, status);
    if (name == "train" && rc == kExitPreempted)
      spdlog::warn("point {}: cgtrain was preempted (exit 75) after saving; {}", p.name,
                   how_it_resumes(opt, p, "from its checkpoint", status));
    else if (name == "train")
      spdlog::warn("point {}: training was stopped by the SIGUSR1 cgsweep passed on (exit {}) while it started up, "
                   "before it could save; {}", p.name, rc,
                   how_it_resumes(opt, p, "from its newest checkpoint", status));
    else
      spdlog::warn("point {}: {} was preempted (exit {}); {}", p.name, name, rc,
                   how_it_resumes(opt, p, "at " + name, status));
    return kExitPreempted;
  }
  if (sig == SIGINT || sig == SIGTERM) {
    set_status(p, "interrupted: " + name);
    const bool saved = name == "train" && (rc == kExitPreempted || rc == kExitInterrupted);
    spdlog::warn("point {}: {} stopped by signal {} (exit {}{}); {}", p.name, name, sig, rc,
                 saved ? ", checkpoint saved" : "", how_it_goes_on(opt, p, sig));
    return 128 + sig;
  }
  set_status(p, fmt::format("failed: {} (exit {})", name, rc));
  spdlog::error("point {}: {} failed with exit {}; last lines of {}:\n{}", p.name, name, rc, log.string(),
                tail(log, 15));
  return rc;
}

// A resolved config as "section.key" -> value (comments dropped: cgsweep versions may word them differently).
std::map<std::string, std::string> flat_config(const std::string& yaml) {
  std::map<std::string, std::string> out;
  const auto text = [](const YAML::Node& n) -> std::string {
    if (n.IsScalar()) return n.as<std::string>();
    if (n.IsNull()) return "";
    YAML::Emitter e;
    e << YAML::Flow << n;
    return e.c_str();
  };
  const YAML::Node root = YAML::Load(yaml);
  if (!root.IsMap()) return out;
  for (const auto& sec : root) {
    const std::string s = sec.first.as<std::string>();
    if (sec.second.IsMap()) {
      for (const auto& kv : sec.second) out[s + "." + kv.first.as<std::string>()] = text(kv.second);
    } else {
      out[s] = text(sec.second);
    }
  }
  return out;
}

// Hash of a point's resolved config, recorded in <run_dir>/point.hash when the point starts running.
std::string config_hash(const std::string& yaml) {
  std::string canon;
  for (const auto& [k, v] : flat_config(yaml)) canon += k + "=" + v + "\n";
  return sha256_hex(canon.data(), canon.size()).substr(0, 16);
}

fs::path hash_file(const PlannedPoint& p) { return fs::path(p.run_dir) / "point.hash"; }

bool is_done(const PlannedPoint& p) { return read_text(fs::path(p.run_dir) / "status") == "done"; }

// A done point whose recorded config hash differs from its config now.
bool done_with_other_config(const PlannedPoint& p) {
  return is_done(p) && fs::exists(hash_file(p)) && read_text(hash_file(p)) != config_hash(p.config_yaml);
}

// The folders cgsweep derives from out_dir. An older cgsweep wrote them as out_dir was spelled ("runs/sw/r8" or
// "/repo/./runs/sw/r8"); compared in normalized form, such a point still counts as unchanged.
bool same_setting(const std::string& key, const std::string& a, const std::string& b) {
  if (a == b) return true;
  static const char* kFolders[] = {"train.run_dir", "data.shards_dir", "sample.out_dir", "eval.input", "sample.adapter"};
  const bool folder = std::find(std::begin(kFolders), std::end(kFolders), key) != std::end(kFolders);
  return folder && !a.empty() && !b.empty() && normalized_path(a) == normalized_path(b);
}

// For a done point: the settings that differ between the config it ran with (its point.yaml, which
// write_point_configs leaves alone) and its config now, e.g. "train.steps 3 -> 5"; empty when they are the same,
// differ only in keys one of the two lacks (a newer or older cgtrain's settings) or in how a folder is spelled.
std::vector<std::string> config_changes(const PlannedPoint& p) {
  const fs::path file = fs::path(p.run_dir) / "point.yaml";
  if (!fs::exists(file)) return {"its point.yaml is missing"};
  const auto ran = flat_config(read_text(file)), now = flat_config(p.config_yaml);
  std::vector<std::string> out;
  for (const auto& [k, v] : now) {
    auto it = ran.find(k);
    if (it != ran.end() && !same_setting(k, it->second, v))
      out.push_back(fmt::format("{} {} -> {}", k, it->second.empty() ? "\"\"" : it->second, v.empty() ? "\"\"" : v));
  }
  return out;
}

// A done point whose only change is a larger train.steps, from -> to. `resumable` when the learning rate of the
// steps it trained is the same under the new train.steps (train.schedule=constant, or a warmup not over by then):
// cgtrain, going on from its last checkpoint, then trains what a fresh run with the new train.steps would. A
// cosine or linear schedule decays over all of train.steps: the finished run's steps had another lr than the longer
// run's, and training on from there would make neither run.
struct LongerTraining {
  int64_t from = 0, to = 0;
  std::string schedule;  // train.schedule
  bool resumable = false;
};

std::optional<LongerTraining> longer_training(const PlannedPoint& p) {
  if (!done_with_other_config(p)) return std::nullopt;
  const auto changes = config_changes(p);
  if (changes.size() != 1 || changes[0].rfind("train.steps ", 0) != 0) return std::nullopt;
  Config ran, now;
  try {
    ran = load_config_string(read_text(fs::path(p.run_dir) / "point.yaml"));
    now = load_config_string(p.config_yaml);
  } catch (const Error&) {  // a point.yaml another cgtrain version wrote, with keys this one refuses
    return std::nullopt;
  }
  if (now.train.steps <= ran.train.steps) return std::nullopt;
  LongerTraining t{ran.train.steps, now.train.steps, now.train.schedule, true};
  const LrSchedule before = LrSchedule::from(ran.train), after = LrSchedule::from(now.train);
  for (int64_t step = 0; step < t.from && t.resumable; ++step) t.resumable = before.at(step) == after.at(step);
  return t;
}

// Throws when a done point's config changed since it ran, unless only keys came or went, or it trains on.
void check_finished(const std::vector<const PlannedPoint*>& points) {
  std::string msg;
  for (const PlannedPoint* p : points) {
    if (!done_with_other_config(*p)) continue;
    const auto changes = config_changes(*p);
    if (changes.empty()) continue;
    const auto longer = longer_training(*p);
    if (longer && longer->resumable) continue;
    std::string what;
    for (size_t i = 0; i < changes.size() && i < 4; ++i) what += (i ? ", " : "") + changes[i];
    if (changes.size() > 4) what += fmt::format(", and {} more", changes.size() - 4);
    if (longer)
      what += fmt::format("; it would train on from step {} only if the steps it trained kept their learning rate "
                          "under train.steps={}, as under train.schedule=constant, but train.schedule={} decays over "
                          "all of train.steps: the run trained on would be neither a {}-step nor a {}-step run",
                          longer->from, longer->to, longer->schedule, longer->from, longer->to);
    msg += fmt::format("\n  point {}'s config changed since it ran ({}): delete {} to run it again with the new "
                       "config, or restore the sweep file and overrides it ran with (see its point.yaml)",
                       p->name, what, p->run_dir);
  }
  CG_CHECK(msg.empty(), "finished sweep points would be skipped although their config changed:{}", msg);
}

// The text of <run_dir>/point.yaml: a header naming the sweep, then the resolved config.
std::string point_config_text(const SweepPlan& plan, const PlannedPoint& p) {
  // spec.path, base_path and the folders are absolute and normalized, so the text does not depend on how the
  // sweep file or out_dir were spelled (each array task passes them differently from the --slurm command).
  const std::string header = fmt::format(
      "# cgsweep point {} ({}) of {}; base {} with overrides:\n", p.index, p.name, plan.spec.path, plan.base_path);
  std::string ov;
  for (const auto& o : p.overrides) ov += "#   " + o + "\n";
  std::string text = header + ov + p.config_yaml;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

fs::path point_config_file(const PlannedPoint& p) { return fs::path(p.run_dir) / "point.yaml"; }

bool point_config_current(const SweepPlan& plan, const PlannedPoint& p) {
  const fs::path file = point_config_file(p);
  return fs::exists(file) && read_text(file) == point_config_text(plan, p);
}

// Writes <run_dir>/point.yaml, unless it holds the text already: Slurm array tasks call this while other points'
// cgtrain may read theirs.
void write_point_config(const SweepPlan& plan, const PlannedPoint& p) {
  if (!point_config_current(plan, p)) write_text(point_config_file(p), point_config_text(plan, p));
}

// How long a cgsweep starting a point tries its lock before it counts the point as another cgsweep's: --slurm holds
// it while it writes the point's point.yaml (milliseconds; a loaded shared filesystem, longer), and an array task
// starting then must not be refused for that.
constexpr auto kPointLockPatience = std::chrono::seconds(3);

// find_tool, except that a dry run tolerates a tool not built yet (prints its bare name).
std::string tool(const RunOptions& opt, const std::string& name) {
  if (!opt.dry_run) return find_tool(opt.bin_dir, name);
  try {
    return find_tool(opt.bin_dir, name);
  } catch (const Error&) {
    return name;
  }
}

// Every tool the points will run, looked up before any point starts (and marks itself running): a tool missing
// from the build would otherwise fail the first point after its status was written. A dry run says which are
// missing and goes on.
void check_tools(const SweepPlan& plan, const RunOptions& opt) {
  std::vector<std::string> tools{"cgprep", "cgtrain"};
  if (plan.spec.sample) tools.insert(tools.end(), {"cgexport", "cgsample", "cgeval"});
  for (const std::string& t : tools) {
    try {
      find_tool(opt.bin_dir, t);
    } catch (const Error& e) {
      if (!opt.dry_run) throw;
      spdlog::warn("{}: a run would stop here", message_of(e));
    }
  }
}

}  // namespace

std::string default_launcher() {
  return std::string("mpirun ") + (::geteuid() == 0 ? "--allow-run-as-root " : "") +
         "--oversubscribe --bind-to none -np {np}";
}

std::vector<std::string> split_shell_words(const std::string& text) {
  std::vector<std::string> words;
  std::string w;
  bool in_word = false;  // '' and "" make an (empty) word too
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(w);
      w.clear();
      in_word = false;
    } else if (c == '\\') {
      CG_CHECK(i + 1 < text.size(), "'{}' ends in a lone '\\'; remove it, or write '\\\\' for a backslash", text);
      if (text[++i] == '\n') continue;  // backslash-newline joins two lines
      w += text[i];
      in_word = true;
    } else if (c == '\'') {
      const size_t end = text.find('\'', i + 1);
      CG_CHECK(end != std::string::npos, "'{}' has a ' that is never closed; close it or escape it as \\'", text);
      w += text.substr(i + 1, end - i - 1);
      i = end;
      in_word = true;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        // Inside "...", a backslash escapes only $ ` " \ and a newline, as in a shell.
        if (text[j] == '\\' && j + 1 < text.size() && std::string("$`\"\\\n").find(text[j + 1]) != std::string::npos) {
          if (text[++j] != '\n') w += text[j];
        } else {
          w += text[j];
        }
      }
      CG_CHECK(j < text.size(), "'{}' has a \" that is never closed; close it or escape it as \\\"", text);
      i = j;
      in_word = true;
    } else {
      w += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(w);
  return words;
}

std::vector<std::string> launcher_argv(const std::string& launcher, int64_t np) {
  std::vector<std::string> out = split_shell_words(launcher);
  for (std::string& w : out)
    for (size_t pos; (pos = w.find("{np}")) != std::string::npos;) w.replace(pos, 4, std::to_string(np));
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
  const fs::path log_dir = fs::path(log_path).parent_path();
  if (std::error_code ec; !fs::create_directories(log_dir, ec) && ec)  // a file in its place, a read-only folder
    CG_FAIL_IO(ec.value(), "cannot make the folder of the stage's log {}", log_dir.string());
  const int fd = ::open(log_path.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
  // A full disk or a folder in its place: the OS reason and what to do, not the bare path.
  if (fd < 0) CG_FAIL_IO(errno, "cannot open the stage's log {}", log_path);
  install_forwarding();
  // Closed by a successful exec; a failed one writes its errno here first, so that the stage fails saying why it
  // could not start rather than with the exit code 127 of a command that ran.
  int exec_failed[2];
  CG_CHECK(::pipe2(exec_failed, O_CLOEXEC) == 0, "cannot start {}: pipe: {}", argv[0], std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Signals wait (blocked) until g_child names the new process, so none arrives unforwarded.
  sigset_t fwd, old;
  sigemptyset(&fwd);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) sigaddset(&fwd, sig);
  ::sigprocmask(SIG_BLOCK, &fwd, &old);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Its own process group (a terminal's Ctrl-C goes to cgsweep, which forwards it as above), and it ends with
    // cgsweep (SIGTERM: mpirun then takes its ranks down) instead of training on unwatched.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(128 + SIGTERM);  // cgsweep died before prctl
    for (int sig : {SIGTERM, SIGUSR1, SIGINT}) ::signal(sig, SIG_DFL);  // before exec, a signal acts as on the tool
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
    ::close(exec_failed[0]);
    ::execvp(args[0], args.data());
    const int err = errno;
    const std::string msg = "cgsweep: cannot execute " + argv[0] + "\n";
    (void)!::write(2, msg.data(), msg.size());
    (void)!::write(exec_failed[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(fd);
  ::close(exec_failed[1]);
  if (pid > 0) {
    g_child_is_mpirun = is_mpirun(argv[0]);
    g_child = pid;
    // A signal that found no stage to pass it to (see g_unforwarded); with the signals blocked, none is passed twice.
    if (const int sig = g_unforwarded) ::kill(pid, forwarded(sig, g_child_is_mpirun));
    g_unforwarded = 0;
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  int exec_errno = 0;
  ssize_t got = -1;
  while (pid > 0 && (got = ::read(exec_failed[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  ::close(exec_failed[0]);
  CG_CHECK(pid > 0, "fork failed running {}", argv[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    CG_CHECK(errno == EINTR, "waitpid failed for {}", argv[0]);
  }
  g_child = 0;
  CG_CHECK(got != ssize_t(sizeof exec_errno), "cannot start {}: {}; {}", argv[0], std::strerror(exec_errno),
           argv[0].find('/') == std::string::npos
               ? "put it on $PATH, or correct the launcher that names it (launcher: in the sweep file, --launcher "
                 "or --serial-launcher)"
               : "make it an executable file, or correct what names it (--bin-dir, launcher: in the sweep file, "
                 "--launcher or --serial-launcher)");
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

void write_point_configs(const SweepPlan& plan) {
  for (const auto& p : plan.points) {
    // A finished point keeps the config it ran with (check_finished_points compares the two; one that trains on gets
    // its new one when it starts to).
    if (done_with_other_config(p) || point_config_current(plan, p)) continue;
    // A point another cgsweep runs right now (a local run, an array task of an earlier job) keeps its file too: its
    // later stages read it. Its own array task writes the job's config when it runs the point, under the lock, as
    // every run does (refused while the other cgsweep runs it; a done point with another config is refused as above).
    // The lock is held only while the file is written, and a run that finds it held tries again for a while
    // (kPointLockPatience), so an array task starting meanwhile is not refused.
    const fs::path lock_path = fs::path(p.run_dir) / ".cgsweep.lock";
    FileLock lock(lock_path.string());
    lock.remove_file_at_release(true);  // none left where no run made one
    if (lock.held_elsewhere()) {
      spdlog::warn("point {} ({}): its point.yaml is left as it is: another cgsweep runs the point right now ({} "
                   "holds {}) and its later stages read that file; the point's array task writes this job's config "
                   "there when it runs the point, which it refuses to do while that cgsweep runs it (then: sbatch "
                   "--array={} {})", p.index, p.name, lock.who_holds(), lock_path.string(), p.index,
                   (fs::path(plan.spec.out_dir) / "sweep.sbatch").string());
      continue;
    }
    write_point_config(plan, p);  // also where the filesystem has no flock (!lock.locked()), as before the lock
  }
}

void check_finished_points(const SweepPlan& plan) {
  std::vector<const PlannedPoint*> all;
  for (const auto& p : plan.points) all.push_back(&p);
  check_finished(all);
}

namespace {

// The stage a stopped point resumes at: "export", "sample" or "eval" when training had finished ("preempted: X",
// "interrupted: X" or "failed: X (exit N)") with the config it has now; empty: run the point from the start
// (cgtrain resumes from its newest checkpoint).
std::string resume_stage(const SweepPlan& plan, const PlannedPoint& p) {
  if (!plan.spec.sample) return "";
  const std::string status = read_text(fs::path(p.run_dir) / "status");
  const auto colon = status.find(": ");
  if (colon == std::string::npos) return "";
  const std::string why = status.substr(0, colon);
  const std::string at = status.substr(colon + 2, status.find(" (", colon) - (colon + 2));  // "failed: eval (exit 1)"
  if (why != "preempted" && why != "interrupted" && why != "failed") return "";
  if (at != "export" && at != "sample" && at != "eval") return "";
  if (!fs::exists(hash_file(p)) || read_text(hash_file(p)) != config_hash(p.config_yaml)) return "";
  return at;
}

// run_one from the point's first stage not done (after `resume`, when given) to its last; `at` names the stage under
// way, for an error that ends it.
int run_stages(const SweepPlan& plan, const PlannedPoint& p, const RunOptions& opt, const std::string& resume,
               std::string& at) {
  const fs::path run(p.run_dir);
  const std::string cfg = (run / "point.yaml").string();
  // Stages before `resume` finished in an earlier run.
  const auto skip = [&](const std::string& stage_name) {
    if (resume.empty()) return false;
    for (const char* s : {"prep", "train", "export", "sample", "eval"}) {
      if (s == resume) return false;
      if (s == stage_name) return true;
    }
    return false;
  };
  if (!resume.empty()) spdlog::info("  training finished in an earlier run; resuming at {}", resume);

  // Shards: once per data setting. The lock makes concurrent array tasks wait for the first one's cgprep.
  const fs::path shards(p.shards_dir);
  const fs::path marker = shards / ".cgsweep-prepared";
  // The one-process tools run under opt.serial_launcher (under Slurm: a one-task job step, which --signal reaches).
  const auto serial = [&](std::vector<std::string> argv) {
    std::vector<std::string> out = launcher_argv(opt.serial_launcher, 1);
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  };
  // A tool found before the sweep but gone since (a rebuild under way) fails its stage like a log it cannot open.
  const auto stage_tool = [&](const std::string& stage_name, const std::string& name) {
    return failing_as(p, stage_name, [&] { return tool(opt, name); });
  };
  if (opt.dry_run) {
    spdlog::info("  [prep] {}  (unless {} exists)", join(serial({tool(opt, "cgprep"), cfg})), marker.string());
  } else if (!skip("prep")) {
    // Waits while another array task's cgprep holds it (a long time, maybe), unless SIGINT / SIGTERM / SIGUSR1
    // arrive.
    std::optional<FileLock> lock;
    failing_as(p, "prep", [&] {
      const std::string lock_path = shards.string() + ".lock";
      // Said once, as the wait starts: it may last as long as the other cgprep (minutes, on a large data set), with
      // nothing else in this task's output meanwhile.
      bool said = false;
      lock.emplace(lock_path, [&] {
        if (!said) {
          const std::string who = read_lock_holder(lock_path).describe();
          spdlog::info("  [prep] waiting for another cgsweep's cgprep of {} ({} holds {})", p.shards_dir,
                       who.empty() ? "it" : who, lock_path);
          said = true;
        }
        return g_signal == 0;
      });
      CG_CHECK(lock->locked() || lock->held_elsewhere(), "cannot lock {}.lock: {}", shards.string(),
               std::strerror(lock->error()));
    });
    if (!lock->locked()) return stopped_before(p, "prep", opt);
    if (!fs::exists(marker)) {
      const int rc = stage(p, "prep", serial({stage_tool("prep", "cgprep"), cfg}), opt);
      if (rc != 0) return rc;
      failing_as(p, "prep", [&] { write_text(marker, p.data_key); });
    } else {
      spdlog::info("  [prep] shards for data-{} already prepared in {}", p.data_key, p.shards_dir);
    }
  }

  // Before training is spent on the point; a dry run checks the shards already there.
  if (!skip("train")) at = "train";
  if (opt.prepared && !skip("train")) opt.prepared(p);

  const std::string launcher = opt.launcher.empty() ? default_launcher() : opt.launcher;
  if (!skip("train")) {
    std::vector<std::string> train = launcher_argv(launcher, plan.spec.np);
    train.push_back(stage_tool("train", "cgtrain"));
    train.push_back(cfg);
    if (const int rc = stage(p, "train", train, opt); rc != 0) return rc;
  }

  if (plan.spec.sample) {
    const std::string adapter = (run / "adapter").string();
    if (!skip("export")) {
      at = "export";
      const std::vector<std::string> argv = serial({stage_tool("export", "cgexport"), p.run_dir, "--out", adapter});
      if (int rc = stage(p, "export", argv, opt)) return rc;
    }
    // cgsample runs at the point's tp like cgtrain (all tp ranks draw the same tokens).
    if (!skip("sample")) {
      at = "sample";
      std::vector<std::string> sample = launcher_argv(launcher, plan.spec.np);
      sample.push_back(stage_tool("sample", "cgsample"));
      sample.push_back(cfg);
      if (int rc = stage(p, "sample", sample, opt)) return rc;
    }
    at = "eval";
    if (int rc = stage(p, "eval", serial({stage_tool("eval", "cgeval"), cfg}), opt)) return rc;
  }
  if (!opt.dry_run) set_status(p, "done");
  return 0;
}

int run_one(const SweepPlan& plan, const PlannedPoint& p, const RunOptions& opt) {
  const fs::path run(p.run_dir);
  const std::string hash = config_hash(p.config_yaml);
  // One cgsweep at a time per point: a second one (a rerun while the first still runs, a Slurm array submitted
  // again) would train in the same run folder at the same time and mark the point with its own status.
  std::optional<FileLock> point_lock;
  if (!opt.dry_run) {
    // Tried for a few seconds: a --slurm writing this point's point.yaml holds the lock that long at most.
    const auto give_up = std::chrono::steady_clock::now() + kPointLockPatience;
    point_lock.emplace((run / ".cgsweep.lock").string(),
                       [&] { return g_signal == 0 && std::chrono::steady_clock::now() < give_up; });
    CG_CHECK(!point_lock->held_elsewhere(), "point {} ({}) is being run by another cgsweep "
             "right now ({} holds {}); wait for that one to finish or stop it, then run again (a Slurm array task: "
             "sbatch --array={} {})", p.index, p.name, point_lock->who_holds(), (run / ".cgsweep.lock").string(),
             p.index, (fs::path(plan.spec.out_dir) / "sweep.sbatch").string());
    if (!point_lock->locked())  // a filesystem without flock: run, as before there was a lock
      spdlog::warn("point {}: cannot lock {} ({}); make sure no other cgsweep runs this point", p.name,
                   (run / ".cgsweep.lock").string(), std::strerror(point_lock->error()));
  }
  if (opt.dry_run && is_done(p) && fs::exists(hash_file(p)) && read_text(hash_file(p)) == hash) {
    spdlog::info("point {} ({}) is done; it would be skipped", p.index, p.name);
    return 0;
  }
  // A done point that trains on to its larger train.steps instead of being skipped (check_finished let it pass).
  std::optional<LongerTraining> longer = longer_training(p);
  if (longer && !longer->resumable) longer.reset();
  if (longer)
    spdlog::info("point {} ({}) is done at train.steps={}; {} on to train.steps={} from its last checkpoint, then "
                 "its later stages again", p.index, p.name, longer->from, opt.dry_run ? "it would train" : "training",
                 longer->to);
  if (!opt.dry_run && is_done(p) && !longer) {
    if (!fs::exists(hash_file(p)))
      spdlog::info("point {} ({}) is done (marked by an older cgsweep: its config is not checked); skipped", p.index,
                   p.name);
    else if (read_text(hash_file(p)) != hash)
      spdlog::info("point {} ({}) is done; its config differs from the one it ran with only in settings one of them "
                   "lacks (another cgtrain version) or in how its folders are spelled; skipped", p.index, p.name);
    else
      spdlog::info("point {} ({}) is done; skipped", p.index, p.name);
    return 0;
  }
  spdlog::info("point {} ({}) -> {}", p.index, p.name, p.run_dir);
  const std::string resume = opt.dry_run ? "" : resume_stage(plan, p);
  if (!opt.dry_run) {
    if (!longer && fs::exists(hash_file(p)) && read_text(hash_file(p)) != hash)
      spdlog::warn("point {}: its config changed since it last ran; cgtrain resumes the checkpoints in {} (if any) "
                   "with the new config", p.name, p.run_dir);
    // Under the point's lock (above), so that no other cgsweep's stages are reading it.
    if (!longer) failing_as(p, resume.empty() ? "prep" : resume, [&] { write_point_config(plan, p); });
    set_status(p, "running");
    write_record(p, hash_file(p), hash);
    // Not "done" any more: from here on it is a point whose config changed since it last ran, which gets its new one.
    if (longer) failing_as(p, "train", [&] { write_point_config(plan, p); });
  }
  std::string at = resume.empty() ? "prep" : resume;  // the stage under way
  if (opt.dry_run) return run_stages(plan, p, opt, resume, at);
  try {
    return run_stages(plan, p, opt, resume, at);
  } catch (const RecordNotWritten&) {
    throw;  // it says what the status still says; writing it again would fail alike
  } catch (const std::exception& e) {
    // An error no stage recorded (a stage records its setup's, failing_as, and its exit): RunOptions::prepared's,
    // or any other between stages. The point is not running any more: its status says where and why, and the rerun
    // picks it up there (resume_stage).
    if (read_text(fs::path(p.run_dir) / "status") == "running") record_failure(p, at, e);
    throw;
  }
}

// run_one for --keep-going: a point that cannot run (a stage that cannot start, another cgsweep running it) is told
// and counted as failed with kExitPointError, and the sweep goes on with the next point.
int run_one_or_note_why(const SweepPlan& plan, const PlannedPoint& p, const RunOptions& opt) {
  try {
    return run_one(plan, p, opt);
  } catch (const RecordNotWritten&) {
    throw;  // the next points' outcomes could not be recorded either
  } catch (const std::exception& e) {
    const Error* cg = dynamic_cast<const Error*>(&e);
    spdlog::error("point {} ({}) could not run: {}; going on with the next point (--keep-going)", p.index, p.name,
                  cg ? message_of(*cg) : e.what());
    return kExitPointError;
  }
}

}  // namespace

int run_point(const SweepPlan& plan, const PlannedPoint& p, const RunOptions& opt) {
  start_signal_handling();
  check_finished({&p});
  check_tools(plan, opt);
  return run_one(plan, p, opt);
}

int run_sweep(const SweepPlan& plan, const RunOptions& opt) {
  start_signal_handling();
  check_finished_points(plan);
  check_tools(plan, opt);
  int worst = 0;
  std::vector<std::string> failed;
  for (size_t i = 0; i < plan.points.size(); ++i) {
    const PlannedPoint& p = plan.points[i];
    // A signal that arrived during the previous point (which then finished anyway) stops the sweep here.
    if (const int sig = g_signal) {
      spdlog::warn("signal {} received; stopping before point {} ({})", sig, p.index, p.name);
      return sig == SIGUSR1 ? kExitPreempted : 128 + sig;
    }
    const int rc = opt.keep_going ? run_one_or_note_why(plan, p, opt) : run_one(plan, p, opt);
    if (rc == kExitPreempted) return rc;
    if (rc != 0 && (g_signal == SIGINT || g_signal == SIGTERM)) return rc;  // interrupted, not failed
    if (rc != 0) {
      worst = rc;
      failed.push_back(p.name);
      const size_t left = plan.points.size() - 1 - i;
      if (!opt.keep_going) {
        if (left > 0)
          spdlog::error("sweep stopped at the failed point {}: {} later point(s) not attempted (--keep-going runs "
                        "them past failures; the same command resumes)", p.name, left);
        return rc;
      }
    }
  }
  if (!failed.empty())
    spdlog::error("{} of {} points failed: {} (their <point>/status and logs say why; the same command retries "
                  "them)", failed.size(), plan.points.size(), fmt::join(failed, ", "));
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
    // cgeval's report.json: a point's eval.input is its <run_dir>/samples (plan_sweep gives it) and eval.out is
    // refused in a sweep's config (check_point_config), so cgeval wrote <run_dir>/samples/eval; none yet: no scores.
    r.metrics.validity = read_validity((run / "samples" / "eval" / "report.json").string());
    rows.push_back(std::move(r));
  }
  return rows;
}

void summarize(const SweepPlan& plan) {
  size_t started = 0;
  for (const auto& p : plan.points) started += fs::exists(fs::path(p.run_dir) / "status");
  if (started == 0)
    spdlog::warn("no point of this sweep has run in {} (no <point>/status there): is out_dir (or --out-dir) the "
                 "folder the sweep ran in?", plan.spec.out_dir);
  const std::string title = "Sweep " + fs::path(plan.spec.path).stem().string();
  write_summary(plan.spec.out_dir, title, plan.spec.keys, collect_rows(plan));
  spdlog::info("summary: {}/summary.md, {}/summary.csv, {}/val_loss_vs_rank.svg", plan.spec.out_dir,
               plan.spec.out_dir, plan.spec.out_dir);
}

}  // namespace cg::sweep
