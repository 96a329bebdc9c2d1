// Checkpoint folders: round trip, retention, and every way a folder can be unusable is skipped with its reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/sha256.h"
#include "tests/test_util.h"
#include "trainer/checkpoint_dir.h"

namespace fs = std::filesystem;

namespace {

const cg::AllOk kSolo = [](bool ok) { return ok; };

std::string fresh_dir(const std::string& name) {
  fs::path p = fs::path(::testing::TempDir()) / ("ckpt_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put(const fs::path& p, const std::string& s) { cg::write_file_durable(p.string(), s.data(), s.size()); }

// Simulates two ranks in one process: rank 1's writer runs in phase 2 too (after rank 0 created step-N.tmp and
// before the manifest), as it would between the two all_ok agreements of a real run.
std::string save_two_ranks(const std::string& run, int64_t step, int64_t keep = 5) {
  auto rank_writer = [step](int rank) {
    return [step, rank](const std::string& dir) {
      put(fs::path(dir) / fmt::format("rank-{}.bin", rank), fmt::format("weights of rank {} at step {}", rank, step));
      if (rank == 0) {
        fs::create_directories(fs::path(dir) / "state");
        put(fs::path(dir) / "state" / "train_state.json", fmt::format("{{\"step\": {}}}", step));
      }
    };
  };
  cg::WriteFiles both = [&](const std::string& dir) {
    rank_writer(0)(dir);
    rank_writer(1)(dir);
  };
  return cg::save_checkpoint(run, step, 0, {2, 2, 1}, "cafef00d", both, kSolo, keep);
}

TEST(CheckpointDir, SaveWritesManifestLastAndFindsIt) {
  std::string run = fresh_dir("roundtrip");
  std::string path = cg::save_checkpoint(
      run, 10, 0, {1, 1, 1}, "abc123",
      [](const std::string& dir) { put(fs::path(dir) / "model.bin", "hello"); }, kSolo, 2);
  EXPECT_EQ(path, (fs::path(run) / "checkpoints" / "step-10").string());
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints" / "step-10.tmp"));
  EXPECT_EQ(slurp(fs::path(path) / "model.bin"), "hello");

  auto info = cg::find_latest_complete(run);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->step, 10);
  EXPECT_EQ(info->path, path);
  const cg::Manifest& m = info->manifest;
  EXPECT_EQ(m.magic, "cgtrain-checkpoint");
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(m.step, 10);
  EXPECT_EQ(m.config_hash, "abc123");
  ASSERT_EQ(m.files.size(), 1u);
  EXPECT_EQ(m.files[0].path, "model.bin");
  EXPECT_EQ(m.files[0].size, 5u);
  // Independent expectation: sha256("hello").
  EXPECT_EQ(m.files[0].sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST(CheckpointDir, TwoRankFilesAndLayoutInManifest) {
  std::string run = fresh_dir("tworanks");
  std::string path = save_two_ranks(run, 3);
  cg::Manifest m = cg::read_manifest(path);
  EXPECT_EQ(m.layout.world, 2);
  EXPECT_EQ(m.layout.tp, 2);
  EXPECT_EQ(m.layout.dp, 1);
  ASSERT_EQ(m.files.size(), 3u);  // sorted by path
  EXPECT_EQ(m.files[0].path, "rank-0.bin");
  EXPECT_EQ(m.files[1].path, "rank-1.bin");
  EXPECT_EQ(m.files[2].path, "state/train_state.json");
  EXPECT_EQ(m.files[1].sha256, cg::sha256_file((fs::path(path) / "rank-1.bin").string()));
  EXPECT_NO_THROW(cg::check_layout(m, {2, 2, 1}));
  try {
    cg::check_layout(m, {4, 4, 1});
    FAIL() << "expected a layout error";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.tp=2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cg::check_layout(m, {4, 2, 2}), cg::Error);
  EXPECT_NO_THROW(cg::check_layout(m, {4, 2, 2}, /*allow_dp_change=*/true));
}

std::vector<std::string> step_folders(const std::string& run) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(run) / "checkpoints")) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(CheckpointDir, RetentionKeepsLastK) {
  std::string run = fresh_dir("retention");
  for (int64_t s : {1, 2, 3, 4, 5}) save_two_ranks(run, s * 10, /*keep=*/2);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-40", "step-50"}));
  EXPECT_EQ(cg::find_latest_complete(run)->step, 50);
}

// keep_last 0 would keep no checkpoint to resume from: refused before anything is written (cgtrain's config rule
// says so first; this is save_checkpoint's own guard).
TEST(CheckpointDir, KeepingNoCheckpointIsRefused) {
  std::string run = fresh_dir("keep_none");
  save_two_ranks(run, 10);
  try {
    save_two_ranks(run, 20, /*keep=*/0);
    ADD_FAILURE() << "keep_last 0 was accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint.keep_last must be >= 1, got 0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-10"}));
}

