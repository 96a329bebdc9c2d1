// The paper's text format (golden strings, round trip, strict parser errors), augmentation invariants, prompts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/error.h"
#include "data/augment.h"
#include "data/crystal_text.h"
#include "data/mp20.h"
#include "data/prompt.h"

namespace {

cg::Crystal make_crystal(cg::Lattice l, std::vector<std::string> sp, std::vector<cg::Vec3> f) {
  cg::Crystal c;
  c.id = "test";
  c.lattice = l;
  c.species = std::move(sp);
  c.frac = std::move(f);
  return c;
}

const cg::Mp20Split& train_head() {
  static const cg::Mp20Split s = cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/train.csv.gz", 400);
  return s;
}

const cg::Crystal& find(const std::string& id) {
  for (const auto& c : train_head().crystals)
    if (c.id == id) return c;
  throw cg::Error("no " + id);
}

// Shortest distance between sites i and j over periodic images (27 neighbouring cells of the wrapped difference).
double min_image(const cg::Crystal& c, size_t i, size_t j) {
  const cg::Mat3 m = cg::lattice_matrix(c.lattice);
  double best = 1e300;
  for (int a = -1; a <= 1; ++a)
    for (int b = -1; b <= 1; ++b)
      for (int d = -1; d <= 1; ++d) {
        cg::Vec3 df;
        const int shift[3] = {a, b, d};
        for (int k = 0; k < 3; ++k) {
          double x = c.frac[j][k] - c.frac[i][k];
          df[k] = x - std::round(x) + shift[k];
        }
        cg::Vec3 r = cg::frac_to_cart(m, df);
        best = std::min(best, std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]));
      }
  return best;
}

}  // namespace

TEST(CrystalText, PaperExample) {
  cg::Crystal c = make_crystal({4.2, 4.2, 4.2, 60, 60, 60}, {"Li", "Mn"}, {{0.5, 0.5, 0.5}, {0, 0, 0}});
  EXPECT_EQ(cg::crystal_to_text(c), "4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50\nMn\n0.00 0.00 0.00");
}

TEST(CrystalText, GoldenMp20Rows) {
  // Hand-checked against the CIFs in data/mp20/train.csv.gz.
  // mp-1 Cs: a = b = c = 5.29144986, angles 109.47122063, one site at the origin.
  EXPECT_EQ(cg::crystal_to_text(find("mp-1")), "5.3 5.3 5.3\n109 109 109\nCs\n0.00 0.00 0.00");
  // mp-10000 Hf2S: 3.38667871 3.38667871 11.787358, gamma 120.00001383; z 0.899523 -> 0.90, 0.100477 -> 0.10.
  EXPECT_EQ(cg::crystal_to_text(find("mp-10000")),
            "3.4 3.4 11.8\n90 90 120\nHf\n0.67 0.33 0.90\nHf\n0.33 0.67 0.40\nHf\n0.67 0.33 0.60\nHf\n0.33 0.67 0.10\n"
            "S\n0.00 0.00 0.75\nS\n0.00 0.00 0.25");
  // mp-1000 BaTe: rocksalt primitive cell, 5.01321596, 60 degrees.
  EXPECT_EQ(cg::crystal_to_text(find("mp-1000")), "5.0 5.0 5.0\n60 60 60\nBa\n0.00 0.00 0.00\nTe\n0.50 0.50 0.50");
  // The reference's int() sees pymatgen's parameters recomputed from the lattice matrix: Lattice.from_parameters(
  // 5.01321596 x 3, 60 x 3).parameters = (5.013215959999999, 5.01321596, 5.01321596, 59.99999999999999,
  // 59.999999999999986, 59.99999999999999) (pymatgen 2023.x, Debian 12), hence 59.
  cg::TextOptions trunc;
  trunc.angles = cg::AngleMode::kTruncate;
  EXPECT_EQ(cg::crystal_to_text(find("mp-1000"), trunc),
            "5.0 5.0 5.0\n59 59 59\nBa\n0.00 0.00 0.00\nTe\n0.50 0.50 0.50");
}

