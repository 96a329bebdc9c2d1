// Crystal: the one structure type shared by data, sampler and eval (lattice parameters, species, fractional coords).
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

namespace cg {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;  // rows are lattice vectors a, b, c (Å)

struct Lattice {
  double a = 0, b = 0, c = 0;              // lengths, Å
  double alpha = 90, beta = 90, gamma = 90;  // angles, degrees
};

struct Crystal {
  std::string id;                    // material_id (MP-20) or sample id; used in every error message
  Lattice lattice;
  std::vector<std::string> species;  // element symbol per site, in the reader's order (data/mp20.h)
  std::vector<Vec3> frac;            // fractional coordinates per site, same order as species
  // Oxidation state per site, same order, where the CIF gives them (_atom_type_oxidation_number): pymatgen's CifParser
  // then reads Species (Fe2+, Fe3+), which its SpacegroupAnalyzer and site sort tell apart (data/pymatgen_order.h,
  // space_group). Empty otherwise, and for every other source; the text carries elements only.
  std::vector<double> oxidation;

  // Properties from the CSV; std::nullopt means unknown (an empty cell), never zero.
  std::string formula;               // pretty_formula, e.g. "Fe2O3" (may be empty)
  std::optional<double> formation_energy_per_atom;
  std::optional<double> band_gap;
  std::optional<double> e_above_hull;
  std::optional<int> spacegroup;

  size_t num_sites() const { return species.size(); }
};

// Lattice vectors as rows, pymatgen's convention (Lattice.from_parameters, vesta=False): c along z.
Mat3 lattice_matrix(const Lattice& l);
// Cell volume in Å^3 (|det|).
double cell_volume(const Lattice& l);
// Whether the six numbers make a cell: V / (a b c) > 1e-6. Angles each in range can still make none (138 138 90;
// 120 120 120, whose volume rounding leaves at ~1e-8 a b c): what the text, CIF and sample-record readers refuse.
bool forms_cell(const Lattice& l);
// Cartesian position of fractional coordinate f (f times the matrix of row vectors).
Vec3 frac_to_cart(const Mat3& m, const Vec3& f);
// Lengths and angles of the lattice vectors m, as pymatgen's Lattice.parameters computes them (sums left to right):
// lattice_parameters(lattice_matrix(l)) is l up to the last bits, e.g. 60 -> 59.99999999999999.
Lattice lattice_parameters(const Mat3& m);

inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Vec3& a);
// Wrap x into [0, 1).
double wrap01(double x);

}  // namespace cg
