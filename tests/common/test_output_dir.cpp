// make_output_dir: creates nested folders and leaves no probe file; a file in the way, a path under a file and a
// folder without write permission fail with a message naming the setting and the path.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/durable_file.h"
#include "common/file_lock.h"
#include "common/file_set.h"
#include "common/hold_stop_signals.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

std::string error_of(const std::string& path, const std::string& what) {
  try {
    cg::make_output_dir(path, what);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(OutputDir, CreatedOrRefusedNamingTheSetting) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_outdir_" + std::to_string(::getpid()));
  fs::remove_all(d);
  cg::make_output_dir((d / "a/b/c").string(), "train.run_dir");
  EXPECT_TRUE(fs::is_directory(d / "a/b/c"));
  EXPECT_TRUE(fs::is_empty(d / "a/b/c"));  // the write probe is gone
  cg::make_output_dir((d / "a/b/c").string(), "train.run_dir");  // an existing folder is fine

  std::ofstream(d / "file") << "x";
  std::string e = error_of((d / "file").string(), "sample.out_dir");
  EXPECT_NE(e.find("sample.out_dir = " + (d / "file").string() + " is a file, not a folder"), std::string::npos) << e;
  e = error_of((d / "file/sub").string(), "data.shards_dir");
  EXPECT_NE(e.find("data.shards_dir = " + (d / "file/sub").string() + ": cannot create the folder"),
            std::string::npos) << e;
  fs::create_symlink(d / "gone", d / "dangling");  // a link to a folder that is not there (yet)
  e = error_of((d / "dangling").string(), "cgexport --out");
  EXPECT_NE(e.find("cgexport --out = " + (d / "dangling").string() + " is a link to " + (d / "gone").string() +
                   ", which does not exist: create that folder, or choose another"), std::string::npos) << e;

  if (::geteuid() != 0) {  // root writes anywhere: the permission case needs an ordinary user
    fs::create_directories(d / "ro");
    ::chmod((d / "ro").c_str(), 0555);
    e = error_of((d / "ro").string(), "eval.out");
    EXPECT_NE(e.find("eval.out = " + (d / "ro").string() + ": cannot create files in it"), std::string::npos) << e;
    ::chmod((d / "ro").c_str(), 0755);
  }
  fs::remove_all(d);
}

std::string dry_error_of(const std::string& path, const std::string& what = "out_dir") {
  try {
    cg::check_output_dir_creatable(path, what);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// What to do is told by the errno (io_advice), with another folder as the way out: a file on the path is to be moved
// (not "a folder you can write"), a read-only file system remounted, a full disk (here: no inode left, as an empty
// probe file needs no bytes) given space.
TEST(OutputDir, RefusalSaysWhatToFixForTheErrno) {
  cg::test::TempDir d("cg_outdir_errno");
  const auto message = [](const std::string& path, const std::string& what) -> std::string {
    try {
      cg::make_output_dir(path, what);
    } catch (const cg::Error& e) {
      return cg::message_of(e);  // without the file:line in front
    }
    return "<no error>";
  };
  std::ofstream(d / "file") << "x";
  std::string e = message(d / "file/sub", "data.shards_dir");
  EXPECT_EQ(e, "data.shards_dir = " + (d / "file/sub") + ": cannot create the folder: Not a directory (errno 20); a "
            "folder is where a file should be, or a file where a folder should be: move it or set data.shards_dir "
            "to another folder") << e;
  e = dry_error_of(d / "file/sub", "data.shards_dir");
  EXPECT_TRUE(cg::test::contains(e, d / "file is a file, not a folder")) << e;

  cg::test::TmpfsMount tmpfs(d / "tmpfs", 64 * 1024, 3);  // the root, one folder and one file
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  fs::create_directories(tmpfs.dir + "/run");
  std::ofstream(tmpfs.dir + "/run/taken") << "";
  e = message(tmpfs.dir + "/run", "train.run_dir");
  EXPECT_EQ(e, "train.run_dir = " + tmpfs.dir + "/run: cannot create files in it: No space left on device (errno "
            "28); the disk is full: free disk space or set train.run_dir to another folder") << e;
  e = message(tmpfs.dir + "/run/sub", "sample.out_dir");
  EXPECT_EQ(e, "sample.out_dir = " + tmpfs.dir + "/run/sub: cannot create the folder: No space left on device "
            "(errno 28); the disk is full: free disk space or set sample.out_dir to another folder") << e;
  fs::remove(tmpfs.dir + "/run/taken");
  ASSERT_TRUE(tmpfs.read_only());
  e = message(tmpfs.dir + "/run", "eval.out");
  EXPECT_EQ(e, "eval.out = " + tmpfs.dir + "/run: cannot create files in it: Read-only file system (errno 30); the "
            "file system is read-only: remount it writable or set eval.out to another folder") << e;
  e = dry_error_of(tmpfs.dir + "/run/new", "eval.out");
  EXPECT_TRUE(cg::test::contains(e, "Read-only file system (errno 30); the file system is read-only: remount it "
                                    "writable or set eval.out to another folder")) << e;
}

TEST(OutputDir, DryCheckCreatesNothingAndFindsTheFileInTheWay) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_outdir_dry_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  EXPECT_EQ(dry_error_of((d / "a/b/c").string()), "");
  EXPECT_EQ(dry_error_of((d / "a/b/c/").string()), "");
  EXPECT_EQ(dry_error_of(d.string()), "");
  EXPECT_TRUE(fs::is_empty(d));  // nothing created
  std::ofstream(d / "file") << "x";
  for (const std::string sub : {"", "/sub", "/sub/deeper/"}) {
    const std::string e = dry_error_of((d / "file").string() + sub);
    EXPECT_NE(e.find("out_dir = " + (d / "file").string() + sub + ": " + (d / "file").string() +
                     " is a file, not a folder"), std::string::npos) << e;
  }
  if (::geteuid() != 0) {
    fs::create_directories(d / "ro");
    ::chmod((d / "ro").c_str(), 0555);
    const std::string e = dry_error_of((d / "ro/x").string());
    EXPECT_NE(e.find("cannot create files (in " + (d / "ro").string()), std::string::npos) << e;
    ::chmod((d / "ro").c_str(), 0755);
  }
  fs::remove_all(d);
}

// MadeFolders removes every folder make_output_dir made on the way, as the path spells them: `a/b/../c` makes a/b,
// which is no parent of a/c; a folder that was there, or one that holds a file put there since, stays.
TEST(MadeFolders, RemovesEveryLevelMadeAndNoOther) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_made_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  {
    cg::MadeFolders made((d / "a/b/../c").string(), {"lock"});
    cg::make_output_dir((d / "a/b/../c").string(), "train.run_dir");
    ASSERT_TRUE(fs::is_directory(d / "a/b"));
    ASSERT_TRUE(fs::is_directory(d / "a/c"));
    std::ofstream(d / "a/c/lock") << "";
  }
  EXPECT_TRUE(fs::is_empty(d)) << "a, a/b and a/c were all made by this launch";

  fs::create_directories(d / "there");
  {
    cg::MadeFolders made((d / "there/x/../y/z").string());
    cg::make_output_dir((d / "there/x/../y/z").string(), "train.run_dir");
    std::ofstream(d / "there/x/notes.txt") << "the user's";  // put into a folder the launch made, since
  }
  EXPECT_TRUE(fs::exists(d / "there/x/notes.txt"));
  EXPECT_FALSE(fs::exists(d / "there/y")) << "y and y/z were this launch's and empty";

  // A folder that was there keeps its ignorable files: they may be a user's.
  std::ofstream(d / "there/lock") << "the user's";
  {
    cg::MadeFolders made((d / "there").string(), {"lock"});
    cg::make_output_dir((d / "there").string(), "train.run_dir");
  }
  EXPECT_TRUE(fs::exists(d / "there/lock"));

  // Through a link, `link/../n/run` is n/run beside the link's target, as the kernel (and create_directories) reads
  // it: that is the folder emptied of its ignorable files and removed, not n/run beside the link.
  fs::create_directories(d / "real/deep");
  fs::create_directory_symlink(d / "real/deep", d / "lnk");
  {
    cg::MadeFolders made((d / "lnk/../n/run/").string(), {"lock"});
    cg::make_output_dir((d / "lnk/../n/run/").string(), "train.run_dir");
    ASSERT_TRUE(fs::is_directory(d / "real/n/run"));
    std::ofstream(d / "real/n/run/lock") << "";
  }
  EXPECT_FALSE(fs::exists(d / "real/n")) << "n and n/run were this launch's";
  EXPECT_TRUE(fs::is_directory(d / "real/deep"));
  fs::remove_all(d);
}

// Folders noted as made later (a lock that made the run folder again, and its parent, after another launch removed
// both) join those made at the start, and all are removed deepest first: here the start made only r6/run (r6 was
// there), the lock then r6 and r6/run, and nothing is left.
TEST(MadeFolders, FoldersNotedLaterAreRemovedDeepestFirst) {
  cg::test::TempDir d("cg_made_later");
  const fs::path r6 = d.path / "r6", run = r6 / "run";
  fs::create_directories(r6);
  {
    cg::MadeFolders made(run.string());
    fs::remove_all(r6);  // the other launch gave up and removed r6, which it had made
    fs::create_directories(run);
    made.note_made({r6.string(), run.string()});
  }
  EXPECT_FALSE(fs::exists(r6)) << "r6 was removed before r6/run, while it still held it";
}

// A FileLock that holds its file writes who it is there; one that finds it held reads that, and tells a live process
// of this machine (no use waiting) from a record of another boot, another host or a process gone (maybe a dead node's
// lock on a network filesystem). A file with other bytes in it is not written over.
TEST(FileLock, NamesItsHolderAndTellsALiveOneHere) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_lock_holder_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  const std::string path = (d / ".cgtrain.lock").string();
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  {
    cg::FileLock first(path);
    ASSERT_TRUE(first.locked());
    cg::FileLock second(path);  // another open file: flock refuses it, in this process too
    ASSERT_TRUE(second.held_elsewhere());
    const cg::LockHolder h = second.holder();
    EXPECT_EQ(h.pid, ::getpid());
    EXPECT_EQ(h.host, host);
    EXPECT_EQ(h.boot_id, boot);
    EXPECT_TRUE(h.alive_here());
    EXPECT_EQ(h.describe(), "process " + std::to_string(::getpid()) + " on host " + host);
    const auto record = [&](const std::string& text) {
      std::ofstream(path, std::ios::trunc) << text;
      return second.holder();
    };
    EXPECT_FALSE(record("pid=" + std::to_string(::getpid()) + " host=" + host + " boot=another-boot\n").alive_here());
    EXPECT_FALSE(record("pid=" + std::to_string(::getpid()) + " host=" + std::string(host) + "-not boot=" + boot +
                        "\n").alive_here());
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ASSERT_GT(child, 0);
    ::waitpid(child, nullptr, 0);  // reaped: its pid names no process now
    EXPECT_FALSE(record("pid=" + std::to_string(child) + " host=" + host + " boot=" + boot + "\n").alive_here());
    const cg::LockHolder unknown = record("");  // an older version's lock file
    EXPECT_FALSE(unknown.known() || unknown.alive_here());
    EXPECT_EQ(unknown.describe(), "");
  }
  std::ofstream(path, std::ios::trunc) << "somebody's notes";
  {
    cg::FileLock lock(path);
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(lock.holder().known());
  }
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "somebody's notes");
  // The start of a record (cut short: its writer's machine lost power in the write) is a record's place: written
  // over, so the lock's holder can be named again.
  std::ofstream(path, std::ios::trunc) << "pi";
  {
    cg::FileLock lock(path);
    EXPECT_EQ(lock.holder().pid, ::getpid());
  }
  fs::remove_all(d);
}

