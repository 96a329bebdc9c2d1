// Distribution metrics between a generated set and a reference split. CDVAE's GenEval (scripts/compute_metrics.py)
// reports two: the Wasserstein-1 distance of the density (pymatgen Structure.density, g/cm^3) and of the number of
// distinct elements per crystal, valid generated crystals against the whole reference split. The others are ours:
// W1 of the number of sites per cell and of the volume per atom, and the total variation of element frequencies.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "data/crystal.h"

namespace cg {

// W1 between the empirical distributions of two samples (scipy.stats.wasserstein_distance, unit weights):
// the integral of |F_a(x) - F_b(x)| dx. NaN (undefined, as scipy raises) when either sample is empty: never a
// perfect 0 for a model that produced no valid crystal.
double wasserstein_1d(std::vector<double> a, std::vector<double> b);

// Standard atomic weight of an element symbol, amu, as pymatgen's periodic_table.json ("Atomic mass") has it;
// throws for a string that is not an element (H..Og).
double atomic_mass(const std::string& symbol);

// pymatgen's Structure.density: total atomic mass / cell volume, g/cm^3 (amu/Å^3 x 1.66053906660). 0 for no sites
// or a flat cell.
double density(const Crystal& c);

// Share of all sites that are each element (sums to 1 over the map; empty for no sites).
std::map<std::string, double> element_frequencies(const std::vector<Crystal>& crystals);

// Total variation distance between two element frequency maps: 0.5 * sum |p - q|, in [0, 1].
double total_variation(const std::map<std::string, double>& p, const std::map<std::string, double>& q);

struct DistributionReport {
  double wdist_density = 0;          // CDVAE: g/cm^3
  double wdist_num_elements = 0;     // CDVAE: distinct elements per crystal
  double wdist_num_atoms = 0;        // ours: sites per cell
  double wdist_volume_per_atom = 0;  // ours: Å^3
  double element_tv = 0;             // total variation of element frequencies
  double mean_num_atoms = 0, ref_mean_num_atoms = 0;
  double mean_num_elements = 0, ref_mean_num_elements = 0;
  double mean_density = 0, ref_mean_density = 0;
  std::map<std::string, double> element_freq, ref_element_freq;
};

DistributionReport compare_distributions(const std::vector<Crystal>& generated, const std::vector<Crystal>& reference);

}  // namespace cg
