// parallel_chunks: every index once, ranges as documented, really on several threads, exceptions reach the caller,
// nested calls run serially (no deadlock), and the pool survives many calls. Also the tools' getenv, which sets how
// idle OpenMP and OpenBLAS threads wait.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/omp_env.h"
#include "common/parallel.h"

namespace {

TEST(ParallelChunks, CoversEveryIndexOnceInAtMostThreadsRangesOfAtLeastGrain) {
  for (int threads : {1, 2, 3, 8}) {
    for (int64_t n : {0, 1, 5, 16, 17, 1000}) {
      for (int64_t grain : {1, 4, 16, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n + 20));
        std::mutex mu;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        cg::parallel_chunks(20, 20 + n, grain, threads, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[i] += 1;
          std::lock_guard<std::mutex> lock(mu);
          ranges.emplace_back(b, e);
        });
        for (int64_t i = 0; i < n + 20; ++i) EXPECT_EQ(hits[i].load(), i >= 20 ? 1 : 0) << i;
        if (n == 0) {
          EXPECT_TRUE(ranges.empty());
          continue;
        }
        const int64_t want = std::max<int64_t>(1, std::min<int64_t>(threads, n / grain));  // hand count
        EXPECT_EQ(static_cast<int64_t>(ranges.size()), want)
            << "n " << n << " grain " << grain << " threads " << threads;
        for (const auto& [b, e] : ranges)
          if (ranges.size() > 1) EXPECT_GE(e - b, std::min<int64_t>(grain, n)) << b << ".." << e;
      }
    }
  }
}

TEST(ParallelChunks, RunsOnSeveralThreadsAtOnce) {
  // Four ranges that each wait until all four have started: only possible when they run at the same time.
  std::atomic<int> started{0};
  std::mutex mu;
  std::set<std::thread::id> ids;
  cg::parallel_chunks(0, 4, 1, 4, [&](int64_t, int64_t) {
    ++started;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (started.load() < 4 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(started.load(), 4);
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);  // the caller runs the first range
}

TEST(ParallelChunks, RethrowsAChunksExceptionAfterAllFinished) {
  std::atomic<int> finished{0};
  EXPECT_THROW(cg::parallel_chunks(0, 8, 1, 4,
                                   [&](int64_t b, int64_t) {
                                     if (b == 4) throw std::runtime_error("chunk failed");
                                     std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                     ++finished;
                                   }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 3);  // the other three ranges ran to the end before the call returned
}

TEST(ParallelChunks, NestedCallsRunSeriallyAndManyCallsReuseThePool) {
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 200; ++rep) {
    cg::parallel_chunks(0, 6, 1, 3, [&](int64_t b, int64_t e) {
      cg::parallel_chunks(b * 10, e * 10, 1, 3, [&](int64_t bb, int64_t ee) {
        EXPECT_EQ(bb, b * 10);  // one range: serial
        EXPECT_EQ(ee, e * 10);
        for (int64_t i = bb; i < ee; ++i) sum += i;
      });
    });
  }
  EXPECT_EQ(sum.load(), 200 * (59 * 60 / 2));
}

// Where several chunks throw, the first exception thrown is the one rethrown (parallel.h), not a later one that
// would overwrite it: the second range throws only well after the first range has (300 ms: the calling thread records
// its exception a few instructions after setting the flag, a margin a loaded CI machine's scheduler keeps).
TEST(ParallelChunks, RethrowsTheFirstExceptionOfSeveral) {
  std::atomic<bool> first_thrown{false};
  try {
    cg::parallel_chunks(0, 2, 1, 2, [&](int64_t b, int64_t) {
      if (b == 0) {
        first_thrown = true;
        throw std::runtime_error("first");
      }
      while (!first_thrown) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      throw std::runtime_error("second");
    });
    ADD_FAILURE() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
}

// The tools' getenv (common/omp_env.cpp, linked into this test as into every tool): a name is read whole, never as
// the start of a longer one; unset, OMP_WAIT_POLICY and OPENBLAS_THREAD_TIMEOUT answer PASSIVE and 4, and a user's
// value wins. keep_passive_omp_for_children writes the same defaults into the environment, over no user's value.
TEST(OmpEnv, GetenvReadsWholeNamesAndAnswersTheDefaultsOfUnsetOnes) {
  const auto environment_has = [](const char* entry) {
    for (char** e = environ; *e != nullptr; ++e)
      if (std::strcmp(*e, entry) == 0) return true;
    return false;
  };
  ::setenv("CG_TEST_OMP_ENV_LONGER", "1", 1);
  ::unsetenv("CG_TEST_OMP_ENV");
  EXPECT_EQ(std::getenv("CG_TEST_OMP_ENV"), nullptr);
  ::setenv("CG_TEST_OMP_ENV", "2", 1);
  EXPECT_STREQ(std::getenv("CG_TEST_OMP_ENV"), "2");
  ::unsetenv("CG_TEST_OMP_ENV");
  ::unsetenv("CG_TEST_OMP_ENV_LONGER");

  ::unsetenv("OMP_WAIT_POLICY");
  ::unsetenv("OPENBLAS_THREAD_TIMEOUT");
  EXPECT_STREQ(std::getenv("OMP_WAIT_POLICY"), "PASSIVE");
  EXPECT_STREQ(std::getenv("OPENBLAS_THREAD_TIMEOUT"), "4");
  EXPECT_FALSE(environment_has("OMP_WAIT_POLICY=PASSIVE"));
  ::setenv("OPENBLAS_THREAD_TIMEOUT", "28", 1);
  EXPECT_STREQ(std::getenv("OPENBLAS_THREAD_TIMEOUT"), "28");
  cg::keep_passive_omp_for_children();
  EXPECT_TRUE(environment_has("OMP_WAIT_POLICY=PASSIVE"));
  EXPECT_TRUE(environment_has("OPENBLAS_THREAD_TIMEOUT=28")) << "the user's value was overwritten";
  ::unsetenv("OPENBLAS_THREAD_TIMEOUT");
}

}  // namespace
