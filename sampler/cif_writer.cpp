#include "sampler/cif_writer.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include "common/durable_file.h"
#include "common/error.h"
#include "data/elements.h"
#include "data/formula.h"

namespace cg {

namespace {

// Python's textwrap.fill(text, width) for text of words between single spaces: greedy lines; a word longer than
// the width fills what is left of the line (after its space) and goes on in width-long pieces (break_long_words).
std::string text_fill(const std::string& text, size_t width) {
  std::string out, line;
  auto flush = [&] {  // a line ends in a space only where a long word began with none of it fitting: kept
    out += (out.empty() ? "" : "\n") + line;
    line.clear();
  };
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.size() + 1 + word.size() <= width) {
      line += " " + word;
      continue;
    }
    if (word.size() <= width) {
      if (!line.empty()) flush();
      line = word;
      continue;
    }
    if (!line.empty() && line.size() + 1 <= width) line += " ";
    while (!word.empty()) {
      const size_t take = std::min(word.size(), width - std::min(width, line.size()));
      line += word.substr(0, take);
      word.erase(0, take);
      if (!word.empty()) flush();
    }
  }
  if (!line.empty()) flush();
  return out;
}

}  // namespace

std::string cif_item(const std::string& key, const std::string& raw) {
  // CifBlock (pymatgen.io.cif), maxlen 70: _format_field, then the key's line or a line of its own.
  constexpr size_t kMaxLen = 70;
  const size_t first = raw.find_first_not_of(" \t\n"), last = raw.find_last_not_of(" \t\n");
  const std::string value = first == std::string::npos ? "" : raw.substr(first, last - first + 1);
  std::string v;
  if (value.size() > kMaxLen) {  // a text field: ";", textwrap.fill(value, 70), ";"
    v = ";\n" + text_fill(value, kMaxLen) + "\n;";
  } else if (value.empty()) {
    v = "\"\"";
  } else if (value.find(' ') != std::string::npos || value[0] == '_') {  // quoted, by " when it holds a '
    const char q = value.find('\'') != std::string::npos ? '"' : '\'';
    v = q + value + q;
  } else {
    v = value;
  }
  if (key.size() + v.size() + 3 < kMaxLen) return key + "   " + v + "\n";
  return key + "\n" + v + "\n";
}

std::string to_cif(const Crystal& c, const std::string& comment) {
  CG_CHECK(c.species.size() == c.frac.size(), "crystal {}: {} species but {} coordinates", c.id, c.species.size(),
           c.frac.size());
  CG_CHECK(!c.species.empty(), "crystal {}: no atoms to write", c.id);
  for (const auto& sp : c.species)
    CG_CHECK(atomic_number(sp) != 0, "crystal {}: '{}' is not an element symbol", c.id, sp);
  std::vector<std::pair<std::string, int64_t>> amounts = species_amounts(c.species);
  // data_ and _chemical_formula_structural: Composition.reduced_formula; Z its factor, written as an integer.
  const auto [structural, z] = pymatgen_reduced_formula(amounts);
  // _chemical_formula_sum: Composition.formula, elements by X alone (ties keep their order), every count written;
  // quoted only when it has a space, as CifWriter quotes values.
  const std::string sum = pymatgen_formula(amounts);
  const Lattice& l = c.lattice;

  std::string s = fmt::format("# {}\ndata_{}\n", comment, structural);
  s += "_symmetry_space_group_name_H-M   'P 1'\n";
  s += fmt::format("_cell_length_a   {:.8f}\n_cell_length_b   {:.8f}\n_cell_length_c   {:.8f}\n", l.a, l.b, l.c);
  s += fmt::format("_cell_angle_alpha   {:.8f}\n_cell_angle_beta   {:.8f}\n_cell_angle_gamma   {:.8f}\n", l.alpha,
                   l.beta, l.gamma);
  s += "_symmetry_Int_Tables_number   1\n";
  s += cif_item("_chemical_formula_structural", structural);
  s += cif_item("_chemical_formula_sum", sum);
  s += fmt::format("_cell_volume   {:.8f}\n", cell_volume(l));
  s += fmt::format("_cell_formula_units_Z   {}\n", int64_t(z));
  s += "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n";
  s += "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n";
  s += " _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n";
  for (size_t i = 0; i < c.species.size(); ++i) {
    const Vec3& f = c.frac[i];
    s += fmt::format("  {}  {}{}  1  {:.8f}  {:.8f}  {:.8f}  1\n", c.species[i], c.species[i], i, f[0], f[1], f[2]);
  }
  return s;
}

void save_cif(const std::string& path, const Crystal& c) { write_file(path, to_cif(c)); }

}  // namespace cg
