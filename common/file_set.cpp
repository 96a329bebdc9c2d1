#include "common/file_set.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/hold_stop_signals.h"

namespace cg {

void write_file_set(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files,
                    const std::string& tmp_suffix) {
  const std::filesystem::path d(dir);
  const auto tmp = [&](size_t i) { return (d / (files[i].first + tmp_suffix)).string(); };
  size_t started = 0;  // files whose .tmp may exist
  try {
    for (; started < files.size(); ++started) {
      const std::string& text = files[started].second;
      write_file_durable(tmp(started), text.data(), text.size());
    }
  } catch (...) {
    for (size_t i = 0; i <= started && i < files.size(); ++i) ::unlink(tmp(i).c_str());
    throw;
  }
  // Only renames within one folder from here, which need no space. A stop signal (cgeval under Slurm's time limit)
  // acting between two of them left new files beside old ones: it is held until the last is in place (or, when
  // the caller holds them over a larger commit, until that is: this holder then does nothing).
  HoldStopSignals held;
  // Fault injection for tests (test_output_dir): CG_TEST_SIGNAL_IN_FILE_SET=N raises signal N after the first rename.
  const char* hook = std::getenv("CG_TEST_SIGNAL_IN_FILE_SET");
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string path = (d / files[i].first).string();
    if (::rename(tmp(i).c_str(), path.c_str()) != 0) CG_FAIL_IO(errno, "cannot rename {} over {}", tmp(i), path);
    if (hook) std::raise(std::atoi(hook)), hook = nullptr;
  }
  fsync_path(dir, /*directory=*/true);
}

}  // namespace cg
