#include "sampler/structure_match.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "sampler/smact.h"
#include "sampler/structure_checks.h"

namespace cg {

std::vector<double> nearest_neighbour_distances(const Crystal& c, size_t i, int k) {
  const size_t n = c.num_sites();
  const Mat3 m = lattice_matrix(c.lattice);
  const Vec3 w = cell_widths(m);
  if (n == 0 || std::min({w[0], w[1], w[2]}) < 1e-6 || k <= 0) return {};
  const double vol = cell_volume(c.lattice);
  // Start at a radius that holds ~30 atoms on average and double until k neighbours are inside it.
  double r = 2.0 * std::cbrt(vol / n);
  for (int attempt = 0; attempt < 8; ++attempt, r *= 2) {
    int range[3];
    for (int a = 0; a < 3; ++a) range[a] = static_cast<int>(std::ceil(r / w[a] + 0.5));
    if (static_cast<long>(2 * range[0] + 1) * (2 * range[1] + 1) * (2 * range[2] + 1) > 200000) break;
    std::vector<double> d;
    for (size_t j = 0; j < n; ++j) {
      const Vec3 df = {c.frac[j][0] - c.frac[i][0], c.frac[j][1] - c.frac[i][1], c.frac[j][2] - c.frac[i][2]};
      const Vec3 dfw = {df[0] - std::round(df[0]), df[1] - std::round(df[1]), df[2] - std::round(df[2])};
      for (int a = -range[0]; a <= range[0]; ++a)
        for (int b = -range[1]; b <= range[1]; ++b)
          for (int g = -range[2]; g <= range[2]; ++g) {
            if (j == i && a == 0 && b == 0 && g == 0) continue;
            const Vec3 x = frac_to_cart(m, {dfw[0] + a, dfw[1] + b, dfw[2] + g});
            const double dist = std::sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
            if (dist <= r) d.push_back(dist);
          }
    }
    if (static_cast<int>(d.size()) >= k) {
      std::partial_sort(d.begin(), d.begin() + k, d.end());
      d.resize(k);
      return d;
    }
  }
  return {};
}

StructureFingerprint fingerprint(const Crystal& c, const MatchTolerance& tol) {
  StructureFingerprint fp;
  if (c.num_sites() == 0) return fp;
  const Composition comp = reduce_composition(c.species);
  fp.formula = comp.formula();
  fp.elements = comp.elements;
  const double vol = cell_volume(c.lattice);
  const size_t n = c.num_sites();
  if (!(vol > 1e-6)) return fp;
  fp.volume_per_atom = vol / n;
  const double unit = std::cbrt(fp.volume_per_atom);
  const int k = tol.neighbours;
  fp.site_counts.assign(comp.elements.size(), 0);
  fp.nn.assign(comp.elements.size(), std::vector<std::vector<double>>(k));
  for (size_t i = 0; i < n; ++i) {
    const size_t e = std::find(comp.elements.begin(), comp.elements.end(), c.species[i]) - comp.elements.begin();
    const std::vector<double> d = nearest_neighbour_distances(c, i, k);
    if (static_cast<int>(d.size()) < k) return fp;
    ++fp.site_counts[e];
    for (int r = 0; r < k; ++r) fp.nn[e][r].push_back(d[r] / unit);
  }
  for (auto& per_el : fp.nn)
    for (auto& v : per_el) std::sort(v.begin(), v.end());
  fp.ok = true;
  return fp;
}

bool structures_match(const StructureFingerprint& a, const StructureFingerprint& b, const MatchTolerance& tol) {
  if (!a.ok || !b.ok || a.formula != b.formula || a.nn.size() != b.nn.size()) return false;
  const double mean_v = 0.5 * (a.volume_per_atom + b.volume_per_atom);
  if (std::fabs(a.volume_per_atom - b.volume_per_atom) > tol.ltol * mean_v) return false;
  for (size_t e = 0; e < a.nn.size(); ++e) {
    const size_t na = a.site_counts[e], nb = b.site_counts[e];
    const size_t l = std::lcm(na, nb);
    const size_t ra = l / na, rb = l / nb;  // repeat factors to a common length
    const size_t ranks = std::min(a.nn[e].size(), b.nn[e].size());
    for (size_t r = 0; r < ranks; ++r)
      for (size_t t = 0; t < l; ++t)
        if (std::fabs(a.nn[e][r][t / ra] - b.nn[e][r][t / rb]) > tol.stol) return false;
  }
  return true;
}

std::vector<size_t> duplicate_of(const std::vector<StructureFingerprint>& fps, const MatchTolerance& tol) {
  std::vector<size_t> dup(fps.size());
  std::unordered_map<std::string, std::vector<size_t>> firsts;  // formula -> representatives so far
  for (size_t i = 0; i < fps.size(); ++i) {
    dup[i] = i;
    auto& reps = firsts[fps[i].formula];
    for (size_t j : reps)
      if (structures_match(fps[j], fps[i], tol)) {
        dup[i] = j;
        break;
      }
    if (dup[i] == i) reps.push_back(i);
  }
  return dup;
}

NoveltyIndex::NoveltyIndex(const std::vector<Crystal>* reference, MatchTolerance tol) : ref_(reference), tol_(tol) {
  if (!ref_) return;
  fp_.resize(ref_->size());
  have_fp_.assign(ref_->size(), 0);
  for (size_t i = 0; i < ref_->size(); ++i) {
    if ((*ref_)[i].num_sites() == 0) continue;
    by_formula_[reduce_composition((*ref_)[i].species).formula()].push_back(i);
  }
}

bool NoveltyIndex::is_novel(const StructureFingerprint& fp) {
  if (!ref_) return true;
  auto it = by_formula_.find(fp.formula);
  if (it == by_formula_.end()) return true;
  for (size_t i : it->second) {
    if (!have_fp_[i]) {
      fp_[i] = fingerprint((*ref_)[i], tol_);
      have_fp_[i] = 1;
    }
    if (structures_match(fp_[i], fp, tol_)) return false;
  }
  return true;
}

}  // namespace cg
