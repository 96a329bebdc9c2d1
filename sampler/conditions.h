// Conditional generation, checked: of the items whose prompt asked for a formula or a space group, how many
// crystals deliver it (Gruver et al. 2024, text-conditioned generation). Property conditions (formation energy, band
// gap, energy above hull) need a property model (M3GNet, DFT) and are only counted.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/prompt.h"
#include "sampler/smact.h"
#include "sampler/symmetry.h"

namespace cg {

// One item that stated conditions, and its crystal's index in EvalInput::crystals (-1: it did not parse).
struct ConditionedItem {
  GenerationConditions cond;
  int64_t crystal = -1;
};

struct ConditionReport {
  int64_t formula = 0, formula_match = 0;        // items asking for a formula; reduced formulas equal
  int64_t spacegroup = 0, spacegroup_match = 0;  // items asking for a space group; spglib finds that number
  int64_t property = 0;                          // items asking for an energy or band gap (not checked)
  bool spglib = true;                            // false: built without spglib, spacegroup_match not computed
  double symprec = 0.1;                          // Å, spglib's distance tolerance
};

// "Fe2O3", "NaCl", "O3Fe2", "BaLi2Mg(PO4)2" (element symbols with optional integer counts, parenthesised groups with
// a multiplier, as pymatgen's pretty formulas) reduced by the counts' gcd; nullopt for anything else ("Fe2.5O",
// "Xx", "Fe(O").
std::optional<Composition> composition_of_formula(const std::string& formula);
// Whether a formula that composition_of_formula reads is written as a reduced formula, as pymatgen's pretty_formula
// (the training prompts' spelling) is: its counts have gcd 1 and no count is written as "1" ("Fe4O6", "NaNa" and
// "Na1Cl1" are not), or it is one of pymatgen's special formulas (O2, Cl2, Li2O2, ...).
bool formula_is_reduced(const std::string& formula);

// Tallies `items` against the crystals of `groups` (their space groups at its symprec Å and 5°, as pymatgen's
// SpacegroupAnalyzer). Unparsed items count as misses.
ConditionReport check_conditions(const std::vector<ConditionedItem>& items, SpaceGroupCache& groups);

}  // namespace cg
