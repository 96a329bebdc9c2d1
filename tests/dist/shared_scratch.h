// A folder that every rank of an mpirun test shares, unique to the job: two runs at once (two ctest invocations in one
// build tree, a developer's beside CI) never write the same files, and a run that crashed leaves none a later run
// reads. Rank 0 makes it fresh (mkdtemp) in $TEST_TMPDIR (ctest: <build>/tests/tmp) or the system temp dir and tells
// the others its path. Once the tests are done (the end of RUN_ALL_TESTS, collective) every rank tells rank 0 whether
// one of its tests failed, and rank 0 removes the folder only when none did: a failure on rank 1 alone keeps it, for
// a look at what the ranks wrote, and rank 0 names it and the failing ranks. It speaks MPI's C API on MPI_COMM_WORLD,
// which every mpirun test has (dist::run_main, dist::make_parallel_dims or its own MPI_Init), so a test that links no
// libtorch (test_checkpoint_mpi) uses it too.
#pragma once
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only: OpenMPI's mpi.h otherwise pulls in the deprecated C++ bindings
#endif
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "tests/scratch_path.h"

namespace cg::test {

namespace detail {
// The end of the shared folder, at the end of the test program on every rank (so the ranks meet here in the same
// order as they called shared_scratch_dir). Past the gather every rank is done with the folder.
class RemoveIfEveryRankPassed : public ::testing::EmptyTestEventListener {
 public:
  explicit RemoveIfEveryRankPassed(std::string path) : path_(std::move(path)) {}
  void OnTestProgramEnd(const ::testing::UnitTest& unit) override {
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    int failed = unit.Failed() ? 1 : 0;
    std::vector<int> every(rank == 0 ? world : 0);
    MPI_Gather(&failed, 1, MPI_INT, every.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank != 0) return;
    std::string failed_ranks;
    int n = 0;
    for (int r = 0; r < world; ++r)
      if (every[r] != 0) failed_ranks += (n++ == 0 ? "" : ", ") + std::to_string(r);
    const std::string what = "the files the ranks shared (" + std::string(n == 1 ? "rank " : "ranks ") + failed_ranks +
                             " failed)";
    remove_if_passed(path_, n == 0, what.c_str());
  }

 private:
  std::string path_;
};
}  // namespace detail

// Collective over MPI_COMM_WORLD: call it at the same point on every rank. Throws on every rank when rank 0 cannot
// make it (rank 0's error says why).
inline std::string shared_scratch_dir(const std::string& name) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  char buf[4096] = {};
  std::string why;
  if (rank == 0) {
    const std::string path = make_scratch_folder(name, why);
    if (path.size() < sizeof buf) {
      path.copy(buf, path.size());
    } else {
      why = "the scratch folder's path " + path + " is too long; set TEST_TMPDIR to a shorter one";
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  }
  MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, MPI_COMM_WORLD);
  CG_CHECK(buf[0] != '\0', "{}", rank == 0 ? why : "rank 0 could not make the ranks' scratch folder (it says why)");
  ::testing::UnitTest::GetInstance()->listeners().Append(new detail::RemoveIfEveryRankPassed(buf));
  return buf;
}

}  // namespace cg::test