TEST(CheckpointDir, RetentionNeverDeletesTheNewFolderOrHigherSteps) {
  // A higher step already there (e.g. a damaged newest folder a resume skipped): saving lower steps with keep 1
  // keeps each new folder and leaves the higher one alone, deleting only older lower steps.
  std::string run = fresh_dir("retention_higher");
  save_two_ranks(run, 60, /*keep=*/1);
  save_two_ranks(run, 20, /*keep=*/1);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-20", "step-60"}));
  save_two_ranks(run, 40, /*keep=*/1);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-40", "step-60"}));
  save_two_ranks(run, 50, /*keep=*/2);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-40", "step-50", "step-60"}));
}

// A damaged folder (found by the resume's check, or one whose files are cut short) is neither counted among the
// keep_last checkpoints nor deleted: with keep 2, the two newest intact ones stay beside it.
TEST(CheckpointDir, RetentionCountsOnlyIntactCheckpoints) {
  std::string run = fresh_dir("retention_damaged");
  const fs::path ck = fs::path(run) / "checkpoints";
  save_two_ranks(run, 10, /*keep=*/5);
  save_two_ranks(run, 15, /*keep=*/5);
  {  // a flipped byte, same size: only the checksum sees it (the resume's find_latest_complete)
    std::string b = slurp(ck / "step-15" / "rank-1.bin");
    b[0] ^= 1;
    std::ofstream(ck / "step-15" / "rank-1.bin", std::ios::binary) << b;
  }
  ASSERT_EQ(cg::find_latest_complete(run)->step, 10);  // skips step-15 and remembers it
  save_two_ranks(run, 12, /*keep=*/2);
  save_two_ranks(run, 16, /*keep=*/2);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-12", "step-15", "step-16"}));
  // A truncated file is seen without checksums.
  std::ofstream(ck / "step-12" / "rank-0.bin", std::ios::binary) << "x";
  save_two_ranks(run, 20, /*keep=*/2);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-12", "step-15", "step-16", "step-20"}));
  save_two_ranks(run, 24, /*keep=*/2);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-12", "step-15", "step-20", "step-24"}));
  // step-15 saved again (a resume from before it reaches 15 again): the damaged folder moves to step-15.damaged,
  // which no scan reads; the new step-15 is intact and pruned like any other, the damaged one never.
  save_two_ranks(run, 15, /*keep=*/1);
  save_two_ranks(run, 30, /*keep=*/2);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-12", "step-15.damaged", "step-24", "step-30"}));
}

