#include "data/space_groups.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
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
#ifndef CG_HAVE_SPGLIB
  (void)lattice;
  *why = fmt::format("the CIF names space group '{}' but lists no symmetry operations, and this build has no "
                     "space-group tables (built without spglib: install libsymspg-dev and rebuild); or list the "
                     "operations (_symmetry_equiv_pos_as_xyz)",
                     !name.hm.empty() ? name.hm : !name.hall.empty() ? name.hall : std::to_string(name.number));
  return false;
#else
  const std::vector<Entry>& t = table();
  const std::string described =
      fmt::format("{}{}{}", name.hm.empty() ? "" : fmt::format(" H-M '{}'", name.hm),
                  name.hall.empty() ? "" : fmt::format(" Hall '{}'", name.hall),
                  name.number == 0 ? "" : fmt::format(" number {}", name.number));

  // Settings each description allows, in Hall-number order (the International Tables' order of settings).
  std::vector<int> by_hm, by_hall, by_number;
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
  if (!name.hall.empty()) {
    const std::string hall = collapse_spaces(name.hall);
    for (int h = 1; h <= kHallSettings; ++h)
      if (t[size_t(h)].hall == hall) by_hall.push_back(h);
  }
  if (name.number != 0) {
    if (name.number < 1 || name.number > 230) {
      *why = fmt::format("space group number {} is not one of 1..230", name.number);
      return false;
    }
    for (int h = 1; h <= kHallSettings; ++h)
      if (t[size_t(h)].number == name.number) by_number.push_back(h);
  }
  if (by_hm.empty() && by_hall.empty() && by_number.empty()) {
    *why = fmt::format("space group{} is not in the tables (spelled as in the International Tables: 'P 21/c', "
                       "'P 1 21/c 1', 'Fd-3m:2', 'R -3 m :H'); and the CIF lists no symmetry operations: list them "
                       "(_symmetry_equiv_pos_as_xyz) or give _space_group_IT_number",
                       described);
    return false;
  }
  // The group numbers the descriptions give must agree.
  std::vector<int> numbers;
  for (const auto* list : {&by_hm, &by_hall, &by_number})
    if (!list->empty()) numbers.push_back(t[size_t(list->front())].number);
  if (std::adjacent_find(numbers.begin(), numbers.end(), std::not_equal_to<>()) != numbers.end()) {
    *why = fmt::format("the space group's name and number disagree ({}); correct one of them", described);
    return false;
  }
  const std::vector<int>& candidates = !by_hall.empty() ? by_hall : !by_hm.empty() ? by_hm : by_number;
  for (int h : candidates) {
    int rot[192][3][3];
    double trans[192][3];
    const int n = spg_get_symmetry_from_database(rot, trans, h);
    std::vector<SymmetryOp> ops(size_t(std::max(n, 0)));
    for (int i = 0; i < n; ++i) {
      std::copy(&rot[i][0][0], &rot[i][0][0] + 9, &ops[size_t(i)].rot[0][0]);
      std::copy(trans[i], trans[i] + 3, ops[size_t(i)].trans);
    }
    if (n <= 0 || !keeps_metric(ops, lattice)) continue;
    const Entry& e = t[size_t(h)];
    *out = {h, e.number, e.choice.empty() ? e.full : e.full + " :" + e.choice, std::move(ops)};
    return true;
  }
  const Entry& first = t[size_t(candidates.front())];
  *why = fmt::format("space group{} (No. {}) does not fit the cell (a {} b {} c {}, alpha {} beta {} gamma {}): no "
                     "setting's rotations keep its lengths and angles; check the cell or list the symmetry "
                     "operations (_symmetry_equiv_pos_as_xyz)",
                     described, first.number, lattice.a, lattice.b, lattice.c, lattice.alpha, lattice.beta,
                     lattice.gamma);
  return false;
#endif
}

}  // namespace cg
