// Formula and space group conditions against the crystals that answered them.
#include "sampler/conditions.h"

#include <cctype>
#include <map>
#include <numeric>

#include "data/elements.h"
#include "sampler/cif_writer.h"
#include "sampler/symmetry.h"

namespace cg {

namespace {

// Largest count of one element a formula may state (after group multipliers).
constexpr int64_t kMaxCount = 1000000;

// formula := part*; part := Element [count] | '(' formula ')' [count]. Adds the counts to *out; false on anything
// else, on an empty group and on a count over kMaxCount.
bool parse_formula(const std::string& f, size_t* i, std::map<std::string, int64_t>* out, int depth) {
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

}  // namespace

std::optional<Composition> composition_of_formula(const std::string& formula) {
  std::map<std::string, int64_t> counts;
  size_t i = 0;
  if (!parse_formula(formula, &i, &counts, 0) || i != formula.size() || counts.empty()) return std::nullopt;
  std::map<int, int64_t> by_z;  // Composition's order: ascending atomic number, counts over their gcd
  int64_t g = 0;
  for (const auto& [el, n] : counts) {
    by_z[atomic_number(el)] = n;
    g = std::gcd(g, n);
  }
  Composition c;
  for (const auto& [z, n] : by_z) {
    c.elements.push_back(element_symbol(z));
    c.counts.push_back(int(n / g));
  }
  return c;
}

std::string pymatgen_reduced_formula_of(const std::string& formula) {
  std::map<std::string, int64_t> counts;
  size_t i = 0;
  if (!parse_formula(formula, &i, &counts, 0) || i != formula.size() || counts.empty()) return "";
  return pymatgen_reduced_formula(std::vector<std::pair<std::string, int64_t>>(counts.begin(), counts.end())).first;
}

ConditionReport check_conditions(const std::vector<ConditionedItem>& items, SpaceGroupCache& groups) {
  const std::vector<Crystal>& crystals = groups.crystals();
  ConditionReport r;
  r.spglib = have_spglib();
  r.symprec = groups.symprec();
  for (const ConditionedItem& it : items) {
    const Crystal* c = it.crystal >= 0 ? &crystals[size_t(it.crystal)] : nullptr;
    if (it.cond.formula) {
      ++r.formula;
      const auto want = composition_of_formula(*it.cond.formula);
      if (c && want && reduce_composition(c->species).formula() == want->formula()) ++r.formula_match;
    }
    if (it.cond.spacegroup) {
      ++r.spacegroup;
      if (c && r.spglib && groups.number(size_t(it.crystal)) == *it.cond.spacegroup) ++r.spacegroup_match;
    }
    if (it.cond.formation_energy_per_atom || it.cond.band_gap || it.cond.e_above_hull) ++r.property;
  }
  return r;
}

}  // namespace cg
