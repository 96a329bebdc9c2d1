// Atomic checkpoint folders: step-N.tmp -> rank files -> manifest (last) -> fsync -> rename -> retention.
#include "trainer/checkpoint_dir.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "common/json_int.h"
#include "common/durable_file.h"
#include "common/error.h"
#include "common/sha256.h"

namespace cg {
namespace fs = std::filesystem;

namespace {

// A full disk or quota at a save (disk_full): which folders may go. Other failures get io_advice's, by their errno.
constexpr const char* kFullHint =
    "the disk is full: free space (older step-N folders under checkpoints/ may go: checkpoint.keep_last prunes only "
    "after a save succeeds) or change train.run_dir";
constexpr const char* kManifestName = "manifest.json";

std::string step_name(int64_t step) { return fmt::format("step-{}", step); }

// Step folders this process's resume skipped (find_latest_complete): retention neither counts nor deletes them.
std::set<std::string> g_skipped;

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int err) {
  CG_FAIL_IO(err, "{} {}", what, path);  // save_checkpoint's guard gives the advice
}

void make_dirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) fail_io("cannot create checkpoint folder", p.string(), ec.value());
}

void remove_all_quiet(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) spdlog::warn("could not remove {}: {}", p.string(), ec.message());
}

// step-N folders under dir, newest first: committed ones, and step-N.old where no step-N exists (a kill between
// commit's two renames on a filesystem without RENAME_EXCHANGE); never step-N.tmp (not committed).
std::vector<std::pair<int64_t, fs::path>> list_steps(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  static const std::regex re(std::string(kStepNumber) + "(\\.old)?");
  std::map<int64_t, fs::path> olds;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (!e.is_directory(ec)) continue;
    if (!std::regex_match(name, m, re)) {
      static const std::regex padded("step-0[0-9]{1,18}(\\.old)?");  // a copy renamed by hand: said once, not read
      static std::set<std::string> said;
      if (std::regex_match(name, padded) && said.insert(e.path().string()).second)
        spdlog::warn("ignoring {}: not a checkpoint name cgtrain writes (step-N, no leading zeros); rename it to "
                     "step-{} if it is one", e.path().string(), std::stoll(name.substr(5)));
      continue;
    }
    if (m[2].matched) olds.emplace(std::stoll(m[1]), e.path());
    else out.emplace_back(std::stoll(m[1]), e.path());
  }
  for (const auto& old : olds)
    if (std::none_of(out.begin(), out.end(), [&](const auto& s) { return s.first == old.first; }))
      out.emplace_back(old);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json to_json(const Manifest& m) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : m.files) files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  return {{"magic", m.magic},
          {"version", m.version},
          {"step", m.step},
          {"layout", {{"world", m.layout.world}, {"tp", m.layout.tp}, {"dp", m.layout.dp}}},
          {"config_hash", m.config_hash},
          {"created", m.created},
          {"files", files},
          {"required", m.required}};
}

