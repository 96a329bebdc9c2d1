// Distribution metrics: Wasserstein-1 against hand-computed values (scipy.stats.wasserstein_distance agrees).
#include <gtest/gtest.h>

#include <cmath>

#include "sampler/distributions.h"
#include "tests/sampler/crystals.h"

namespace cg {
namespace {

TEST(Distributions, Wasserstein1d) {
  EXPECT_DOUBLE_EQ(wasserstein_1d({0, 1, 3}, {5, 6, 8}), 5.0);      // a shift by 5
  EXPECT_DOUBLE_EQ(wasserstein_1d({0}, {0, 2}), 1.0);               // |1 - 0.5| over [0, 2]
  EXPECT_DOUBLE_EQ(wasserstein_1d({3, 1, 2}, {2, 3, 1}), 0.0);      // order does not matter
  EXPECT_DOUBLE_EQ(wasserstein_1d({0, 0, 0, 4}, {0, 4, 4, 4}), 2.0);  // |0.75 - 0.25| * 4
  EXPECT_TRUE(std::isnan(wasserstein_1d({}, {1})));  // undefined, never a perfect 0
  EXPECT_TRUE(std::isnan(compare_distributions({}, {Crystal{}}).element_tv));
}

TEST(Distributions, ElementFrequenciesAndTotalVariation) {
  Crystal a, b;
  a.species = {"Na", "Cl"};
  b.species = {"Fe", "Fe", "O", "O", "O", "O"};
  const auto f = element_frequencies({a, b});
  EXPECT_DOUBLE_EQ(f.at("Na"), 1.0 / 8);
  EXPECT_DOUBLE_EQ(f.at("O"), 0.5);
  EXPECT_DOUBLE_EQ(total_variation(f, f), 0.0);
  EXPECT_DOUBLE_EQ(total_variation({{"Na", 1.0}}, {{"Cl", 1.0}}), 1.0);
  EXPECT_DOUBLE_EQ(total_variation({{"Na", 0.5}, {"Cl", 0.5}}, {{"Na", 1.0}}), 0.5);
}

using test::cubic;

TEST(Distributions, AtomicMassesArePymatgens) {
  EXPECT_DOUBLE_EQ(atomic_mass("H"), 1.00794);
  EXPECT_DOUBLE_EQ(atomic_mass("Li"), 6.941);
  EXPECT_DOUBLE_EQ(atomic_mass("O"), 15.9994);
  EXPECT_DOUBLE_EQ(atomic_mass("Fe"), 55.845);
  EXPECT_DOUBLE_EQ(atomic_mass("Zn"), 65.409);
  EXPECT_DOUBLE_EQ(atomic_mass("I"), 126.90447);  // lighter than Te (127.6) although one place later
  EXPECT_DOUBLE_EQ(atomic_mass("U"), 238.02891);
  EXPECT_DOUBLE_EQ(atomic_mass("Og"), 294.0);
  EXPECT_THROW(atomic_mass("Xx"), std::exception);
}

TEST(Distributions, DensityByHand) {
  // Rock salt, conventional a = 5.64 Å, 4 NaCl: 4 (22.98976928 + 35.453) = 233.771077 amu in 179.406144 Å^3
  // -> 1.303027 amu/Å^3 x 1.66053906660 = 2.16373 g/cm^3 (measured: 2.165).
  const Crystal nacl = cubic(5.64, {"Na", "Na", "Na", "Na", "Cl", "Cl", "Cl", "Cl"},
                             {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5},
                              {0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0.5}, {0.5, 0.5, 0.5}});
  EXPECT_NEAR(density(nacl), 233.77107712 / 179.406144 * 1.66053906660, 1e-9);
  EXPECT_NEAR(density(nacl), 2.16373, 1e-5);
  // bcc Fe, a = 2.8665 Å, 2 atoms: 111.69 amu / 23.5534 Å^3 = 7.874 g/cm^3 (the handbook density).
  EXPECT_NEAR(density(cubic(2.8665, {"Fe", "Fe"}, {{0, 0, 0}, {0.5, 0.5, 0.5}})), 7.874, 1e-3);
  // Diamond Si, a = 5.431 Å, 8 atoms: 224.684 amu / 160.19 Å^3 = 2.329 g/cm^3.
  const Crystal si = cubic(5.431, std::vector<std::string>(8, "Si"),
                           {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5},
                            {0.25, 0.25, 0.25}, {0.75, 0.75, 0.25}, {0.75, 0.25, 0.75}, {0.25, 0.75, 0.75}});
  EXPECT_NEAR(density(si), 2.329, 1e-3);
  // A cell without atoms has no density.
  EXPECT_DOUBLE_EQ(density(cubic(4, {}, {})), 0.0);
}

