// P1 CIF reader/writer for pymatgen's layout.
#include "data/cif.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <vector>

#include "common/error.h"
#include "data/elements.h"

namespace cg {
namespace {

// Splits a CIF line into tokens; '...' and "..." are single tokens (quotes removed); an unquoted '#' starts a
// comment that runs to the end of the line.
std::vector<std::string> cif_tokens(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i >= line.size() || line[i] == '#') break;
    char q = line[i];
    if (q == '\'' || q == '"') {
      size_t end = line.find(q, i + 1);
      if (end == std::string_view::npos) end = line.size();
      out.emplace_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      out.emplace_back(line.substr(start, i - start));
    }
  }
  return out;
}

// CIF number: "0.123", "1.0", "0.1234(5)" (standard uncertainty dropped). False when not a number.
bool cif_number(const std::string& s, double* v) {
  std::string t = s.substr(0, s.find('('));
  if (t.empty()) return false;
  char* end = nullptr;
  *v = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && std::isfinite(*v);
}

// CIF tags are case-insensitive: they are compared in lower case.
std::string lower(std::string s) {
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// "x, y, z" in any spacing or case (the identity operation).
bool is_identity_op(const std::string& op) {
  std::string t;
  for (char ch : op)
    if (ch != ' ' && ch != '\t') t += char(std::tolower(static_cast<unsigned char>(ch)));
  return t == "x,y,z" || t == "+x,+y,+z";
}

// "Fe", or pymatgen's oxidation-state decorated "Fe2+" / "O2-" / "Na+" -> "Fe" / "O" / "Na"; else unchanged.
std::string element_of_type_symbol(const std::string& s) {
  size_t n = 0;
  if (n < s.size() && std::isupper(static_cast<unsigned char>(s[n]))) ++n;
  if (n < s.size() && std::islower(static_cast<unsigned char>(s[n]))) ++n;
  size_t k = n;
  while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k;
  const bool charge = n > 0 && k + 1 == s.size() && (s[k] == '+' || s[k] == '-');
  return charge ? s.substr(0, n) : s;
}

struct Loop {
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> rows;
  int find(const std::string& name) const {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return int(i);
    return -1;
  }
};

}  // namespace

