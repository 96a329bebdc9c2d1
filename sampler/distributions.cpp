#include "sampler/distributions.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "common/error.h"
#include "data/elements.h"

namespace cg {

double atomic_mass(const std::string& symbol) {
  // pymatgen/core/periodic_table.json "Atomic mass" (materialsproject/pymatgen
  // @ 005f172da68337bd91d685ccd7228a5358519730), by atomic number H..Og: IUPAC standard atomic weights of ~2007
  // (Li 6.941, O 15.9994, Zn 65.409), mass numbers of the longest-lived isotope for elements without one. That file
  // says 2949 for Og, a typo for its mass number 294, used here.
  static const double kMass[118] = {
      1.00794, 4.002602, 6.941, 9.012182, 10.811, 12.0107, 14.0067, 15.9994,
      18.9984032, 20.1797, 22.98976928, 24.305, 26.9815386, 28.0855, 30.973762, 32.065,
      35.453, 39.948, 39.0983, 40.078, 44.955912, 47.867, 50.9415, 51.9961,
      54.938045, 55.845, 58.933195, 58.6934, 63.546, 65.409, 69.723, 72.64,
      74.9216, 78.96, 79.904, 83.798, 85.4678, 87.62, 88.90585, 91.224,
      92.90638, 95.94, 98.0, 101.07, 102.9055, 106.42, 107.8682, 112.411,
      114.818, 118.71, 121.76, 127.6, 126.90447, 131.293, 132.9054519, 137.327,
      138.90547, 140.116, 140.90765, 144.242, 145.0, 150.36, 151.964, 157.25,
      158.92535, 162.5, 164.93032, 167.259, 168.93421, 173.04, 174.967, 178.49,
      180.94788, 183.84, 186.207, 190.23, 192.217, 195.084, 196.966569, 200.59,
      204.3833, 207.2, 208.9804, 210.0, 210.0, 220.0, 223.0, 226.0,
      227.0, 232.03806, 231.03588, 238.02891, 237.0, 244.0, 243.0, 247.0,
      247.0, 251.0, 252.0, 257.0, 258.0, 259.0, 262.0, 267.0,
      268.0, 269.0, 270.0, 270.0, 278.0, 281.0, 282.0, 285.0,
      286.0, 289.0, 290.0, 293.0, 294.0, 294.0,
  };
  const int z = atomic_number(symbol);
  CG_CHECK(z >= 1 && z <= 118, "'{}' is not an element symbol", symbol);
  return kMass[z - 1];
}

double density(const Crystal& c) {
  const double vol = cell_volume(c.lattice);
  if (c.num_sites() == 0 || !(vol > 1e-9)) return 0.0;
  double mass = 0;  // amu
  for (const auto& s : c.species) mass += atomic_mass(s);
  constexpr double kGramPerAmu_x1e24 = 1.66053906660;  // 1 amu = 1.66053906660e-24 g, 1 Å^3 = 1e-24 cm^3
  return mass / vol * kGramPerAmu_x1e24;
}

double wasserstein_1d(std::vector<double> a, std::vector<double> b) {
  if (a.empty() || b.empty()) return std::numeric_limits<double>::quiet_NaN();
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
  std::vector<double> atoms, elements, vpa, density;
};
Stats stats(const std::vector<Crystal>& cs) {
  Stats s;
  for (const auto& c : cs) {
    if (c.num_sites() == 0) continue;
    s.atoms.push_back(static_cast<double>(c.num_sites()));
    s.elements.push_back(static_cast<double>(std::set<std::string>(c.species.begin(), c.species.end()).size()));
    s.vpa.push_back(cell_volume(c.lattice) / c.num_sites());
    s.density.push_back(density(c));
  }
  return s;
}
double mean(const std::vector<double>& v) {
  return v.empty() ? std::numeric_limits<double>::quiet_NaN() : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}
}  // namespace

DistributionReport compare_distributions(const std::vector<Crystal>& generated, const std::vector<Crystal>& reference) {
  const Stats g = stats(generated), r = stats(reference);
  DistributionReport d;
  d.wdist_density = wasserstein_1d(g.density, r.density);
  d.wdist_num_atoms = wasserstein_1d(g.atoms, r.atoms);
  d.wdist_num_elements = wasserstein_1d(g.elements, r.elements);
  d.wdist_volume_per_atom = wasserstein_1d(g.vpa, r.vpa);
  d.mean_num_atoms = mean(g.atoms);
  d.ref_mean_num_atoms = mean(r.atoms);
  d.mean_num_elements = mean(g.elements);
  d.ref_mean_num_elements = mean(r.elements);
  d.mean_density = mean(g.density);
  d.ref_mean_density = mean(r.density);
  d.element_freq = element_frequencies(generated);
  d.ref_element_freq = element_frequencies(reference);
  d.element_tv = generated.empty() || reference.empty() ? std::numeric_limits<double>::quiet_NaN()
                                                        : total_variation(d.element_freq, d.ref_element_freq);
  return d;
}

}  // namespace cg