TEST(Distributions, CompareCountsAtomsAndElements) {
  Crystal a, b;
  a.lattice = b.lattice = {2, 2, 2, 90, 90, 90};
  a.species = {"Na", "Cl"};
  a.frac = {{0, 0, 0}, {0.5, 0.5, 0.5}};
  b.species = {"Fe", "Fe", "Fe", "Fe"};
  b.frac = {{0, 0, 0}, {0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0.5}};
  const auto d = compare_distributions({a}, {b});
  EXPECT_DOUBLE_EQ(d.wdist_num_atoms, 2.0);
  EXPECT_DOUBLE_EQ(d.wdist_num_elements, 1.0);
  EXPECT_DOUBLE_EQ(d.wdist_volume_per_atom, 2.0);  // 8/2 vs 8/4
  EXPECT_DOUBLE_EQ(d.element_tv, 1.0);
  // The report's means, each of its own set and quantity: b has 4 atoms of 1 element, a 2 atoms of 2.
  EXPECT_DOUBLE_EQ(d.ref_mean_num_atoms, 4.0);
  EXPECT_DOUBLE_EQ(d.ref_mean_num_elements, 1.0);
  const auto swapped = compare_distributions({b}, {a});
  EXPECT_DOUBLE_EQ(swapped.mean_num_atoms, 4.0);
  EXPECT_DOUBLE_EQ(swapped.mean_num_elements, 1.0);
  // Densities: NaCl in 8 Å^3: 58.44277 amu -> 12.13081 g/cm^3; 4 Fe in 8 Å^3: 223.38 amu -> 46.36640 g/cm^3.
  const double rho_a = (22.98976928 + 35.453) / 8 * 1.66053906660, rho_b = 4 * 55.845 / 8 * 1.66053906660;
  EXPECT_NEAR(d.wdist_density, rho_b - rho_a, 1e-9);
  EXPECT_NEAR(d.wdist_density, 34.23552, 1e-4);
  EXPECT_NEAR(d.mean_density, rho_a, 1e-12);
  EXPECT_NEAR(d.ref_mean_density, rho_b, 1e-12);
}

TEST(Distributions, DensityW1OverSeveralCrystals) {
  // Generated densities {1, 3} vs reference {2, 2, 5} (g/cm^3; one Fe in a cube of the matching volume):
  // F_g - F_r is +1/2 on [1, 2), -1/6 on [2, 3), +1/3 on [3, 5) -> W1 = 1/2 + 1/6 + 2/3 = 4/3.
  auto with_density = [](double rho) {  // one Fe in a cube sized to give density rho
    return cubic(std::cbrt(55.845 * 1.66053906660 / rho), {"Fe"}, {{0, 0, 0}});
  };
  const auto d = compare_distributions({with_density(1), with_density(3)},
                                       {with_density(2), with_density(2), with_density(5)});
  EXPECT_NEAR(d.wdist_density, 4.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(d.wdist_num_elements, 0.0);
  EXPECT_DOUBLE_EQ(d.wdist_num_atoms, 0.0);
}

}  // namespace
}  // namespace cg
