// Formula and space group conditions against the crystals that answered them.
#include "sampler/conditions.h"

#include <cctype>
#include <map>
#include <numeric>

#include "data/elements.h"
#include "data/formula.h"
#include "sampler/cif_writer.h"
#include "sampler/symmetry.h"

namespace cg {

std::optional<Composition> composition_of_formula(const std::string& formula) {
  const auto parsed = formula_counts(formula);
  if (!parsed) return std::nullopt;
  const std::map<std::string, int64_t>& counts = *parsed;
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
  const auto counts = formula_counts(formula);
  if (!counts) return "";
  return pymatgen_reduced_formula(std::vector<std::pair<std::string, int64_t>>(counts->begin(), counts->end())).first;
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
