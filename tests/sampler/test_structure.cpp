// Structural validity (periodic distances, volume) and the structure matcher used for uniqueness and novelty.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "sampler/structure_checks.h"
#include "sampler/structure_match.h"

namespace cg {
namespace {

Vec3 wrap(const Vec3& f) { return {wrap01(f[0]), wrap01(f[1]), wrap01(f[2])}; }

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

// CDVAE's structure_validity fails a crystal whose closest pair is nearer than the cutoff or whose volume is below
// 0.1 (`dist_mat.min() < cutoff or crystal.volume < 0.1`): a crystal exactly at either bound is valid.
TEST(StructureChecks, ExactlyAtTheBoundsIsValid) {
  const Crystal pair = make({1, 1, 1, 90, 90, 90}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0, 0}});  // 0.5 Å apart, 1 Å^3
  ASSERT_DOUBLE_EQ(min_periodic_distance(pair), 0.5);
  ASSERT_DOUBLE_EQ(cell_volume(pair.lattice), 1.0);
  EXPECT_TRUE(structure_validity(pair, /*min_distance=*/0.5, /*min_volume=*/0.1).valid);
  EXPECT_FALSE(structure_validity(pair, /*min_distance=*/0.5000001, /*min_volume=*/0.1).valid);
  EXPECT_TRUE(structure_validity(pair, /*min_distance=*/0.5, /*min_volume=*/1.0).valid);
  const StructureVerdict small = structure_validity(pair, /*min_distance=*/0.5, /*min_volume=*/1.0000001);
  EXPECT_FALSE(small.valid);
  EXPECT_STREQ(small.reason, "volume too small");
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
  // CsCl-type NaCl at the same volume per atom (a^3 / 2 = 5.6^3 / 8): a simple cubic lattice, which the fcc lattice
  // of rock salt cannot be mapped onto within 5 degrees (its vectors of fitting length meet at 60/90/120 degrees).
  const double a = 5.6 / std::cbrt(4.0);
  const auto cscl = fingerprint(make({a, a, a, 90, 90, 90}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}}));
  EXPECT_FALSE(structures_match(fb, cscl));
  // Zinc-blende NaCl: the same fcc lattice, Cl at (1/4, 1/4, 1/4) instead of (1/2, 0, 0). The Cl sites differ by
  // |(1/4, -1/4, -1/4)| a = 0.433 a; after removing the mean shift each site moves 0.217 a = 0.433 (V/N)^(1/3).
  Crystal zb = rocksalt(5.6);
  for (size_t i = 1; i < zb.frac.size(); i += 2) zb.frac[i] = wrap({zb.frac[i - 1][0] + 0.25, zb.frac[i - 1][1] + 0.25,
                                                                      zb.frac[i - 1][2] + 0.25});
  EXPECT_FALSE(structures_match(fb, fingerprint(zb)));
  // Different composition.
  Crystal kcl = rocksalt(5.6);
  for (auto& s : kcl.species)
    if (s == "Na") s = "K";
  EXPECT_FALSE(structures_match(fb, fingerprint(kcl)));
  Crystal nacl2 = rocksalt(5.6);  // one Na becomes Cl: Na3Cl5
  nacl2.species[0] = "Cl";
  EXPECT_FALSE(structures_match(fb, fingerprint(nacl2)));
  // Perovskite SrTiO3 and the same sites with Sr and Ti exchanged: O then sits on the faces around Sr (Sr-O
  // a/2) instead of around Ti; no origin shift or rotation maps one onto the other.
  const Lattice cub{3.9, 3.9, 3.9, 90, 90, 90};
  const Crystal sto =
      make(cub, {"Sr", "Ti", "O", "O", "O"}, {{0, 0, 0}, {0.5, 0.5, 0.5}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}});
  Crystal swapped = sto;
  std::swap(swapped.species[0], swapped.species[1]);
  EXPECT_TRUE(structures_match(fingerprint(sto), fingerprint(sto)));
  EXPECT_FALSE(structures_match(fingerprint(sto), fingerprint(swapped)));
}

