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

#include "common/error.h"
#include "data/elements.h"
#include "sampler/tables.h"

namespace cg {

namespace {

// pymatgen's Element.X (data/tables/pymatgen_electronegativity.txt; not SMACT's table, which differs for 17
// elements, Zr 0.33 among them); NaN where pymatgen has none (He, Ne, Ar), as pymatgen sets it.
double pymatgen_x(const std::string& element) {
  static const std::map<std::string, double> table = [] {
    std::map<std::string, double> t;
    std::istringstream in(tables::kPymatgenElectronegativity);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream ls(line);
      std::string symbol, value;
      int z = 0;
      CG_CHECK(static_cast<bool>(ls >> symbol >> z >> value), "pymatgen_electronegativity table: bad row '{}'", line);
      t[symbol] = value == "nan" ? std::numeric_limits<double>::quiet_NaN() : std::stod(value);
    }
    CG_CHECK(t.size() == 103, "pymatgen_electronegativity table has {} rows, not 103", t.size());
    return t;
  }();
  auto it = table.find(element);
  return it == table.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

// Python's list.sort for the short lists of a formula (CPython's count_run + binary insertion sort, which it uses
// below 64 items) with `lt` as "<": pymatgen sorts by keys holding NaN, which compares false both ways, so where a
// NaN lands depends on this exact algorithm and the input order.
template <class T, class Lt>
void python_sort(std::vector<T>& a, Lt lt) {
  const size_t n = a.size();
  if (n < 2) return;
  size_t run = 2;
  if (lt(a[1], a[0])) {  // strictly descending run: reversed in place
    while (run < n && lt(a[run], a[run - 1])) ++run;
    std::reverse(a.begin(), a.begin() + long(run));
  } else {
    while (run < n && !lt(a[run], a[run - 1])) ++run;
  }
  for (size_t start = run; start < n; ++start) {
    T pivot = a[start];
    size_t l = 0, r = start;
    while (l < r) {
      const size_t p = l + ((r - l) >> 1);
      if (lt(pivot, a[p])) r = p;
      else l = p + 1;
    }
    for (size_t k = start; k > l; --k) a[k] = a[k - 1];
    a[l] = pivot;
  }
}

// Python's "<" on the keys [X, symbol] (a NaN X equals nothing, so the comparison is decided on it: false).
bool x_then_symbol_less(const std::string& a, const std::string& b) {
  const double xa = pymatgen_x(a), xb = pymatgen_x(b);
  if (xa != xb) return xa < xb;
  return a < b;
}

// pymatgen's reduce_formula (core/composition.py): elements by (X, symbol), counts over their gcd, and when there
// are three or more elements and the last two differ in X by less than 1.65 and reduce further on their own, those
// two written as a parenthesised group ("Mg(InSe2)2"). Returns the formula and the gcd factor.
std::pair<std::string, int64_t> reduce_formula(const std::vector<std::pair<std::string, int64_t>>& amounts) {
  std::vector<std::pair<std::string, int64_t>> syms = amounts;
  python_sort(syms, [](const auto& a, const auto& b) { return x_then_symbol_less(a.first, b.first); });
  int64_t factor = 0;
  for (const auto& [e, n] : syms) factor = std::gcd(factor, n);
  std::string polyanion;
  const size_t n = syms.size();
  if (n >= 3 && pymatgen_x(syms[n - 1].first) - pymatgen_x(syms[n - 2].first) < 1.65) {
    const auto [form, poly_factor] = reduce_formula(
        {{syms[n - 2].first, syms[n - 2].second / factor}, {syms[n - 1].first, syms[n - 1].second / factor}});
    if (poly_factor != 1) {
      polyanion = fmt::format("({}){}", form, poly_factor);
      syms.resize(n - 2);
    }
  }
  std::string out;
  for (const auto& [e, k] : syms) out += e + (k / factor == 1 ? "" : std::to_string(k / factor));
  return {out + polyanion, factor};
}

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

std::vector<std::pair<std::string, int64_t>> species_amounts(const std::vector<std::string>& species) {
  std::vector<std::pair<std::string, int64_t>> amounts;
  for (const auto& sp : species) {
    auto it = std::find_if(amounts.begin(), amounts.end(), [&](const auto& a) { return a.first == sp; });
    if (it == amounts.end()) amounts.emplace_back(sp, 1);
    else ++it->second;
  }
  return amounts;
}

std::pair<std::string, double> pymatgen_reduced_formula(const std::vector<std::pair<std::string, int64_t>>& amounts) {
  // Special formulas halve the factor, as get_reduced_formula_and_factor does.
  static const std::map<std::string, std::string> kSpecial = {
      {"LiO", "Li2O2"}, {"NaO", "Na2O2"}, {"KO", "K2O2"}, {"HO", "H2O2"}, {"CsO", "Cs2O2"}, {"RbO", "Rb2O2"},
      {"O", "O2"},      {"N", "N2"},      {"F", "F2"},    {"Cl", "Cl2"},  {"H", "H2"}};
  auto [formula, factor] = reduce_formula(amounts);
  if (auto it = kSpecial.find(formula); it != kSpecial.end()) return {it->second, double(factor) / 2};
  return {formula, double(factor)};
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
  python_sort(amounts, [](const auto& a, const auto& b) { return pymatgen_x(a.first) < pymatgen_x(b.first); });
  std::string sum;
  for (const auto& [e, k] : amounts) sum += (sum.empty() ? "" : " ") + e + std::to_string(k);
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

void save_cif(const std::string& path, const Crystal& c) {
  std::ofstream out(path);
  CG_CHECK(out.good(), "cannot write CIF to '{}': check that the folder exists and is writable", path);
  out << to_cif(c);
  out.close();  // the buffered text reaches the file here: a full disk shows now, not before
  CG_CHECK(!out.fail(), "writing CIF '{}' failed: {} (disk full?)", path, std::strerror(errno));
}

}  // namespace cg
