// OpProfile: where a CPU step's time goes, by operator, without the profiler's trace machinery. A global
// RecordFunction callback (stable API in libtorch 1.13 and 2.x) times every outermost operator scope on each thread
// (ATen ops called by the model, autograd's backward nodes such as "MmBackward0"); nested scopes are counted inside
// their parent. On a GPU the times are launch times, not kernel times: use nsys there. kernels(): an estimate of the
// kernel launches (views and allocations not counted, each other operator one launch).
#pragma once
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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
    kernel_count() = 0;
    kernel_table().clear();
  }
  // Kernel launches a GPU would make for the operators called since reset() (see transparent()): an estimate, as the
  // CPU and CUDA implementations of an op may split differently (SDPA: one fused kernel on torch 2.x CUDA).
  static double kernels() {
    std::lock_guard<std::mutex> lock(mu());
    return kernel_count();
  }
  // Operator calls since reset(), outermost scopes only (views included): what the host dispatches.
  static double calls() {
    std::lock_guard<std::mutex> lock(mu());
    double n = 0;
    for (const auto& [name, s] : table()) n += s.calls;
    return n;
  }
  // Those kernels by operator, per `steps`, on one line.
  static std::string kernels_by_op(double steps) {
    std::lock_guard<std::mutex> lock(mu());
    std::vector<std::pair<std::string, double>> v(kernel_table().begin(), kernel_table().end());
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string out;
    for (const auto& [name, n] : v) {
      char buf[128];
      const char* op = name.c_str() + (name.rfind("aten::", 0) == 0 ? 6 : 0);  // without the "aten::" prefix
      std::snprintf(buf, sizeof buf, "%s%s %.4g", out.empty() ? "" : ", ", op, n / steps);
      out += buf;
    }
    return out;
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
    bool kernel = false;  // counted as one kernel launch (its nested scopes are not counted)
  };
  // Operators counted through what they call: views and allocations (no kernel of their own), and composites whose
  // nested operators are the kernels (matmul: a copy when an input cannot be viewed, then mm or bmm). Every other
  // operator is one kernel, whatever it calls inside (on CPU a scalar add wraps its scalar in a tensor first; a GPU
  // passes it as an argument).
  static bool transparent(const char* name) {
    static const std::set<std::string> names = {
        "aten::view", "aten::reshape", "aten::_reshape_alias", "aten::narrow", "aten::slice", "aten::select",
        "aten::transpose", "aten::t", "aten::permute", "aten::expand", "aten::unsqueeze", "aten::squeeze",
        "aten::as_strided", "aten::alias", "aten::detach", "aten::lift_fresh", "aten::empty", "aten::empty_strided",
        "aten::empty_like", "aten::resize_", "aten::_unsafe_view", "aten::unbind", "aten::split", "aten::chunk",
        "aten::view_as", "aten::contiguous", "aten::to", "aten::_to_copy", "aten::expand_as", "aten::result_type",
        "aten::set_", "aten::numpy_T", "aten::movedim", "aten::flatten", "aten::unflatten", "aten::split_with_sizes",
        "aten::resolve_conj", "aten::resolve_neg", "aten::is_conj", "aten::is_neg", "aten::_conj", "aten::conj",
        "aten::zeros_like", "aten::zeros", "aten::ones", "aten::full",  // (their fill_ / zero_ counts itself)
        "aten::linear", "aten::matmul"};
    return names.count(name) > 0;
  }
  static int& in_kernel() {  // counted scopes open on this thread
    thread_local int n = 0;
    return n;
  }
  static double& kernel_count() {
    static double k = 0;
    return k;
  }
  static std::map<std::string, double>& kernel_table() {
    static std::map<std::string, double> t;
    return t;
  }
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
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    auto c = std::make_unique<Ctx>();
    c->outermost = depth()++ == 0;
    if (in_kernel() == 0 && !transparent(fn.name())) {
      c->kernel = true;
      ++in_kernel();
      std::lock_guard<std::mutex> lock(mu());
      kernel_count() += 1;
      kernel_table()[fn.name()] += 1;
    }
    c->t0 = std::chrono::steady_clock::now();
    return c;
  }
  static void on_end(const at::RecordFunction& fn, at::ObserverContext* ctx) {
    --depth();
    auto* c = static_cast<Ctx*>(ctx);
    if (c->kernel) --in_kernel();
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