// Every fractional coordinate moved by a uniform draw from [-amp, amp] (fixed seed).
Crystal jitter(Crystal c, double amp, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-amp, amp);
  for (auto& p : c.frac) p = wrap({p[0] + u(rng), p[1] + u(rng), p[2] + u(rng)});
  return c;
}

TEST(StructureMatch, PrimitiveCell) {
  // Rock salt: 8 sites -> 2 (fcc translations), volume / 4; bcc Fe: 2 -> 1, volume / 2.
  const Crystal p = primitive_cell(rocksalt(5.64));
  ASSERT_EQ(p.num_sites(), 2u);
  EXPECT_NEAR(cell_volume(p.lattice), std::pow(5.64, 3) / 4, 1e-9);
  EXPECT_NEAR(p.lattice.a, 5.64 / std::sqrt(2.0), 1e-9);  // the shortest fcc vector
  const Crystal fe = primitive_cell(make({2.8665, 2.8665, 2.8665, 90, 90, 90}, {"Fe", "Fe"}, {{0, 0, 0}, {0.5, 0.5, 0.5}}));
  ASSERT_EQ(fe.num_sites(), 1u);
  EXPECT_NEAR(cell_volume(fe.lattice), std::pow(2.8665, 3) / 2, 1e-9);
  // Jittered conventional cells reduce as far as pymatgen 2022.11's get_primitive_structure reduces the same
  // coordinates (its per-axis 0.25 Å applies along the candidate cell's axes, and sites closer than 0.5 Å on every
  // axis may not merge): +-0.02 (0.113 Å per axis) gives 2 sites except seed 11 (4); +-0.03 mostly stays at 8.
  const size_t want02[20] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2};
  const size_t want03[20] = {8, 4, 8, 8, 4, 8, 8, 4, 8, 8, 8, 8, 2, 8, 8, 8, 8, 8, 2, 8};
  for (unsigned seed = 1; seed <= 20; ++seed) {
    EXPECT_EQ(primitive_cell(jitter(rocksalt(5.64), 0.02, seed)).num_sites(), want02[seed - 1]) << "seed " << seed;
    EXPECT_EQ(primitive_cell(jitter(rocksalt(5.64), 0.03, seed)).num_sites(), want03[seed - 1]) << "seed " << seed;
  }
  // Already primitive (CsCl type: gcd of the counts is 1), or two different elements at the bcc positions: unchanged.
  EXPECT_EQ(primitive_cell(make({4, 4, 4, 90, 90, 90}, {"Cs", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}})).num_sites(), 2u);
  // A 2x1x1 supercell of the primitive cell reduces back to it.
  const Crystal sc = make({5.64, 5.64, 5.64, 90, 90, 90}, {"Na", "Na", "Cl", "Cl"},
                          {{0, 0, 0}, {0.5, 0, 0}, {0.25, 0.5, 0.5}, {0.75, 0.5, 0.5}});
  EXPECT_EQ(primitive_cell(sc).num_sites(), 2u);
}

