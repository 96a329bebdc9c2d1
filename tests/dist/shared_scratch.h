// A folder that every rank of an mpirun test shares, unique to the job: two runs at once (two ctest invocations in one
// build tree, a developer's beside CI) never write the same files, and a run that crashed leaves none a later run
// reads. Rank 0 makes it fresh (mkdtemp) in $TEST_TMPDIR (ctest: <build>/tests/tmp) or the system temp dir and tells
// the others its path; at exit, when every rank is done with it, rank 0 removes it if its tests passed and otherwise
// keeps it and says where. It speaks MPI's C API on MPI_COMM_WORLD, which every mpirun test has (dist::run_main,
// dist::make_parallel_dims or its own MPI_Init), so a test that links no libtorch (test_checkpoint_mpi) uses it too.
#pragma once
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only: OpenMPI's mpi.h otherwise pulls in the deprecated C++ bindings
#endif
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

#include "common/error.h"
#include "tests/scratch_path.h"

namespace cg::test {

namespace detail {
struct RemoveAtExit {
  std::string path;
  ~RemoveAtExit() {  // after main returned: its all-reduce of the exit code has seen every rank finish
    if (!path.empty())
      remove_if_passed(path, !::testing::UnitTest::GetInstance()->Failed(), "the files the ranks shared");
  }
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
      static detail::RemoveAtExit remove;
      remove.path = path;
    } else {
      why = "the scratch folder's path " + path + " is too long; set TEST_TMPDIR to a shorter one";
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  }
  MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, MPI_COMM_WORLD);
  CG_CHECK(buf[0] != '\0', "{}", rank == 0 ? why : "rank 0 could not make the ranks' scratch folder (it says why)");
  return buf;
}

}  // namespace cg::test
