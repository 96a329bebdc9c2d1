// Small helpers shared by test files: the process's own scratch folder (below), a temporary folder removed at scope
// end, the message of a cg::Error, what spdlog logs, a cap on file sizes (EFBIG), a real full or read-only file
// system (a small tmpfs).
#pragma once
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include "common/error.h"
#include "tests/scratch_path.h"

namespace cg::test {

// Every file a test writes goes under a folder of its process's own, made fresh (mkdtemp) in $TEST_TMPDIR, which
// ctest sets to <build>/tests/tmp (cmake/CgHelpers.cmake), or else in the system temp dir ($TMPDIR, /tmp). Two runs
// at once (two clones on one machine, or two ctest invocations in one build tree) never share a path, and a run that
// crashed leaves files no later run reads. TEST_TMPDIR is then pointed at that folder, so ::testing::TempDir() (which
// reads it on every call) and cg::test::TempDir name it. It is removed once every test passed and kept, its path
// printed, when one failed, for a look at what the test wrote. Including this header registers it: gtest sets it up
// before the first test and tears it down after the last (once per --gtest_repeat round). TMPDIR stays as it was:
// OpenMPI puts its unix sockets there, whose paths may not pass 107 bytes.
class ScratchFolder : public ::testing::Environment {
 public:
  void SetUp() override {
    base_ = scratch_base().string();
    std::string why;
    path_ = make_scratch_folder(program_invocation_short_name, why);
    if (path_.empty()) FAIL() << why;
    ::setenv("TEST_TMPDIR", path_.c_str(), 1);
  }
  void TearDown() override {
    ::setenv("TEST_TMPDIR", base_.c_str(), 1);
    if (!path_.empty())
      remove_if_passed(path_, !::testing::UnitTest::GetInstance()->Failed(), "the files the tests wrote");
  }

 private:
  std::string base_, path_;
};
inline ::testing::Environment* const kScratchFolder = ::testing::AddGlobalTestEnvironment(new ScratchFolder);

// A fresh folder in the process's scratch folder, unique per instance; removed with everything in it.
struct TempDir : ScratchPath {
  explicit TempDir(const std::string& prefix = "cg_test") : ScratchPath(unique_name(prefix)) {
    std::filesystem::create_directories(path);
  }

 private:
  static std::string unique_name(const std::string& prefix) {
    static int counter = 0;
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  }
};

// What f throws as a cg::Error, or "<no error>".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cg::Error& e) {
    return e.what();
  }
  return "<no error>";
}

// What f logs through spdlog's default logger while it runs (an error it throws passes on).
inline std::string log_of(const std::function<void()>& f) {
  std::ostringstream log;
  spdlog::default_logger()->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  try {
    f();
  } catch (...) {
    spdlog::default_logger()->sinks().pop_back();
    throw;
  }
  spdlog::default_logger()->sinks().pop_back();
  return log.str();
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Ignores SIGXFSZ and caps the size of any file this process writes while it lives: writes past `bytes` fail with
// EFBIG ("File too large"), which is not a full disk (TmpfsMount is one). Restored on destruction.
struct FileSizeLimit {
  struct rlimit old {};
  void (*old_handler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    EXPECT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    old_handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = bytes;
    EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
};

// A tmpfs of `bytes` mounted at `dir` (created) while it lives: a real full disk (ENOSPC once it holds `bytes`, or
// `inodes` files and folders, the root included, when not 0: an empty file takes no bytes) and, after read_only(), a
// read-only file system (EROFS). Mounting needs root (CAP_SYS_ADMIN): where it fails, mounted is false and the test
// skips.
struct TmpfsMount {
  std::string dir;
  bool mounted = false;
  TmpfsMount(const std::string& d, size_t bytes, size_t inodes = 0) : dir(d) {
    std::filesystem::create_directories(d);
    std::string options = "size=" + std::to_string(bytes);
    if (inodes > 0) options += ",nr_inodes=" + std::to_string(inodes);
    mounted = ::mount("tmpfs", d.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  bool read_only() { return ::mount("tmpfs", dir.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0; }
  ~TmpfsMount() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
};

}  // namespace cg::test
