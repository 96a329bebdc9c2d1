#include "sampler/distributions.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

namespace cg {

double wasserstein_1d(std::vector<double> a, std::vector<double> b) {
  if (a.empty() || b.empty()) return 0.0;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  // Sweep the merged breakpoints; between consecutive ones both CDFs are constant.
  std::vector<double> xs(a);
  xs.insert(xs.end(), b.begin(), b.end());
  std::sort(xs.begin(), xs.end());
  double w = 0;
  size_t ia = 0, ib = 0;
  for (size_t k = 0; k + 1 < xs.size(); ++k) {
    while (ia < a.size() && a[ia] <= xs[k]) ++ia;
    while (ib < b.size() && b[ib] <= xs[k]) ++ib;
    const double fa = static_cast<double>(ia) / a.size(), fb = static_cast<double>(ib) / b.size();
    w += std::fabs(fa - fb) * (xs[k + 1] - xs[k]);
  }
  return w;
}

std::map<std::string, double> element_frequencies(const std::vector<Crystal>& crystals) {
  std::map<std::string, double> f;
  double total = 0;
  for (const auto& c : crystals)
    for (const auto& s : c.species) {
      f[s] += 1;
      total += 1;
    }
  for (auto& [e, v] : f) v /= total;
  return f;
}

double total_variation(const std::map<std::string, double>& p, const std::map<std::string, double>& q) {
  std::set<std::string> keys;
  for (const auto& kv : p) keys.insert(kv.first);
  for (const auto& kv : q) keys.insert(kv.first);
  double s = 0;
  for (const auto& k : keys) {
    auto ip = p.find(k), iq = q.find(k);
    s += std::fabs((ip == p.end() ? 0.0 : ip->second) - (iq == q.end() ? 0.0 : iq->second));
  }
  return 0.5 * s;
}

namespace {
struct Stats {
  std::vector<double> atoms, elements, vpa;
};
Stats stats(const std::vector<Crystal>& cs) {
  Stats s;
  for (const auto& c : cs) {
    if (c.num_sites() == 0) continue;
    s.atoms.push_back(static_cast<double>(c.num_sites()));
    s.elements.push_back(static_cast<double>(std::set<std::string>(c.species.begin(), c.species.end()).size()));
    s.vpa.push_back(cell_volume(c.lattice) / c.num_sites());
  }
  return s;
}
double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}
}  // namespace

DistributionReport compare_distributions(const std::vector<Crystal>& generated, const std::vector<Crystal>& reference) {
  const Stats g = stats(generated), r = stats(reference);
  DistributionReport d;
  d.wdist_num_atoms = wasserstein_1d(g.atoms, r.atoms);
  d.wdist_num_elements = wasserstein_1d(g.elements, r.elements);
  d.wdist_volume_per_atom = wasserstein_1d(g.vpa, r.vpa);
  d.mean_num_atoms = mean(g.atoms);
  d.ref_mean_num_atoms = mean(r.atoms);
  d.mean_num_elements = mean(g.elements);
  d.ref_mean_num_elements = mean(r.elements);
  d.element_freq = element_frequencies(generated);
  d.ref_element_freq = element_frequencies(reference);
  d.element_tv = total_variation(d.element_freq, d.ref_element_freq);
  return d;
}

}  // namespace cg
