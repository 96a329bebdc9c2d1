// spglib wrapper: cell in spglib's layout (lattice vectors as columns, fractional positions, atomic numbers).
#include "sampler/symmetry.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <vector>

#include "data/elements.h"

#ifdef CG_HAVE_SPGLIB
#include <spglib.h>
#endif

namespace cg {

bool have_spglib() {
#ifdef CG_HAVE_SPGLIB
  return true;
#else
  return false;
#endif
}

std::optional<SpaceGroup> space_group(const Crystal& c, double symprec, double angle_tolerance) {
#ifdef CG_HAVE_SPGLIB
  if (c.num_sites() == 0) return std::nullopt;
  const Mat3 m = lattice_matrix(c.lattice);  // rows a, b, c
  double lattice[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) lattice[i][j] = m[size_t(j)][size_t(i)];  // spglib: columns are a, b, c
  std::vector<double> pos(3 * c.num_sites());
  std::vector<int> types(c.num_sites());
  for (size_t s = 0; s < c.num_sites(); ++s) {
    for (int k = 0; k < 3; ++k) pos[3 * s + size_t(k)] = c.frac[s][size_t(k)];
    types[s] = atomic_number(c.species[s]);
    if (types[s] == 0) return std::nullopt;
  }
  char symbol[11] = {};
  const int number = spgat_get_international(symbol, lattice, reinterpret_cast<double(*)[3]>(pos.data()),
                                             types.data(), int(c.num_sites()), symprec, angle_tolerance);
  if (number < 1 || number > 230) return std::nullopt;
  return SpaceGroup{number, symbol};
#else
  (void)c;
  (void)symprec;
  (void)angle_tolerance;
  return std::nullopt;
#endif
}

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
