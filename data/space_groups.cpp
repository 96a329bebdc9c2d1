#include "data/space_groups.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <array>
#include <map>
#include <sstream>
#include <tuple>
#include <mutex>

#include <fmt/format.h>

#ifdef CG_HAVE_SPGLIB
#include <spglib.h>
#endif

namespace cg {
namespace {

constexpr int kHallSettings = 530;

// Symbols of the five groups with an e-glide as written before 2002 (ITA Table 4.3.2.1, and COD's list), by spglib
// Hall number: setting by setting, one letter of the old symbol per double glide plane. Also two e-symbols that
// spglib spells otherwise (it writes C2ce and Bbcb where the International Tables and COD write C2eb and Bbeb).
constexpr std::pair<int, const char*> kFormerSymbols[] = {
    {191, "Abm2"}, {192, "Bma2"}, {193, "B2cm"}, {194, "C2mb"}, {195, "Cm2a"}, {196, "Ac2m"},  // 39 Aem2
    {203, "Aba2"}, {204, "Bba2"}, {205, "B2cb"}, {206, "C2cb"}, {207, "Cc2a"}, {208, "Ac2a"},  // 41 Aea2
    {304, "Cmca"}, {305, "Ccmb"}, {306, "Abma"}, {307, "Acam"}, {308, "Bbcm"}, {309, "Bmab"},  // 64 Cmce
    {316, "Cmma"}, {317, "Cmmb"}, {318, "Abmm"}, {319, "Acmm"}, {320, "Bmcm"}, {321, "Bmam"},  // 67 Cmme
    {322, "Ccca"}, {323, "Ccca"}, {324, "Cccb"}, {325, "Cccb"}, {326, "Abaa"}, {327, "Abaa"},  // 68 Ccce
    {328, "Acaa"}, {329, "Acaa"}, {330, "Bbcb"}, {331, "Bbcb"}, {332, "Bbab"}, {333, "Bbab"},
    {206, "C2eb"}, {331, "Bbeb"}};

struct Entry {
  int number = 0;
  std::string choice;       // spglib's: "", "1", "2", "H", "R", "b1", "ba-c", "1cab", ...
  std::string full;         // "P 1 2_1/c 1"
  std::string hall;         // whitespace collapsed
  std::vector<std::string> names;  // normalised Hermann-Mauguin spellings
};

// A Hermann-Mauguin symbol without spaces and underscores (pymatgen's normalisation): "P 1 2_1/c 1" -> "P121/c1".
std::string normalise_hm(const std::string& s) {
  std::string out;
  for (char ch : s)
    if (!std::isspace(static_cast<unsigned char>(ch)) && ch != '_') out += ch;
  return out;
}

// Runs of whitespace as one space, none at the ends.
std::string collapse_spaces(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += ch;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

#ifdef CG_HAVE_SPGLIB
const std::vector<Entry>& table() {
  static std::vector<Entry> entries;
  static std::once_flag once;
  std::call_once(once, [] {
    entries.resize(kHallSettings + 1);
    for (int h = 1; h <= kHallSettings; ++h) {
      const SpglibSpacegroupType t = spg_get_spacegroup_type(h);
      Entry& e = entries[size_t(h)];
      e.number = t.number;
      e.choice = t.choice;
      e.full = t.international_full;
      e.hall = collapse_spaces(t.hall_symbol);
      // spglib's "international" reads "P 2_1/c = P 1 2_1/c 1" for monoclinic groups: both sides are names.
      std::string intl = t.international;
      for (size_t eq; (eq = intl.find('=')) != std::string::npos; intl.erase(0, eq + 1))
        e.names.push_back(normalise_hm(intl.substr(0, eq)));
      for (const std::string& n : {intl, std::string(t.international_short), std::string(t.international_full)})
        e.names.push_back(normalise_hm(n));
    }
    for (const auto& [h, name] : kFormerSymbols) entries[size_t(h)].names.push_back(name);
  });
  return entries;
}
#endif

// G = M M^T for the row lattice vectors M; a rotation R (fractional) keeps the cell's metric when R^T G R = G.
bool keeps_metric(const std::vector<SymmetryOp>& ops, const Lattice& lattice) {
  const Mat3 m = lattice_matrix(lattice);
  double g[3][3], scale = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      g[i][j] = dot(m[size_t(i)], m[size_t(j)]);
      scale = std::max(scale, std::fabs(g[i][j]));
    }
  for (const SymmetryOp& op : ops)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        double v = 0;
        for (int k = 0; k < 3; ++k)
          for (int l = 0; l < 3; ++l) v += op.rot[k][i] * g[k][l] * op.rot[l][j];
        if (std::fabs(v - g[i][j]) > 1e-3 * scale) return false;
      }
  return true;
}

// ---- Hall symbols (Hall 1981; International Tables B, A1.4.2) --------------------------------------------------------
// "-P 2ybc", "P 31 2c (0 0 1)", "-F 4vw 2vw 3": [-]L, then matrix symbols [-]N[screw][axis][translations], then an
// optional origin shift in twelfths. Operations kept with translations in 24ths.

using IntMat = std::array<std::array<int, 3>, 3>;
struct Op24 {
  IntMat r;
  std::array<int, 3> t;  // 24ths, in [0, 24)
  bool operator<(const Op24& o) const { return std::tie(r, t) < std::tie(o.r, o.t); }
  bool operator==(const Op24& o) const { return r == o.r && t == o.t; }
};

Op24 multiply(const Op24& a, const Op24& b) {  // (Ra|ta)(Rb|tb) = (Ra Rb | Ra tb + ta)
  Op24 c{};
  for (int i = 0; i < 3; ++i) {
    int t = a.t[size_t(i)];
    for (int j = 0; j < 3; ++j) {
      t += a.r[size_t(i)][size_t(j)] * b.t[size_t(j)];
      for (int k = 0; k < 3; ++k) c.r[size_t(i)][size_t(j)] += a.r[size_t(i)][size_t(k)] * b.r[size_t(k)][size_t(j)];
    }
    c.t[size_t(i)] = ((t % 24) + 24) % 24;
  }
  return c;
}

// The rotation part of a matrix symbol: order n about principal axis 'x'|'y'|'z', a face diagonal ('\'' or '"')
// perpendicular to principal axis `ref`, or the body diagonal '*'.
bool hall_rotation(int n, char axis, char ref, IntMat* r) {
  static const std::map<std::pair<int, char>, IntMat> principal = {
      {{1, 'z'}, IntMat{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}},   {{2, 'z'}, IntMat{{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}}},
      {{3, 'z'}, IntMat{{{0, -1, 0}, {1, -1, 0}, {0, 0, 1}}}}, {{4, 'z'}, IntMat{{{0, -1, 0}, {1, 0, 0}, {0, 0, 1}}}},
      {{6, 'z'}, IntMat{{{1, -1, 0}, {1, 0, 0}, {0, 0, 1}}}},  {{2, 'x'}, IntMat{{{1, 0, 0}, {0, -1, 0}, {0, 0, -1}}}},
      {{3, 'x'}, IntMat{{{1, 0, 0}, {0, 0, -1}, {0, 1, -1}}}}, {{4, 'x'}, IntMat{{{1, 0, 0}, {0, 0, -1}, {0, 1, 0}}}},
      {{6, 'x'}, IntMat{{{1, 0, 0}, {0, 1, -1}, {0, 1, 0}}}},  {{2, 'y'}, IntMat{{{-1, 0, 0}, {0, 1, 0}, {0, 0, -1}}}},
      {{3, 'y'}, IntMat{{{-1, 0, 1}, {0, 1, 0}, {-1, 0, 0}}}}, {{4, 'y'}, IntMat{{{0, 0, 1}, {0, 1, 0}, {-1, 0, 0}}}},
      {{6, 'y'}, IntMat{{{0, 0, 1}, {0, 1, 0}, {-1, 0, 1}}}}};
  static const std::map<std::pair<char, char>, IntMat> diagonal = {
      {{'\'', 'z'}, IntMat{{{0, -1, 0}, {-1, 0, 0}, {0, 0, -1}}}}, {{'"', 'z'}, IntMat{{{0, 1, 0}, {1, 0, 0}, {0, 0, -1}}}},
      {{'\'', 'x'}, IntMat{{{-1, 0, 0}, {0, 0, -1}, {0, -1, 0}}}}, {{'"', 'x'}, IntMat{{{-1, 0, 0}, {0, 0, 1}, {0, 1, 0}}}},
      {{'\'', 'y'}, IntMat{{{0, 0, -1}, {0, -1, 0}, {-1, 0, 0}}}}, {{'"', 'y'}, IntMat{{{0, 0, 1}, {0, -1, 0}, {1, 0, 0}}}}};
  if (n == 1) axis = 'z';
  if (axis == '*') {
    if (n != 3) return false;
    *r = IntMat{{{0, 0, 1}, {1, 0, 0}, {0, 1, 0}}};
    return true;
  }
  if (axis == '\'' || axis == '"') {
    auto it = diagonal.find({axis, ref});
    if (n != 2 || it == diagonal.end()) return false;
    *r = it->second;
    return true;
  }
  auto it = principal.find({n, axis});
  if (it == principal.end()) return false;
  *r = it->second;
  return true;
}

// All operations of the group a Hall symbol generates (centring, inversion and matrix symbols closed under
// multiplication, translations modulo 1), then moved by the origin shift; false with *why on a malformed symbol.
bool parse_hall(const std::string& symbol, std::vector<Op24>* out, std::string* why) {
  auto bad = [&](const std::string& what) {
    *why = fmt::format("Hall symbol '{}': {} (write it as in the International Tables, e.g. '-P 2ybc', "
                       "'P 31 2c (0 0 1)')", symbol, what);
    return false;
  };
  std::string text = symbol, shift_text;
  if (const size_t open = text.find('('); open != std::string::npos) {
    const size_t close = text.find(')', open);
    if (close == std::string::npos || text.find_first_not_of(" \t", close + 1) != std::string::npos)
      return bad("the origin shift must be a closing '(vx vy vz)'");
    shift_text = text.substr(open + 1, close - open - 1);
    text.erase(open);
  }
  std::vector<std::string> words;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j;
  }
  if (words.empty()) return bad("empty");
  const Op24 identity{IntMat{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}, {0, 0, 0}};
  std::vector<Op24> gens;
  // Lattice symbol: centring translations (24ths), '-' for a centre of symmetry at the origin.
  std::string lattice = words[0];
  if (lattice[0] == '-') {
    Op24 inv{IntMat{{{-1, 0, 0}, {0, -1, 0}, {0, 0, -1}}}, {0, 0, 0}};
    gens.push_back(inv);
    lattice.erase(0, 1);
  }
  static const std::map<std::string, std::vector<std::array<int, 3>>> centring = {
      {"P", {}}, {"A", {{0, 12, 12}}}, {"B", {{12, 0, 12}}}, {"C", {{12, 12, 0}}}, {"I", {{12, 12, 12}}},
      {"R", {{16, 8, 8}, {8, 16, 16}}}, {"S", {{8, 8, 16}, {16, 16, 8}}}, {"T", {{8, 16, 8}, {16, 8, 16}}},
      {"F", {{0, 12, 12}, {12, 0, 12}, {12, 12, 0}}}};
  auto lat = centring.find(lattice);
  if (lat == centring.end()) return bad(fmt::format("'{}' is not a lattice symbol (P A B C I R S T F)", lattice));
  for (const auto& t : lat->second) gens.push_back({identity.r, t});
  // Matrix symbols.
  int prev_n = 0;
  char prev_axis = 0, first_axis = 0;
  for (size_t k = 1; k < words.size(); ++k) {
    const std::string& w = words[k];
    size_t i = 0;
    const bool improper = w[i] == '-';
    if (improper) ++i;
    if (i >= w.size() || !std::strchr("12346", w[i])) return bad(fmt::format("'{}' does not start with 1, 2, 3, 4 or 6", w));
    const int n = w[i++] - '0';
    int screw = 0;
    if (i < w.size() && std::isdigit(static_cast<unsigned char>(w[i]))) {
      screw = w[i++] - '0';
      if (screw >= n) return bad(fmt::format("'{}': a screw part must be below the order {}", w, n));
    }
    char axis = 0;
    std::array<int, 3> t{0, 0, 0};
    for (; i < w.size(); ++i) {
      const char ch = w[i];
      if (std::strchr("xyz'\"*", ch)) {
        if (axis) return bad(fmt::format("'{}' names two axes", w));
        axis = ch;
        continue;
      }
      static const std::map<char, std::array<int, 3>> shifts = {
          {'a', {12, 0, 0}}, {'b', {0, 12, 0}}, {'c', {0, 0, 12}}, {'n', {12, 12, 12}},
          {'u', {6, 0, 0}},  {'v', {0, 6, 0}},  {'w', {0, 0, 6}},  {'d', {6, 6, 6}}};
      auto sh = shifts.find(ch);
      if (sh == shifts.end()) return bad(fmt::format("'{}' holds '{}', not an axis or translation symbol", w, ch));
      for (int d = 0; d < 3; ++d) t[size_t(d)] += sh->second[size_t(d)];
    }
    if (!axis) {  // default axes: c first; a 2 after a 2 or 4 along a, after a 3 or 6 along a-b; a third 3 along a+b+c
      if (k == 1) axis = 'z';
      else if (k == 2 && n == 2 && (prev_n == 2 || prev_n == 4)) axis = 'x';
      else if (k == 2 && n == 2 && (prev_n == 3 || prev_n == 6)) axis = '\'';
      else if (k == 3 && n == 3) axis = '*';
      else if (n == 1) axis = 'z';
      else return bad(fmt::format("'{}' needs its axis written (x, y, z, ', \" or *)", w));
    }
    // A face diagonal lies perpendicular to the preceding principal axis (after the body diagonal of "P 3* 2", c's).
    char ref = (axis == '\'' || axis == '"') ? (k == 2 ? first_axis : prev_axis) : axis;
    if (ref != 'x' && ref != 'y') ref = 'z';
    Op24 g{};
    if (!hall_rotation(n, axis, ref, &g.r)) return bad(fmt::format("'{}' is not a rotation the symbols define", w));
    if (improper)
      for (auto& row : g.r)
        for (int& v : row) v = -v;
    if (screw) {
      const int d = axis == 'x' ? 0 : axis == 'y' ? 1 : axis == 'z' ? 2 : -1;
      if (d < 0) return bad(fmt::format("'{}': a screw part needs a principal axis", w));
      t[size_t(d)] += 24 * screw / n;
    }
    for (int d = 0; d < 3; ++d) g.t[size_t(d)] = t[size_t(d)] % 24;
    gens.push_back(g);
    prev_n = n;
    if (axis == 'x' || axis == 'y' || axis == 'z') prev_axis = axis;
    if (k == 1) first_axis = axis;
  }
  // Closure.
  std::vector<Op24> group = {identity};
  for (size_t i = 0; i < group.size(); ++i) {
    for (const Op24& g : gens) {
      const Op24 p = multiply(group[i], g);
      if (std::find(group.begin(), group.end(), p) == group.end()) group.push_back(p);
      if (group.size() > 192) return bad("it generates more than 192 operations");
    }
  }
  // Origin shift v (twelfths): (I|v)(R|t)(I|-v) = (R | t + v - R v).
  if (!shift_text.empty()) {
    std::array<int, 3> v{};
    std::istringstream in(shift_text);
    for (int& x : v)
      if (!(in >> x)) return bad("the origin shift must be three integers (twelfths), e.g. '(0 0 1)'");
    if (std::string rest; in >> rest) return bad("the origin shift must be three integers (twelfths)");
    for (Op24& op : group)
      for (int i = 0; i < 3; ++i) {
        int t = op.t[size_t(i)] + 2 * v[size_t(i)];
        for (int j = 0; j < 3; ++j) t -= op.r[size_t(i)][size_t(j)] * 2 * v[size_t(j)];
        op.t[size_t(i)] = ((t % 24) + 24) % 24;
      }
  }
  std::sort(group.begin(), group.end());
  *out = std::move(group);
  return true;
}

