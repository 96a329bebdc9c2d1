// Shared by the fuzz harnesses (tests/fuzz/fuzz_*.cpp): how a harness tells an expected refusal from a finding.
// A parser given bad bytes may refuse with cg::Error (the clear error the user reads); anything else that escapes
// (std::out_of_range from .at(), std::invalid_argument from stod, bad_alloc from a size read off the input) or any
// crash or sanitizer report is a finding. A broken round trip aborts with both sides printed.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "tests/scratch_path.h"  // ScratchPath: a harness whose reader takes a file or a folder

namespace cg::fuzz {

// Warnings about odd inputs (a record's crystal counted as unparsed) would drown the fuzzer's own output.
inline const bool kQuiet = (spdlog::set_level(spdlog::level::off), true);

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::abort();
}

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