// Lists every file under tmp (written by any rank), fsyncs and hashes it. Each `required` file is looked up by name
// too: on a network filesystem a listing may not show yet what another node has just written.
std::vector<ManifestFile> collect_files(const fs::path& tmp, const std::vector<std::string>& required) {
  std::vector<ManifestFile> files;
  for (const auto& e : fs::recursive_directory_iterator(tmp)) {
    if (e.is_directory()) {
      fsync_path(e.path().string(), true);
      continue;
    }
    std::string rel = fs::relative(e.path(), tmp).generic_string();
    if (rel == kManifestName) continue;
    CG_CHECK(e.is_regular_file(), "checkpoint file {} is not a regular file; rank writers must write plain files",
             e.path().string());
    fsync_path(e.path().string(), false);
    files.push_back({rel, static_cast<uint64_t>(e.file_size()), sha256_file(e.path().string())});
  }
  for (const auto& rel : required) {  // required but not listed (a stale listing): look it up by name
    if (std::any_of(files.begin(), files.end(), [&](const ManifestFile& f) { return f.path == rel; })) continue;
    const fs::path p = tmp / rel;
    std::error_code ec;
    CG_CHECK(fs::is_regular_file(p, ec), "{} is missing from the checkpoint folder although its writer reported "
             "success: train.run_dir must be on a filesystem every node shares (and sees the others' writes)",
             p.string());
    fsync_path(p.string(), false);
    files.push_back({rel, static_cast<uint64_t>(fs::file_size(p)), sha256_file(p.string())});
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return files;
}

// renameat2's RENAME_EXCHANGE (Linux 3.15), called through syscall() so that glibc older than 2.28 builds too.
constexpr unsigned kRenameExchange = 1u << 1;

// Where an unusable step-N (verify_checkpoint's `why`) goes before step N is saved again: step-N.unfinished (no
// manifest.json) or step-N.damaged, with -2, -3, ... when that name is taken (moved aside before), so that an earlier
// one never fails the save. No step folder scan reads such a name, so nothing reads, counts or deletes it.
fs::path aside_name(const fs::path& step_dir, const std::string& why) {
  const std::string kind = why == kNoManifest ? ".unfinished" : ".damaged";
  const fs::path base = step_dir.parent_path() / (step_dir.filename().stem().string() + kind);  // drops .old
  fs::path p = base;
  std::error_code ec;
  for (int i = 2; fs::exists(p, ec) || fs::is_symlink(p, ec); ++i) p = base.string() + fmt::format("-{}", i);
  return p;
}

// Why the step-N (or step-N.old) folder a save is about to replace is damaged; empty when it is intact. A folder the
// resume skipped says its reason again; others are checked in full (a same-step save is rare: a resume that skipped a
// damaged folder, or a test).
std::string damage_of(const fs::path& dir) {
  const std::string why = verify_checkpoint(dir.string());
  if (why.empty() && g_skipped.count(fs::weakly_canonical(dir).string()))
    return "skipped by this run's resume";  // intact now (repaired by hand?): kept all the same
  return why;
}

void commit(const fs::path& ckdir, const fs::path& tmp, const fs::path& final_dir, const Manifest& m) {
  std::string text = to_json(m).dump(2) + "\n";
  write_file_durable((tmp / kManifestName).string(), text.data(), text.size());
  fsync_path(tmp.string(), true);
  std::error_code ec;
  fs::path old = final_dir.string() + ".old";
  // The folder that stands for step N now (step-N, or step-N.old while no step-N exists): a damaged one is kept, moved
  // to a name no scan reads before the new one goes in (a kill between the two renames leaves no step-N, which was
  // unusable anyway, and a complete step-N.tmp that the next save clears: the run resumes from the step before).
  const fs::path current = fs::exists(final_dir, ec) ? final_dir : fs::exists(old, ec) ? old : fs::path();
  if (!current.empty()) {
    if (const std::string why = damage_of(current); !why.empty()) {
      const fs::path aside = aside_name(current, why);
      if (::rename(current.c_str(), aside.c_str()) != 0)
        fail_io("cannot move the unusable checkpoint aside to " + aside.string() + " from", current.string(), errno);
      spdlog::warn("checkpoint {} is {}: moved it to {} before saving step {} again; cgtrain neither reads nor "
                   "deletes it (look at it, then delete it)", current.string(), unusable_state(why), aside.string(),
                   m.step);
      g_skipped.erase(fs::weakly_canonical(current).string());
    }
  }
  if (fs::exists(final_dir, ec)) {
    // Saving a step again (a resume that skipped a damaged step-N reaches N again): swap the two folders in one
    // step, so that a kill at any moment leaves one complete step-N; the old one, now under tmp's name, goes.
    if (::syscall(SYS_renameat2, AT_FDCWD, tmp.c_str(), AT_FDCWD, final_dir.c_str(), kRenameExchange) == 0) {
      fsync_path(ckdir.string(), true);
      remove_all_quiet(tmp);
      remove_all_quiet(old);  // a stale one would count as step N again once step-N is pruned
      return;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
      fail_io("cannot swap in the new checkpoint at", final_dir.string(), errno);
    // A filesystem without the exchange: move aside, then in. A kill between the two leaves step-N.old, which
    // list_steps reads as step-N while no step-N exists.
    remove_all_quiet(old);
    if (::rename(final_dir.c_str(), old.c_str()) != 0) fail_io("cannot move aside", final_dir.string(), errno);
  }
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) fail_io("cannot rename checkpoint into", final_dir.string(), errno);
  fsync_path(ckdir.string(), true);
  remove_all_quiet(old);
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, int64_t step, int rank, const CheckpointLayout& layout,
                            const std::string& config_hash, const WriteFiles& write_files, const AllOk& all_ok,
                            int64_t keep_last, const std::vector<std::string>& required) {
  CG_CHECK(step >= 0, "checkpoint step must be >= 0, got {}", step);
  CG_CHECK(keep_last >= 1, "checkpoint.keep_last must be >= 1, got {}", keep_last);
  const fs::path ckdir = fs::path(run_dir) / "checkpoints";
  const fs::path tmp = ckdir / (step_name(step) + ".tmp");
  const fs::path final_dir = ckdir / step_name(step);
  std::string err;
  auto guarded = [&](const std::function<void()>& fn) {
    // What failed, and the advice its errno calls for: a full disk gets the checkpoint's own (which folders may
    // go), anything else (a file size limit, a read-only or failing disk, a folder in a file's place) its OS reason.
    const auto advice = [](int e) {
      return disk_full(e) ? std::string(kFullHint) : io_advice(e, "change train.run_dir");
    };
    try {
      fn();
    } catch (const IoError& e) {
      err = fmt::format("{}; {}", e.failure, advice(e.err));
    } catch (const fs::filesystem_error& e) {
      err = fmt::format("{}; {}", e.what(), advice(e.code().value()));
    } catch (const Error& e) {
      err = message_of(e);
    } catch (const std::exception& e) {
      err = e.what();
    }
  };
  auto abort_if_failed = [&](const char* phase) {
    if (all_ok(err.empty())) return;
    if (rank == 0) remove_all_quiet(tmp);
    if (err.empty()) err = fmt::format("another rank failed while {}; see its log", phase);
    CG_FAIL("checkpoint {} not saved (rank {}, {}): {}", final_dir.string(), rank, phase, err);
  };

  // 1. rank 0 clears leftovers of interrupted saves and creates step-N.tmp.
  if (rank == 0) guarded([&] {
      make_dirs(ckdir);
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(ckdir, ec)) {
        const fs::path& p = e.path();
        // Interrupted saves (never committed, never read), and step-N.old folders that a committed step-N has
        // replaced.
        if (p.extension() == ".tmp") {
          spdlog::info("removing {}: a save that did not finish (never read as a checkpoint)", p.string());
          remove_all_quiet(p);
        } else if (p.extension() == ".old" && fs::exists(ckdir / p.stem(), ec)) {
          remove_all_quiet(p);
        }
      }
      make_dirs(tmp);
    });
  abort_if_failed("creating the folder");

  // 2. every rank writes its files.
  guarded([&] { write_files(tmp.string()); });
  // Fault injection for tests (test_train_e2e): CG_TEST_KILL_IN_SAVE=N makes rank 1 SIGKILL itself once its step-N
  // files are written, before the manifest and rename. One getenv per save.
  if (const char* k = std::getenv("CG_TEST_KILL_IN_SAVE"); k && rank == 1 && std::to_string(step) == k)
    std::raise(SIGKILL);
  abort_if_failed("writing rank files");

  // 3. rank 0 writes the manifest last and renames the folder into place.
  if (rank == 0) guarded([&] {
      Manifest m;
      m.step = step;
      m.layout = layout;
      m.config_hash = config_hash;
      m.created = utc_now();
      m.files = collect_files(tmp, required);
      m.required = required;
      commit(ckdir, tmp, final_dir, m);
    });
  abort_if_failed("writing the manifest");

  // 4. retention: this folder and the newest keep_last - 1 intact ones of lower steps stay; higher steps are never
  // touched. A damaged folder (skipped by the resume, or one that fails the check without checksums) is neither
  // counted nor deleted: it would take an intact checkpoint's place, and it is left for a look.
  if (rank == 0) {
    g_skipped.erase(fs::weakly_canonical(final_dir).string());  // saved again over a damaged one: intact now
    int64_t kept = 1;
    for (const auto& [s, path] : list_steps(ckdir)) {
      if (s >= step) continue;
      if (g_skipped.count(fs::weakly_canonical(path).string()) ||
          !verify_checkpoint(path.string(), nullptr, /*checksums=*/false).empty())
        continue;
      if (kept < keep_last) {
        ++kept;
        continue;
      }
      spdlog::info("removing old checkpoint {}", path.string());
      remove_all_quiet(path);
    }
  }
  return final_dir.string();
}

