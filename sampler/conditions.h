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
// pymatgen's reduced formula (Composition(formula).reduced_formula: the spelling of MP's pretty_formula, which the
// training prompts state) of a formula composition_of_formula reads: "Fe4O6" -> "Fe2O3", "ClNa" -> "NaCl",
// "MgIn2Se4" -> "Mg(InSe2)2", "O" -> "O2"; "" for one it does not read.
std::string pymatgen_reduced_formula_of(const std::string& formula);

// Tallies `items` against the crystals of `groups` (their space groups at its symprec Å and 5°, as pymatgen's
// SpacegroupAnalyzer). Unparsed items count as misses.
ConditionReport check_conditions(const std::vector<ConditionedItem>& items, SpaceGroupCache& groups);

}  // namespace cg