// The holder writes its record over the earlier one, then cuts the file to its length: a reader in between sees the
// new record with the old one's tail after it, and must read the new one whole. A first line cut short (no newline),
// another file's text or a record not at the start names nobody.
TEST(FileLock, ARecordIsReadWholeFromItsFirstLineOrNotAtAll) {
  const std::string old_rec = "pid=123456 host=a-much-longer-host-name boot=0123-4567\n";
  const std::string new_rec = "pid=42 host=node7 boot=89ab\n";
  const std::string torn = new_rec + old_rec.substr(new_rec.size());  // pwrite done, ftruncate not yet
  ASSERT_EQ(torn.size(), old_rec.size());
  const cg::LockHolder h = cg::lock_holder_from_text(torn);
  EXPECT_EQ(h.pid, 42);
  EXPECT_EQ(h.host, "node7");
  EXPECT_EQ(h.boot_id, "89ab");
  EXPECT_EQ(h.describe(), "process 42 on host node7");
  const cg::LockHolder whole = cg::lock_holder_from_text(old_rec);
  EXPECT_EQ(whole.pid, 123456);
  EXPECT_EQ(whole.host, "a-much-longer-host-name");
  EXPECT_EQ(whole.boot_id, "0123-4567");
  for (const std::string& nobody : {std::string(), std::string("pid=42 host=node7 boot=89ab"), std::string("pid=42"),
                                    std::string("somebody's notes\npid=42 host=node7 boot=89ab\n"),
                                    std::string("host=node7 pid=42 boot=89ab\n"), std::string("\npid=42 host=n\n")})
    EXPECT_FALSE(cg::lock_holder_from_text(nobody).known()) << "'" << nobody << "'";

  // The same through a file, and a FileLock that takes over a longer earlier record leaves its own alone.
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_lock_record_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  const std::string path = (d / ".cgsample.lock").string();
  std::ofstream(path, std::ios::binary) << torn;
  EXPECT_EQ(cg::read_lock_holder(path).pid, 42);
  std::ofstream(path, std::ios::binary) << "pid=42 host=node7";
  EXPECT_FALSE(cg::read_lock_holder(path).known());
  std::ofstream(path, std::ios::binary) << old_rec;
  {
    cg::FileLock lock(path);
    ASSERT_TRUE(lock.locked());
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    std::string boot;
    std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
    std::ifstream in(path, std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}),
              "pid=" + std::to_string(::getpid()) + " host=" + host + " boot=" + boot + "\n");
  }
  fs::remove_all(d);
}