// Disagreements with pymatgen found by tests/sampler/matcher_reference.py (MP-20 test crystals), fixed by transcribing
// get_primitive_structure (Hermite normal form cells, tolerance along the candidate cell's axes).
TEST(StructureMatch, PymatgenPrimitiveRegressions) {
  // mp-1007857 (Ga4): sites 0 and 2 differ by (0.0627, -0.0627, 0.5), 0.19 Å off the exact c/2 translation on the
  // a and b axes: pymatgen reduces it to 1 site, and also its 2x1x1 supercell, where the translation's first two
  // coordinates (0.031, -0.063) are not near a multiple of 1/8 (snapping them to that grid had kept 8 sites).
  const Crystal ga = make({3.10982955, 3.10982955, 7.921188, 90, 90, 97.10801678}, {"Ga", "Ga", "Ga", "Ga"},
                          {{0.218668, 0.781332, 0.126871}, {0.781332, 0.218668, 0.873129},
                           {0.281332, 0.718668, 0.626871}, {0.718668, 0.281332, 0.373129}});
  Crystal ga2 = ga;
  ga2.lattice.a *= 2;
  ga2.frac.clear();
  ga2.species.clear();
  for (int k = 0; k < 2; ++k)
    for (const Vec3& f : ga.frac) {
      ga2.frac.push_back({(f[0] + k) / 2, f[1], f[2]});
      ga2.species.push_back("Ga");
    }
  EXPECT_EQ(primitive_cell(ga).num_sites(), 1u);
  EXPECT_EQ(primitive_cell(ga2).num_sites(), 1u);
  EXPECT_TRUE(structures_match(fingerprint(ga), fingerprint(ga2)));
  // mp-570074 (Sc6Ir2C8) is close to a doubled mp-1092328 (Sc3IrC4), but pymatgen keeps it at 16 sites: under the
  // translation (a - b) / 2 of its reduced cell the Ir sites are 0.246 and 0.234 Å off along a and b (inside 0.25 Å
  // along the input axes, where our first version merged them) but 0.30 Å off along the halved cell's (a - b) / 2
  // axis. So the two do not match.
  const Crystal a = make({6.73933081, 6.73933081, 6.73933081, 150.15842017, 141.55815618, 49.40981172},
                         {"Sc", "Sc", "Sc", "Ir", "C", "C", "C", "C"},
                         {{0.5, 0.5, 0}, {0.809539, 0.309539, 0.5}, {0.190461, 0.690461, 0.5}, {0, 0, 0},
                          {0.20913, 0.872483, 0.336647}, {0.79087, 0.127517, 0.663353},
                          {0.464164, 0.127517, 0.336647}, {0.535836, 0.872483, 0.663353}});
  const Crystal b = make({6.75713836, 6.75713836, 5.62530434, 83.86592519, 83.86592519, 130.79762955},
                         {"Sc", "Sc", "Sc", "Sc", "Sc", "Sc", "Ir", "Ir", "C", "C", "C", "C", "C", "C", "C", "C"},
                         {{0.761244, 0.761244, 0.763193}, {0.308593, 0.691407, 0.5}, {0.189565, 0.810435, 0},
                          {0.691407, 0.308593, 0.5}, {0.238756, 0.238756, 0.236807}, {0.810435, 0.189565, 0},
                          {0.729206, 0.729206, 0.271823}, {0.270794, 0.270794, 0.728177},
                          {0.29014, 0.547733, 0.918444}, {0.547733, 0.29014, 0.918444},
                          {0.452267, 0.70986, 0.081556}, {0.70986, 0.452267, 0.081556},
                          {0.208769, 0.953423, 0.581512}, {0.791231, 0.046577, 0.418488},
                          {0.953423, 0.208769, 0.581512}, {0.046577, 0.791231, 0.418488}});
  EXPECT_EQ(primitive_cell(a).num_sites(), 8u);
  EXPECT_EQ(primitive_cell(b).num_sites(), 16u);
  EXPECT_FALSE(structures_match(fingerprint(a), fingerprint(b)));
}

