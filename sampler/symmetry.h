// Space groups of crystals through spglib (the library behind pymatgen's SpacegroupAnalyzer), for cgeval's check of
// space-group-conditioned samples.
#pragma once
#include <optional>
#include <string>

#include "data/crystal.h"

namespace cg {

struct SpaceGroup {
  int number = 0;      // 1..230
  std::string symbol;  // Hermann-Mauguin, spglib's short form ("Fm-3m")
};

// False when cgeval was built without spglib (install libsymspg-dev and rebuild).
bool have_spglib();

// The space group spglib finds for c, as SpacegroupAnalyzer(structure, symprec, angle_tolerance).get_space_group_*
// does: symprec a distance tolerance in Å, angle_tolerance in degrees (pymatgen's 5 by default). nullopt when spglib
// finds none (overlapping atoms, a degenerate cell) or is not built in.
std::optional<SpaceGroup> space_group(const Crystal& c, double symprec, double angle_tolerance = 5.0);

}  // namespace cg
