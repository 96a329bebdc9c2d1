// Distribution metrics between a generated set and a reference split (CDVAE reports the first two):
// Wasserstein-1 distance of the number of atoms per cell and of the number of distinct elements per crystal, plus
// volume per atom and the per-element site frequencies.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "data/crystal.h"

namespace cg {

// W1 between the empirical distributions of two samples (scipy.stats.wasserstein_distance, unit weights):
// the integral of |F_a(x) - F_b(x)| dx. 0 when either sample is empty.
double wasserstein_1d(std::vector<double> a, std::vector<double> b);

// Share of all sites that are each element (sums to 1 over the map; empty for no sites).
std::map<std::string, double> element_frequencies(const std::vector<Crystal>& crystals);

// Total variation distance between two element frequency maps: 0.5 * sum |p - q|, in [0, 1].
double total_variation(const std::map<std::string, double>& p, const std::map<std::string, double>& q);

struct DistributionReport {
  double wdist_num_atoms = 0;        // sites per cell
  double wdist_num_elements = 0;     // distinct elements per crystal
  double wdist_volume_per_atom = 0;  // Å^3
  double element_tv = 0;             // total variation of element frequencies
  double mean_num_atoms = 0, ref_mean_num_atoms = 0;
  double mean_num_elements = 0, ref_mean_num_elements = 0;
  std::map<std::string, double> element_freq, ref_element_freq;
};

DistributionReport compare_distributions(const std::vector<Crystal>& generated, const std::vector<Crystal>& reference);

}  // namespace cg
