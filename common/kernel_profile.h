// KernelProfile: where a GPU step's time goes, by kernel, through torch's Kineto profiler (CUPTI): GPU kernel and
// memcpy/memset times as the device ran them, summed by name, and the host operators by inclusive wall time. It is
// what bench/op_profile.h cannot give on a GPU (there, operator scopes time launches, not kernels).
//
//   cg::KernelProfile prof;      // starts collecting (CPU ops + CUDA kernels)
//   ... run N steps, then synchronise the device ...
//   prof.report(N, 30, "trace.json");   // top 30 kernels per step; the chrome trace when a path is given
//
// Needs libtorch 2.x built with Kineto (pip wheels are). On libtorch 1.13 (Debian 12's, CPU only) it collects
// nothing and report() says so. Header-only: the benches and cgsample include it.
#pragma once
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "common/kernel_table.h"

#if TORCH_VERSION_MAJOR >= 2 && __has_include(<torch/csrc/autograd/profiler_kineto.h>)
#include <torch/csrc/autograd/profiler_kineto.h>
#define CG_HAVE_KINETO_API 1
#else
#define CG_HAVE_KINETO_API 0
#endif

namespace cg {

class KernelProfile {
 public:
  KernelProfile() {
#if CG_HAVE_KINETO_API
    namespace prof = torch::autograd::profiler;
    using torch::profiler::impl::ActivityType;
    const torch::profiler::impl::ProfilerConfig cfg(torch::profiler::impl::ProfilerState::KINETO);
    const std::set<ActivityType> acts{ActivityType::CPU, ActivityType::CUDA};
    prof::prepareProfiler(cfg, acts);
    prof::enableProfiler(cfg, acts);
    on_ = true;
#endif
  }
  ~KernelProfile() {
#if CG_HAVE_KINETO_API
    if (on_) torch::autograd::profiler::disableProfiler();
#endif
  }
  KernelProfile(const KernelProfile&) = delete;
  KernelProfile& operator=(const KernelProfile&) = delete;

  // Stops the profiler and prints the device's kernels (and the host's operators) per step; the caller has
  // synchronised the device. `trace` non-empty: also the chrome trace (chrome://tracing, perfetto) there.
  void report(int steps, int top, const std::string& trace = "") {
#if CG_HAVE_KINETO_API
    if (!on_) return;
    on_ = false;
    std::unique_ptr<torch::autograd::profiler::ProfilerResult> res = torch::autograd::profiler::disableProfiler();
    KernelTable device, host;
    for (const auto& e : res->events()) {
      const double us = 1e-3 * static_cast<double>(e.durationNs());
      if (e.deviceType() == c10::DeviceType::CUDA)
        device.add(e.name(), us);
      else if (e.name().rfind("aten::", 0) == 0 || e.name().find("Backward") != std::string::npos)
        host.add(e.name(), us);
    }
    device.sort();
    host.sort();
    if (device.rows.empty())
      std::printf("kernel profile: no device events (a CPU run, or a libtorch without Kineto/CUPTI)\n");
    else
      device.print("GPU kernels", steps, top);
    host.print("host operators (inclusive wall time: nested ops are counted in their parents too)", steps,
               std::min(top, 20), /*classes=*/false);
    if (!trace.empty()) {
      res->save(trace);
      std::printf("chrome trace: %s\n", trace.c_str());
    }
#else
    (void)steps, (void)top, (void)trace;
    std::printf("kernel profile: needs libtorch 2.x with Kineto (this build has libtorch %s)\n", TORCH_VERSION);
#endif
  }

 private:
  bool on_ = false;
};

}  // namespace cg
