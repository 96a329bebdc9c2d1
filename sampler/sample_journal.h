// cgsample's journal: the sequences a run has finished, so a stopped run (preempted, Ctrl-C, a node lost) goes on
// where it stopped. In sample.out_dir:
//   .cgsample.journal.jsonl        dp group 0's (rank 0), and, after a resume, everything earlier runs kept
//   .cgsample.journal.dp<G>.jsonl  dp group G's (its tp rank 0), when that rank sees sample.out_dir
// Each file: line 1 {"key": K}, K the sha256 of what decides the samples (model, tokenizer, dtype, device, kernels,
// prompts, sampling settings); then a line {"i": prompt index, "eos": bool, "tokens": [...]} per sequence, written
// (write(2)) the moment it finishes, so a process killed by a signal keeps it, and flushed to disk (fdatasync) at
// most every second and at the end. A sequence does not depend on the batch or the dp layout (tested), so a run
// resumed at the same tp writes what an unstopped one would (at another tp the logits differ in rounding, and a
// near tie may draw otherwise). The key names the weights by their values, not their paths (a folder written again
// is another model; the same weights spelled otherwise are not). Removed once the outputs are written. No torch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sampler/generation.h"

namespace cg {

// The journal file of dp group `dp_group` in out_dir.
std::string journal_path(const std::string& out_dir, int dp_group);

// Rank 0, before generating: the sequences the journals in out_dir of this key hold, by prompt index (< n, every
// token < vocab_size), whether live or set aside. A live journal of another key (a stopped run of other settings) is
// set aside, renamed .cgsample.journal.aside-<its key>[.dp<G>].jsonl, where a later run of those settings finds it
// (warned). Lines no run of this key wrote (a line cut by a kill mid-write, a token past the vocabulary, no boolean
// "eos") are skipped, so those sequences are drawn again. What was read is then written into group 0's journal
// (atomically) and this key's other files are removed, so this run's groups start theirs afresh, whatever its dp.
std::map<size_t, Generation> gather_journals(const std::string& out_dir, const std::string& key, size_t n,
                                             int64_t vocab_size);

// The live journal files in out_dir (a run into it stopped before its outputs were written; set-aside ones are not).
std::vector<std::string> live_journals(const std::string& out_dir);
// Removes the live journal files in out_dir (this run's, once its outputs are written); set-aside ones stay.
void remove_journals(const std::string& out_dir);

// One dp group's journal, appended as its sequences finish.
class JournalWriter {
 public:
  // Opens `path` to append; a new or empty file gets the key line first. Throws naming the file.
  JournalWriter(std::string path, const std::string& key, double sync_every_s = 1.0);
  ~JournalWriter();  // flushes to disk and closes; never throws
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Writes sequence i's line; flushes to disk when the last flush is sync_every_s old. Throws naming the file, the
  // OS reason and its fix (free space only for a full disk), saying that what was written before is kept.
  void add(size_t i, const Generation& g);
  void sync();  // flushes to disk now
  int64_t lines() const { return lines_; }  // sequences added
  const std::string& path() const { return path_; }

 private:
  void write_all(const std::string& text);
  [[noreturn]] void fail(const char* what, int err) const;
  std::string path_;
  int fd_ = -1;
  double sync_every_s_;
  double last_sync_ = 0;  // steady-clock seconds
  int64_t lines_ = 0;
};

}  // namespace cg