TEST(CrystalText, AnglesAndCoordinateEdges) {
  cg::Crystal c = make_crystal({1.25, 3.05, 10, 119.9999, 90.5, 60.4}, {"O"}, {{0.996, -0.3, 1.0}});
  cg::TextOptions round;
  cg::TextOptions trunc;
  trunc.angles = cg::AngleMode::kTruncate;
  cg::TextOptions ref = trunc;
  ref.fold_one = false;
  // 0.996 wraps to 0.996 -> "1.00", folded to "0.00"; -0.3 wraps to 0.7; 1.0 wraps to 0.
  EXPECT_EQ(cg::crystal_to_text(c, round), "1.2 3.0 10.0\n120 91 60\nO\n0.00 0.70 0.00");
  EXPECT_EQ(cg::crystal_to_text(c, trunc), "1.2 3.0 10.0\n119 90 60\nO\n0.00 0.70 0.00");
  EXPECT_EQ(cg::crystal_to_text(c, ref), "1.2 3.0 10.0\n119 90 60\nO\n1.00 0.70 0.00");
  EXPECT_EQ(cg::format_frac(-1e-17), "0.00");
  EXPECT_EQ(cg::parse_angle_mode("truncate"), cg::AngleMode::kTruncate);
  EXPECT_THROW(cg::parse_angle_mode("floor"), cg::Error);
}

TEST(CrystalText, RoundTripOverMp20) {
  // text -> crystal -> text is the identity on every formatted crystal (first 400 training rows).
  ASSERT_GT(train_head().crystals.size(), 300u);
  for (const auto& c : train_head().crystals) {
    const std::string t = cg::crystal_to_text(c);
    cg::Crystal back = cg::parse_crystal_text(t, c.id);
    EXPECT_EQ(back.species, c.species) << c.id;
    EXPECT_EQ(cg::crystal_to_text(back), t) << c.id;
  }
}

TEST(CrystalText, StrictParserNamesTheLine) {
  auto err = [](const std::string& text) {
    cg::Crystal c;
    std::string e;
    EXPECT_FALSE(cg::parse_crystal_text(text, &c, &e)) << text;
    return e;
  };
  const std::string good = "4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50";
  cg::Crystal ok;
  std::string e;
  ASSERT_TRUE(cg::parse_crystal_text(good, &ok, &e)) << e;
  EXPECT_DOUBLE_EQ(ok.lattice.alpha, 60);
  EXPECT_EQ(err("4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50").rfind("line 1:", 0), 0u);
  EXPECT_EQ(err("4.2 4.2 4.2\n60 60 190\nLi\n0.50 0.50 0.50").rfind("line 2:", 0), 0u);
  // Each angle in range, together no cell (cos² sum: 1 - 2 cos²138° < 0), as the CIF reader says of its CIF.
  EXPECT_EQ(err("3.3 7.7 7.9\n138 138 90\nLi\n0.50 0.50 0.50")
                .rfind("line 2: lattice lengths and angles form no cell (zero volume)", 0), 0u);
  // 120 120 120: flat (1 - 3/4 - 1/4 = 0), though rounding leaves a volume of ~1e-6 A^3 at 5 A.
  EXPECT_EQ(err("5.0 5.0 5.0\n120 120 120\nLi\n0.50 0.50 0.50")
                .rfind("line 2: lattice lengths and angles form no cell (zero volume)", 0), 0u);
  EXPECT_EQ(err("4.2 4.2 4.2\n60 60 60\nXy\n0.50 0.50 0.50").rfind("line 3: not an element symbol (got 'Xy')", 0), 0u);
  EXPECT_EQ(err("4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.5x 0.50").rfind("line 4:", 0), 0u);
  EXPECT_EQ(err("4.2 4.2 4.2\n60 60 60\nLi\n0.50 1.50 0.50").rfind("line 4:", 0), 0u);
  EXPECT_EQ(err(good + "\nNa").rfind("line 6:", 0), 0u);        // element without coordinates
  EXPECT_EQ(err(good + "\n").rfind("line 5:", 0), 0u);          // trailing newline
  EXPECT_EQ(err("4.2 4.2 4.2\n60 60 60").rfind("line 3:", 0), 0u);  // no sites
  EXPECT_EQ(err("4.2  4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50").rfind("line 1:", 0), 0u);  // double space
  EXPECT_THROW(cg::parse_crystal_text("nonsense", "s7"), cg::Error);
}