// A lock file is removed at release only where this FileLock created it and was asked to (a launch that gave up);
// one that was there (a user's, an earlier run's) stays. A process waiting on the removed file locks the new one
// at the path instead of the orphan, so the two are never both "holding" it.
TEST(FileLock, RemovesOnlyTheFileItCreatedAndWaitersMoveOn) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_lock_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  const std::string path = (d / ".cgtrain.lock").string();
  {
    cg::FileLock lock(path);
    EXPECT_TRUE(lock.locked());
    EXPECT_TRUE(lock.created());
    lock.remove_file_at_release(true);
  }
  EXPECT_FALSE(fs::exists(path));
  {
    cg::FileLock lock(path);  // asked to, but kept (training started)
    lock.remove_file_at_release(true);
    lock.remove_file_at_release(false);
  }
  EXPECT_TRUE(fs::exists(path));
  {
    cg::FileLock lock(path);  // the file was there
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(lock.created());
    lock.remove_file_at_release(true);
  }
  EXPECT_TRUE(fs::exists(path));
  fs::remove(path);

  std::atomic<bool> waiting{false};
  bool other_locked = false, other_created = false, path_there = false;
  std::optional<cg::FileLock> first(std::in_place, path);
  first->remove_file_at_release(true);
  std::thread other([&] {
    cg::FileLock lock(path, [&] {
      waiting = true;
      return true;
    });
    other_locked = lock.locked();
    other_created = lock.created();
    path_there = fs::exists(path);
  });
  while (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  first.reset();  // removes its file and lets go
  other.join();
  EXPECT_TRUE(other_locked);
  EXPECT_TRUE(other_created) << "the waiter must lock a new file at the path, not the removed one";
  EXPECT_TRUE(path_there);
  fs::remove_all(d);
}

