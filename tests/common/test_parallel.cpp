// parallel_chunks: every index once, ranges as documented, really on several threads, exceptions reach the caller,
// nested calls run serially (no deadlock), and the pool survives many calls.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

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

}  // namespace
