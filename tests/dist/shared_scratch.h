// A folder that every rank of an mpirun test shares, unique to the job: two runs at once (two ctest invocations in one
// build tree, a developer's beside CI) never write the same files, and a run that crashed leaves none a later run
// reads. Rank 0 makes it fresh (mkdtemp) in $TEST_TMPDIR (ctest: <build>/tests/tmp) or the system temp dir and tells
// the others its path; at exit, when every rank is done with it, rank 0 removes it if its tests passed and otherwise
// keeps it and says where.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.h"
#include "dist/comm.h"
#include "tests/scratch_path.h"

namespace cg::test {

namespace detail {
struct RemoveAtExit {
  std::string path;
  ~RemoveAtExit() {  // after main returned: run_main's all-reduce of the exit code has seen every rank finish
    if (path.empty()) return;
    if (::testing::UnitTest::GetInstance()->Failed()) {
      std::fprintf(stderr, "a test failed: the files the ranks shared are kept in %s\n", path.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace detail

// Collective over `world`: call it at the same point on every rank. Throws on every rank when rank 0 cannot make it.
inline std::string shared_scratch_dir(dist::Comm& world, const std::string& name) {
  constexpr int64_t kMax = 4096;
  at::Tensor buf = at::zeros({kMax}, at::kByte);
  std::string why;
  if (world.rank() == 0) {
    const std::filesystem::path base = scratch_base();
    std::error_code ec;
    std::filesystem::create_directories(base, ec);
    std::string tmpl = (base / (name + ".XXXXXX")).string();
    if (tmpl.size() < kMax && ::mkdtemp(tmpl.data()) != nullptr) {
      std::memcpy(buf.data_ptr(), tmpl.data(), tmpl.size());
      static detail::RemoveAtExit remove;
      remove.path = tmpl;
    } else {
      why = std::strerror(errno);
    }
  }
  world.broadcast(buf, 0);
  const std::string path(reinterpret_cast<const char*>(buf.data_ptr<uint8_t>()));
  CG_CHECK(!path.empty(), "rank 0 could not make a scratch folder {}.XXXXXX in {}{}{}: set TEST_TMPDIR to a writable "
           "folder", name, scratch_base().string(), why.empty() ? "" : ": ", why);
  return path;
}

}  // namespace cg::test