// A run folder before its first save (no checkpoints/, an empty one, a save still in step-N.tmp) has no newest
// checkpoint: step -1, which cgexport and cgsample refuse with "train first". It read as step 0 at path "", and both
// tools went on to open "/rank-00000.safetensors".
TEST(CheckpointDir, ARunBeforeItsFirstSaveHasNoNewestCheckpoint) {
  std::string run = fresh_dir("no_steps_yet");
  EXPECT_EQ(cg::newest_checkpoint(run).info.step, -1);
  fs::create_directories(fs::path(run) / "checkpoints" / "step-3.tmp");
  const cg::NewestCheckpoint none = cg::newest_checkpoint(run);
  EXPECT_EQ(none.info.step, -1);
  EXPECT_EQ(none.why, "");
  save_two_ranks(run, 3);
  const cg::NewestCheckpoint saved = cg::newest_checkpoint(run);
  EXPECT_EQ(saved.info.step, 3);
  EXPECT_EQ(saved.info.path, (fs::path(run) / "checkpoints" / "step-3").string());
  EXPECT_EQ(saved.why, "");
}

// An unusable step-N that a save of step N meets is kept: moved to step-N.damaged, or step-N.unfinished when it has
// no manifest.json (then -2, -3, ... when the name is taken: an earlier one never fails the save), with its bytes as
// they were, whether the resume skipped it or it is found at the save; an intact one is replaced
// (SavingSameStepTwiceReplacesIt). Retention never touches the moved folders. An unfinished folder went to
// step-N.damaged too, the name of a complete folder with bad bytes.
TEST(CheckpointDir, SavingOverADamagedFolderMovesItAside) {
  std::string run = fresh_dir("damaged_aside");
  const fs::path ck = fs::path(run) / "checkpoints";
  save_two_ranks(run, 8);
  save_two_ranks(run, 12);
  std::string flipped = slurp(ck / "step-12" / "rank-1.bin");
  flipped[0] ^= 1;
  std::ofstream(ck / "step-12" / "rank-1.bin", std::ios::binary) << flipped;
  const std::string manifest = slurp(ck / "step-12" / "manifest.json");
  ASSERT_EQ(cg::find_latest_complete(run)->step, 8);  // skips step-12
  save_two_ranks(run, 12, /*keep=*/1);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-12", "step-12.damaged"}));
  EXPECT_EQ(cg::verify_checkpoint((ck / "step-12").string()), "");
  EXPECT_EQ(slurp(ck / "step-12.damaged" / "rank-1.bin"), flipped);
  EXPECT_EQ(slurp(ck / "step-12.damaged" / "manifest.json"), manifest);
  EXPECT_EQ(cg::checkpoint_steps(run), (std::vector<int64_t>{12}));

  // Unfinished after the resume looked (no manifest: cut short by hand): found at the save, moved to
  // step-12.unfinished; a second one to step-12.unfinished-2 (a file in the way of a name counts as taken).
  fs::remove(ck / "step-12" / "manifest.json");
  save_two_ranks(run, 12, /*keep=*/1);
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-12", "step-12.damaged", "step-12.unfinished"}));
  EXPECT_FALSE(fs::exists(ck / "step-12.unfinished" / "manifest.json"));
  EXPECT_TRUE(fs::exists(ck / "step-12.unfinished" / "rank-0.bin"));
  put(ck / "step-12.unfinished-2", "a file, not a folder");
  fs::remove(ck / "step-12" / "manifest.json");
  save_two_ranks(run, 12, /*keep=*/1);
  EXPECT_TRUE(fs::is_directory(ck / "step-12.unfinished-3"));
  EXPECT_EQ(slurp(ck / "step-12.unfinished-2"), "a file, not a folder");
  fs::remove_all(ck / "step-12.unfinished-2");
  fs::remove_all(ck / "step-12.unfinished-3");

  // A damaged step-N.old (read as step N while no step-N exists) is kept the same way, not deleted as replaced.
  fs::rename(ck / "step-12", ck / "step-12.old");
  fs::remove(ck / "step-12.old" / "rank-0.bin");
  ASSERT_FALSE(cg::find_latest_complete(run));
  save_two_ranks(run, 12, /*keep=*/1);
  EXPECT_EQ(step_folders(run),
            (std::vector<std::string>{"step-12", "step-12.damaged", "step-12.damaged-2", "step-12.unfinished"}));
  EXPECT_FALSE(fs::exists(ck / "step-12.damaged-2" / "rank-0.bin"));

  // Later saves with keep_last 1 prune intact folders only; an interrupted save (step-N.tmp) goes at the next save.
  fs::create_directories(ck / "step-14.tmp");
  save_two_ranks(run, 16, /*keep=*/1);
  EXPECT_FALSE(fs::exists(ck / "step-14.tmp"));
  save_two_ranks(run, 20, /*keep=*/1);
  EXPECT_EQ(step_folders(run),
            (std::vector<std::string>{"step-12.damaged", "step-12.damaged-2", "step-12.unfinished", "step-20"}));
  // cgtrain's resume, cgexport's and cgsample's newest step, and retention read neither name.
  EXPECT_EQ(cg::checkpoint_steps(run), (std::vector<int64_t>{20}));
}