// MP-20 test mp-1077032 and train mp-1385 (CeZn2, 6 sites each, the cells as data/mp20 gives them). Their Niggli cells
// (pymatgen 2022.11.7: get_reduced_structure().get_primitive_structure()) are 4.578782 5.711623 5.711623 /
// 79.1372 66.3699 66.3699 and 4.613190 5.729156 5.729156 / 73.9375 66.2588 66.2588: alpha 5.2 degrees apart, so
// StructureMatcher().fit is False in both orders, and True in both from angle_tol 5.5. Our earlier shortest-vector
// frame (alpha 82.36 and 87.28, equally short bases) matched them, in cgeval only with the train crystal first.
TEST(StructureMatch, NiggliFrameDecidesAnAngleNearTolerance) {
  const Crystal test = make({5.71162264, 5.71162264, 5.71162264, 132.73981946, 100.86282373, 97.63555593},
                            {"Ce", "Ce", "Zn", "Zn", "Zn", "Zn"},
                            {{0.714035, 0.464035, 0.25}, {0.285965, 0.535965, 0.75}, {0.893556, 0.836234, 0.057322},
                             {0.106444, 0.163766, 0.942678}, {0.721088, 0.163766, 0.557322},
                             {0.278912, 0.836234, 0.442678}});
  const Crystal train = make({5.72915645, 5.72915645, 5.72915645, 132.51756402, 106.06250891, 92.72245335},
                             {"Ce", "Ce", "Zn", "Zn", "Zn", "Zn"},
                             {{0.266194, 0.516194, 0.75}, {0.733806, 0.483806, 0.25}, {0.130479, 0.165916, 0.964563},
                              {0.869521, 0.834084, 0.035437}, {0.298647, 0.834084, 0.464563},
                              {0.701353, 0.165916, 0.535437}});
  const Lattice want[2] = {{4.578782, 5.711623, 5.711623, 79.1372, 66.3699, 66.3699},
                           {4.613190, 5.729156, 5.729156, 73.9375, 66.2588, 66.2588}};
  const Crystal* cs[2] = {&test, &train};
  for (int k = 0; k < 2; ++k) {
    const Crystal p = primitive_cell(*cs[k]);
    EXPECT_EQ(p.num_sites(), 6u);
    EXPECT_NEAR(p.lattice.a, want[k].a, 1e-5) << k;
    EXPECT_NEAR(p.lattice.b, want[k].b, 1e-5) << k;
    EXPECT_NEAR(p.lattice.c, want[k].c, 1e-5) << k;
    EXPECT_NEAR(p.lattice.alpha, want[k].alpha, 1e-3) << k;
    EXPECT_NEAR(p.lattice.beta, want[k].beta, 1e-3) << k;
    EXPECT_NEAR(p.lattice.gamma, want[k].gamma, 1e-3) << k;
  }
  const auto ft = fingerprint(test), fr = fingerprint(train);
  EXPECT_FALSE(structures_match(ft, fr));
  EXPECT_FALSE(structures_match(fr, ft));
  EXPECT_EQ(duplicate_of({ft, fr}), (std::vector<size_t>{0, 1}));  // uniqueness, either input order
  EXPECT_EQ(duplicate_of({fr, ft}), (std::vector<size_t>{0, 1}));
  const std::vector<Crystal> train_set = {train};
  NoveltyIndex novelty(&train_set);
  EXPECT_TRUE(novelty.is_novel(ft));
  MatchTolerance wider;
  wider.angle_tol = 5.5;
  EXPECT_TRUE(structures_match(ft, fr, wider));
  EXPECT_TRUE(structures_match(fr, ft, wider));
}