TEST(CrystalText, ReferenceTextParsesBackAndErrorsSayWhatIsWrong) {
  // fold_one = false writes the reference's "1.00" (0.996 wrapped, 2 decimals); the parser takes [0, 1], so such
  // text reads back, and is written again with 1.00 wrapped to 0.00 (the same position).
  cg::Crystal c = make_crystal({4.2, 4.2, 4.2, 90, 90, 90}, {"Na", "Cl"}, {{0.996, 0.5, 0.0}, {0.25, 0.999, 0.5}});
  cg::TextOptions ref;
  ref.fold_one = false;
  const std::string text = cg::crystal_to_text(c, ref);
  ASSERT_EQ(text, "4.2 4.2 4.2\n90 90 90\nNa\n1.00 0.50 0.00\nCl\n0.25 1.00 0.50");
  cg::Crystal back;
  std::string e;
  ASSERT_TRUE(cg::parse_crystal_text(text, &back, &e)) << e;
  EXPECT_EQ(back.frac[0][0], 1.0);
  EXPECT_EQ(back.frac[1][1], 1.0);
  EXPECT_EQ(cg::crystal_to_text(back, ref), "4.2 4.2 4.2\n90 90 90\nNa\n0.00 0.50 0.00\nCl\n0.25 0.00 0.50");
  auto err = [](const std::string& t) {
    cg::Crystal x;
    std::string what;
    EXPECT_FALSE(cg::parse_crystal_text(t, &x, &what)) << t;
    return what;
  };
  // A number needs digits after its '.', and a negative length is one, said to be not positive.
  EXPECT_EQ(err("4. 4.2 4.2\n90 90 90\nNa\n0.50 0.50 0.50"),
            "line 1: expected three lattice lengths 'a b c' (got '4. 4.2 4.2')");
  EXPECT_EQ(err("4.2 4.2 4.2\n90 90 90\nNa\n0. 0.50 0.50").rfind("line 4: expected three fractional", 0), 0u);
  EXPECT_EQ(err("-4.2 4.2 4.2\n90 90 90\nNa\n0.50 0.50 0.50"),
            "line 1: lattice lengths must be positive (got '-4.2 4.2 4.2')");
  // 180 degrees is out of range, named as such (not only as a cell of no volume).
  EXPECT_EQ(err("4.2 4.2 4.2\n90 90 180\nNa\n0.50 0.50 0.50"),
            "line 2: lattice angles must lie in (0, 180) degrees (got '90 90 180')");
}

TEST(Augment, TranslationKeepsPeriodicDistances) {
  int checked = 0;
  for (size_t n = 0; n < 60; ++n) {
    const cg::Crystal& c = train_head().crystals[n];
    cg::Rng rng(cg::Rng::derive({7, n}));
    cg::Crystal t = cg::augment(c, {/*translate=*/true, /*permute=*/false}, rng);
    ASSERT_EQ(t.species, c.species);
    bool moved = false;
    for (size_t i = 0; i < c.num_sites(); ++i) {
      for (int k = 0; k < 3; ++k) {
        EXPECT_GE(t.frac[i][k], 0.0);
        EXPECT_LT(t.frac[i][k], 1.0);
        moved |= std::fabs(t.frac[i][k] - cg::wrap01(c.frac[i][k])) > 1e-6;
      }
      for (size_t j = i + 1; j < c.num_sites(); ++j, ++checked)
        EXPECT_NEAR(min_image(t, i, j), min_image(c, i, j), 1e-9) << c.id << " sites " << i << "," << j;
    }
    EXPECT_TRUE(moved) << c.id;
  }
  EXPECT_GT(checked, 500);
}