// Only step-N as cgtrain writes it names a checkpoint: a copy named step-015 (or step-00) is not one, so it neither
// shadows nor stands in for step-15 (a resume would look for the files under step-15).
TEST(CheckpointDir, ZeroPaddedFolderNamesAreNoCheckpoints) {
  std::string run = fresh_dir("padded");
  const fs::path ck = fs::path(run) / "checkpoints";
  save_two_ranks(run, 10);
  save_two_ranks(run, 15);
  fs::rename(ck / "step-15", ck / "step-015");
  fs::create_directories(ck / "step-00");
  EXPECT_EQ(cg::checkpoint_steps(run), (std::vector<int64_t>{10}));
  auto info = cg::find_latest_complete(run);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->step, 10);
  EXPECT_EQ(info->path, (ck / "step-10").string());
  save_two_ranks(run, 0);
  EXPECT_EQ(cg::checkpoint_steps(run), (std::vector<int64_t>{10, 0}));
}

TEST(CheckpointDir, RequiredFileMissingFailsTheSaveAndKeepsThePrevious) {
  std::string run = fresh_dir("required");
  const std::vector<std::string> required{"rank-0.bin", "rank-1.bin"};
  auto writer = [](bool second) {
    return [second](const std::string& dir) {
      put(fs::path(dir) / "rank-0.bin", "r0");
      if (second) put(fs::path(dir) / "rank-1.bin", "r1");
    };
  };
  cg::save_checkpoint(run, 1, 0, {2, 1, 2}, "h", writer(true), kSolo, 1, required);
  try {
    cg::save_checkpoint(run, 2, 0, {2, 1, 2}, "h", writer(false), kSolo, 1, required);
    FAIL() << "a checkpoint without rank-1.bin was committed";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank-1.bin is missing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("filesystem every node shares"), std::string::npos) << e.what();
  }
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-1"}));
  auto info = cg::find_latest_complete(run);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->step, 1);
  EXPECT_EQ(info->manifest.files.size(), 2u);
  EXPECT_EQ(info->manifest.required, required);

  // The manifest records what was required: one edited to leave out a rank file (entry and file gone) is not
  // complete, and the resume falls back to an older step instead of failing on the missing file.
  cg::save_checkpoint(run, 3, 0, {2, 1, 2}, "h", writer(true), kSolo, 2, required);
  const fs::path step3 = fs::path(run) / "checkpoints/step-3";
  auto j = nlohmann::json::parse(slurp(step3 / "manifest.json"));
  j["files"].erase(1);  // rank-1.bin (files are sorted by path)
  std::ofstream(step3 / "manifest.json") << j.dump();
  fs::remove(step3 / "rank-1.bin");
  EXPECT_NE(cg::verify_checkpoint(step3.string()).find("the manifest lists no rank-1.bin, which every save of this "
                                                       "run writes"), std::string::npos);
  EXPECT_EQ(cg::find_latest_complete(run)->step, 1);
  j.erase("required");  // an older build's manifest: nothing recorded, nothing to compare
  std::ofstream(step3 / "manifest.json") << j.dump();
  EXPECT_EQ(cg::verify_checkpoint(step3.string()), "");
}

