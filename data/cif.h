// Reading P1 CIFs as pymatgen writes them (CifWriter, symprec=None): cell lengths and angles plus the
// `_atom_site_*` loop (type symbol, fractional x y z, occupancy 1). Anything else is rejected with a reason.
#pragma once
#include <string>
#include <string_view>

#include "data/crystal.h"

namespace cg {

// Parses `cif` into *out (id, lattice, species, frac; properties untouched). On failure returns false and sets
// *reason to a one-line message that starts with `id` ("mp-123: partial occupancy 0.5 at site 2 (Fe)").
// Rejected: symmetry other than P1, missing cell parameter or atom loop, unknown element, occupancy != 1,
// unparsable numbers, degenerate cells, no sites.
bool parse_cif(std::string_view cif, const std::string& id, Crystal* out, std::string* reason);

// Throwing form: cg::Error with the same reason.
Crystal parse_cif(std::string_view cif, const std::string& id);

// A P1 CIF in pymatgen's layout (the eval/sampler tools write generated crystals with it).
std::string write_cif(const Crystal& c);

}  // namespace cg
