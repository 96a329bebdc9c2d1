// pymatgen's CifParser site order (see the header).
#include "data/pymatgen_order.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "common/error.h"
#include "data/formula.h"
#include "data/python_sort.h"

namespace cg {
namespace {

// A site's species as pymatgen holds it: the element, with an oxidation state where the CIF gives them (Species).
struct Specie {
  const std::string& element;
  double oxidation;  // 0 with no oxidation states: Species.__lt__ then never looks at it
  bool operator==(const Specie& o) const { return element == o.element && oxidation == o.oxidation; }
};

// Element.__lt__ and Species.__lt__ (core/periodic_table.py): X with NaN read as +inf, then the symbol, then (Species
// with a nonzero oxidation state) the oxidation state.
bool specie_less(const Specie& a, const Specie& b) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const double xa = std::isnan(pymatgen_x(a.element)) ? kInf : pymatgen_x(a.element);
  const double xb = std::isnan(pymatgen_x(b.element)) ? kInf : pymatgen_x(b.element);
  if (xa != xb) return xa < xb;
  if (a.element != b.element) return a.element < b.element;
  return a.oxidation != 0 && a.oxidation < b.oxidation;
}

// str(Species): "Fe2+", "O2-", "Na+" (formula_double_format leaves out a 1), "Fe0+", "Fe2.5+".
std::string species_string(const std::string& element, double oxidation) {
  const double v = std::fabs(oxidation);
  const std::string amount = v == 1 ? "" : v == std::round(v) ? fmt::format("{}", int64_t(v)) : fmt::format("{}", v);
  return element + amount + (oxidation >= 0 ? "+" : "-");
}

// Site.__lt__ (core/sites.py) for ordered sites: species.average_electroneg, the element's X, compared by < and then
// by > (both false where one is NaN), then species_string: the symbol, or str(Species). No order where He, Ne or Ar
// take part: Li < F by X, F < He and He < Li by symbol.
bool site_less(const std::string& a, const std::string& b, const std::string& label_a, const std::string& label_b) {
  const double xa = pymatgen_x(a), xb = pymatgen_x(b);
  if (xa < xb) return true;
  if (xa > xb) return false;
  return label_a < label_b;
}

}  // namespace

std::vector<size_t> cif_parser_site_order(const std::vector<std::string>& species,
                                          const std::vector<double>& oxidation) {
  CG_CHECK(oxidation.empty() || oxidation.size() == species.size(),
           "cif_parser_site_order: {} oxidation states for {} sites", oxidation.size(), species.size());
  auto specie = [&](size_t i) { return Specie{species[i], oxidation.empty() ? 0.0 : oxidation[i]}; };
  std::vector<std::string> labels = species;
  for (size_t i = 0; i < oxidation.size(); ++i) labels[i] = species_string(species[i], oxidation[i]);
  std::vector<size_t> order(species.size());
  std::iota(order.begin(), order.end(), size_t(0));
  // sorted(coord_to_species.items(), key=composition): Composition's < is "not >=", and {A: 1} >= {B: 1} is decided
  // at the lesser species of the two: true when it is A. So the lesser species' sites come later; equal
  // compositions keep their order. Python's sort, as Species.__lt__ is no order where an oxidation state is 0.
  python_sort_indices(order, [&](size_t i, size_t j) {
    return !(specie(i) == specie(j)) && specie_less(specie(j), specie(i));
  });
  // Structure.get_sorted_structure(): sorted(sites).
  python_sort_indices(order,
                      [&](size_t i, size_t j) { return site_less(species[i], species[j], labels[i], labels[j]); });
  return order;
}

Crystal in_cif_parser_order(const Crystal& c) {
  Crystal out = c;
  const bool oxidation = c.oxidation.size() == c.species.size();
  const std::vector<size_t> order = cif_parser_site_order(c.species, oxidation ? c.oxidation : std::vector<double>{});
  for (size_t k = 0; k < order.size(); ++k) {
    out.species[k] = c.species[order[k]];
    out.frac[k] = c.frac[order[k]];
    if (oxidation) out.oxidation[k] = c.oxidation[order[k]];
  }
  return out;
}

SiteOrder parse_site_order(const std::string& s) {
  if (s == "pymatgen") return SiteOrder::kPymatgen;
  if (s == "file") return SiteOrder::kFile;
  CG_FAIL("data.site_order '{}' is not one of: pymatgen, file", s);
}

const char* site_order_name(SiteOrder o) { return o == SiteOrder::kPymatgen ? "pymatgen" : "file"; }

}  // namespace cg
