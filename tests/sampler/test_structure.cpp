// Structural validity (periodic distances, volume) and the structure matcher used for uniqueness and novelty.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "sampler/structure_checks.h"
#include "sampler/structure_match.h"

namespace cg {
namespace {

Crystal make(Lattice l, std::vector<std::string> sp, std::vector<Vec3> f) {
  Crystal c;
  c.id = "test";
  c.lattice = l;
  c.species = std::move(sp);
  c.frac = std::move(f);
  return c;
}

// Reference: every shift in -8..8 in all three directions, no cleverness.
double brute_min_distance(const Crystal& c) {
  const Mat3 m = lattice_matrix(c.lattice);
  double best = 1e300;
  for (size_t i = 0; i < c.num_sites(); ++i)
    for (size_t j = i; j < c.num_sites(); ++j)
      for (int a = -8; a <= 8; ++a)
        for (int b = -8; b <= 8; ++b)
          for (int g = -8; g <= 8; ++g) {
            if (i == j && a == 0 && b == 0 && g == 0) continue;
            const Vec3 x = frac_to_cart(m, {c.frac[j][0] - c.frac[i][0] + a, c.frac[j][1] - c.frac[i][1] + b,
                                            c.frac[j][2] - c.frac[i][2] + g});
            best = std::min(best, std::sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]));
          }
  return best;
}

TEST(StructureChecks, CubicCells) {
  const Lattice cubic{4, 4, 4, 90, 90, 90};
  EXPECT_NEAR(min_periodic_distance(make(cubic, {"Fe"}, {{0, 0, 0}})), 4.0, 1e-9);  // own image
  EXPECT_NEAR(min_periodic_distance(make(cubic, {"Cs", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}})), 2 * std::sqrt(3.0), 1e-9);
  // Closest pair across the boundary: 0.1 and 0.9 along a are 0.2 * 4 = 0.8 Å apart.
  const Crystal close = make(cubic, {"Na", "Cl"}, {{0.1, 0.5, 0.5}, {0.9, 0.5, 0.5}});
  EXPECT_NEAR(min_periodic_distance(close), 0.8, 1e-9);
  EXPECT_TRUE(structure_validity(close).valid);
  const Crystal too_close = make(cubic, {"Na", "Cl"}, {{0.05, 0.5, 0.5}, {0.99, 0.5, 0.5}});  // 0.24 Å
  const StructureVerdict v = structure_validity(too_close);
  EXPECT_FALSE(v.valid);
  EXPECT_STREQ(v.reason, "atoms too close");
  EXPECT_NEAR(v.min_distance, 0.24, 1e-9);
  EXPECT_NEAR(v.volume, 64.0, 1e-9);
}

TEST(StructureChecks, SkewedCellNeedsFarShifts) {
  // a = 2, b = 10, gamma = 3 degrees: b - 5a is the shortest lattice vector, |b - 5a| = 20 sin(1.5 deg).
  const Lattice skew{2, 10, 10, 90, 90, 3};
  const Crystal one = make(skew, {"Fe"}, {{0.3, 0.3, 0.3}});
  const double expect = 20 * std::sin(1.5 * M_PI / 180);
  EXPECT_NEAR(min_periodic_distance(one), expect, 1e-9);
  EXPECT_NEAR(periodic_distance(one, 0, 0), expect, 1e-9);
  EXPECT_TRUE(structure_validity(one).valid);  // 0.5235 >= 0.5
  EXPECT_FALSE(structure_validity(one, /*min_distance=*/0.6).valid);
  // A pair whose closest images are five cells apart along a.
  const Crystal two = make(skew, {"Fe", "O"}, {{0.0, 0.0, 0.0}, {0.9, 0.98, 0.0}});
  EXPECT_NEAR(min_periodic_distance(two), brute_min_distance(two), 1e-9);
}

TEST(StructureChecks, RandomSkewedCellsMatchBruteForce) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> len(2, 9), ang(40, 140), f(0, 1);
  for (int t = 0; t < 40; ++t) {
    Lattice l{len(rng), len(rng), len(rng), ang(rng), ang(rng), ang(rng)};
    if (!(cell_volume(l) > 1)) continue;
    std::vector<std::string> sp;
    std::vector<Vec3> fr;
    for (int i = 0; i < 4; ++i) {
      sp.push_back("O");
      fr.push_back({f(rng), f(rng), f(rng)});
    }
    const Crystal c = make(l, sp, fr);
    EXPECT_NEAR(min_periodic_distance(c), brute_min_distance(c), 1e-9) << "case " << t;
  }
}

