// The space group of a CIF, for the CIF reader (data/cif.cpp): the setting its tags name when it lists no symmetry
// operations (pymatgen's CifParser's choice among disagreeing tags), and what to say when it lists operations its
// tags contradict. The tables behind the names: data/space_groups.h.
#pragma once
#include <string>
#include <vector>

#include "data/cif_syntax.h"
#include "data/crystal.h"
#include "data/space_groups.h"

namespace cg::cif {

// A CIF that lists its operations and names a space group they are not (a number out of 1..230, or another group's
// number or symbol): "<id>: ..." saying which was used, or "" where the names agree or say nothing (or the operations
// make no space group spglib identifies). pymatgen's CifParser uses the listed operations and ignores the names
// silently; so do we, but say so.
std::string listed_ops_vs_name(const CifBlock& b, const std::string& id, const std::vector<SymmetryOp>& ops);

// The setting a block without listed operations names (P1 where it names none); *warning (when given) a line saying
// which tag was read and which disagreeing ones were not, else "".
bool named_setting(const CifBlock& b, const std::string& id, const Lattice& lattice, SpaceGroupSetting* out,
                   std::string* reason, std::string* warning);

}  // namespace cg::cif
