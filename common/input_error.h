// InputError: an error in what the user gave a tool, its command line or its config file. Every rank of a job is given
// the same words and reads the same file, so every rank fails with the same message at the same point: run_main
// prints it from rank 0 alone instead of once per rank (dist/runtime.h).
#pragma once
#include <filesystem>
#include <string>

#include "common/error.h"

namespace cg {

struct InputError : Error {
  using Error::Error;
};

// What a std::filesystem call said of a path the config names (a symbolic link that loops, a folder this user may
// not enter): libstdc++'s "filesystem error: status: ..." names neither the fix nor, first, the path.
inline std::string path_error_message(const std::filesystem::filesystem_error& e) {
  const std::string second = e.path2().empty() ? "" : " (and " + e.path2().string() + ")";
  return "cannot look at " + e.path1().string() + second + ": " + e.code().message() +
         "; correct the setting that names this path, or the path itself (a symbolic link that loops, a folder "
         "without permission)";
}

// f(), with its cg::Error turned into an InputError: for checks every rank makes alike, on the files the config
// names (the same path on every rank, checked at the same point of the launch, before any rank can take another
// way). So is a std::filesystem error on such a path (path_error_message). Other exceptions (a CallError, out of
// memory, a device's) are no input's, and pass. A file missing on some nodes only (node-local disks) is still said
// by a rank that lacks it: rank 0 says its own at once; another rank says its own after run_main's wait, when rank 0
// has not ended the job.
template <class F>
auto every_rank_alike(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError&) {
    throw;
  } catch (const CallError&) {
    throw;
  } catch (const Error& e) {
    throw InputError(e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    throw InputError(path_error_message(e));
  }
}

}  // namespace cg