TEST(StructureMatch, PerturbedAndScaledCopiesMatch) {
  // The reviewer's cases: rock salt a = 5.64 with every coordinate moved by up to +-0.02 (0.11 Å) and
  // +-0.03 (0.17 Å), and the lattice scaled by 8%; pymatgen's defaults match all of them.
  const Crystal base = rocksalt(5.64);
  const auto fb = fingerprint(base);
  ASSERT_TRUE(fb.ok);
  for (unsigned seed = 1; seed <= 10; ++seed) {
    EXPECT_TRUE(structures_match(fb, fingerprint(jitter(base, 0.02, seed)))) << "seed " << seed;
    // +-0.03 in the conventional cell can put equivalent sites 0.34 Å apart, beyond the 0.25 Å primitive tolerance,
    // so (as in pymatgen) the cell may stay at 8 sites and then not match the 2-site cell: jitter the primitive one.
    EXPECT_TRUE(structures_match(fb, fingerprint(jitter(primitive_cell(base), 0.03, seed)))) << "seed " << seed;
  }
  Crystal big = base;
  big.lattice = {5.64 * 1.08, 5.64 * 1.08, 5.64 * 1.08, 90, 90, 90};
  EXPECT_TRUE(structures_match(fb, fingerprint(big)));
  Crystal huge = base;  // lengths x1.25: outside ltol 0.2 unless volumes are scaled first
  huge.lattice = {5.64 * 1.25, 5.64 * 1.25, 5.64 * 1.25, 90, 90, 90};
  EXPECT_TRUE(structures_match(fb, fingerprint(huge)));
  MatchTolerance no_scale;
  no_scale.scale = false;
  EXPECT_FALSE(structures_match(fb, fingerprint(huge, no_scale), no_scale));
  EXPECT_TRUE(structures_match(fb, fingerprint(big, no_scale), no_scale));  // 1.08 < 1 + ltol: same fractional sites
  // Shear of a simple cubic (CsCl-type) cell, same fractional sites: gamma 90 -> 93 is within angle_tol 5, 97 is
  // not (the only lattice vectors within a factor 1.2 of a are +-a, +-b, +-c; a +- b are 1.32a and 1.50a long).
  const Crystal cscl = make({4, 4, 4, 90, 90, 90}, {"Cs", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}});
  Crystal sheared = cscl;
  sheared.lattice.gamma = 93;
  EXPECT_TRUE(structures_match(fingerprint(cscl), fingerprint(sheared)));
  sheared.lattice.gamma = 97;
  EXPECT_FALSE(structures_match(fingerprint(cscl), fingerprint(sheared)));
}

TEST(StructureMatch, SiteToleranceThreshold) {
  // CsCl type, a = 4 (primitive: 2 sites, (V/N)^(1/3) = 32^(1/3) = 3.1748 Å). Moving Cl by d along a: after the
  // mean shift is removed each site is displaced d a / 2, i.e. 2 d / 3.1748 in units of (V/N)^(1/3):
  // d = 0.44 -> 0.277 < 0.3 (match), d = 0.49 -> 0.309 > 0.3 (no match).
  const Lattice cub{4, 4, 4, 90, 90, 90};
  const auto ref = fingerprint(make(cub, {"Cs", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}}));
  EXPECT_TRUE(structures_match(ref, fingerprint(make(cub, {"Cs", "Cl"}, {{0, 0, 0}, {0.94, 0.5, 0.5}}))));
  EXPECT_FALSE(structures_match(ref, fingerprint(make(cub, {"Cs", "Cl"}, {{0, 0, 0}, {0.99, 0.5, 0.5}}))));
  MatchTolerance loose;
  loose.stol = 0.31;
  EXPECT_TRUE(structures_match(ref, fingerprint(make(cub, {"Cs", "Cl"}, {{0, 0, 0}, {0.99, 0.5, 0.5}})), loose));
}

TEST(StructureMatch, SitesAreComparedOnTheAverageLattice) {
  // CsCl type, cubic a 4 against tetragonal (4, 4, 4.6) with Cl moved by dz along c; scaled to equal volume, the
  // average lattice's c is 4.294 Å and (V/N)^(1/3) 3.251 Å, so the centred move dz 4.294 / 2 / 3.251 passes stol 0.3
  // below dz 0.4543 (on the second lattice alone, c 4.494 Å: below 0.4338). pymatgen's StructureMatcher().fit: True at
  // 0.44 and 0.45, False at 0.46, both orders.
  const auto cubic = fingerprint(make({4, 4, 4, 90, 90, 90}, {"Cs", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}}));
  for (const double dz : {0.44, 0.45, 0.46}) {
    const auto tetragonal = fingerprint(make({4, 4, 4.6, 90, 90, 90}, {"Cs", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5 + dz}}));
    EXPECT_EQ(structures_match(cubic, tetragonal), dz < 0.455) << dz;
    EXPECT_EQ(structures_match(tetragonal, cubic), dz < 0.455) << dz;
  }
}

