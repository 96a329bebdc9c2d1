#include "sampler/cif_writer.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "common/error.h"
#include "data/elements.h"
#include "sampler/smact.h"

namespace cg {

namespace {

// Elements ordered as pymatgen orders formulas: by electronegativity, then symbol (missing values last).
std::vector<std::string> formula_order(std::vector<std::string> els) {
  auto key = [](const std::string& e) {
    const auto x = smact_pauling_electronegativity(e);
    return std::make_pair(x ? *x : 1e9, e);
  };
  std::sort(els.begin(), els.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
  return els;
}

}  // namespace

std::string to_cif(const Crystal& c, const std::string& comment) {
  CG_CHECK(c.species.size() == c.frac.size(), "crystal {}: {} species but {} coordinates", c.id, c.species.size(),
           c.frac.size());
  CG_CHECK(!c.species.empty(), "crystal {}: no atoms to write", c.id);
  const Composition comp = reduce_composition(c.species);
  std::map<std::string, int> count, reduced;
  for (const auto& s : c.species) ++count[s];
  for (size_t i = 0; i < comp.elements.size(); ++i) reduced[comp.elements[i]] = comp.counts[i];
  const std::vector<std::string> order = formula_order(comp.elements);
  std::string structural, sum;
  for (const auto& e : order) {
    structural += e + (reduced[e] == 1 ? "" : std::to_string(reduced[e]));
    if (!sum.empty()) sum += ' ';
    sum += e + std::to_string(count[e]);
  }
  const int z = count[comp.elements[0]] / comp.counts[0];
  const Lattice& l = c.lattice;

  std::string s = fmt::format("# {}\ndata_{}\n", comment, structural);
  s += "_symmetry_space_group_name_H-M   'P 1'\n";
  s += fmt::format("_cell_length_a   {:.8f}\n_cell_length_b   {:.8f}\n_cell_length_c   {:.8f}\n", l.a, l.b, l.c);
  s += fmt::format("_cell_angle_alpha   {:.8f}\n_cell_angle_beta   {:.8f}\n_cell_angle_gamma   {:.8f}\n", l.alpha,
                   l.beta, l.gamma);
  s += "_symmetry_Int_Tables_number   1\n";
  s += fmt::format("_chemical_formula_structural   {}\n", structural);
  s += fmt::format("_chemical_formula_sum   '{}'\n", sum);
  s += fmt::format("_cell_volume   {:.8f}\n", cell_volume(l));
  s += fmt::format("_cell_formula_units_Z   {}\n", z);
  s += "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n";
  s += "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n";
  s += " _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n";
  for (size_t i = 0; i < c.species.size(); ++i) {
    const Vec3& f = c.frac[i];
    s += fmt::format("  {}  {}{}  1  {:.8f}  {:.8f}  {:.8f}  1\n", c.species[i], c.species[i], i, f[0], f[1], f[2]);
  }
  return s;
}

void save_cif(const std::string& path, const Crystal& c) {
  std::ofstream out(path);
  CG_CHECK(out.good(), "cannot write CIF to '{}': check that the folder exists and is writable", path);
  out << to_cif(c);
  out.close();  // the buffered text reaches the file here: a full disk shows now, not before
  CG_CHECK(!out.fail(), "writing CIF '{}' failed: {} (disk full?)", path, std::strerror(errno));
}

}  // namespace cg
