// pymatgen's CifParser site order (see the header).
#include "data/pymatgen_order.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.h"
#include "data/formula.h"
#include "data/python_sort.h"

namespace cg {
namespace {

// Element.__lt__ (core/periodic_table.py): X with NaN read as +inf, then the symbol. A strict weak order.
bool element_less(const std::string& a, const std::string& b) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const double xa = std::isnan(pymatgen_x(a)) ? kInf : pymatgen_x(a);
  const double xb = std::isnan(pymatgen_x(b)) ? kInf : pymatgen_x(b);
  if (xa != xb) return xa < xb;
  return a < b;
}

// Site.__lt__ (core/sites.py) for ordered sites: species.average_electroneg, the element's X, compared by < and then
// by > (both false where one is NaN), then species_string, the symbol. No order where He, Ne or Ar take part: Li < F
// by X, F < He and He < Li by symbol.
bool site_less(const std::string& a, const std::string& b) {
  const double xa = pymatgen_x(a), xb = pymatgen_x(b);
  if (xa < xb) return true;
  if (xa > xb) return false;
  return a < b;
}

}  // namespace

std::vector<size_t> cif_parser_site_order(const std::vector<std::string>& species) {
  std::vector<size_t> order(species.size());
  std::iota(order.begin(), order.end(), size_t(0));
  // sorted(coord_to_species.items(), key=composition): Composition's < is "not >=", and {A: 1} >= {B: 1} is decided
  // at the lesser element of the two: true when it is A. So the lesser element's sites come later; equal
  // compositions keep their order (Python's sort is stable, and this < is an order).
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t i, size_t j) { return element_less(species[j], species[i]); });
  // Structure.get_sorted_structure(): sorted(sites).
  python_sort_indices(order, [&](size_t i, size_t j) { return site_less(species[i], species[j]); });
  return order;
}

Crystal in_cif_parser_order(const Crystal& c) {
  Crystal out = c;
  const std::vector<size_t> order = cif_parser_site_order(c.species);
  for (size_t k = 0; k < order.size(); ++k) {
    out.species[k] = c.species[order[k]];
    out.frac[k] = c.frac[order[k]];
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