Manifest read_manifest(const std::string& step_dir) {
  const std::string path = (fs::path(step_dir) / kManifestName).string();
  // read_file, not an ifstream: a folder in the file's place reads as an error naming it, not as libstdc++'s
  // "basic_filebuf::underflow error" thrown past the JSON parser's handler.
  const std::string text = read_file(path, "checkpoint manifest");
  Manifest m;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    m.magic = j.at("magic").get<std::string>();
    constexpr int64_t kIntMax = std::numeric_limits<int>::max();
    m.version = int(json_int_at(j, "version", path, 0, kIntMax));
    m.step = json_int_at(j, "step", path, 0);
    m.layout.world = int(json_int_at(j.at("layout"), "world", path, 1, kIntMax));
    m.layout.tp = int(json_int_at(j.at("layout"), "tp", path, 1, kIntMax));
    m.layout.dp = int(json_int_at(j.at("layout"), "dp", path, 1, kIntMax));
    m.config_hash = j.at("config_hash").get<std::string>();
    m.created = j.value("created", "");
    for (const auto& f : j.at("files"))
      m.files.push_back({f.at("path").get<std::string>(), uint64_t(json_int_at(f, "size", path, 0)),
                         f.at("sha256").get<std::string>()});
    if (j.contains("required"))
      for (const auto& r : j.at("required")) m.required.push_back(r.get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    CG_FAIL("{} is not a valid checkpoint manifest: {}", path, e.what());
  }
  for (const auto& f : m.files) {  // read and checksummed under the step folder: never a path out of it
    const fs::path rel(f.path);
    CG_CHECK(!rel.empty() && rel.is_relative() && std::find(rel.begin(), rel.end(), "..") == rel.end(),
             "{}: file '{}' is not inside the step folder; the manifest is damaged", path, f.path);
  }
  CG_CHECK(m.magic == kCheckpointMagic, "{}: magic is '{}', expected '{}'", path, m.magic, kCheckpointMagic);
  CG_CHECK(m.version <= kCheckpointVersion, "{}: version {} is newer than this build reads ({}); update cgtrain",
           path, m.version, kCheckpointVersion);
  return m;
}

