// OpProfile: where a CPU step's time goes, by operator, without the profiler's trace machinery. A global
// RecordFunction callback (stable API in libtorch 1.13 and 2.x) times every outermost operator scope on each thread
// (ATen ops called by the model, autograd's backward nodes such as "MmBackward0"); nested scopes are counted inside
// their parent. On a GPU the times are launch times, not kernel times: use nsys there.
#pragma once
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cg::bench {

class OpProfile {
 public:
  OpProfile() {
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&on_start, &on_end));
  }
  ~OpProfile() { at::removeCallback(handle_); }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  // The top `n` operators by total time, as "ms  % calls name" lines, per `steps` steps.
  static void reset() {
    std::lock_guard<std::mutex> lock(mu());
    table().clear();
  }
  static void print(int n, double steps) {
    std::lock_guard<std::mutex> lock(mu());
    std::vector<std::pair<std::string, Stat>> v(table().begin(), table().end());
    double total = 0, calls = 0;
    for (const auto& [name, s] : v) total += s.seconds, calls += s.calls;
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    std::printf("operators (outermost scopes), per step: %.1f ms and %.0f calls in all\n", 1e3 * total / steps,
                calls / steps);
    for (int i = 0; i < n && i < int(v.size()); ++i)
      std::printf("  %8.1f ms %5.1f%% %7.0f calls  %s\n", 1e3 * v[i].second.seconds / steps,
                  100 * v[i].second.seconds / total, v[i].second.calls / steps, v[i].first.c_str());
  }

 private:
  struct Stat {
    double seconds = 0;
    double calls = 0;
  };
  struct Ctx : at::ObserverContext {
    std::chrono::steady_clock::time_point t0;
    bool outermost = false;
  };
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::map<std::string, Stat>& table() {
    static std::map<std::string, Stat> t;
    return t;
  }
  static int& depth() {
    thread_local int d = 0;
    return d;
  }
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction&) {
    auto c = std::make_unique<Ctx>();
    c->outermost = depth()++ == 0;
    c->t0 = std::chrono::steady_clock::now();
    return c;
  }
  static void on_end(const at::RecordFunction& fn, at::ObserverContext* ctx) {
    --depth();
    auto* c = static_cast<Ctx*>(ctx);
    if (!c->outermost) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - c->t0).count();
    std::lock_guard<std::mutex> lock(mu());
    Stat& st = table()[fn.name()];
    st.seconds += s;
    st.calls += 1;
  }
  at::CallbackHandle handle_;
};

}  // namespace cg::bench