TEST(CheckpointDir, SavingSameStepTwiceReplacesIt) {
  std::string run = fresh_dir("same_step");
  save_two_ranks(run, 7);
  std::string path = cg::save_checkpoint(
      run, 7, 0, {1, 1, 1}, "h2", [](const std::string& dir) { put(fs::path(dir) / "x", "new"); }, kSolo, 3);
  auto info = cg::find_latest_complete(run);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->manifest.config_hash, "h2");
  EXPECT_EQ(info->manifest.files.size(), 1u);
  EXPECT_FALSE(fs::exists(path + ".old"));
}

TEST(CheckpointDir, AMoveAsideCutShortStillLeavesTheStep) {
  // Where the filesystem cannot swap two folders, commit moves step-N aside to step-N.old and then step-N.tmp in; a
  // kill between the two leaves step-N.old (complete) and step-N.tmp (which the next save clears): step N stays
  // findable from step-N.old while no step-N exists, and a committed step-N wins over it.
  std::string run = fresh_dir("move_aside");
  save_two_ranks(run, 5);
  save_two_ranks(run, 7);
  fs::rename(fs::path(run) / "checkpoints/step-7", fs::path(run) / "checkpoints/step-7.old");
  auto info = cg::find_latest_complete(run);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->step, 7);
  EXPECT_EQ(fs::path(info->path).filename(), "step-7.old");
  EXPECT_EQ(cg::checkpoint_steps(run), (std::vector<int64_t>{7, 5}));
  EXPECT_EQ(fs::path(cg::step_folder(run, 7)).filename(), "step-7.old");
  EXPECT_EQ(fs::path(cg::step_folder(run, 5)).filename(), "step-5");
  save_two_ranks(run, 7);  // saved again: the committed folder, and the .old one gone
  info = cg::find_latest_complete(run);
  ASSERT_TRUE(info);
  EXPECT_EQ(fs::path(info->path).filename(), "step-7");
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints/step-7.old"));
  // A stale step-N.old beside a committed step-N (a kill after the second rename) goes at the next save.
  fs::create_directories(fs::path(run) / "checkpoints/step-5.old");
  save_two_ranks(run, 8);
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints/step-5.old"));
}

// The warnings about a folder the resume skips, and about one a save of its step moves aside, say what it is: damaged
// (a checksum mismatch: the why), or unfinished (no manifest.json, written last: a save or copy cut short), in one
// wording (cg::unusable_state) that cgexport and cgsample use too, and the folder it goes to says which.
TEST(CheckpointDir, WarningsTellAnUnfinishedFolderFromADamagedOne) {
  std::string run = fresh_dir("warn_words");
  const fs::path ck = fs::path(run) / "checkpoints";
  save_two_ranks(run, 1);
  save_two_ranks(run, 2);
  fs::create_directories(ck / "step-3");  // renamed into place without its manifest (a copy cut short)
  put(ck / "step-3" / "rank-0.bin", "partial");
  std::string b = slurp(ck / "step-2" / "rank-1.bin");
  b[0] ^= 1;
  std::ofstream(ck / "step-2" / "rank-1.bin", std::ios::binary) << b;
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  const auto info = cg::find_latest_complete(run);
  save_two_ranks(run, 3);
  save_two_ranks(run, 2);
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->step, 1);
  const std::string w = log.str(), s3 = (ck / "step-3").string(), s2 = (ck / "step-2").string();
  EXPECT_NE(w.find("skipping checkpoint " + s3 + ": unfinished (it has no manifest.json, which cgtrain writes last: "
                   "a save or a copy of the folder that did not finish); kept as it is: a save of step 3 moves it "
                   "aside to step-3.unfinished first"), std::string::npos) << w;
  EXPECT_NE(w.find("skipping checkpoint " + s2 + ": damaged (checksum mismatch in rank-1.bin); kept as it is: a save "
                   "of step 2 moves it aside to step-2.damaged first"), std::string::npos) << w;
  EXPECT_NE(w.find("checkpoint " + s3 + " is unfinished (it has no manifest.json, which cgtrain writes last: a save "
                   "or a copy of the folder that did not finish): moved it to " + s3 + ".unfinished before saving "
                   "step 3 again"), std::string::npos) << w;
  EXPECT_NE(w.find("checkpoint " + s2 + " is damaged (checksum mismatch in rank-1.bin): moved it to " + s2 +
                   ".damaged before saving step 2 again"), std::string::npos) << w;
  EXPECT_EQ(w.find("damaged (it has no manifest.json"), std::string::npos) << w;
  EXPECT_EQ(step_folders(run), (std::vector<std::string>{"step-1", "step-2", "step-2.damaged", "step-3",
                                                         "step-3.unfinished"}));
}

