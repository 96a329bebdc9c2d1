// Distribution metrics: Wasserstein-1 against hand-computed values (scipy.stats.wasserstein_distance agrees).
#include <gtest/gtest.h>

#include "sampler/distributions.h"

namespace cg {
namespace {

TEST(Distributions, Wasserstein1d) {
  EXPECT_DOUBLE_EQ(wasserstein_1d({0, 1, 3}, {5, 6, 8}), 5.0);      // a shift by 5
  EXPECT_DOUBLE_EQ(wasserstein_1d({0}, {0, 2}), 1.0);               // |1 - 0.5| over [0, 2]
  EXPECT_DOUBLE_EQ(wasserstein_1d({3, 1, 2}, {2, 3, 1}), 0.0);      // order does not matter
  EXPECT_DOUBLE_EQ(wasserstein_1d({0, 0, 0, 4}, {0, 4, 4, 4}), 2.0);  // |0.75 - 0.25| * 4
  EXPECT_DOUBLE_EQ(wasserstein_1d({}, {1}), 0.0);
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
}

}  // namespace
}  // namespace cg
