#include "common/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cg {

namespace {

thread_local bool t_inside = false;  // this thread is running a chunk

// Workers are started on first need, grow to the largest count asked for, and sleep on a queue between calls.
class Pool {
 public:
  static Pool& get() {
    static Pool pool;
    return pool;
  }
  void run(std::function<void()> job, int workers) {
    std::lock_guard<std::mutex> lock(mu_);
    while (static_cast<int>(threads_.size()) < workers) threads_.emplace_back([this] { loop(); });
    jobs_.push_back(std::move(job));
    cv_.notify_one();
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

}  // namespace

void parallel_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads, n / std::max<int64_t>(grain, 1)));
  if (chunks <= 1 || t_inside) {
    f(begin, end);
    return;
  }
  std::mutex mu;
  std::condition_variable done_cv;
  int64_t pending = 0;
  std::exception_ptr error;
  auto chunk = [&](int64_t b, int64_t e) {
    std::exception_ptr err;
    t_inside = true;
    try {
      f(b, e);
    } catch (...) {
      err = std::current_exception();
    }
    t_inside = false;
    std::lock_guard<std::mutex> lock(mu);
    if (err && !error) error = err;
    if (--pending == 0) done_cv.notify_all();
  };
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t i = 0; i < chunks; ++i) ranges.emplace_back(begin + i * n / chunks, begin + (i + 1) * n / chunks);
  pending = static_cast<int64_t>(ranges.size());
  for (size_t i = 1; i < ranges.size(); ++i)
    Pool::get().run([&chunk, r = ranges[i]] { chunk(r.first, r.second); }, static_cast<int>(ranges.size()) - 1);
  chunk(ranges[0].first, ranges[0].second);
  std::unique_lock<std::mutex> lock(mu);
  done_cv.wait(lock, [&] { return pending == 0; });
  if (error) std::rethrow_exception(error);
}

}  // namespace cg
