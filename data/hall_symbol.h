// Hall symbols (Hall 1981; International Tables B, A1.4.2), for space_group_setting (data/space_groups.h): the
// operations a Hall symbol generates, its origin shift or change of basis applied. Needs no tables (no spglib).
// "-P 2ybc", "P 31 2c (0 0 1)", "-F 4vw 2vw 3": [-]L, then matrix symbols [-]N[screw][axis][translations], then an
// optional change-of-basis operator: an origin shift in twelfths "(0 0 1)", or an operation "(x,y,z+1/4)",
// "(1/2*x,y,-1/2*x+z)". Operations kept with translations in 24ths.
#pragma once
#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "data/space_groups.h"

namespace cg {

// An operation with an integer rotation and its translation in 24ths.
using IntMat = std::array<std::array<int, 3>, 3>;
struct Op24 {
  IntMat r;
  std::array<int, 3> t;  // 24ths, in [0, 24)
  bool operator<(const Op24& o) const { return std::tie(r, t) < std::tie(o.r, o.t); }
  bool operator==(const Op24& o) const { return r == o.r && t == o.t; }
};

// The group a Hall symbol generates (centring, inversion and matrix symbols closed under multiplication,
// translations modulo 1), before its change-of-basis operator, sorted; *basis that operator V (x' = V x: the
// identity, an origin shift "(0 0 1)" in twelfths or "(x,y,z+1/4)", or a change of basis "(1/2*x,y,-1/2*x+z)").
// False with *why on a malformed symbol. Spelling: components separated by spaces or '_' (the CIF dictionary's),
// letters in any case.
bool parse_hall(const std::string& symbol, std::vector<Op24>* out, SymmetryOp* basis, std::string* why);

// The group in the basis a Hall symbol's change-of-basis operator V = (M | m) gives (x' = V x; International Tables
// B, A1.4.2.3): V (R | t + n) V^-1 for every operation and every translation n of the old lattice, translations
// modulo 1. An origin shift v is V = (I | v): (R | t + v - R v). A basis of a larger cell (|det M| < 1, e.g.
// "(1/2*x,y,-1/2*x+z)") turns old lattice translations into centring ones: |G| / |det M| operations. False with
// *why when V is singular, its rotations are not integral in the new basis, its translations are not in 24ths, or
// it would make the lattice finer than the group's (|det M| > 1 without centring to absorb it).
bool change_basis(const std::vector<Op24>& group, const SymmetryOp& v, const std::string& symbol,
                  std::vector<Op24>* out, std::string* why);

// Op24s as SymmetryOps (translations in fractions).
std::vector<SymmetryOp> to_symmetry_ops(const std::vector<Op24>& ops);

}  // namespace cg