TEST(Augment, DeterministicPermutationKeepsSites) {
  const cg::Crystal& c = find("mp-10000");
  cg::Rng r1(5), r2(5), r3(6);
  cg::Crystal a = cg::augment(c, {true, true}, r1), b = cg::augment(c, {true, true}, r2),
              d = cg::augment(c, {true, true}, r3);
  EXPECT_EQ(cg::crystal_to_text(a), cg::crystal_to_text(b));
  EXPECT_NE(cg::crystal_to_text(a), cg::crystal_to_text(d));
  // Permuted sites are the translated sites in another order: same multiset of (species, position).
  cg::Rng r4(5);
  cg::Crystal shifted = cg::augment(c, {true, false}, r4);
  std::multiset<std::string> x, y;
  for (size_t i = 0; i < c.num_sites(); ++i) {
    x.insert(a.species[i] + cg::format_frac(a.frac[i][0]) + cg::format_frac(a.frac[i][2]));
    y.insert(shifted.species[i] + cg::format_frac(shifted.frac[i][0]) + cg::format_frac(shifted.frac[i][2]));
  }
  EXPECT_EQ(x, y);
  cg::Rng r5(1);
  EXPECT_EQ(cg::crystal_to_text(cg::augment(c, {false, false}, r5)), cg::crystal_to_text(c));
}

TEST(Augment, ShiftIsTheFirstThreeDrawsAndPermutationMovesWholeSites) {
  // Six sites of distinct elements, positions and oxidation states: each output site must be one input site whole.
  cg::Crystal c = make_crystal({5, 6, 7, 90, 90, 90}, {"Li", "Na", "K", "Rb", "Cs", "Fr"},
                               {{0.1, 0.2, 0.3}, {0.4, 0.5, 0.6}, {0.7, 0.8, 0.9}, {0.15, 0.25, 0.35},
                                {0.45, 0.55, 0.65}, {0.75, 0.85, 0.95}});
  c.oxidation = {1, 2, 3, 4, 5, 6};
  // The shift is (u0, u1, u2), the Rng's first three uniforms (augment.h), one per axis.
  for (uint64_t seed = 0; seed < 5; ++seed) {
    cg::Rng draws(seed), rng(seed);
    const double u[3] = {draws.uniform(), draws.uniform(), draws.uniform()};
    const cg::Crystal t = cg::augment(c, {/*translate=*/true, /*permute=*/false}, rng);
    for (size_t i = 0; i < c.num_sites(); ++i)
      for (int k = 0; k < 3; ++k) EXPECT_EQ(t.frac[i][k], cg::wrap01(c.frac[i][k] + u[k])) << seed << " " << i;
  }
  std::set<std::string> first_sites;
  int reordered = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    cg::Rng rng(seed);
    const cg::Crystal p = cg::augment(c, {/*translate=*/false, /*permute=*/true}, rng);
    ASSERT_EQ(p.num_sites(), c.num_sites());
    ASSERT_EQ(p.oxidation.size(), c.num_sites());
    std::set<std::string> seen;
    for (size_t i = 0; i < p.num_sites(); ++i) {
      const size_t j = size_t(std::find(c.species.begin(), c.species.end(), p.species[i]) - c.species.begin());
      ASSERT_LT(j, c.num_sites()) << p.species[i];
      EXPECT_EQ(p.frac[i], c.frac[j]) << p.species[i];
      EXPECT_EQ(p.oxidation[i], c.oxidation[j]) << p.species[i];
      seen.insert(p.species[i]);
    }
    EXPECT_EQ(seen.size(), c.num_sites());  // a permutation: every site once
    reordered += p.species != c.species;
    first_sites.insert(p.species[0]);
  }
  EXPECT_GE(reordered, 55);               // 1 in 720 draws is the identity
  EXPECT_EQ(first_sites.size(), 6u);      // every site reaches the front
}

TEST(Prompt, GenerationGolden) {
  cg::GenerationConditions cond;
  EXPECT_EQ(cg::generation_prompt(cond),
            "Below is a description of a bulk material. Generate a description of the lengths and angles of the "
            "lattice vectors and then the element type and coordinates for each atom within the lattice:\n");
  cond.formula = "SiOs";
  cond.formation_energy_per_atom = -0.3013339024999979;
  cond.band_gap = 0.0;
  cond.e_above_hull = 0.0749112408333356;
  cond.spacegroup = 221;
  EXPECT_EQ(cg::generation_prompt(cond, {cg::Property::kSpacegroup, cg::Property::kBandGap,
                                         cg::Property::kFormationEnergy, cg::Property::kEAboveHull}),
            "Below is a description of a bulk material. The chemical formula is SiOs. The spacegroup number is 221. "
            "The band gap is 0.0. The formation energy per atom is -0.3013. The energy above the convex hull is "
            "0.0749. Generate a description of the lengths and angles of the lattice vectors and then the element "
            "type and coordinates for each atom within the lattice:\n");
  EXPECT_EQ(cg::format_property(1.3916999999999995), "1.3917");
  EXPECT_EQ(cg::format_property(2.5), "2.5");
  EXPECT_EQ(cg::format_property(-0.00001), "-0.0");
  EXPECT_EQ(cg::format_property(12.0), "12.0");
}