std::vector<SymmetryOp> to_symmetry_ops(const std::vector<Op24>& ops) {
  std::vector<SymmetryOp> out(ops.size());
  for (size_t i = 0; i < ops.size(); ++i)
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) out[i].rot[r][c] = ops[i].r[size_t(r)][size_t(c)];
      out[i].trans[r] = ops[i].t[size_t(r)] / 24.0;
    }
  return out;
}

#ifdef CG_HAVE_SPGLIB
// The tables' operations of Hall setting h (1..530).
std::vector<SymmetryOp> table_ops(int h) {
  int rot[192][3][3];
  double trans[192][3];
  const int n = spg_get_symmetry_from_database(rot, trans, h);
  std::vector<SymmetryOp> ops(size_t(std::max(n, 0)));
  for (int i = 0; i < n; ++i) {
    std::copy(&rot[i][0][0], &rot[i][0][0] + 9, &ops[size_t(i)].rot[0][0]);
    std::copy(trans[i], trans[i] + 3, ops[size_t(i)].trans);
  }
  return ops;
}

// The same, translations in 24ths, sorted: comparable with parse_hall's groups.
const std::vector<Op24>& table_ops24(int h) {
  static std::vector<std::vector<Op24>> cache(kHallSettings + 1);
  static std::once_flag once;
  std::call_once(once, [] {
    for (int k = 1; k <= kHallSettings; ++k) {
      for (const SymmetryOp& op : table_ops(k)) {
        Op24 o{};
        for (int r = 0; r < 3; ++r) {
          for (int c = 0; c < 3; ++c) o.r[size_t(r)][size_t(c)] = op.rot[r][c];
          o.t[size_t(r)] = ((int(std::lround(op.trans[r] * 24)) % 24) + 24) % 24;
        }
        cache[size_t(k)].push_back(o);
      }
      std::sort(cache[size_t(k)].begin(), cache[size_t(k)].end());
    }
  });
  return cache[size_t(h)];
}
#endif