TEST(StructureChecks, VolumeThreshold) {
  const Crystal tiny = make({0.4, 0.4, 0.4, 90, 90, 90}, {"H"}, {{0, 0, 0}});  // 0.064 Å^3
  const StructureVerdict v = structure_validity(tiny);
  EXPECT_FALSE(v.valid);
  EXPECT_STREQ(v.reason, "volume too small");
  EXPECT_NEAR(v.volume, 0.064, 1e-12);
  EXPECT_TRUE(structure_validity(tiny, /*min_distance=*/0.3, /*min_volume=*/0.05).valid);
  EXPECT_FALSE(structure_validity(make({4, 4, 4, 90, 90, 90}, {}, {})).valid);
}

// Rock salt in its conventional cell (8 sites).
Crystal rocksalt(double a) {
  std::vector<std::string> sp;
  std::vector<Vec3> f;
  const Vec3 fcc[4] = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
  for (const auto& p : fcc) {
    sp.push_back("Na");
    f.push_back(p);
    sp.push_back("Cl");
    f.push_back({wrap01(p[0] + 0.5), p[1], p[2]});
  }
  return make({a, a, a, 90, 90, 90}, sp, f);
}

TEST(StructureMatch, NearestNeighbourDistances) {
  const auto d = nearest_neighbour_distances(rocksalt(5.6), 0, 6);
  ASSERT_EQ(d.size(), 6u);
  for (double x : d) EXPECT_NEAR(x, 2.8, 1e-9);  // six Cl at a/2
  const auto d1 = nearest_neighbour_distances(make({3, 3, 3, 90, 90, 90}, {"Po"}, {{0, 0, 0}}), 0, 7);
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(d1[k], 3.0, 1e-9);
  EXPECT_NEAR(d1[6], 3 * std::sqrt(2.0), 1e-9);
}

TEST(StructureMatch, InvariantToOrderShiftSupercellAndAxisPermutation) {
  const Crystal base = rocksalt(5.6);
  // Permuted order and shifted origin.
  Crystal moved = base;
  std::reverse(moved.species.begin(), moved.species.end());
  std::reverse(moved.frac.begin(), moved.frac.end());
  for (auto& p : moved.frac) p = {wrap01(p[0] + 0.13), wrap01(p[1] + 0.71), wrap01(p[2] + 0.3)};
  // Primitive rhombohedral cell of rock salt: a = a0/sqrt(2), angles 60.
  const double ap = 5.6 / std::sqrt(2.0);
  const Crystal prim = make({ap, ap, ap, 60, 60, 60}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}});
  // Axis permutation of a tetragonal distortion vs itself.
  Crystal tet = make({4, 4, 6, 90, 90, 90}, {"Ti", "O"}, {{0, 0, 0}, {0.5, 0.5, 0.3}});
  Crystal tet_perm = make({6, 4, 4, 90, 90, 90}, {"Ti", "O"}, {{0, 0, 0}, {0.3, 0.5, 0.5}});

  const auto fb = fingerprint(base), fm = fingerprint(moved), fp = fingerprint(prim);
  ASSERT_TRUE(fb.ok);
  EXPECT_TRUE(structures_match(fb, fm));
  EXPECT_TRUE(structures_match(fb, fp));
  EXPECT_TRUE(structures_match(fingerprint(tet), fingerprint(tet_perm)));
}

TEST(StructureMatch, RejectsDifferentStructures) {
  const auto fb = fingerprint(rocksalt(5.6));
  // CsCl-type NaCl at the same volume per atom (a^3 / 2 = 5.6^3 / 8): 8 neighbours instead of 6.
  const double a = 5.6 / std::cbrt(4.0);
  const auto cscl = fingerprint(make({a, a, a, 90, 90, 90}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}}));
  EXPECT_FALSE(structures_match(fb, cscl));
  // Volume per atom 40% larger: outside ltol 0.2.
  EXPECT_FALSE(structures_match(fb, fingerprint(rocksalt(5.6 * std::cbrt(1.4)))));
  // Different composition.
  Crystal kcl = rocksalt(5.6);
  for (auto& s : kcl.species)
    if (s == "Na") s = "K";
  EXPECT_FALSE(structures_match(fb, fingerprint(kcl)));
}

TEST(StructureMatch, UniquenessAndNovelty) {
  const Crystal a = rocksalt(5.6);
  const Crystal b = make({3.3, 3.3, 3.3, 90, 90, 90}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}});
  const double ap = 5.6 / std::sqrt(2.0);
  const Crystal a_prim = make({ap, ap, ap, 60, 60, 60}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}});
  const std::vector<StructureFingerprint> fps = {fingerprint(a), fingerprint(b), fingerprint(a_prim)};
  EXPECT_EQ(duplicate_of(fps), (std::vector<size_t>{0, 1, 0}));

  const std::vector<Crystal> train = {b, make({4, 4, 4, 90, 90, 90}, {"Fe"}, {{0, 0, 0}})};
  NoveltyIndex novelty(&train);
  EXPECT_TRUE(novelty.is_novel(fps[0]));
  EXPECT_FALSE(novelty.is_novel(fps[1]));
}

}  // namespace
}  // namespace cg