TEST(CheckpointDir, SkipsCorruptHalfWrittenAndMissingRankFile) {
  std::string run = fresh_dir("skips");
  save_two_ranks(run, 1);
  save_two_ranks(run, 2);
  save_two_ranks(run, 3);
  fs::path ck = fs::path(run) / "checkpoints";
  // step-4: a folder renamed into place without manifest (half-written by some other tool / crash).
  fs::create_directories(ck / "step-4");
  put(ck / "step-4" / "rank-0.bin", "partial");
  // step-5.tmp: an interrupted save is never considered.
  fs::create_directories(ck / "step-5.tmp");
  // A stray folder whose number does not fit a step (std::stoll would throw out_of_range): not a checkpoint.
  fs::create_directories(ck / "step-99999999999999999999");
  // step-3: corrupt one byte, same size.
  {
    std::string s = slurp(ck / "step-3" / "rank-1.bin");
    s[0] ^= 1;
    std::ofstream(ck / "step-3" / "rank-1.bin", std::ios::binary) << s;
  }
  // step-2: a rank file is missing.
  fs::remove(ck / "step-2" / "rank-1.bin");

  EXPECT_EQ(cg::verify_checkpoint((ck / "step-4").string()), cg::kNoManifest);
  EXPECT_NE(cg::verify_checkpoint((ck / "step-3").string()).find("checksum mismatch in rank-1.bin"),
            std::string::npos);
  EXPECT_NE(cg::verify_checkpoint((ck / "step-2").string()).find("missing file rank-1.bin"), std::string::npos);
  EXPECT_EQ(cg::verify_checkpoint((ck / "step-1").string()), "");

  auto info = cg::find_latest_complete(run);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->step, 1);

  // Truncated file: size mismatch; then nothing usable is left.
  std::ofstream(ck / "step-1" / "rank-0.bin", std::ios::binary) << "x";
  EXPECT_NE(cg::verify_checkpoint((ck / "step-1").string()).find("size mismatch in rank-0.bin"), std::string::npos);
  EXPECT_FALSE(cg::find_latest_complete(run).has_value());
  EXPECT_FALSE(cg::find_latest_complete(fresh_dir("empty")).has_value());
}

TEST(CheckpointDir, BadManifestMagicIsRejected) {
  std::string run = fresh_dir("magic");
  std::string path = save_two_ranks(run, 1);
  std::string text = slurp(fs::path(path) / "manifest.json");
  text.replace(text.find("cgtrain-checkpoint"), 18, "something-else-xyz");
  std::ofstream(fs::path(path) / "manifest.json") << text;
  EXPECT_NE(cg::verify_checkpoint(path).find("magic"), std::string::npos);
  EXPECT_FALSE(cg::find_latest_complete(run).has_value());
}

