// cg::Error: CG_CHECK's message carries file:line first; message_of gives it back without them for a rethrow that
// adds context, and leaves other messages as they are. every_rank_alike turns the errors of an input (a cg::Error, a
// std::filesystem error on a path) into InputError, said once under mpirun, and lets others (a failed MPI call, out of
// memory) pass.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <new>
#include <string>

#include "common/error.h"
#include "common/input_error.h"
#include "common/path_note.h"
#include "tests/test_util.h"

namespace {

cg::Error caught(const std::function<void()>& f) {
  try {
    f();
  } catch (const cg::Error& e) {
    return e;
  }
  return cg::Error("<no error>");
}

TEST(Error, CheckPutsFileAndLineFirstAndMessageOfDropsThem) {
  const int line = __LINE__ + 1;
  const cg::Error e = caught([] { CG_CHECK(1 + 1 == 3, "lora.r {} is not {}: set lora.r=8", 4, 8); });
  EXPECT_EQ(std::string(e.what()), "test_error.cpp:" + std::to_string(line) + ": lora.r 4 is not 8: set lora.r=8");
  EXPECT_EQ(cg::message_of(e), "lora.r 4 is not 8: set lora.r=8");
  // Messages without the prefix stay whole, even when they hold colons.
  for (const std::string m : {"plain", "a.b: c", "x:12 no space after", "step 5: a:1: b", ":1: x", "f.cpp:: x"})
    EXPECT_EQ(cg::message_of(cg::Error(m)), m) << m;
  // Wrapped twice: only the outer prefix goes.
  EXPECT_EQ(cg::message_of(cg::Error("inject.cpp:94: PEFT adapter a: lora.cpp:140: shape")),
            "PEFT adapter a: lora.cpp:140: shape");
}

// divide splits a size over ranks: the quotient where it divides; otherwise, and for a divisor of 0 (a tp read as 0,
// which would be a division by zero), an error naming both numbers.
TEST(Error, DivideGivesTheQuotientOrNamesBothNumbers) {
  EXPECT_EQ(cg::divide(12, 4, "rows"), 3);
  EXPECT_EQ(cg::divide(0, 2, "rows"), 0);
  EXPECT_EQ(caught([] { cg::divide(10, 4, "LoRA in_features over tp"); }).what(),
            std::string("LoRA in_features over tp: 10 is not divisible by 4"));
  EXPECT_EQ(caught([] { cg::divide(4, 0, "rows over tp"); }).what(),
            std::string("rows over tp: 4 is not divisible by 0"));
  EXPECT_EQ(caught([] { cg::divide(4, -2, "rows over tp"); }).what(),
            std::string("rows over tp: 4 is not divisible by -2"));
}

// A relative path that does not exist is said with the folder it was looked for in: the config's paths are relative to
// the folder the command runs in (the repository root in the README), not to the config file.
TEST(Error, RelativePathNoteNamesTheFolderOnlyForARelativePath) {
  const std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(cg::relative_path_note("runs/shards/tiny/tokenizer.model", "cgtrain"),
            " in " + cwd + " (relative paths are read from the folder cgtrain runs in)");
  EXPECT_EQ(cg::relative_path_note("./x", "the command"),
            " in " + cwd + " (relative paths are read from the folder the command runs in)");
  EXPECT_EQ(cg::relative_path_note("/abs/tokenizer.model", "cgtrain"), "");
}

TEST(EveryRankAlike, InputErrorsBecomeInputErrorAndOthersPass) {
  EXPECT_EQ(cg::every_rank_alike([] { return 7; }), 7);
  try {
    cg::every_rank_alike([] { CG_FAIL("tokenizer t.model does not exist"); });
    ADD_FAILURE() << "no throw";
  } catch (const cg::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer t.model does not exist"), std::string::npos) << e.what();
  }
  // A symbolic link to itself: std::filesystem::exists throws (ELOOP), naming the path last, without a fix.
  const cg::test::TempDir dir("cg_loop");
  std::filesystem::create_symlink(dir.path / "loop", dir.path / "loop");
  const std::string path = (dir.path / "loop" / "tokenizer.model").string();
  try {
    cg::every_rank_alike([&] { return std::filesystem::exists(path); });
    ADD_FAILURE() << "no throw for " << path;
  } catch (const cg::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot look at " + path + ": Too many levels of symbolic links; correct the "
              "setting that names this path, or the path itself (a symbolic link that loops, a folder without "
              "permission)");
  }
  // A failed MPI, NCCL or CUDA call (dist/check.h) is its rank's own, said at once: it stays a CallError.
  EXPECT_THROW(cg::every_rank_alike([] { throw cg::CallError("mpi_comm.cpp:1: MPI call failed"); }), cg::CallError);
  EXPECT_THROW(cg::every_rank_alike([]() -> int { throw std::bad_alloc(); }), std::bad_alloc);
}

}  // namespace
