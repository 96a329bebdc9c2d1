// CIF reader: a CIF's data blocks (data/cif_syntax.h) -> crystals, sites expanded by the symmetry operations the CIF
// lists or its space group names (data/cif_space_group.h).
#include "data/cif.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "data/cif_space_group.h"
#include "data/cif_syntax.h"
#include "data/elements.h"
#include "data/space_groups.h"

// The reader's internals live in cg::cif beside those of cif_syntax.h and cif_space_group.h (no using-directive: a
// unity build puts other files' anonymous namespaces in this translation unit).
namespace cg::cif {
namespace {

// ---- Values --------------------------------------------------------------------------------------------------------

// What to write instead of a symbol element_of does not read: deuterium ("D", "D1", "D+") as H, a hydroxide with
// implicit hydrogens ("OH", "OH2") as its O and H sites.
std::string unknown_element_advice(const std::string& s) {
  if (starts_with(s, "OH"))
    return "a group with implicit hydrogens (pymatgen drops such sites): list the O and H sites explicitly";
  if (!s.empty() && (s[0] == 'D' || s[0] == 'd') && (s.size() == 1 || !std::isalpha(static_cast<unsigned char>(s[1]))))
    return "deuterium (neutron structures list it): write D as H, the crystal text has no isotopes";
  return "write an element symbol (Fe, Fe2+ or a label such as Fe1) in _atom_site_type_symbol";
}

// The element a type symbol or label names, as pymatgen's CifParser._parse_symbol reads it: water labels (Hw, Ow,
// Wat) first, then the first two letters as a symbol in any case ("Fe2+", "Fe1", "CA3" -> Fe, Fe, Ca), then the
// first letter ("O2-", "HA1", "OW1" -> O, H, O). Empty when none is an element, and for "OH"/"OH2" (pymatgen drops
// such sites: implicit hydrogens).
std::string element_of(const std::string& s) {
  if (starts_with(s, "OH")) return "";
  for (const auto& [label, el] : {std::pair<const char*, const char*>{"Hw", "H"}, {"Ow", "O"}, {"Wat", "O"},
                                  {"wat", "O"}, {"NO3", "N"}})
    if (starts_with(s, label)) return el;
  auto title = [&](size_t n) {
    std::string sym = s.substr(0, n);
    sym[0] = char(std::toupper(static_cast<unsigned char>(sym[0])));
    if (n == 2) sym[1] = char(std::tolower(static_cast<unsigned char>(sym[1])));
    return sym;
  };
  if (s.size() >= 2 && is_element(title(2))) return title(2);
  if (!s.empty() && is_element(title(1))) return title(1);
  return "";
}

// ---- Symmetry ------------------------------------------------------------------------------------------------------

bool is_identity(const SymmetryOp& op) {
  for (int r = 0; r < 3; ++r) {
    if (op.trans[r] != 0) return false;
    for (int c = 0; c < 3; ++c)
      if (op.rot[r][c] != (r == c ? 1 : 0)) return false;
  }
  return true;
}

// True when fractional positions a and b are the same site (each component within tol, modulo lattice vectors).
bool same_position(const Vec3& a, const Vec3& b, double tol) {
  for (int k = 0; k < 3; ++k) {
    const double d = a[size_t(k)] - b[size_t(k)];
    if (std::fabs(d - std::round(d)) > tol) return false;
  }
  return true;
}

// pymatgen's CifParser defaults: positions closer than this (fractional, per component) are one site, and
// coordinates within a relative 1e-4 of 1/3 or 2/3 are those fractions (0.3333 written for 1/3).
constexpr double kSiteTolerance = 1e-4;
// A fractional coordinate beyond this is refused rather than wrapped into the cell: no CIF writes one, and a double
// that large has no fraction left to wrap.
constexpr double kMaxFraction = 1000;
double ideal_fraction(double x) {
  for (double f : {1.0 / 3.0, 2.0 / 3.0})
    if (std::fabs(1 - x / f) < 1e-4) return f;
  return x;
}

// pymatgen's CifParser.parse_oxi_states: the oxidation number of each _atom_type_symbol ("Fe2+" -> 2), then of that
// symbol without a trailing digit and sign ("Fe" -> the last Fe type's); empty when the CIF gives none or a value is
// no number ('?'), where pymatgen reads elements only. '.' is 0, as pymatgen's str2float reads it.
std::map<std::string, double> oxidation_numbers(const CifBlock& b) {
  Loop scratch;
  const Loop* l = find_table(b, "_atom_type_oxidation_number", "_atom_type_", &scratch);
  const int isym = l ? l->find("_atom_type_symbol") : -1;
  if (isym < 0) return {};
  const int iox = l->find("_atom_type_oxidation_number");
  std::map<std::string, double> out;
  for (const auto& row : l->rows) {
    double v = 0;
    if (row[size_t(iox)] != "." && !cif_number(row[size_t(iox)], &v)) return {};
    out[row[size_t(isym)]] = v;
  }
  for (const auto& row : l->rows) {
    std::string bare = row[size_t(isym)];  // re.sub(r"\d?[\+,\-]?$", "", symbol)
    if (!bare.empty() && std::strchr("+,-", bare.back())) bare.pop_back();
    if (!bare.empty() && std::isdigit(static_cast<unsigned char>(bare.back()))) bare.pop_back();
    out[bare] = out.at(row[size_t(isym)]);
  }
  return out;
}

// A parsed block -> the crystal it describes (sites expanded by its symmetry operations); *warning (when given) a
// line for what was read despite a contradiction (listed_ops_vs_name), else "".
bool crystal_from_block(const CifBlock& b, const std::string& id, Crystal* out, std::string* reason,
                        std::string* warning) {
  auto fail = [&](const std::string& why) { return failed(id, why, reason); };
  const auto& items = b.items;
  if (warning) warning->clear();

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
  if (!forms_cell(c.lattice)) return fail("lattice lengths and angles form no cell (zero volume)");

  // Symmetry: the listed operations, applied to every site. Without them, the operations of the space group the
  // CIF names (Hermann-Mauguin symbol, Hall symbol or number, in pymatgen's DDL1 _symmetry_* tags or the DDL2
  // _space_group_* that VESTA, COD and ICSD write) from the tables (data/space_groups.h); naming none is P1.
  std::vector<SymmetryOp> ops;
  for (const char* key : {"_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz"}) {
    Loop scratch;
    const Loop* l = ops.empty() ? find_table(b, key, key, &scratch) : nullptr;
    if (l == nullptr) continue;
    const int col = l->find(key);
    for (const auto& row : l->rows) {
      SymmetryOp op;
      if (!parse_xyz(row[size_t(col)], &op))
        return fail(fmt::format("symmetry operation '{}' is not of the form 'x, y, z' / '-x+1/2, y-x, z'",
                                row[size_t(col)]));
      const double d = determinant(op);
      if (std::fabs(std::fabs(d) - 1) > 1e-6)
        return fail(fmt::format("symmetry operation '{}' is not a symmetry operation (determinant {})",
                                row[size_t(col)], d));
      ops.push_back(op);
    }
  }
  if (!ops.empty() && warning) *warning = listed_ops_vs_name(b, id, ops);
  if (ops.empty()) {
    SpaceGroupSetting setting;
    if (!named_setting(b, id, c.lattice, &setting, reason, warning)) return false;
    ops = std::move(setting.ops);
  }
  const bool p1 = ops.size() == 1 && is_identity(ops[0]);

  Loop scratch;
  const Loop* found = find_table(b, "_atom_site_fract_x", "_atom_site_", &scratch);
  if (found == nullptr) {
    if (find_table(b, "_atom_site_cartn_x", "_atom_site_", &scratch))
      return fail("the sites are given in Cartesian coordinates (_atom_site_Cartn_x); only fractional coordinates "
                  "(_atom_site_fract_x/y/z) are read");
    return fail("no _atom_site_fract_x/y/z loop");
  }
  const Loop& atoms = *found;
  int isym = atoms.find("_atom_site_type_symbol");
  const char* sym_tag = "_atom_site_type_symbol";
  if (isym < 0) {
    isym = atoms.find("_atom_site_label");
    sym_tag = "_atom_site_label";
  }
  const int ix = atoms.find("_atom_site_fract_x"), iy = atoms.find("_atom_site_fract_y"),
            iz = atoms.find("_atom_site_fract_z"), iocc = atoms.find("_atom_site_occupancy");
  if (isym < 0) return fail("atom loop has neither _atom_site_type_symbol nor _atom_site_label");
  if (iy < 0 || iz < 0) return fail("atom loop lacks _atom_site_fract_y or _atom_site_fract_z");
  const std::map<std::string, double> oxidation = oxidation_numbers(b);
  for (size_t s = 0; s < atoms.rows.size(); ++s) {
    const auto& row = atoms.rows[s];
    const std::string sym = element_of(row[size_t(isym)]);
    if (sym.empty())
      return fail(fmt::format("unknown element '{}' at site {} ({}): {}", row[size_t(isym)], s, sym_tag,
                              unknown_element_advice(row[size_t(isym)])));
    Vec3 f;
    const int idx[3] = {ix, iy, iz};
    for (int k = 0; k < 3; ++k)
      if (!cif_number(row[size_t(idx[k])], &f[size_t(k)]))
        return fail(fmt::format("coordinate '{}' at site {} ({}) is not a number", row[size_t(idx[k])], s, sym));
    for (int k = 0; k < 3; ++k)  // wrapped into [0, 1), 1e30 would land anywhere (its fraction is below precision)
      if (std::fabs(f[size_t(k)]) > kMaxFraction)
        return fail(fmt::format("coordinate '{}' at site {} ({}) is no fractional coordinate (|x| > {}; the cell "
                                "holds 0..1): a unit or column mix-up?", row[size_t(idx[k])], s, sym, kMaxFraction));
    if (iocc >= 0 && row[size_t(iocc)] != "?" && row[size_t(iocc)] != ".") {
      double occ = 0;
      if (!cif_number(row[size_t(iocc)], &occ))
        return fail(fmt::format("occupancy '{}' at site {} ({}) is not a number", row[size_t(iocc)], s, sym));
      // As pymatgen, whose Structure is ordered only where each site's occupancy is 1: 0.9999 is a partial one.
      if (std::fabs(occ - 1.0) > 1e-6)
        return fail(fmt::format("partial occupancy {} at site {} ({}); only ordered structures are read: order it "
                                "first (e.g. pymatgen's OrderDisorderedStructureTransformation) or leave the file "
                                "out{}",
                                occ, s, sym, std::fabs(occ - 1.0) < 1e-2 ? "; if the site is full and the value only "
                                "rounded (ICSD writes 0.9999 or 0.999), set the occupancy to 1" : ""));
    }
    for (double& x : f) x = ideal_fraction(x);  // pymatgen snaps these in every CIF, P1 too
    // As CifParser gives a site its Species: the element's oxidation number, or its type symbol's ("Fe2+").
    double oxi = oxidation.count(sym) ? oxidation.at(sym) : 0;
    if (isym == atoms.find("_atom_site_type_symbol") && oxidation.count(row[size_t(isym)]))
      oxi = oxidation.at(row[size_t(isym)]);
    if (p1) {  // the sites as written (overlaps included: structure checks judge them)
      c.species.push_back(sym);
      c.frac.push_back(f);
      if (!oxidation.empty()) c.oxidation.push_back(oxi);
      continue;
    }
    const size_t first = c.frac.size();
    for (const SymmetryOp& op : ops) {
      Vec3 g;
      for (int r = 0; r < 3; ++r)
        g[size_t(r)] = wrap01(op.rot[r][0] * f[0] + op.rot[r][1] * f[1] + op.rot[r][2] * f[2] + op.trans[r]);
      bool seen = false;
      for (size_t j = first; j < c.frac.size() && !seen; ++j) seen = same_position(c.frac[j], g, kSiteTolerance);
      if (seen) continue;
      for (size_t j = 0; j < first; ++j)
        if (same_position(c.frac[j], g, kSiteTolerance))
          return fail(fmt::format("site {} ({}) and an image of an earlier site ({}) fall on the same position "
                                  "({:.4f} {:.4f} {:.4f}) after the symmetry operations; a site is listed twice",
                                  s, sym, c.species[j], g[0], g[1], g[2]));
      c.species.push_back(sym);
      c.frac.push_back(g);
    }
    if (!oxidation.empty()) c.oxidation.resize(c.frac.size(), oxi);  // the site's images: its Species
  }
  if (c.species.empty()) return fail("atom loop has no sites");
  *out = std::move(c);
  return true;
}

}  // namespace
}  // namespace cg::cif

