// main() for GoogleTest suites run under mpirun: MPI up via run_main, every rank runs every test, and all ranks
// agree on the exit code (the max over ranks), so a failure on any rank fails the job.
#include <gtest/gtest.h>

#include "common/log.h"
#include "dist/mpi_comm.h"
#include "dist/runtime.h"

namespace {

int run_tests(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const auto& rt = cg::dist::runtime();
  cg::init_logging(rt.rank, rt.world, "warn");
  int rc = RUN_ALL_TESTS();
  at::Tensor t = at::full({1}, rc, at::kInt);
  cg::dist::make_mpi_world_comm()->all_reduce(t, cg::dist::ReduceOp::Max);
  return t.item<int>();
}

}  // namespace

int main(int argc, char** argv) { return cg::dist::run_main(argc, argv, run_tests); }