// A lock asked to remove its file at release leaves a file that has taken its place alone: here its file was deleted
// by hand and another launch made and locked a new one, which must outlive the first lock (unlinked, it would let a
// third launch in beside the second).
TEST(FileLock, RemovesItsOwnFileNotOneThatTookItsPlace) {
  cg::test::TempDir d("cg_lock_replaced");
  const std::string path = d / ".cgtrain.lock";
  std::optional<cg::FileLock> first(std::in_place, path);
  ASSERT_TRUE(first->locked() && first->created());
  first->remove_file_at_release(true);
  fs::remove(path);
  cg::FileLock second(path);
  ASSERT_TRUE(second.locked() && second.created());
  first.reset();
  EXPECT_TRUE(fs::exists(path)) << "the second lock's file was removed by the first";
  EXPECT_EQ(cg::read_lock_holder(path).pid, ::getpid());
}

// Two launches on one new run folder: A makes r6/run, locks it, gives up and removes both with its lock file; B,
// which found the folder there and waited on A's lock, makes them again for its own lock file. Those folders are
// B's from then on (FileLock::made_folders, MadeFolders::note_made): B giving up too leaves nothing. Where A keeps
// its folder (it trained), B waits on A's very file, claims no folder, and A's folder stays whole.
TEST(FileLock, WaiterThatRemakesTheFolderRemovesItWhenItGivesUp) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_lockrace_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  const std::string run = (d / "r6/run").string(), lock_path = run + "/.cgtrain.lock";
  const std::vector<std::string> ignorable{".cgtrain.lock"};
  for (const bool a_keeps : {false, true}) {
    // Declared as train() does: the folders are looked at (and removed) before the lock is let go.
    std::optional<cg::FileLock> a_lock;
    std::optional<cg::MadeFolders> a_made(std::in_place, run, ignorable);
    cg::make_output_dir(run, "train.run_dir");
    a_lock.emplace(lock_path);
    ASSERT_TRUE(a_lock->locked());
    EXPECT_TRUE(a_lock->made_folders().empty()) << "make_output_dir made them, not the lock";
    a_lock->remove_file_at_release(!a_keeps);
    if (a_keeps) a_made->keep();

    std::atomic<bool> waiting{false};
    std::vector<std::string> b_made_folders;
    bool b_locked = false;
    std::thread b([&] {
      std::optional<cg::FileLock> b_lock;
      cg::MadeFolders b_made(run, ignorable);  // r6/run is there: A made it
      cg::make_output_dir(run, "train.run_dir");
      b_lock.emplace(lock_path, [&] {
        waiting = true;
        return true;
      });
      b_locked = b_lock->locked();
      b_made_folders = b_lock->made_folders();
      b_lock->remove_file_at_release(true);
      b_made.note_made(b_lock->made_folders());
    });  // B gives up: b_made looks, then b_lock lets go
    while (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    a_made.reset();
    a_lock.reset();
    b.join();
    EXPECT_TRUE(b_locked);
    if (a_keeps) {
      EXPECT_TRUE(b_made_folders.empty());
      EXPECT_TRUE(fs::exists(lock_path)) << "A's lock file, in A's folder";
      fs::remove_all(d / "r6");
    } else {
      EXPECT_EQ(b_made_folders, (std::vector<std::string>{(d / "r6").string(), run}));
      EXPECT_FALSE(fs::exists(d / "r6")) << "B made r6 and r6/run again, and gave up";
    }
  }
  // A folder that was there before (a user's) is never claimed, even by a lock that creates its file in it.
  fs::create_directories(run);
  {
    cg::MadeFolders made(run, ignorable);
    cg::FileLock lock(lock_path);
    EXPECT_TRUE(lock.created());
    EXPECT_TRUE(lock.made_folders().empty());
    made.note_made(lock.made_folders());
  }
  EXPECT_TRUE(fs::is_directory(run));
  fs::remove_all(d);
}