// A folder where manifest.json should be (a copy gone wrong; chmod 000 does not stop root, a folder does): the step is
// damaged, said with the manifest's path, not libstdc++'s bare "basic_filebuf::underflow error" escaping the check (it
// was no cg::Error, so cgexport and a resume died of it with no path at all).
TEST(CheckpointDir, AFolderInTheManifestsPlaceIsADamagedStepNamingIt) {
  std::string run = fresh_dir("manifest_folder");
  save_two_ranks(run, 1);
  std::string path = save_two_ranks(run, 2);
  fs::remove(fs::path(path) / "manifest.json");
  fs::create_directory(fs::path(path) / "manifest.json");
  const std::string why = cg::verify_checkpoint(path);
  EXPECT_NE(why.find("cannot read checkpoint manifest " + (fs::path(path) / "manifest.json").string() +
                     ": it is a folder, not a file"), std::string::npos) << why;
  EXPECT_EQ(why.find(".cpp:"), std::string::npos) << "the reason is for users, without the source line: " << why;
  ASSERT_TRUE(cg::find_latest_complete(run).has_value());
  EXPECT_EQ(cg::find_latest_complete(run)->step, 1);  // the older intact step is still found
}

// The manifest's file list is read and checksummed under the step folder: a path out of it is a damaged manifest.
TEST(CheckpointDir, ManifestPathsOutsideTheStepFolderAreRejected) {
  std::string run = fresh_dir("paths");
  std::string path = save_two_ranks(run, 1);
  const std::string text = slurp(fs::path(path) / "manifest.json");
  for (const std::string bad : {"../rank-0.bin", "/etc/hostname", "sub/../../x", ""}) {
    std::string edited = text;
    edited.replace(edited.find("\"rank-0.bin\""), 12, "\"" + bad + "\"");
    std::ofstream(fs::path(path) / "manifest.json") << edited;
    EXPECT_NE(cg::verify_checkpoint(path).find("file '" + bad + "' is not inside the step folder"), std::string::npos)
        << cg::verify_checkpoint(path);
  }
  EXPECT_FALSE(cg::find_latest_complete(run).has_value());
}

