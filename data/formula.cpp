#include "data/formula.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "data/python_sort.h"

namespace cg {

// data/tables/pymatgen_electronegativity.txt, embedded by data/CMakeLists.txt.
extern const char* const kPymatgenElectronegativityTable;

namespace {

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

}  // namespace

// data/tables/pymatgen_electronegativity.txt (not SMACT's table, which differs for 17 elements, Zr 0.33 among them).
double pymatgen_x(const std::string& element) {
  static const std::map<std::string, double> table = [] {
    std::map<std::string, double> t;
    std::istringstream in(kPymatgenElectronegativityTable);
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

std::string pymatgen_formula(std::vector<std::pair<std::string, int64_t>> amounts) {
  python_sort(amounts, [](const auto& a, const auto& b) { return pymatgen_x(a.first) < pymatgen_x(b.first); });
  std::string out;
  for (const auto& [e, k] : amounts) out += (out.empty() ? "" : " ") + e + std::to_string(k);
  return out;
}

}  // namespace cg