TEST(Prompt, DrawnAttributesRespectEmptyCells) {
  cg::Crystal c = find("mp-10000");  // train row: only the spacegroup is known
  ASSERT_FALSE(c.band_gap.has_value());
  int with_sg = 0;
  for (uint64_t s = 0; s < 300; ++s) {
    cg::Rng rng(s);
    cg::TextSample t = cg::make_generation_sample(c, {}, rng);
    EXPECT_EQ(t.prompt.find("band gap"), std::string::npos);
    EXPECT_EQ(t.prompt.find("formation energy"), std::string::npos);
    EXPECT_EQ(t.completion, cg::crystal_to_text(c));
    if (t.prompt.find("spacegroup number is 194") != std::string::npos) {
      ++with_sg;
      EXPECT_EQ(t.prompt.rfind("Below is a description of a bulk material. The chemical formula is Hf2S. The spacegroup", 0), 0u);
    } else {
      EXPECT_EQ(t.prompt.find("formula"), std::string::npos);
    }
  }
  EXPECT_GT(with_sg, 180);  // k = 0 with probability 1/5
  EXPECT_LT(with_sg, 300);
  // With all four known, every count 0..4 occurs and the formula comes first.
  c.formation_energy_per_atom = -1;
  c.band_gap = 1;
  c.e_above_hull = 0;
  std::map<int, int> counts;
  for (uint64_t s = 0; s < 500; ++s) {
    cg::Rng rng(s);
    std::string p = cg::make_generation_sample(c, {}, rng).prompt;
    int k = 0;
    for (size_t pos = 0; (pos = p.find(" is ", pos)) != std::string::npos; ++pos) ++k;
    counts[k == 1 ? 0 : k - 2]++;  // "Below is", then the formula's and each property's " is "
  }
  for (int k = 0; k <= 4; ++k) EXPECT_GT(counts[k], 50) << k;
}

TEST(Prompt, DrawnPropertiesAreARandomSubsetInRandomOrder) {
  cg::Crystal c = find("mp-10000");
  c.formation_energy_per_atom = -1;
  c.band_gap = 1;
  c.e_above_hull = 0;
  const std::vector<std::string> leads = {"formation energy", "band gap", "energy above", "spacegroup number"};
  std::map<std::string, int> alone;  // prompts stating exactly one property: which
  int bg_before_sg = 0, sg_before_bg = 0;
  for (uint64_t s = 0; s < 500; ++s) {
    cg::Rng rng(s);
    const std::string p = cg::make_generation_sample(c, {}, rng).prompt;
    std::vector<std::string> stated;
    for (const auto& l : leads)
      if (p.find(l) != std::string::npos) stated.push_back(l);
    if (stated.size() == 1) ++alone[stated[0]];
    const size_t bg = p.find("band gap"), sg = p.find("spacegroup number");
    if (bg != std::string::npos && sg != std::string::npos) ++(bg < sg ? bg_before_sg : sg_before_bg);
  }
  // k = 1 in about 100 of 500 draws, each property then 1 in 4: about 25 each.
  ASSERT_EQ(alone.size(), 4u);
  for (const auto& [lead, n] : alone) EXPECT_GT(n, 8) << lead;
  EXPECT_GT(bg_before_sg, 30);  // both orders occur
  EXPECT_GT(sg_before_bg, 30);
}

