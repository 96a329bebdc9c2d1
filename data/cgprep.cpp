// cgprep: MP-20 CSVs (or another dataset's, or CIF folders) -> tokenized HDF5 shards (+ tokenizer.model) in
// data.shards_dir.
//   cgprep [CONFIG.yaml] [data.key=value ...]      see --help for every key
// SIGINT, SIGTERM or SIGHUP stops it like a failure (nothing of the run is kept), after which it dies of that signal
// (exit status 128 + N in a shell); a second one kills it at once, leaving .cgprep.tmp for the next run to clear (a
// data.shards_dir it made is removed if still empty, with the empty parents it made).
#include <limits.h>
#include <signal.h>
#include <spdlog/fmt/ranges.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "data/prep.h"
#include "trainer/config.h"

namespace {

// The first stop signal's number (0: none), polled by run_prep. Not trainer/signals.h's handlers: those keep the
// process alive to checkpoint and exit 75/130; cgprep has nothing to save and leaves as the signal asks.
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free atomic");

// The folders this cgprep makes for data.shards_dir, for the second signal's exit, which cannot wait for run_prep's
// cleanup: data.shards_dir's absolute path (g_made_len bytes), and the length of its prefix that names the outermost
// folder missing when cgprep started (0: data.shards_dir existed, nothing to remove). Set before the handlers arm.
char g_made_dir[PATH_MAX];
size_t g_made_len = 0, g_made_root_len = 0;

// Notes data.shards_dir and the parents it lacks, as run_prep's MadeFolders will make them.
void note_made_dir(const std::string& shards_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::absolute(shards_dir, ec).lexically_normal();
  if (ec) return;
  if (!dir.has_filename()) dir = dir.parent_path();  // "out/": the folder "out"
  std::string root;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec) && p != p.parent_path(); p = p.parent_path())
    root = p.string();
  const std::string path = dir.string();
  if (root.empty() || path.size() >= sizeof g_made_dir) return;  // it existed, or a path too long to note
  std::memcpy(g_made_dir, path.c_str(), path.size() + 1);
  g_made_len = path.size();
  g_made_root_len = root.size();
}

// rmdir(2) of data.shards_dir, then of each parent up to the outermost it made, while they are empty: a folder that
// holds anything (.cgprep.tmp, say) stays, and so do those above it. Async-signal-safe: rmdir and byte loops over
// the buffer, which it cuts at each '/' (the process dies right after).
void remove_empty_made_dirs() {
  if (g_made_root_len == 0) return;
  const int saved = errno;
  for (size_t len = g_made_len;;) {
    g_made_dir[len] = '\0';
    if (rmdir(g_made_dir) != 0 && errno != ENOENT) break;  // not empty, or not ours to remove: keep it and above
    if (len <= g_made_root_len) break;                     // the outermost folder it made
    do --len;
    while (len > g_made_root_len && g_made_dir[len] != '/');
  }
  errno = saved;
}

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.load() == 0) {
    g_stop_signal.store(sig);
    return;
  }
  remove_empty_made_dirs();
  struct sigaction dfl {};  // a second signal: the default action (death) when this handler returns
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
  raise(sig);
}

// A signal ignored when cgprep starts stays ignored: SIGHUP under nohup, SIGINT in a background job of a script.
void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes resume; run_prep polls the flag
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaction(sig, &sa, nullptr);
  }
}

// Dies of `sig` as if it had not been caught, so a shell or scheduler sees 128 + sig (and a shell script stops on
// Ctrl-C). Returns that status should the signal not kill.
int die_of(int sig) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
  raise(sig);
  return 128 + sig;
}

// Shards of another cgprep run in the folder are replaced (a run trained on them cannot resume on the new ones):
// say so, naming the data settings that changed, before the minutes of work that replace them.
void warn_if_other_settings(const cg::Config& cfg) {
  const std::string old_yaml = cfg.data.shards_dir + "/cgprep_config.yaml";
  if (!std::filesystem::is_regular_file(old_yaml)) return;
  std::vector<std::string> changed;
  try {
    for (const std::string& d : cg::config_differences(cg::load_saved_config(old_yaml), cfg))
      if (d.rfind("data.", 0) == 0 && d.rfind("data.shards_dir ", 0) != 0 && d.rfind("data.shard_samples ", 0) != 0)
        changed.push_back(d);
  } catch (const std::exception& e) {
    spdlog::warn("{} holds shards of an earlier cgprep whose {} cannot be read ({}); they are replaced",
                 cfg.data.shards_dir, old_yaml, e.what());
    return;
  }
  if (changed.empty()) return;
  spdlog::warn("{} holds shards made with other settings ({}); they are replaced, and a run trained on them may not "
               "resume on the new ones (cgtrain says so if it cannot): give another data.shards_dir to keep both",
               cfg.data.shards_dir,
               fmt::format("{}", fmt::join(changed, "; ")));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto cfg = cg::parse_cli(argc, argv, "cgprep",
                             "Turns train/val/test splits (MP-20's CSVs by default; any CSV in CDVAE's layout, "
                             "data.columns naming its columns; or folders of CIF files) into tokenized, augmented "
                             "HDF5 shards (data.* keys; data.tokenizer = a sentencepiece .model or 'train').");
    if (!cfg) return 0;
    cg::init_logging(0, 1, cfg->log.level);
    note_made_dir(cfg->data.shards_dir);  // before the handlers read it
    install_stop_handlers();
    cg::check_shards_dir_owned(cfg->data.shards_dir);
    warn_if_other_settings(*cfg);
    // cgprep_config.yaml is committed with the shards it describes: written after them, a full disk there left new
    // shards beside no cgprep_config.yaml (the next cgprep refused the folder as not its own) or an earlier run's.
    const cg::PrepReport r = cg::run_prep(cfg->data, 0, &g_stop_signal, cg::to_yaml(*cfg));
    // run_prep ignores a signal once it commits: the shards are complete, so the exit status says success.
    if (const int sig = g_stop_signal.load())
      spdlog::warn("signal {} came as the shards were being committed: they are complete and kept", sig);
    for (const auto& s : r.splits)
      spdlog::info("{:>5}: {} rows -> {} samples, {} tokens; {} rows skipped", s.split, s.rows_read, s.samples,
                   s.tokens, s.rows_skipped);
    spdlog::info("done in {}; shards and tokenizer.model in {}", cg::human_duration(r.seconds), cfg->data.shards_dir);
    return 0;
  } catch (const std::exception& e) {
    cg::init_logging(0, 1);
    spdlog::error("{}", e.what());
    if (const int sig = g_stop_signal.load()) return die_of(sig);
    return 1;
  }
}
