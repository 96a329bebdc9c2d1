// SMACT compositional validity: hand-worked verdicts against SMACT's tables (data/tables/).
#include <gtest/gtest.h>

#include "common/error.h"
#include "sampler/smact.h"

namespace cg {
namespace {

std::vector<std::string> sites(std::initializer_list<std::pair<const char*, int>> counts) {
  std::vector<std::string> s;
  for (const auto& [el, n] : counts) s.insert(s.end(), n, el);
  return s;
}

TEST(Smact, TablesMatchSmactSpotValues) {
  EXPECT_EQ(smact_oxidation_states("Fe"), (std::vector<int>{-2, -1, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(smact_oxidation_states("O"), (std::vector<int>{-2, -1, 1, 2}));
  EXPECT_TRUE(smact_oxidation_states("He").empty());
  EXPECT_EQ(smact_oxidation_states("Hs"), (std::vector<int>{8}));
  EXPECT_DOUBLE_EQ(*smact_pauling_electronegativity("F"), 3.98);
  EXPECT_DOUBLE_EQ(*smact_pauling_electronegativity("Zr"), 0.33);  // SMACT's value, kept verbatim
  EXPECT_FALSE(smact_pauling_electronegativity("Pm").has_value());
  EXPECT_FALSE(smact_pauling_electronegativity("Rf").has_value());
  EXPECT_TRUE(smact_is_metal("Ge"));
  EXPECT_FALSE(smact_is_metal("Pm"));
  EXPECT_FALSE(smact_is_metal("O"));
}

TEST(Smact, ReduceCompositionSortsByAtomicNumberAndDividesByGcd) {
  const Composition c = reduce_composition(sites({{"Fe", 4}, {"O", 6}}));
  EXPECT_EQ(c.elements, (std::vector<std::string>{"O", "Fe"}));
  EXPECT_EQ(c.counts, (std::vector<int>{3, 2}));
  EXPECT_EQ(c.formula(), "O3Fe2");
  EXPECT_THROW(reduce_composition({"Ln"}), Error);
}

TEST(Smact, NaClIsValidWithNaPlusOneClMinusOne) {
  // Na in {-1,+1}; Cl in {-1,+1..+7}. Na-1/Cl+1 is neutral but fails Pauling (0.93 <= 3.16 with Na the anion);
  // Na+1/Cl-1 passes.
  const SmactResult r = smact_validity(reduce_composition(sites({{"Na", 4}, {"Cl", 4}})));
  EXPECT_TRUE(r.valid);
  EXPECT_EQ(r.reason, "charge balanced");
  EXPECT_EQ(r.oxidation_states, (std::vector<int>{1, -1}));
}

TEST(Smact, Fe2O3IsValid) {
  const SmactResult r = smact_validity(reduce_composition(sites({{"Fe", 2}, {"O", 3}})));
  EXPECT_TRUE(r.valid);
  EXPECT_EQ(r.oxidation_states, (std::vector<int>{-2, 3}));  // order O, Fe
}

TEST(Smact, NaCl2IsInvalid) {
  // 1*Na + 2*Cl = 0 needs Cl = -Na/2 with Na = +-1: not an integer.
  const SmactResult r = smact_validity(reduce_composition(sites({{"Na", 1}, {"Cl", 2}})));
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.reason, "no charge-neutral oxidation states");
}

TEST(Smact, Fe3O4IsInvalidBecauseEachElementTakesOneState) {
  // 3*Fe + 4*O = 0 with O in {-2,-1,+1,+2} needs Fe = 8/3, 4/3, -4/3, -8/3: never an integer.
  EXPECT_FALSE(smact_valid(sites({{"Fe", 3}, {"O", 4}})));
}

TEST(Smact, SingleElementsAndAlloysAreValid) {
  EXPECT_EQ(smact_validity(reduce_composition(sites({{"Fe", 2}}))).reason, "single element");
  EXPECT_TRUE(smact_valid(sites({{"Si", 8}})));
  EXPECT_TRUE(smact_valid(sites({{"He", 1}})));  // single element, even without oxidation states
  const SmactResult r = smact_validity(reduce_composition(sites({{"Cu", 3}, {"Au", 1}})));
  EXPECT_TRUE(r.valid);
  EXPECT_EQ(r.reason, "alloy");
}

TEST(Smact, PaulingTestDecidesAMetalPairWhenAlloysAreOff) {
  // Li only +1, so Na must be -1: neutral, but the cation Li (0.98) is more electronegative than the anion Na (0.93).
  const Composition c = reduce_composition({"Li", "Na"});
  EXPECT_TRUE(smact_validity(c).valid);  // alloy rule
  SmactOptions no_alloys;
  no_alloys.include_alloys = false;
  const SmactResult r = smact_validity(c, no_alloys);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.reason, "fails Pauling electronegativity test");
  no_alloys.use_pauling_test = false;
  EXPECT_TRUE(smact_validity(c, no_alloys).valid);
}

TEST(Smact, MissingDataFollowsCdvae) {
  // Noble gas without oxidation states next to another element: nothing to combine.
  EXPECT_FALSE(smact_valid({"He", "O"}));
  // Pm has no electronegativity: the first cation/anion pair with it raised TypeError in SMACT 2.x, which CDVAE
  // counts as passing. PmCl3: Cl(-1), Pm(+3).
  EXPECT_TRUE(smact_valid(sites({{"Pm", 1}, {"Cl", 3}})));
  EXPECT_TRUE(smact_pauling_test({-1, 3}, {3.16, std::nullopt}));
  // Same-sign pair with a missing value fails (SMACT's `eneg is None` branch).
  EXPECT_FALSE(smact_pauling_test({2, 3}, {1.2, std::nullopt}));
  // Elements beyond Lr have no SMACT element data at all.
  EXPECT_FALSE(smact_valid({"Rf", "O", "O"}));
}

TEST(Smact, PaulingTestPairsInOrder) {
  EXPECT_TRUE(smact_pauling_test({1, -1}, {0.93, 3.16}));
  EXPECT_FALSE(smact_pauling_test({1, -1}, {3.16, 3.16}));  // equal electronegativity fails (>=)
  EXPECT_FALSE(smact_pauling_test({-1, 1}, {0.93, 3.16}));
}

}  // namespace
}  // namespace cg