std::string verify_checkpoint(const std::string& step_dir, Manifest* manifest, bool checksums) {
  const fs::path dir(step_dir);
  std::error_code ec;
  if (!fs::exists(dir / kManifestName, ec)) return kNoManifest;
  Manifest m;
  try {
    m = read_manifest(step_dir);
  } catch (const Error& e) {
    return message_of(e);
  }
  if (manifest) *manifest = m;
  static const std::regex re(kStepNumber);
  std::smatch sm;
  std::string name = dir.filename().string();
  if (std::regex_match(name, sm, re) && std::stoll(sm[1]) != m.step)
    return fmt::format("manifest says step {} but the folder is {}", m.step, name);
  for (const auto& r : m.required)  // a manifest edited to leave out a file the save wrote is not that save's
    if (std::none_of(m.files.begin(), m.files.end(), [&](const ManifestFile& f) { return f.path == r; }))
      return fmt::format("the manifest lists no {}, which every save of this run writes", r);
  for (const auto& f : m.files) {
    const fs::path p = dir / f.path;
    if (!fs::is_regular_file(p, ec)) return fmt::format("missing file {}", f.path);
    uint64_t size = fs::file_size(p, ec);
    if (ec || size != f.size) return fmt::format("size mismatch in {} (manifest {} bytes, found {})", f.path, f.size, size);
    if (!checksums) continue;
    std::string sum;
    try {
      sum = sha256_file(p.string());
    } catch (const Error& e) {
      return message_of(e);
    }
    if (sum != f.sha256) return fmt::format("checksum mismatch in {}", f.path);
  }
  return "";
}

std::string rank_file_name(int rank) { return fmt::format("rank-{:05d}.safetensors", rank); }

std::string step_folder(const std::string& run_dir, int64_t step) {
  const fs::path dir = fs::path(run_dir) / "checkpoints" / step_name(step);
  std::error_code ec;
  if (!fs::exists(dir, ec) && fs::is_directory(dir.string() + ".old", ec)) return dir.string() + ".old";
  return dir.string();
}

