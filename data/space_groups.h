// Space groups by name, for CIFs that name their space group but list no symmetry operations: the operations come
// from spglib's database of the 530 Hall settings (the tables behind pymatgen's SpacegroupAnalyzer).
#pragma once
#include <string>
#include <vector>

#include "data/crystal.h"

namespace cg {

// x' = rot x + trans, fractional coordinates.
struct SymmetryOp {
  int rot[3][3] = {};
  double trans[3] = {};
};

// What a CIF says of its space group; empty / 0 where it says nothing.
struct SpaceGroupName {
  std::string hm;    // Hermann-Mauguin: "P 21/c", "P 1 21/c 1", "Fd-3m:2", "R -3 m :H", "R-3mH", "Fd-3mZ" (ICSD's Z/S
                     // for origin choice 2/1), "Cmca" (a symbol from before 2002's e-glides)
  std::string hall;  // Hall symbol spelled as in the International Tables' list ("-P 2ybc")
  int number = 0;    // International Tables number, 1..230
};

// A setting of a space group: spglib's Hall number and its operations.
struct SpaceGroupSetting {
  int hall_number = 0;  // 1..530
  int number = 0;       // 1..230
  std::string symbol;   // full Hermann-Mauguin with the setting: "P 1 21/c 1", "F d -3 m :2", "R -3 m :H"
  std::vector<SymmetryOp> ops;
};

// False when this build has no tables (spglib missing at build time: install libsymspg-dev and rebuild). P1 needs
// none.
bool have_space_group_tables();

// The setting `name` gives for a cell `lattice`; false with *why (what to change) when the name is unknown, the
// name, Hall symbol and number disagree, or no setting of the group fits the cell. Which setting: the Hall symbol's
// when it is in the tables, else the one the Hermann-Mauguin symbol's qualifier names (":1"/":2" origin choice,
// ":H"/":R" axes, ":b1".. monoclinic cell choice), else the first of the group's settings in the International
// Tables' order whose rotations keep the cell's metric (|R^T G R - G| within 1e-3 of G's largest entry): origin
// choice 1 (as pymatgen reads an unqualified symbol or a number), unique axis b before c, hexagonal axes for a
// hexagonal cell and rhombohedral axes for a rhombohedral one.
bool space_group_setting(const SpaceGroupName& name, const Lattice& lattice, SpaceGroupSetting* out,
                         std::string* why);

}  // namespace cg
