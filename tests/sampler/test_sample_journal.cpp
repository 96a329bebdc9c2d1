// cgsample's journal (sampler/sample_journal.h): what the dp groups' writers append is what a later run gathers,
// whatever its dp; lines no run of the key wrote are skipped; journals of other settings are set aside; a full disk or
// another write failure is a clear error, with its own fix, that keeps what was written.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/durable_file.h"
#include "sampler/sample_journal.h"
#include "tests/test_util.h"

namespace cg {
namespace {

namespace fs = std::filesystem;

Generation gen(std::vector<int32_t> tokens, bool eos) {
  Generation g;
  g.tokens = std::move(tokens);
  g.hit_eos = eos;
  return g;
}

void expect_same(const Generation& a, const Generation& b, size_t i) {
  EXPECT_EQ(a.tokens, b.tokens) << "sequence " << i;
  EXPECT_EQ(a.hit_eos, b.hit_eos) << "sequence " << i;
}

size_t line_count(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

TEST(SampleJournal, WhatTheGroupsWroteIsGatheredIntoOneFile) {
  test::TempDir d("cg_journal");
  const std::string out = d.path.string();
  EXPECT_EQ(journal_path(out, 0), d / ".cgsample.journal.jsonl");
  EXPECT_EQ(journal_path(out, 3), d / ".cgsample.journal.dp3.jsonl");
  const std::map<size_t, Generation> want = {
      {0, gen({5, 6, 7}, true)}, {1, gen({}, true)}, {2, gen({9, 9}, false)}, {4, gen({1}, true)}};
  {
    JournalWriter g0(journal_path(out, 0), "K");  // dp group 0 drew 0, 2, 4; group 1 drew 1 (3 was in progress)
    JournalWriter g1(journal_path(out, 1), "K");
    g0.add(2, want.at(2));
    g1.add(1, want.at(1));
    g0.add(0, want.at(0));
    g0.add(4, want.at(4));
    EXPECT_EQ(g0.lines(), 3);
    EXPECT_EQ(g1.lines(), 1);
  }
  EXPECT_EQ(line_count(d / ".cgsample.journal.jsonl"), 4u);  // the key line, then one per sequence
  const auto got = gather_journals(out, "K", 5, 10);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [i, g] : want) {
    ASSERT_TRUE(got.count(i)) << i;
    expect_same(got.at(i), g, i);
  }
  // Now in group 0's file alone, so a resumed run at dp 1 (or any dp) starts the groups' files afresh.
  EXPECT_FALSE(fs::exists(d / ".cgsample.journal.dp1.jsonl"));
  EXPECT_EQ(line_count(d / ".cgsample.journal.jsonl"), 5u);
  {  // Appending to it after a resume keeps one key line.
    JournalWriter g0(journal_path(out, 0), "K");
    g0.add(3, gen({2, 2}, false));
  }
  EXPECT_EQ(line_count(d / ".cgsample.journal.jsonl"), 6u);
  EXPECT_EQ(gather_journals(out, "K", 5, 10).size(), 5u);
  remove_journals(out);
  EXPECT_TRUE(fs::is_empty(d.path));
}

TEST(SampleJournal, LinesNoRunOfTheKeyWroteAreSkipped) {
  test::TempDir d("cg_journal");
  const std::string out = d.path.string();
  {
    JournalWriter w(journal_path(out, 0), "K");
    w.add(0, gen({1, 2}, true));
    w.add(1, gen({3}, true));
  }
  std::ofstream(d / ".cgsample.journal.jsonl", std::ios::app)
      << "{\"i\": 2, \"eos\": true, \"tokens\": [10]}\n"    // a token past a vocabulary of 10
      << "{\"i\": 7, \"eos\": true, \"tokens\": [1]}\n"     // a prompt past the 5 there are
      << "{\"i\": 5, \"eos\": true, \"tokens\": [1]}\n"     // one past the last (4)
      << "{\"i\": 4, \"eos\": true, \"tokens\": [-1]}\n"    // a negative token
      << "{\"i\": -1, \"eos\": true, \"tokens\": [1]}\n"    // not an index
      << "not json\n"
      << "{\"i\": 3, \"eos\": true, \"tok";                 // cut by a kill mid-write
  const auto got = gather_journals(out, "K", 5, 10);
  ASSERT_EQ(got.size(), 2u);
  expect_same(got.at(0), gen({1, 2}, true), 0);
  expect_same(got.at(1), gen({3}, true), 1);
  EXPECT_EQ(line_count(d / ".cgsample.journal.jsonl"), 3u);  // rewritten with what was read
}

TEST(SampleJournal, JournalsOfOtherSettingsAreSetAsideForTheirOwnRun) {
  // Run A (key ka) was stopped; a run of other settings (kb, a typo in the command, say) neither reads A's journal
  // nor loses it: it is set aside, and A's command finds it again.
  test::TempDir d("cg_journal");
  const std::string out = d.path.string(), ka = std::string(64, 'a'), kb = std::string(64, 'b');
  {
    JournalWriter a0(journal_path(out, 0), ka);
    a0.add(0, gen({1}, true));
    JournalWriter a1(journal_path(out, 1), ka);
    a1.add(1, gen({4, 4}, false));
  }
  std::ofstream(d / ".cgsample.journal.dpx.jsonl") << "not a journal name\n";
  std::ofstream(d / ".cgsample.journal.jsonl.bak") << "nor this\n";
  EXPECT_TRUE(gather_journals(out, kb, 5, 10).empty());
  EXPECT_FALSE(fs::exists(d / ".cgsample.journal.jsonl"));
  EXPECT_TRUE(fs::exists(d / ".cgsample.journal.aside-aaaaaaaaaaaa.jsonl"));
  EXPECT_TRUE(fs::exists(d / ".cgsample.journal.aside-aaaaaaaaaaaa.dp1.jsonl"));
  EXPECT_TRUE(fs::exists(d / ".cgsample.journal.dpx.jsonl"));  // only journals are touched
  EXPECT_TRUE(fs::exists(d / ".cgsample.journal.jsonl.bak"));
  {
    JournalWriter b0(journal_path(out, 0), kb);  // run B is stopped too
    b0.add(2, gen({7}, true));
  }
  // A's command again: its sequences from the set-aside files; B's journal set aside in turn.
  const auto got = gather_journals(out, ka, 5, 10);
  ASSERT_EQ(got.size(), 2u);
  expect_same(got.at(0), gen({1}, true), 0);
  expect_same(got.at(1), gen({4, 4}, false), 1);
  EXPECT_FALSE(fs::exists(d / ".cgsample.journal.aside-aaaaaaaaaaaa.jsonl"));
  EXPECT_FALSE(fs::exists(d / ".cgsample.journal.aside-aaaaaaaaaaaa.dp1.jsonl"));
  EXPECT_TRUE(fs::exists(d / ".cgsample.journal.aside-bbbbbbbbbbbb.jsonl"));
  // A finishes: its journals go, B's set-aside one stays for B.
  remove_journals(out);
  EXPECT_FALSE(fs::exists(d / ".cgsample.journal.jsonl"));
  const auto b = gather_journals(out, kb, 5, 10);
  ASSERT_EQ(b.size(), 1u);
  expect_same(b.at(2), gen({7}, true), 2);
  EXPECT_TRUE(gather_journals(out, "nothing of it", 5, 10).empty());  // B's live journal set aside again: no error
  // A journal set aside stays as it is for runs of still other settings, and B's command finds it again.
  EXPECT_TRUE(gather_journals(out, "another", 5, 10).empty());
  EXPECT_TRUE(fs::exists(d / ".cgsample.journal.aside-bbbbbbbbbbbb.jsonl"));
  const auto b_again = gather_journals(out, kb, 5, 10);
  ASSERT_EQ(b_again.size(), 1u);
  expect_same(b_again.at(2), gen({7}, true), 2);
}

TEST(SampleJournal, LinesWithoutAnEosFlagAreSkipped) {
  test::TempDir d("cg_journal");
  const std::string out = d.path.string();
  {
    JournalWriter w(journal_path(out, 0), "K");
    w.add(0, gen({1, 2}, true));
  }
  std::ofstream(d / ".cgsample.journal.jsonl", std::ios::app)
      << "{\"i\": 1, \"eos\": \"yes\", \"tokens\": [1]}\n"  // an edited line: not a bool
      << "{\"i\": 2, \"eos\": null, \"tokens\": [1]}\n"
      << "{\"i\": 3, \"tokens\": [1]}\n";                      // no eos at all: not this key's runs' line
  const auto got = gather_journals(out, "K", 5, 10);
  ASSERT_EQ(got.size(), 1u);
  expect_same(got.at(0), gen({1, 2}, true), 0);
}

TEST(SampleJournal, AFullDiskIsAClearErrorThatKeepsWhatWasWritten) {
  // A real full disk (ENOSPC): the error says so, and the line cut by it is skipped on reading.
  test::TempDir d("cg_journal");
  test::TmpfsMount tmpfs(d / "tmpfs", 16 * 4096);
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  const std::string path = journal_path(tmpfs.dir, 0);
  {
    JournalWriter w(path, "K");
    w.add(0, gen({1, 2, 3}, true));
    const std::vector<int32_t> long_tokens(4000, 7);  // ~20 kB a line: the 64 kB tmpfs fills within a few
    const std::string err = test::error_of([&] {
      for (size_t i = 1; i < 100; ++i) w.add(i, gen(long_tokens, true));
    });
    EXPECT_TRUE(test::contains(err, "cannot write " + path + ": No space left on device (errno 28); the disk is full: "
                               "free disk space; then run the same command again with the same sample.out_dir: the "
                               "sequences written before are kept")) << err;
  }
  // Read off the full disk (gather_journals rewrites the file it reads).
  fs::copy_file(path, journal_path(d.path.string(), 0));
  const auto got = gather_journals(d.path.string(), "K", 100, 10);
  ASSERT_GE(got.size(), 1u);
  expect_same(got.at(0), gen({1, 2, 3}, true), 0);
}

TEST(SampleJournal, AFailureOtherThanAFullDiskSaysItsOwnReasonAndFix) {
  // A file size limit (EFBIG) frees nothing by freeing space: the error names the limit, not a full disk.
  test::TempDir d("cg_journal");
  const std::string path = journal_path(d.path.string(), 0);
  {
    JournalWriter w(path, "K");
    w.add(0, gen({1, 2, 3}, true));
    test::FileSizeLimit cap(fs::file_size(path) + 10);  // room for less than a line
    const std::string err = test::error_of([&] {
      for (size_t i = 1; i < 4; ++i) w.add(i, gen({1, 2, 3, 4, 5, 6}, true));
    });
    EXPECT_TRUE(test::contains(err, "cannot write " + path + ": File too large (errno 27); the file is larger than the "
                               "file system or this process's file size limit (ulimit -f) allows: raise that limit; "
                               "then run the same command again with the same sample.out_dir: the sequences written "
                               "before are kept")) << err;
    EXPECT_FALSE(test::contains(err, "full")) << err;
    EXPECT_FALSE(test::contains(err, "free")) << err;
  }
  const auto got = gather_journals(d.path.string(), "K", 5, 10);  // the cut line is skipped
  ASSERT_EQ(got.size(), 1u);
  expect_same(got.at(0), gen({1, 2, 3}, true), 0);
  // A folder where the journal file should be, and a folder that does not exist: each says its fix and the setting.
  fs::create_directories(d / "a_folder");
  std::string err = test::error_of([&] { JournalWriter w(d / "a_folder", "K"); });
  EXPECT_TRUE(test::contains(err, "cannot open " + (d / "a_folder") + " to append: Is a directory (errno 21); a "
                             "folder is where a file should be, or a file where a folder should be: move it; check "
                             "sample.out_dir")) << err;
  err = test::error_of([&] { JournalWriter w(d / "no/such/folder/j.jsonl", "K"); });
  EXPECT_TRUE(test::contains(err, "cannot open " + (d / "no/such/folder/j.jsonl") + " to append: No such file or "
                             "directory (errno 2); its folder does not exist: create it; check sample.out_dir")) << err;
}

TEST(SampleJournal, ALineIsOnDiskOnceAddReturnsEvenIfTheProcessDies) {
  // add() is one write(2): a process killed right after it (no destructor, no flush) leaves the line in the file.
  test::TempDir d("cg_journal");
  const std::string path = journal_path(d.path.string(), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto* w = new JournalWriter(path, "K", 1e9);  // never synced by time
    w->add(3, gen({7, 8}, false));
    ::raise(SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  const auto got = gather_journals(d.path.string(), "K", 5, 10);
  ASSERT_EQ(got.size(), 1u);
  expect_same(got.at(3), gen({7, 8}, false), 3);
}

}  // namespace
}  // namespace cg
