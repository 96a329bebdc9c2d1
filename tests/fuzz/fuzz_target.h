// Shared by the fuzz harnesses (tests/fuzz/fuzz_*.cpp): how a harness tells an expected refusal from a finding.
// A parser given bad bytes may refuse with cg::Error (the clear error the user reads); anything else that escapes
// (std::out_of_range from .at(), std::invalid_argument from stod, bad_alloc from a size read off the input) or any
// crash or sanitizer report is a finding. A broken round trip aborts with both sides printed.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <spdlog/spdlog.h>

#include "common/error.h"

namespace cg::fuzz {

// Warnings about odd inputs (a record's crystal counted as unparsed) would drown the fuzzer's own output.
inline const bool kQuiet = (spdlog::set_level(spdlog::level::off), true);

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::abort();
}

// A path of the process's own in the system temp dir ($TMPDIR, /tmp), for a harness whose reader takes a file or a
// folder: <prefix><pid><suffix>, removed with what is under it when the process exits (a static one: at exit()). A
// finding aborts, which keeps it with the input that broke the reader.
struct ScratchPath {
  std::string path;
  explicit ScratchPath(const std::string& prefix, const std::string& suffix = "")
      : path((std::filesystem::temp_directory_path() / (prefix + std::to_string(::getpid()) + suffix)).string()) {}
  ~ScratchPath() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScratchPath(const ScratchPath&) = delete;
  ScratchPath& operator=(const ScratchPath&) = delete;
};

// Runs f(); cg::Error is an accepted refusal (returns false), any other exception a finding.
template <typename F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const cg::Error&) {
    return false;
  } catch (const std::exception& e) {
    finding(std::string("exception other than cg::Error: ") + typeid(e).name() + ": " + e.what());
  }
}

}  // namespace cg::fuzz
