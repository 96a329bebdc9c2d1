// KernelTable: GPU kernel (or host operator) times summed by name and by class (matmul / attention / copies /
// the rest), printed per step: the arithmetic of common/kernel_profile.h, without torch so that it is tested alone.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace cg {

// Kernel names are long template signatures: keep the leading identifier and template head, at most `width` chars.
inline std::string short_kernel_name(const std::string& name, size_t width = 110) {
  std::string s = name;
  if (s.rfind("void ", 0) == 0) s = s.substr(5);
  return s.size() <= width ? s : s.substr(0, width - 3) + "...";
}

// Rough class of a kernel by name: the matmuls (cuBLAS / CUTLASS / cuDNN GEMMs), attention, or everything else
// (elementwise, reductions, norms, copies): the split that says whether a step is GEMM-bound or memory-bound.
inline const char* kernel_class(const std::string& name) {
  auto has = [&](const char* k) { return name.find(k) != std::string::npos; };
  if (has("flash") || has("fmha") || has("attention") || has("sdpa") || has("Attention")) return "attention";
  if (has("gemm") || has("Gemm") || has("sm90_xmma") || has("cutlass") || has("nvjet") || has("cublas") ||
      has("ampere_") || has("sm80_"))
    return "matmul";
  if (has("Memcpy") || has("Memset") || has("memcpy") || has("memset")) return "memcpy/memset";
  return "other (elementwise, norms, reductions)";
}

struct KernelRow {
  std::string name;
  double total_us = 0;
  int64_t calls = 0;
};

// Sums (name -> total time, calls), sorted by time, and the per-class totals: kept apart from the profiler so a test
// can check the arithmetic on hand-made events.
struct KernelTable {
  std::vector<KernelRow> rows;                 // by total time, largest first (after sort)
  std::map<std::string, double> class_us;      // kernel_class -> total
  double total_us = 0;

  // Called once per profiled event (a sampling profile has hundreds of thousands): a name's row found by index.
  void add(const std::string& name, double us) {
    const auto [it, fresh] = index_.try_emplace(name, rows.size());
    if (fresh) rows.push_back(KernelRow{name, 0, 0});
    KernelRow& row = rows[it->second];
    row.total_us += us;
    row.calls += 1;
    class_us[kernel_class(name)] += us;
    total_us += us;
  }
  void sort() {
    std::sort(rows.begin(), rows.end(), [](const KernelRow& a, const KernelRow& b) { return a.total_us > b.total_us; });
    for (size_t i = 0; i < rows.size(); ++i) index_[rows[i].name] = i;
  }
  // "ms per step  share  calls per step  name" lines for the top `n`, after the per-class totals.
  // classes: the per-class totals first (kernels; host operators have no such split).
  void print(const char* title, int steps, int n, bool classes = true) const {
    const double per = steps > 0 ? 1.0 / steps : 1.0;
    std::printf("%s: %.2f ms per step in %zu distinct names\n", title, 1e-3 * total_us * per, rows.size());
    if (classes)
      for (const auto& [cls, us] : class_us)
        std::printf("  %-40s %9.2f ms  %5.1f%%\n", cls.c_str(), 1e-3 * us * per,
                    total_us > 0 ? 100 * us / total_us : 0.0);
    std::printf("  %9s %6s %8s  %s\n", "ms/step", "share", "calls", "name");
    for (int i = 0; i < n && i < static_cast<int>(rows.size()); ++i) {
      const auto& r = rows[i];
      const double share = total_us > 0 ? 100 * r.total_us / total_us : 0.0;
      std::printf("  %9.3f %5.1f%% %8.1f  %s\n", 1e-3 * r.total_us * per, share, r.calls * per,
                  short_kernel_name(r.name).c_str());
    }
  }

 private:
  std::unordered_map<std::string, size_t> index_;  // name -> its row
};

}  // namespace cg