namespace cg {

bool parse_cif(std::string_view cif, const std::string& id, Crystal* out, std::string* reason,
               std::string* warning) {
  if (warning) warning->clear();
  std::vector<cif::ParsedBlock> blocks;
  std::string why;
  if (!cif::parse_blocks(cif, &blocks, &why)) return cif::failed(id, why, reason);
  if (blocks.size() > 1)
    return cif::failed(id, fmt::format("line {}: the CIF holds more than one structure (data_ blocks); give one per "
                                       "CIF", blocks[1].line), reason);
  if (!blocks[0].ok) return cif::failed(id, blocks[0].why, reason);
  return cif::crystal_from_block(blocks[0].block, id, out, reason, warning);
}

std::vector<CifBlockResult> parse_cif_blocks(std::string_view cif, const std::string& id) {
  std::vector<CifBlockResult> out;
  std::vector<cif::ParsedBlock> blocks;
  std::string why;
  if (!cif::parse_blocks(cif, &blocks, &why)) {
    out.push_back({id, false, {}, ""});
    cif::failed(id, why, &out.back().reason);
    return out;
  }
  // Ids "<id>/<name>"; "<id>/<k>" (1-based) for every block when a name is empty, repeated or a number (which a
  // block number could collide with).
  std::map<std::string, int> uses;
  bool numbered = false;
  for (const auto& b : blocks) {
    numbered |= b.name.empty() || ++uses[b.name] > 1 ||
                b.name.find_first_not_of("0123456789") == std::string::npos;
  }
  for (size_t k = 0; k < blocks.size(); ++k) {
    const cif::ParsedBlock& b = blocks[k];
    CifBlockResult res;
    res.id = blocks.size() == 1 ? id : id + "/" + (numbered ? std::to_string(k + 1) : b.name);
    res.ok = b.ok ? cif::crystal_from_block(b.block, res.id, &res.crystal, &res.reason, &res.warning)
                  : cif::failed(res.id, b.why, &res.reason);
    out.push_back(std::move(res));
  }
  return out;
}

Crystal parse_cif(std::string_view cif, const std::string& id) {
  Crystal c;
  std::string reason;
  if (!parse_cif(cif, id, &c, &reason)) throw Error(reason);
  return c;
}

}  // namespace cg
