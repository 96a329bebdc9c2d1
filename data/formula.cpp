#include "data/formula.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "data/elements.h"
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

// Largest count of one element a formula may state (after group multipliers).
constexpr int64_t kMaxCount = 1000000;

// formula := part (' ' part | part)*; part := Element [count] | '(' formula ')' [count]. One space may separate two
// parts, as pymatgen's Composition.formula writes them ("Li2 O1"). Adds the counts to *out; false on anything else,
// on an empty group and on a count over kMaxCount.
bool parse_formula(const std::string& f, size_t* i, std::map<std::string, int64_t>* out, int depth) {
  const size_t start = *i;
  auto count = [&](int64_t* n) {
    size_t k = *i;
    while (k < f.size() && std::isdigit(static_cast<unsigned char>(f[k]))) ++k;
    if (k - *i > 7) return false;  // kMaxCount itself has 7 digits (and is what a reduced formula may write)
    *n = k > *i ? std::stoll(f.substr(*i, k - *i)) : 1;
    *i = k;
    return *n >= 1;
  };
  auto add = [&](const std::string& el, int64_t n) {
    int64_t& c = (*out)[el];
    c += n;  // both <= kMaxCount: no overflow
    return c <= kMaxCount;
  };
  while (*i < f.size() && f[*i] != ')') {
    if (f[*i] == ' ') {  // between two parts only: not first, last, doubled, or before a ')' or a count
      if (*i == start || *i + 1 >= f.size() || !(std::isupper(static_cast<unsigned char>(f[*i + 1])) ||
                                                 f[*i + 1] == '('))
        return false;
      ++*i;
      continue;
    }
    if (f[*i] == '(') {
      if (depth > 8) return false;
      ++*i;
      std::map<std::string, int64_t> inner;
      if (!parse_formula(f, i, &inner, depth + 1) || inner.empty() || *i >= f.size() || f[*i] != ')') return false;
      ++*i;
      int64_t n = 0;
      if (!count(&n)) return false;
      for (const auto& [el, k] : inner)  // k, n <= 1e6: the product fits
        if (k * n > kMaxCount || !add(el, k * n)) return false;
      continue;
    }
    if (!std::isupper(static_cast<unsigned char>(f[*i]))) return false;
    size_t j = *i + 1;
    while (j < f.size() && std::islower(static_cast<unsigned char>(f[j]))) ++j;
    const std::string el = f.substr(*i, j - *i);
    if (!is_element(el)) return false;
    *i = j;
    int64_t n = 0;
    if (!count(&n) || n > kMaxCount || !add(el, n)) return false;
  }
  return true;
}

// The counts over their gcd.
std::map<std::string, int64_t> reduced(const std::map<std::string, int64_t>& counts) {
  int64_t g = 0;
  for (const auto& [el, n] : counts) g = std::gcd(g, n);
  std::map<std::string, int64_t> out;
  for (const auto& [el, n] : counts) out[el] = g ? n / g : n;
  return out;
}

}  // namespace

std::optional<std::map<std::string, int64_t>> formula_counts(const std::string& formula) {
  std::map<std::string, int64_t> counts;
  size_t i = 0;
  if (!parse_formula(formula, &i, &counts, 0) || i != formula.size() || counts.empty()) return std::nullopt;
  return counts;
}

bool same_reduced_composition(const std::map<std::string, int64_t>& a, const std::map<std::string, int64_t>& b) {
  return reduced(a) == reduced(b);
}

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
