// Where a test process writes its files, shared by the GoogleTest files (tests/test_util.h) and the fuzz harnesses
// (tests/fuzz/fuzz_target.h), which do not link gtest.
#pragma once
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace cg::test {

// $TEST_TMPDIR, which ctest sets to <build>/tests/tmp (cmake/CgHelpers.cmake) and a GoogleTest process then points at
// a folder of its own there (tests/test_util.h's ScratchFolder); else the system temp dir ($TMPDIR, /tmp).
inline std::filesystem::path scratch_base() {
  const char* env = std::getenv("TEST_TMPDIR");
  return env && *env ? std::filesystem::path(env) : std::filesystem::temp_directory_path();
}

// A fresh folder scratch_base()/NAME.XXXXXX (mkdtemp; scratch_base() is made if missing): its path, or "" and `why`
// says what to change.
inline std::string make_scratch_folder(const std::string& name, std::string& why) {
  const std::filesystem::path base = scratch_base();
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  std::string tmpl = (base / (name + ".XXXXXX")).string();
  if (!ec && ::mkdtemp(tmpl.data()) != nullptr) return tmpl;
  why = "cannot make a scratch folder " + tmpl + ": " + (ec ? ec.message() : std::strerror(errno)) +
        "; set TEST_TMPDIR to a writable folder";
  return "";
}

// The end of a scratch folder: removed with what is under it once the tests passed; kept, for a look at what they
// wrote, and named on stderr as holding `what` when one failed.
inline void remove_if_passed(const std::string& path, bool passed, const char* what) {
  if (!passed) {
    std::fprintf(stderr, "a test failed: %s are kept in %s\n", what, path.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) std::fprintf(stderr, "could not remove the scratch folder %s: %s\n", path.c_str(), ec.message().c_str());
}

// scratch_base()/name (not made; scratch_base() is, if missing), removed with what is under it when this goes (a static
// one: at exit(); a crash or abort keeps it, with what the test wrote there).
struct ScratchPath {
  std::filesystem::path path;
  explicit ScratchPath(const std::string& name) : path(scratch_base() / name) {
    std::error_code ec;  // a folder that cannot be made fails the first write there, naming the path
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  ~ScratchPath() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScratchPath(const ScratchPath&) = delete;
  ScratchPath& operator=(const ScratchPath&) = delete;
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

}  // namespace cg::test
