#include "sampler/symmetry.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <vector>

namespace cg {

SpaceGroupCache::SpaceGroupCache(const std::vector<Crystal>& crystals, double symprec)
    : crystals_(crystals), symprec_(symprec), number_(crystals.size(), -1),
      last_log_(std::chrono::steady_clock::now()) {}

int SpaceGroupCache::number(size_t i) {
  if (number_[i] < 0) {
    const auto sg = space_group(crystals_[i], symprec_);
    number_[i] = sg ? sg->number : 0;
    ++looked_up_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log_ > std::chrono::seconds(10)) {
      last_log_ = now;
      spdlog::info("cgeval: space groups: {} of {} crystals looked up (spglib)", looked_up_, crystals_.size());
    }
  }
  return number_[i];
}

SpaceGroupReport space_group_report(const std::vector<int>& numbers, const std::vector<int>* ref_numbers,
                                    double symprec) {
  SpaceGroupReport r;
  r.symprec = symprec;
  r.crystals = int64_t(numbers.size());
  for (int n : numbers)
    if (n > 0) {
      ++r.found;
      ++r.counts[n];
    }
  if (ref_numbers == nullptr) return r;
  r.ref_rows = int64_t(ref_numbers->size());
  for (int n : *ref_numbers)
    if (n > 0) {
      ++r.ref_crystals;
      ++r.ref_counts[n];
    }
  if (r.found == 0 || r.ref_crystals == 0) return r;
  double tv = 0;
  for (int n = 1; n <= 230; ++n) tv += std::fabs(r.share(n) - r.ref_share(n));
  r.tv = tv / 2;
  return r;
}

}  // namespace cg
