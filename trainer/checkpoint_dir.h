// CheckpointDir: the mechanics of atomic, self-describing checkpoint folders (what goes inside is the caller's).
//
//   run_dir/checkpoints/step-N.tmp/   rank 0 creates it; every rank writes its files into it (write callback)
//   all ranks agree that every write succeeded (the caller's all_ok callback: an all-reduce of a flag)
//   rank 0 writes manifest.json LAST (magic, version, step, world/tp/dp, config hash, every file's size + sha256),
//   fsyncs every file and the folder, renames step-N.tmp -> step-N, fsyncs checkpoints/, deletes all but keep_last.
// A step-N/ folder therefore exists only when complete; find_latest_complete() also re-verifies the checksums and
// skips (with a warning naming the reason) folders without a manifest, with missing files or checksum mismatches.
// On any failure (full disk, unwritable folder) the .tmp is removed, older checkpoints are untouched and every rank
// throws cg::Error with the path, the errno text and the advice it calls for: which folders may go for a full disk
// (ENOSPC, EDQUOT), else io_advice's (a file size limit, a read-only file system, ...) with "change train.run_dir".
// run_dir must be on a filesystem every rank sees (rank 0 lists and hashes the files written by all ranks).
#pragma once
#include "common/durable_file.h"  // write_file_durable, for the rank files
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cg {

inline constexpr const char* kCheckpointMagic = "cgtrain-checkpoint";
inline constexpr int kCheckpointVersion = 1;
// A step folder's name, step-N, as a regex whose group 1 is N: the digits cgtrain writes (no leading zero, so each
// step has one name; a copy named step-015 is no checkpoint folder) and at most 18 of them (std::stoll cannot
// overflow).
inline constexpr const char* kStepNumber = "step-(0|[1-9][0-9]{0,17})";

struct CheckpointLayout {
  int world = 1;
  int tp = 1;
  int dp = 1;
};

struct ManifestFile {
  std::string path;    // relative to the step-N folder, '/'-separated
  uint64_t size = 0;   // bytes
  std::string sha256;  // lowercase hex
};

struct Manifest {
  std::string magic = kCheckpointMagic;
  int version = kCheckpointVersion;
  int64_t step = 0;
  CheckpointLayout layout;
  std::string config_hash;
  std::string created;              // UTC time, ISO 8601
  std::vector<ManifestFile> files;  // every file of the folder except manifest.json, sorted by path
  std::vector<std::string> required;  // files the save could not be without (every rank's file, ...): each must be
                                      // among `files` (absent in manifests of older builds)
};

// Collective agreement: returns true on every rank iff every rank passed ok = true. It is also a barrier.
// Single process: [](bool ok) { return ok; }. Multi-rank: an all-reduce (min) of the flag over the world.
using AllOk = std::function<bool(bool ok)>;
// Writes this rank's files into `dir` (the step-N.tmp folder); throws on failure.
using WriteFiles = std::function<void(const std::string& dir)>;

struct CheckpointInfo {
  int64_t step = 0;
  std::string path;  // run_dir/checkpoints/step-N
  Manifest manifest;
};

// Called by every rank with the same arguments. Returns the final step-N path. keep_last >= 1.
// `required`: files (relative to the folder) that must be in it before the manifest is written, e.g. every rank's
// file; rank 0 looks each up by name (a directory listing on a network filesystem can lag behind other nodes'
// writes), and a missing one fails the save instead of committing a checkpoint that cannot be loaded.
// Retention deletes complete folders of lower steps only: the folder just written is always kept, and so are
// folders of higher steps (a resume that skipped a damaged newest folder never deletes it behind the user's back).
// A step-N that exists already is replaced when intact; an unusable one (the resume skipped it, or it fails the full
// check now) is first moved to step-N.unfinished when it has no manifest.json, else to step-N.damaged (-2, -3, ...
// when the name is taken, so an earlier one moved aside never fails the save), with a warning naming both paths: no
// scan reads those names, so they are never resumed from, counted or deleted. Leftover step-*.tmp folders (saves that
// did not finish, never read) are removed, said in the log.
std::string save_checkpoint(const std::string& run_dir, int64_t step, int rank, const CheckpointLayout& layout,
                            const std::string& config_hash, const WriteFiles& write_files, const AllOk& all_ok,
                            int64_t keep_last, const std::vector<std::string>& required = {});

// Steps of the step-N/ folders under run_dir/checkpoints (verified or not), newest first.
std::vector<int64_t> checkpoint_steps(const std::string& run_dir);

// Newest step-N/ under run_dir/checkpoints whose manifest parses and whose files all verify; nullopt when none.
// Skipped folders are logged as warnings with the reason, and remembered: a later save of their step moves them
// aside (save_checkpoint), retention skips them. Reads every file once (sha256).
std::optional<CheckpointInfo> find_latest_complete(const std::string& run_dir);

// The newest step-N/ of a run, for the tools that read "the run" as its newest step (cgexport, cgsample): a resume
// goes on from the newest intact one (find_latest_complete), but such a tool would silently read an older step than
// the user believes, so it refuses when `why` is not empty. A step-N.tmp still being written is no step folder.
struct NewestCheckpoint {
  CheckpointInfo info;         // the newest step folder (info.step -1: the run has none); its manifest when intact
  std::string why;             // empty: it verifies; else what verify_checkpoint found wrong with it
  int64_t newest_intact = -1;  // when `why`: the newest older step that verifies; -1 when none does
};
NewestCheckpoint newest_checkpoint(const std::string& run_dir);

// The newest step of the run whose folder verifies, other than `except`; -1 when none does. Reads every file of the
// folders it checks (sha256).
int64_t newest_intact_step(const std::string& run_dir, int64_t except = -1);

// verify_checkpoint's reason for a step folder without manifest.json: unfinished, not damaged.
inline constexpr const char* kNoManifest =
    "it has no manifest.json, which cgtrain writes last: a save or a copy of the folder that did not finish";
// How cgtrain, cgexport and cgsample name a step folder that verify_checkpoint refused for `why`:
// "unfinished (<why>)" when it has no manifest.json, else "damaged (<why>)".
std::string unusable_state(const std::string& why);
// What to do about such a folder, step `step` of its run: copy it again whole, or restore it from a copy (a resume
// from an older step saves that step again and moves the folder aside first).
std::string unusable_fix(const std::string& why, int64_t step);
// The sentence cgexport and cgsample refuse such a folder with (a tool must not quietly read an older step than the
// user named): "<what> is damaged (<why>); the run's newest intact step is <intact>: <use_intact>. Or <unusable_fix>",
// or "...; no other step of the run is intact either. Or ..." when `intact` is -1. `use_intact`: how this tool takes
// step <intact> on purpose ("to sample it on purpose, set sample.adapter=..."); unused when `intact` is -1.
std::string unusable_refusal(const std::string& what, int64_t step, const std::string& why, int64_t intact,
                             const std::string& use_intact);

// The folder of step `step`: run_dir/checkpoints/step-N, or step-N.old while no step-N exists (an interrupted
// same-step re-save, see save_checkpoint). Whether or not it exists.
std::string step_folder(const std::string& run_dir, int64_t step);

// The step of a RUN/checkpoints/step-N folder, told by its path (which need not verify, nor have a manifest.json);
// -1 for any other path. A folder at such a path that holds checkpoints/ and no manifest.json is a run folder (-1).
int64_t step_of_folder(const std::string& path);

// The file rank `rank` writes into a step folder: rank-00003.safetensors (trainer/checkpoint.h: what it holds).
std::string rank_file_name(int rank);

// Why `step_dir` is not a usable checkpoint (kNoManifest, "missing file rank-00001.safetensors",
// "checksum mismatch in ..."); empty when it verifies. Fills *manifest when given and the manifest parses.
// checksums = false: sizes only (retention's cheap look at every folder).
std::string verify_checkpoint(const std::string& step_dir, Manifest* manifest = nullptr, bool checksums = true);

Manifest read_manifest(const std::string& step_dir);  // throws cg::Error naming the path

// Throws unless the checkpoint was written with the same tp (and dp, unless allow_dp_change), naming both layouts.
void check_layout(const Manifest& m, const CheckpointLayout& now, bool allow_dp_change = false);

}  // namespace cg