TEST(Prompt, InfillMasksAnElementDrawnPerSite) {
  // N holds 2 of 5 sites, so it is masked in about 2/5 of the draws, each other element in 1/5.
  cg::Crystal c = make_crystal({5, 5, 5, 90, 90, 90}, {"N", "Na", "Ni", "N", "Nb"},
                               {{0, 0, 0}, {0.5, 0.5, 0.5}, {0.25, 0, 0}, {0, 0.25, 0}, {0, 0, 0.25}});
  std::map<std::string, int> n;
  for (uint64_t s = 0; s < 500; ++s) {
    cg::Rng rng(s);
    ++n[cg::make_infill_sample(c, {}, rng).completion];
  }
  ASSERT_EQ(n.size(), 4u);
  EXPECT_GT(n["N"], 160);  // binomial(500, 0.4): 200 +- 11
  EXPECT_LT(n["N"], 240);
  for (const char* e : {"Na", "Ni", "Nb"}) {
    EXPECT_GT(n[e], 70) << e;  // binomial(500, 0.2): 100 +- 9
    EXPECT_LT(n[e], 130) << e;
  }
}

TEST(Prompt, SpaceGroupsOneTo230ReadBackFromAPrompt) {
  const std::vector<cg::Property> sg = {cg::Property::kSpacegroup};
  for (int n : {1, 2, 229, 230}) {
    cg::GenerationConditions c;
    c.formula = "NaCl";
    c.spacegroup = n;
    EXPECT_EQ(cg::conditions_of_prompt(cg::generation_prompt(c, sg)).spacegroup, n);
  }
  // A hand-edited prompt's number that is no space group is no condition.
  const std::string head = "Below is a description of a bulk material. The spacegroup number is ";
  for (const char* bad : {"0", "231", "12.5"})
    EXPECT_FALSE(cg::conditions_of_prompt(head + bad + ". Generate").spacegroup) << bad;
}

TEST(Prompt, InfillMasksWholeElementLinesOnly) {
  cg::Crystal c = make_crystal({5, 5, 5, 90, 90, 90}, {"N", "Na", "Ni", "N", "Nb"},
                               {{0, 0, 0}, {0.5, 0.5, 0.5}, {0.25, 0, 0}, {0, 0.25, 0}, {0, 0, 0.25}});
  const std::string text = cg::crystal_to_text(c);
  const std::string masked = cg::mask_element(text, "N");
  EXPECT_EQ(masked,
            "5.0 5.0 5.0\n90 90 90\n[MASK]\n0.00 0.00 0.00\nNa\n0.50 0.50 0.50\nNi\n0.25 0.00 0.00\n[MASK]\n"
            "0.00 0.25 0.00\nNb\n0.00 0.00 0.25");
  EXPECT_EQ(cg::mask_element(text, "Na"),
            "5.0 5.0 5.0\n90 90 90\nN\n0.00 0.00 0.00\n[MASK]\n0.50 0.50 0.50\nNi\n0.25 0.00 0.00\nN\n"
            "0.00 0.25 0.00\nNb\n0.00 0.00 0.25");
  EXPECT_EQ(cg::infill_prompt(c, "Na"),
            "Below is a partial description of a bulk material where one element has been replaced with the string "
            "\"[MASK]\":\n5.0 5.0 5.0\n90 90 90\nN\n0.00 0.00 0.00\n[MASK]\n0.50 0.50 0.50\nNi\n0.25 0.00 0.00\nN\n"
            "0.00 0.25 0.00\nNb\n0.00 0.00 0.25\nGenerate an element that could replace [MASK] in the bulk "
            "material:\n");
  // Drawn infill samples: the completion is a species of the crystal and only its lines are masked.
  for (uint64_t s = 0; s < 50; ++s) {
    cg::Rng rng(s);
    cg::TextSample t = cg::make_infill_sample(c, {}, rng);
    EXPECT_EQ(t.task, cg::Task::kInfill);
    const auto n_sites = std::count(c.species.begin(), c.species.end(), t.completion);
    ASSERT_GT(n_sites, 0);
    size_t masks = 0;
    for (size_t p = 0; (p = t.prompt.find("\n[MASK]\n", p)) != std::string::npos; ++p) ++masks;
    EXPECT_EQ(long(masks), n_sites) << t.completion;
    EXPECT_EQ(t.prompt.find("\n" + t.completion + "\n"), std::string::npos);
  }
}