// read_file of a folder says so (an ifstream opens a folder and reads nothing: "no pieces", "unexpected end of
// input"); a write into a missing folder says that, not "free disk space".
TEST(DurableFile, FolderReadAndMissingFolderWriteSayWhat) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_durable_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d / "tokenizer.model");
  std::string e;
  try {
    cg::read_file((d / "tokenizer.model").string(), "tokenizer");
  } catch (const std::exception& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("cannot read tokenizer " + (d / "tokenizer.model").string() + ": it is a folder, not a file"),
            std::string::npos) << e;
  e.clear();
  try {
    cg::write_file_durable((d / "nosuch/out.model").string(), "x", 1);
  } catch (const std::exception& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("its folder does not exist"), std::string::npos) << e;
  EXPECT_EQ(e.find("free disk space"), std::string::npos) << e;
  fs::remove_all(d);
}

// A file several processes replace (a sweep's summary and status files, by Slurm array tasks on several nodes of
// one shared folder) goes through a temporary name of this host and pid: array tasks on two nodes may have the same
// pid (containers with their own pid namespace start from 1), and must not write into one temporary file.
TEST(DurableFile, SharedReplacementGoesThroughATemporaryOfThisHostAndPid) {
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  const std::string suffix = ".tmp." + std::string(host) + "." + std::to_string(::getpid());
  EXPECT_EQ(cg::shared_tmp_suffix(), suffix);
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_shared_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  // Another node's process of the same pid, writing as cgsweep did before the host was in the name.
  const fs::path other = d / ("status.tmp." + std::to_string(::getpid()));
  std::ofstream(other) << "another node's half-written status";
  cg::write_file_atomic_shared((d / "status").string(), "done\n");
  const auto text = [](const fs::path& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_EQ(text(d / "status"), "done\n");
  EXPECT_EQ(text(other), "another node's half-written status");
  EXPECT_FALSE(fs::exists(d / ("status" + suffix)));
  fs::remove_all(d);
}

// A set of files is replaced whole or not at all: with the last file over the size limit (a full disk), the earlier
// set stays as it was and no .tmp file is left; with room, all are new.
TEST(OutputDir, FileSetIsReplacedWholeOrNotAtAll) {
  cg::test::TempDir d("cg_file_set");
  cg::write_file_set(d.path.string(), {{"a.json", "old a"}, {"b.md", "old b"}, {"c.jsonl", "old c"}});
  std::string e;
  {
    cg::test::FileSizeLimit limit(64);
    e = cg::test::error_of([&] {
      cg::write_file_set(d.path.string(), {{"a.json", "new a"}, {"b.md", "new b"}, {"c.jsonl", std::string(100, 'c')}});
    });
  }
  EXPECT_TRUE(cg::test::contains(e, "cannot write " + (d / "c.jsonl.tmp") + ": File too large (errno 27); the file is "
                                 "larger than the file system or this process's file size limit (ulimit -f) allows"))
      << e;
  EXPECT_EQ(cg::read_file(d / "a.json"), "old a");
  EXPECT_EQ(cg::read_file(d / "b.md"), "old b");
  EXPECT_EQ(cg::read_file(d / "c.jsonl"), "old c");
  // No a.json.tmp, b.md.tmp or c.jsonl.tmp left.
  EXPECT_EQ(std::distance(fs::directory_iterator(d.path), fs::directory_iterator{}), 3);
  cg::write_file_set(d.path.string(), {{"a.json", "new a"}, {"b.md", "new b"}, {"c.jsonl", "new c"}});
  EXPECT_EQ(cg::read_file(d / "a.json") + cg::read_file(d / "b.md") + cg::read_file(d / "c.jsonl"),
            "new anew bnew c");
}

// A failed write says what failed with its OS reason and errno, and only a full disk (ENOSPC, EDQUOT: a real one, a
// small tmpfs) is told to free space: a read-only file system, a folder in the file's place and a file size limit
// (FileSetIsReplacedWholeOrNotAtAll) got "free disk space" too, and callers rewrote that text to give their own.
TEST(DurableFile, OnlyAFullDiskIsToldToFreeSpace) {
  cg::test::TempDir d("cg_io_errors");
  fs::create_directories(d / "a_folder");
  auto io_error = [](const std::function<void()>& f) -> std::pair<int, std::string> {
    try {
      f();
    } catch (const cg::IoError& e) {
      return {e.err, cg::message_of(e)};
    }
    return {0, "<no IoError>"};
  };
  const auto [isdir, folder] = io_error([&] { cg::write_file_durable(d / "a_folder", "x", 1); });
  EXPECT_EQ(isdir, EISDIR);
  EXPECT_EQ(folder, "cannot create " + (d / "a_folder") + ": Is a directory (errno 21); a folder is where a file "
            "should be, or a file where a folder should be: move it or write elsewhere");

  cg::test::TmpfsMount tmpfs(d / "tmpfs", 64 * 1024);
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  const std::string big(256 * 1024, 'x'), path = tmpfs.dir + "/big";
  for (const auto& write : std::vector<std::function<void()>>{
           [&] { cg::write_file_durable(path, big.data(), big.size()); }, [&] { cg::write_file(path, big); },
           [&] { cg::write_file_atomic(path, big); }}) {
    const auto [err, msg] = io_error(write);
    EXPECT_EQ(err, ENOSPC) << msg;
    EXPECT_TRUE(msg == "cannot write " + path + ": No space left on device (errno 28); the disk is full: free disk "
                "space or write elsewhere" ||
                msg == "cannot write " + path + ".tmp: No space left on device (errno 28); the disk is full: free "
                "disk space or write elsewhere") << msg;
    fs::remove(path);  // write_file_durable and write_file leave what they wrote (their callers remove it)
  }
  const auto [set_err, set_msg] = io_error([&] { cg::write_file_set(tmpfs.dir, {{"a", "a"}, {"b", big}}); });
  EXPECT_EQ(set_err, ENOSPC) << set_msg;
  EXPECT_TRUE(fs::is_empty(tmpfs.dir));  // write_file_atomic and the set leave no .tmp behind
  ASSERT_TRUE(tmpfs.read_only());
  const auto [rofs, ro_msg] = io_error([&] { cg::write_file_durable(tmpfs.dir + "/x", "x", 1); });
  EXPECT_EQ(rofs, EROFS);
  EXPECT_EQ(ro_msg, "cannot create " + tmpfs.dir + "/x: Read-only file system (errno 30); the file system is "
            "read-only: remount it writable or write elsewhere");
}

// The advice for each errno a write meets, said in full: a quota is a full disk too (a cluster's home folder), EPERM
// is a permission like EACCES, and an errno without advice gives none (io_advice_clause: no stray "; ").
TEST(DurableFile, AdviceFitsTheErrno) {
  EXPECT_TRUE(cg::disk_full(ENOSPC));
  EXPECT_TRUE(cg::disk_full(EDQUOT));
  EXPECT_FALSE(cg::disk_full(EFBIG));
  EXPECT_EQ(cg::io_advice(EDQUOT), "the disk is full: free disk space or write elsewhere");
  EXPECT_EQ(cg::io_advice(EPERM), "no permission: fix the folder's permissions or write elsewhere");
  EXPECT_EQ(cg::io_advice(EACCES, ""), "no permission: fix the folder's permissions");
  EXPECT_EQ(cg::io_advice(ENOTDIR, ""), "a folder is where a file should be, or a file where a folder should be: move "
            "it");
  EXPECT_EQ(cg::io_advice(EIO), "write elsewhere");
  EXPECT_EQ(cg::io_advice(EIO, ""), "");
  EXPECT_EQ(cg::io_advice_clause(EIO), "");
  EXPECT_EQ(cg::io_advice_clause(EROFS), "the file system is read-only: remount it writable; ");
}

// A shorter text written over a longer file leaves the new text alone, not its tail after the old one's (a CIF
// saved again over a larger one); so does an atomic write over the longer .tmp a killed writer left.
TEST(DurableFile, AShorterWriteLeavesNoTailOfTheOldFile) {
  cg::test::TempDir d("cg_shorter");
  const std::string path = (d / "a.cif");
  cg::write_file(path, "a much longer first text\n");
  cg::write_file(path, "short\n");
  EXPECT_EQ(cg::read_file(path), "short\n");
  cg::write_file_durable(path, "ab", 2);
  EXPECT_EQ(cg::read_file(path), "ab");
  const std::string status = (d / "status");
  std::ofstream(status + ".tmp") << "a half-written status from a killed run\n";
  cg::write_file_atomic(status, "done\n");
  EXPECT_EQ(cg::read_file(status), "done\n");
  EXPECT_FALSE(fs::exists(status + ".tmp"));
}

// An atomic write whose rename fails (a folder where the file should be) says so, leaves what was at the path as it
// was and removes its .tmp: a rerun must not find a stray temporary beside the folder.
TEST(DurableFile, AFailedRenameLeavesThePathAndNoTemporary) {
  cg::test::TempDir d("cg_rename_fails");
  const std::string path = d / "summary.csv";
  fs::create_directories(fs::path(path) / "inside");
  const std::string e = cg::test::error_of([&] { cg::write_file_atomic(path, "new\n"); });
  EXPECT_TRUE(cg::test::contains(e, "cannot rename " + path + ".tmp over " + path + " (" + path + " is unchanged): "
                                 "Is a directory (errno 21); a folder is where a file should be")) << e;
  EXPECT_TRUE(fs::is_directory(fs::path(path) / "inside"));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

}  // namespace

// A stop signal between two renames of a set (CG_TEST_SIGNAL_IN_FILE_SET raises SIGTERM after the first) waits
// until the last file is in place, then kills: the set is all new, not a new a.json beside old b.md and c.jsonl.
TEST(OutputDir, FileSetIsWholeWhenAStopSignalComesBetweenItsRenames) {
  cg::test::TempDir d("cg_file_set_signal");
  cg::write_file_set(d.path.string(), {{"a.json", "old a"}, {"b.md", "old b"}, {"c.jsonl", "old c"}});
  EXPECT_EXIT(
      {
        ::setenv("CG_TEST_SIGNAL_IN_FILE_SET", "15", 1);
        cg::write_file_set(d.path.string(), {{"a.json", "new a"}, {"b.md", "new b"}, {"c.jsonl", "new c"}});
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGTERM), "");
  EXPECT_EQ(cg::read_file(d / "a.json") + ", " + cg::read_file(d / "b.md") + ", " + cg::read_file(d / "c.jsonl"),
            "new a, new b, new c");
  EXPECT_EQ(std::distance(fs::directory_iterator(d.path), fs::directory_iterator{}), 3);
}

// HoldStopSignals (cgsample's commit): a stop signal raised while it lives does nothing yet; as it goes, the signal
// acts as it would have (here the default: death by it); while an exception unwinds it is dropped, so the error is
// what the process reports. Signals held by an earlier holder do not carry over to the next.
TEST(HoldStopSignals, ActsOnceTheCommitIsWholeNotDuringIt) {
  EXPECT_EXIT(
      {
        {
          cg::HoldStopSignals held;
          std::raise(SIGTERM);
          std::fprintf(stderr, "still here after SIGTERM\n");
        }
        std::exit(0);  // not reached: the held SIGTERM kills as the holder goes
      },
      ::testing::KilledBySignal(SIGTERM), "still here after SIGTERM");
  EXPECT_EXIT(
      {
        try {
          cg::HoldStopSignals held;
          std::raise(SIGINT);
          throw std::runtime_error("the disk is full");
        } catch (const std::exception& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::exit(3);
        }
      },
      ::testing::ExitedWithCode(3), "the disk is full");
  EXPECT_EXIT(
      {
        { cg::HoldStopSignals first; }  // nothing came
        ::signal(SIGUSR1, SIG_IGN);     // an ignored signal stays ignored after the commit
        {
          cg::HoldStopSignals held;
          std::raise(SIGUSR1);
        }
        std::exit(4);
      },
      ::testing::ExitedWithCode(4), "");
}

// Holders nest (write_file_set's within cgsample's commit): a stop signal raised within the inner holder is still
// held once the inner ends, also when the inner ends by an exception that the outer commit handles and goes on
// from, and acts as the outer ends. (A holder that acted on its own would let the signal in halfway through the
// outer commit, or drop it with the error that its caller handled.)
TEST(HoldStopSignals, AnInnerHolderLeavesTheSignalToTheOuter) {
  EXPECT_EXIT(
      {
        {
          cg::HoldStopSignals outer;
          {
            cg::HoldStopSignals inner;
            std::raise(SIGTERM);
          }
          std::fprintf(stderr, "still here after the inner holder\n");
        }
        std::exit(0);  // not reached: the held SIGTERM kills as the outer holder goes
      },
      ::testing::KilledBySignal(SIGTERM), "still here after the inner holder");
  EXPECT_EXIT(
      {
        {
          cg::HoldStopSignals outer;
          try {
            cg::HoldStopSignals inner;
            std::raise(SIGTERM);
            throw std::runtime_error("the disk is full");
          } catch (const std::exception& e) {
            std::fprintf(stderr, "handled: %s\n", e.what());
          }
        }
        std::exit(0);  // not reached: the outer commit went on, and its end lets the SIGTERM act
      },
      ::testing::KilledBySignal(SIGTERM), "handled: the disk is full");
}