bool parse_cif(std::string_view cif, const std::string& id, Crystal* out, std::string* reason) {
  auto fail = [&](const std::string& why) {
    *reason = (id.empty() ? std::string("crystal") : id) + ": " + why;
    return false;
  };
  std::map<std::string, std::string> items;  // _key -> value
  std::vector<Loop> loops;
  bool in_loop_header = false;
  int data_blocks = 0;
  size_t pos = 0;
  while (pos <= cif.size()) {
    size_t nl = cif.find('\n', pos);
    if (nl == std::string_view::npos) nl = cif.size();
    std::string_view line = cif.substr(pos, nl - pos);
    pos = nl + 1;
    auto tok = cif_tokens(line);
    if (tok.empty()) continue;
    const std::string head = lower(tok[0]);
    if (head == "loop_") {
      loops.emplace_back();
      in_loop_header = true;
      continue;
    }
    if (head.rfind("data_", 0) == 0) {
      if (++data_blocks > 1) return fail("the CIF holds more than one data_ block; give one structure per CIF");
      in_loop_header = false;
      continue;
    }
    if (line[line.find_first_not_of(" \t\r")] == '_') {  // a tag (a quoted value '_x' starts with its quote)
      if (in_loop_header && tok.size() == 1) {
        loops.back().names.push_back(head);
        continue;
      }
      in_loop_header = false;
      if (tok.size() < 2) return fail(fmt::format("CIF item {} has no value on its line", tok[0]));
      items[head] = tok[1];
      if (!loops.empty() && loops.back().rows.empty() && loops.back().names.empty()) loops.pop_back();
      continue;
    }
    // A data row of the current loop.
    if (loops.empty() || loops.back().names.empty()) return fail(fmt::format("unexpected CIF line '{}'", line));
    in_loop_header = false;
    if (tok.size() != loops.back().names.size())
      return fail(fmt::format("CIF loop row '{}' has {} values for {} columns", line, tok.size(),
                              loops.back().names.size()));
    loops.back().rows.push_back(std::move(tok));
  }

  // Symmetry: P1 only (CDVAE's CIFs list every site explicitly), whichever dictionary's tags the file uses
  // (pymatgen's DDL1 _symmetry_*, or the DDL2 _space_group_* that VESTA, COD and ICSD write).
  for (const char* key : {"_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt"}) {
    auto sg = items.find(key);
    if (sg == items.end()) continue;
    std::string name;
    for (char ch : sg->second)
      if (ch != ' ') name += ch;
    if (name != "P1" && name != "?" && name != ".")
      return fail(fmt::format("space group '{}' is not P1; write the CIF with all sites (P1)", sg->second));
  }
  for (const char* key : {"_symmetry_int_tables_number", "_space_group_it_number"}) {
    auto it = items.find(key);
    if (it != items.end() && it->second != "1" && it->second != "?" && it->second != ".")
      return fail(fmt::format("space group number {} is not 1 (P1); write the CIF with all sites (P1)", it->second));
  }
  for (const auto& l : loops) {
    int op = std::max(l.find("_symmetry_equiv_pos_as_xyz"), l.find("_space_group_symop_operation_xyz"));
    if (op < 0) continue;
    if (l.rows.size() != 1 || !is_identity_op(l.rows[0][size_t(op)]))
      return fail(fmt::format("{} symmetry operation(s) ('{}'); only P1 (x, y, z) is read", l.rows.size(),
                              l.rows.empty() ? "" : l.rows[0][size_t(op)]));
  }

  Crystal c;
  c.id = id;
  const char* keys[6] = {"_cell_length_a", "_cell_length_b", "_cell_length_c",
                         "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma"};
  double* dst[6] = {&c.lattice.a, &c.lattice.b, &c.lattice.c, &c.lattice.alpha, &c.lattice.beta, &c.lattice.gamma};
  for (int i = 0; i < 6; ++i) {
    auto it = items.find(keys[i]);
    if (it == items.end()) return fail(fmt::format("missing {}", keys[i]));
    if (!cif_number(it->second, dst[i])) return fail(fmt::format("{} '{}' is not a number", keys[i], it->second));
  }
  if (!(c.lattice.a > 0 && c.lattice.b > 0 && c.lattice.c > 0))
    return fail(fmt::format("non-positive cell length ({} {} {})", c.lattice.a, c.lattice.b, c.lattice.c));
  for (double ang : {c.lattice.alpha, c.lattice.beta, c.lattice.gamma})
    if (!(ang > 0 && ang < 180)) return fail(fmt::format("cell angle {} outside (0, 180)", ang));
  if (!(cell_volume(c.lattice) > 1e-6)) return fail("degenerate cell (zero volume)");

  const Loop* atoms = nullptr;
  for (const auto& l : loops)
    if (l.find("_atom_site_fract_x") >= 0) atoms = &l;
  if (atoms == nullptr) return fail("no _atom_site_fract_x/y/z loop");
  int isym = atoms->find("_atom_site_type_symbol");
  int ix = atoms->find("_atom_site_fract_x"), iy = atoms->find("_atom_site_fract_y"),
      iz = atoms->find("_atom_site_fract_z"), iocc = atoms->find("_atom_site_occupancy");
  if (isym < 0) return fail("atom loop has no _atom_site_type_symbol");
  if (iy < 0 || iz < 0) return fail("atom loop lacks _atom_site_fract_y or _atom_site_fract_z");
  if (atoms->rows.empty()) return fail("atom loop has no sites");
  for (size_t s = 0; s < atoms->rows.size(); ++s) {
    const auto& row = atoms->rows[s];
    const std::string sym = element_of_type_symbol(row[size_t(isym)]);
    if (!is_element(sym)) return fail(fmt::format("unknown element '{}' at site {}", sym, s));
    Vec3 f;
    int idx[3] = {ix, iy, iz};
    for (int k = 0; k < 3; ++k)
      if (!cif_number(row[size_t(idx[k])], &f[size_t(k)]))
        return fail(fmt::format("coordinate '{}' at site {} ({}) is not a number", row[size_t(idx[k])], s, sym));
    if (iocc >= 0) {
      double occ = 0;
      if (!cif_number(row[size_t(iocc)], &occ))
        return fail(fmt::format("occupancy '{}' at site {} ({}) is not a number", row[size_t(iocc)], s, sym));
      if (std::fabs(occ - 1.0) > 1e-6)
        return fail(fmt::format("partial occupancy {} at site {} ({}); only ordered structures are read", occ, s, sym));
    }
    c.species.push_back(sym);
    c.frac.push_back(f);
  }
  *out = std::move(c);
  return true;
}

Crystal parse_cif(std::string_view cif, const std::string& id) {
  Crystal c;
  std::string reason;
  if (!parse_cif(cif, id, &c, &reason)) throw Error(reason);
  return c;
}

std::string write_cif(const Crystal& c) {
  const Lattice& l = c.lattice;
  std::string formula = c.formula.empty() ? "crystal" : c.formula;
  std::string s = "# generated using cgtrain\ndata_" + formula + "\n";
  s += "_symmetry_space_group_name_H-M   'P 1'\n";
  s += fmt::format("_cell_length_a   {:.8f}\n_cell_length_b   {:.8f}\n_cell_length_c   {:.8f}\n", l.a, l.b, l.c);
  s += fmt::format("_cell_angle_alpha   {:.8f}\n_cell_angle_beta   {:.8f}\n_cell_angle_gamma   {:.8f}\n", l.alpha,
                   l.beta, l.gamma);
  s += "_symmetry_Int_Tables_number   1\n";
  s += fmt::format("_cell_volume   {:.8f}\n", cell_volume(l));
  s += "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n";
  s += "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n"
       " _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n";
  for (size_t i = 0; i < c.num_sites(); ++i)
    s += fmt::format("  {}  {}{}  1  {:.8f}  {:.8f}  {:.8f}  1\n", c.species[i], c.species[i], i, c.frac[i][0],
                     c.frac[i][1], c.frac[i][2]);
  return s;
}

}  // namespace cg