TEST(CheckpointDir, UnwritableRunDirNamesPathAndHint) {
  std::string base = fresh_dir("unwritable");
  put(fs::path(base) / "a_file", "not a folder");
  std::string run = (fs::path(base) / "a_file" / "run").string();  // root cannot mkdir under a regular file either
  try {
    cg::save_checkpoint(run, 1, 0, {1, 1, 1}, "h", [](const std::string&) {}, kSolo, 2);
    FAIL() << "expected an error";
  } catch (const cg::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("a_file/run/checkpoints"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;
    // Not a full disk: the advice is about the path ("free space" only for ENOSPC, EDQUOT).
    EXPECT_NE(msg.find("Not a directory (errno 20); a folder is where a file should be, or a file where a folder "
                       "should be: move it or change train.run_dir"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("free space"), std::string::npos) << msg;
  }
}

TEST(CheckpointDir, FailingRankWriterRemovesTmpAndKeepsPrevious) {
  std::string run = fresh_dir("writer_fails");
  save_two_ranks(run, 1);
  // Another rank reported failure: this rank's all_ok returns false although it wrote fine.
  int calls = 0;
  cg::AllOk other_fails = [&](bool ok) { return ++calls == 2 ? false : ok; };
  try {
    cg::save_checkpoint(run, 2, 0, {2, 1, 2}, "h", [](const std::string& d) { put(fs::path(d) / "r0", "x"); },
                        other_fails, 2);
    FAIL() << "expected an error";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("another rank failed"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints" / "step-2.tmp"));
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints" / "step-2"));
  EXPECT_EQ(cg::find_latest_complete(run)->step, 1);
}

TEST(CheckpointDir, FileTooLargeIsAClearErrorAndPreviousSurvives) {
  std::string run = fresh_dir("efbig");
  save_two_ranks(run, 1);
  std::string msg;
  try {
    cg::test::FileSizeLimit limit(4096);  // a full disk
    cg::save_checkpoint(
        run, 2, 0, {1, 1, 1}, "h",
        [](const std::string& d) {
          std::string big(64 * 1024, 'w');
          put(fs::path(d) / "big.bin", big);
        },
        kSolo, 2);
  } catch (const cg::Error& e) {
    msg = e.what();
  }
  // A file size limit is no full disk: freeing space would not help (it got the full-disk advice).
  EXPECT_NE(msg.find("step-2.tmp/big.bin: File too large (errno 27); the file is larger than the file system or this "
                     "process's file size limit (ulimit -f) allows: raise that limit or change train.run_dir"),
            std::string::npos) << msg;
  EXPECT_EQ(msg.find("free"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints" / "step-2.tmp"));
  auto info = cg::find_latest_complete(run);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->step, 1);
}

// A save's error says what failed, with the OS reason and errno, and the advice that reason calls for: a real full
// disk (a small tmpfs) which folders may go, said once; a folder in a rank file's place or a read-only file system
// their own fix, never "free space" (every failure that was not about a path got the full-disk advice).
TEST(CheckpointDir, OnlyAFullDiskGetsTheFullDiskAdvice) {
  const std::string base = fresh_dir("io_advice");
  const auto save_writing = [&](const std::string& run, int64_t step, const std::function<void(const fs::path&)>& w) {
    return cg::test::error_of([&] {
      cg::save_checkpoint(run, step, 0, {1, 1, 1}, "h", [&](const std::string& d) { w(d); }, kSolo, 5);
    });
  };
  std::string e = save_writing(base + "/run", 1, [](const fs::path& d) {
    fs::create_directories(d / "rank-0.bin");  // a folder where the rank file goes
    put(d / "rank-0.bin", "x");
  });
  EXPECT_NE(e.find("checkpoint " + base + "/run/checkpoints/step-1 not saved (rank 0, writing rank files): cannot "
                   "create " + base + "/run/checkpoints/step-1.tmp/rank-0.bin: Is a directory (errno 21); a folder is "
                   "where a file should be, or a file where a folder should be: move it or change train.run_dir"),
            std::string::npos) << e;
  EXPECT_EQ(e.find("free"), std::string::npos) << e;

  cg::test::TmpfsMount tmpfs(base + "/tmpfs", 256 * 1024);
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  const std::string run = tmpfs.dir + "/run", ck = run + "/checkpoints";
  save_two_ranks(run, 1);
  e = save_writing(run, 2, [](const fs::path& d) { put(d / "rank-0.bin", std::string(512 * 1024, 'w')); });
  EXPECT_NE(e.find("checkpoint " + ck + "/step-2 not saved (rank 0, writing rank files): cannot write " + ck +
                   "/step-2.tmp/rank-0.bin: No space left on device (errno 28); the disk is full: free space (older "
                   "step-N folders under checkpoints/ may go: checkpoint.keep_last prunes only after a save "
                   "succeeds) or change train.run_dir"), std::string::npos) << e;
  EXPECT_EQ(e.find("free disk space"), std::string::npos) << "advice given twice: " << e;
  EXPECT_FALSE(fs::exists(ck + "/step-2.tmp"));
  EXPECT_EQ(cg::find_latest_complete(run)->step, 1);

  ASSERT_TRUE(tmpfs.read_only());
  e = save_writing(run, 3, [](const fs::path&) {});
  EXPECT_NE(e.find("checkpoint " + ck + "/step-3 not saved (rank 0, creating the folder): cannot create checkpoint "
                   "folder " + ck + "/step-3.tmp: Read-only file system (errno 30); the file system is read-only: "
                   "remount it writable or change train.run_dir"), std::string::npos) << e;
  EXPECT_EQ(e.find("free"), std::string::npos) << e;
  EXPECT_EQ(cg::find_latest_complete(run)->step, 1);
}

}  // namespace