int64_t step_of_folder(const std::string& path) {
  const fs::path p = fs::path(path).lexically_normal();
  const fs::path dir = p.has_filename() ? p : p.parent_path();  // "step-5/"
  const std::string name = dir.filename().string();
  static const std::regex re(kStepNumber);
  std::smatch m;
  if (dir.parent_path().filename() != "checkpoints" || !std::regex_match(name, m, re)) return -1;
  std::error_code ec;
  if (!fs::exists(dir / kManifestName, ec) && fs::is_directory(dir / "checkpoints", ec)) return -1;
  return std::stoll(m[1].str());
}

std::vector<int64_t> checkpoint_steps(const std::string& run_dir) {
  std::vector<int64_t> out;
  for (const auto& [step, path] : list_steps(fs::path(run_dir) / "checkpoints")) out.push_back(step);
  return out;
}

std::optional<CheckpointInfo> find_latest_complete(const std::string& run_dir) {
  for (const auto& [step, path] : list_steps(fs::path(run_dir) / "checkpoints")) {
    CheckpointInfo info;
    std::string why = verify_checkpoint(path.string(), &info.manifest);
    if (!why.empty()) {
      spdlog::warn("skipping checkpoint {}: {}; kept as it is: a save of step {} moves it aside to {} first",
                   path.string(), unusable_state(why), step, aside_name(path, why).filename().string());
      g_skipped.insert(fs::weakly_canonical(path).string());
      continue;
    }
    info.step = step;
    info.path = path.string();
    return info;
  }
  return std::nullopt;
}

NewestCheckpoint newest_checkpoint(const std::string& run_dir) {
  NewestCheckpoint n;
  const std::vector<int64_t> steps = checkpoint_steps(run_dir);
  n.info.step = -1;  // CheckpointInfo's own default is step 0, which the tools would read as a step folder
  if (steps.empty()) return n;
  n.info.step = steps.front();
  n.info.path = step_folder(run_dir, n.info.step);
  n.why = verify_checkpoint(n.info.path, &n.info.manifest);
  if (!n.why.empty()) n.newest_intact = newest_intact_step(run_dir, n.info.step);
  return n;
}

int64_t newest_intact_step(const std::string& run_dir, int64_t except) {
  for (const int64_t step : checkpoint_steps(run_dir))
    if (step != except && verify_checkpoint(step_folder(run_dir, step)).empty()) return step;
  return -1;
}

std::string unusable_state(const std::string& why) {
  return fmt::format("{} ({})", why == kNoManifest ? "unfinished" : "damaged", why);
}

std::string unusable_fix(const std::string& why, int64_t step) {
  const bool unfinished = why == kNoManifest;
  if (step < 0) return unfinished ? "copy that folder again whole" : "restore that folder from a copy";
  return fmt::format("{} (a resume from an older step that saves step {} again first moves this folder aside to "
                     "step-{}.{})", unfinished ? "copy that folder again whole" : "restore that folder from a copy",
                     step, step, unfinished ? "unfinished" : "damaged");
}

std::string unusable_refusal(const std::string& what, int64_t step, const std::string& why, int64_t intact,
                             const std::string& use_intact) {
  const std::string other = intact >= 0 ? fmt::format("the run's newest intact step is {}: {}", intact, use_intact)
                                        : std::string("no other step of the run is intact either");
  return fmt::format("{} is {}; {}. Or {}", what, unusable_state(why), other, unusable_fix(why, step));
}

void check_layout(const Manifest& m, const CheckpointLayout& now, bool allow_dp_change) {
  bool ok = m.layout.tp == now.tp && (allow_dp_change || m.layout.dp == now.dp);
  CG_CHECK(ok,
           "checkpoint step {} was written with world={} tp={} dp={}, this run has world={} tp={} dp={}; resume with "
           "parallel.tp={}{} or start a new train.run_dir",
           m.step, m.layout.world, m.layout.tp, m.layout.dp, now.world, now.tp, now.dp, m.layout.tp,
           allow_dp_change ? "" : fmt::format(" parallel.dp={}", m.layout.dp));
}

}  // namespace cg