bool is_p1(const SpaceGroupName& n) {
  return (n.hm.empty() || normalise_hm(n.hm) == "P1") && (n.hall.empty() || collapse_spaces(n.hall) == "P 1") &&
         (n.number == 0 || n.number == 1);
}

}  // namespace

bool have_space_group_tables() {
#ifdef CG_HAVE_SPGLIB
  return true;
#else
  return false;
#endif
}

bool space_group_setting(const SpaceGroupName& name, const Lattice& lattice, SpaceGroupSetting* out,
                         std::string* why) {
  if (is_p1(name)) {
    *out = {1, 1, "P 1", {SymmetryOp{}}};
    for (int k = 0; k < 3; ++k) out->ops[0].rot[k][k] = 1;
    return true;
  }
  const std::string described =
      fmt::format("{}{}{}", name.hm.empty() ? "" : fmt::format(" H-M '{}'", name.hm),
                  name.hall.empty() ? "" : fmt::format(" Hall '{}'", name.hall),
                  name.number == 0 ? "" : fmt::format(" number {}", name.number));
  auto misfit = [&](int number) {
    *why = fmt::format("space group{}{} does not fit the cell (a {} b {} c {}, alpha {} beta {} gamma {}): no "
                       "setting's rotations keep its lengths and angles; check the cell or list the symmetry "
                       "operations (_symmetry_equiv_pos_as_xyz)",
                       described, number ? fmt::format(" (No. {})", number) : "", lattice.a, lattice.b, lattice.c,
                       lattice.alpha, lattice.beta, lattice.gamma);
    return false;
  };
  // A Hall symbol is a setting by itself (any origin shift included): generated here, no tables needed.
  std::vector<Op24> hall_group;
  if (!name.hall.empty() && !parse_hall(name.hall, &hall_group, why)) return false;
#ifndef CG_HAVE_SPGLIB
  if (!hall_group.empty() && name.hm.empty() && name.number == 0) {
    std::vector<SymmetryOp> ops = to_symmetry_ops(hall_group);
    if (!keeps_metric(ops, lattice)) return misfit(0);
    *out = {0, 0, "Hall '" + collapse_spaces(name.hall) + "'", std::move(ops)};
    return true;
  }
  *why = fmt::format("the CIF names space group{} but lists no symmetry operations, and this build has no "
                     "space-group tables (built without spglib: install libsymspg-dev and rebuild); or list the "
                     "operations (_symmetry_equiv_pos_as_xyz), or give the Hall symbol alone",
                     described);
  return false;
#else
  const std::vector<Entry>& t = table();

  // Settings the symbol and the number allow, in Hall-number order (the International Tables' order of settings).
  std::vector<int> by_hm, by_number;
  if (!name.hm.empty()) {
    std::string base = normalise_hm(name.hm), qualifier;
    if (const size_t colon = base.find(':'); colon != std::string::npos) {
      qualifier = base.substr(colon + 1);
      base.erase(colon);
    }
    auto known = [&](const std::string& n) {
      for (int h = 1; h <= kHallSettings; ++h)
        if (std::count(t[size_t(h)].names.begin(), t[size_t(h)].names.end(), n)) return true;
      return false;
    };
    // Qualifiers written without a colon: "R-3mH" (pymatgen), "Fd-3mZ" / "Fd-3mS" (ICSD's origin choice 2 / 1).
    if (qualifier.empty() && base.size() > 1 && std::strchr("HRSZ", base.back()) && !known(base) &&
        known(base.substr(0, base.size() - 1))) {
      qualifier = base.substr(base.size() - 1);
      base.pop_back();
    }
    if (qualifier == "S" || qualifier == "Z") qualifier = qualifier == "S" ? "1" : "2";
    for (int h = 1; h <= kHallSettings; ++h) {
      const Entry& e = t[size_t(h)];
      if (!std::count(e.names.begin(), e.names.end(), base)) continue;
      // "1"/"2" name the origin choice of any axis setting ("Cccb:2" is choice "2ba-c").
      const bool origin = (qualifier == "1" || qualifier == "2") && e.choice.rfind(qualifier, 0) == 0;
      if (qualifier.empty() || e.choice == qualifier || origin) by_hm.push_back(h);
    }
  }
  if (name.number != 0) {
    if (name.number < 1 || name.number > 230) {
      *why = fmt::format("space group number {} is not one of 1..230", name.number);
      return false;
    }
    for (int h = 1; h <= kHallSettings; ++h)
      if (t[size_t(h)].number == name.number) by_number.push_back(h);
  }
  if (by_hm.empty() && hall_group.empty() && by_number.empty()) {
    *why = fmt::format("space group{} is not in the tables (spelled as in the International Tables: 'P 21/c', "
                       "'P 1 21/c 1', 'Fd-3m:2', 'R -3 m :H'); and the CIF lists no symmetry operations: list them "
                       "(_symmetry_equiv_pos_as_xyz) or give _space_group_IT_number",
                       described);
    return false;
  }
  // The Hall symbol's setting: the tables' with the same operations, else (an origin shift of its own) the group
  // spglib identifies from the operations.
  int hall_number = 0, hall_group_number = 0;
  std::vector<SymmetryOp> hall_ops = to_symmetry_ops(hall_group);
  if (!hall_group.empty()) {
    for (int h = 1; h <= kHallSettings && hall_number == 0; ++h)
      if (table_ops24(h) == hall_group) hall_number = h;
    if (hall_number) {
      hall_group_number = t[size_t(hall_number)].number;
    } else {
      std::vector<std::array<std::array<int, 3>, 3>> rot(hall_ops.size());
      std::vector<std::array<double, 3>> trans(hall_ops.size());
      for (size_t i = 0; i < hall_ops.size(); ++i)
        for (int r = 0; r < 3; ++r) {
          for (int c = 0; c < 3; ++c) rot[i][size_t(r)][size_t(c)] = hall_ops[i].rot[r][c];
          trans[i][size_t(r)] = hall_ops[i].trans[r];
        }
      const Mat3 m = lattice_matrix(lattice);
      double basis[3][3];  // spglib: columns are the lattice vectors
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) basis[r][c] = m[size_t(c)][size_t(r)];
      hall_group_number =
          spg_get_spacegroup_type_from_symmetry(reinterpret_cast<int(*)[3][3]>(rot.data()),
                                                reinterpret_cast<double(*)[3]>(trans.data()), int(hall_ops.size()),
                                                basis, 1e-5).number;
    }
  }
  // The group numbers the descriptions give must agree.
  std::vector<int> numbers;
  if (!by_hm.empty()) numbers.push_back(t[size_t(by_hm.front())].number);
  if (hall_group_number) numbers.push_back(hall_group_number);
  if (!by_number.empty()) numbers.push_back(name.number);
  if (std::adjacent_find(numbers.begin(), numbers.end(), std::not_equal_to<>()) != numbers.end()) {
    *why = fmt::format("the space group's name and number disagree ({}); correct one of them", described);
    return false;
  }
  if (!hall_group.empty()) {
    if (!keeps_metric(hall_ops, lattice)) return misfit(hall_group_number);
    const Entry* e = hall_number ? &t[size_t(hall_number)] : nullptr;
    *out = {hall_number, hall_group_number,
            e ? (e->choice.empty() ? e->full : e->full + " :" + e->choice) : "Hall '" + collapse_spaces(name.hall) + "'",
            std::move(hall_ops)};
    return true;
  }
  const std::vector<int>& candidates = !by_hm.empty() ? by_hm : by_number;
  for (int h : candidates) {
    std::vector<SymmetryOp> ops = table_ops(h);
    if (ops.empty() || !keeps_metric(ops, lattice)) continue;
    const Entry& e = t[size_t(h)];
    *out = {h, e.number, e.choice.empty() ? e.full : e.full + " :" + e.choice, std::move(ops)};
    return true;
  }
  return misfit(t[size_t(candidates.front())].number);
#endif
}

}  // namespace cg