TEST(StructureMatch, LatticeLengthsWithinAFactorOnePlusLtolEitherWay) {
  // Unscaled simple cubic cells of a 4 and 4 / r: a length ratio r fits when 1 / (1 + ltol) < r < 1 + ltol, as in
  // pymatgen's find_all_mappings (StructureMatcher(scale=False).fit: False at r 0.81 and 0.82, True at 0.84, both
  // orders), not from 1 - ltol (0.8).
  MatchTolerance unscaled;
  unscaled.scale = false;
  const auto small = fingerprint(make({4, 4, 4, 90, 90, 90}, {"Po"}, {{0, 0, 0}}), unscaled);
  for (const double r : {0.81, 0.82, 0.84}) {
    const double a = 4 / r;
    const auto large = fingerprint(make({a, a, a, 90, 90, 90}, {"Po"}, {{0, 0, 0}}), unscaled);
    EXPECT_EQ(structures_match(small, large, unscaled), r > 0.83) << r;
    EXPECT_EQ(structures_match(large, small, unscaled), r > 0.83) << r;
  }
}

TEST(StructureMatch, ASublatticeIsNoLatticeMapping) {
  // Simple cubic Po (a 3) and a tetragonal cell of one site (3, 3, 6), scaled to equal volume: at ltol 0.3 the cubic
  // lattice's vectors a, b, 2c fit the tetragonal one's lengths and angles, but they span half its points (|det| 2),
  // and no basis of it does (its only vectors of fitting length at 90 degrees to a and b are +-2c). pymatgen's
  // StructureMatcher(ltol=0.3).fit: False, both orders; taking the sublattice as a mapping says True.
  const auto cubic = fingerprint(make({3, 3, 3, 90, 90, 90}, {"Po"}, {{0, 0, 0}}));
  const auto tetragonal = fingerprint(make({3, 3, 6, 90, 90, 90}, {"Po"}, {{0, 0, 0}}));
  MatchTolerance wide;
  wide.ltol = 0.3;
  EXPECT_FALSE(structures_match(cubic, tetragonal, wide));
  EXPECT_FALSE(structures_match(tetragonal, cubic, wide));
}

TEST(StructureMatch, UniquenessAndNovelty) {
  const Crystal a = rocksalt(5.6);
  const Crystal b = make({3.3, 3.3, 3.3, 90, 90, 90}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}});
  const double ap = 5.6 / std::sqrt(2.0);
  const Crystal a_prim = make({ap, ap, ap, 60, 60, 60}, {"Na", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}});
  const std::vector<StructureFingerprint> fps = {fingerprint(a), fingerprint(b), fingerprint(a_prim)};
  EXPECT_EQ(duplicate_of(fps), (std::vector<size_t>{0, 1, 0}));
  // Matching is no equivalence: CsCl type (a 4) with Cl at x 0.5, 0.99 and 0.745, the first two 0.309 apart (beyond
  // stol, SiteToleranceThreshold), the third 0.154 from each. It is a duplicate of the first one it matches.
  const Lattice cub{4, 4, 4, 90, 90, 90};
  std::vector<StructureFingerprint> chain;
  for (const double x : {0.5, 0.99, 0.745})
    chain.push_back(fingerprint(make(cub, {"Cs", "Cl"}, {{0, 0, 0}, {x, 0.5, 0.5}})));
  EXPECT_EQ(duplicate_of(chain), (std::vector<size_t>{0, 1, 0}));

  const std::vector<Crystal> train = {b, make({4, 4, 4, 90, 90, 90}, {"Fe"}, {{0, 0, 0}})};
  NoveltyIndex novelty(&train);
  EXPECT_TRUE(novelty.is_novel(fps[0]));
  EXPECT_FALSE(novelty.is_novel(fps[1]));
}

}  // namespace
}  // namespace cg
