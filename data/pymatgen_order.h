// The order pymatgen's CifParser gives a structure's sites (io/cif.py, _get_structure), which is the order its
// Composition (the formula's spelling, where He, Ne or Ar make pymatgen's sort keys NaN) and SpacegroupAnalyzer (the
// site order and species numbers spglib is handed, which can tip a borderline space group) see, and the order the
// paper's reference code writes a crystal's text in (it reads each CIF with Structure.from_str). The readers of
// CSV/CIF crystals (data/mp20.h read_mp20) give the crystals their sites in this order unless data.site_order=file,
// and cgprep derives formulas and space groups from the sites in this order (data/mp20.h derive_properties).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "data/crystal.h"

namespace cg {

// The site order of CifParser(cif).get_structures(primitive=False)[0] for the sites data/cif.h reads from that CIF
// (each listed site followed by its images, as CifParser expands them): out[k] is the index into `species` of the
// structure's k-th site. CifParser first sorts the listed sites by their Composition, which for one element is the
// Element order reversed (electronegativity, NaN as +inf, then symbol: noble gases first, then F, O, Cl, ...),
// stably, and expands each element's sites in that order; then get_sorted_structure sorts them with Site.__lt__
// (electronegativity by < and >, neither true for a NaN, then the symbol) by Python's sort (data/python_sort.h).
// With `oxidation` (per site, a CIF's _atom_type_oxidation_number: pymatgen's Species), Species.__lt__ (then the
// oxidation state) and str(Species) ("Fe2+" before "Fe3+") take the element's and symbol's place.
// Not followed: the primitive cell get_structures() looks for by default (get_primitive_structure, 0.25 Å), whose
// sites, where it finds a smaller cell, pymatgen orders by symbol.
std::vector<size_t> cif_parser_site_order(const std::vector<std::string>& species,
                                          const std::vector<double>& oxidation = {});

// A copy of c with its sites in that order (id, lattice and properties as they are). Sites already in that order stay
// as they are, He, Ne and Ar included: the first sort groups the sites by element whatever their order, so Python's
// sort sees the same elements in the same places, and neither sort moves an element's sites past each other.
Crystal in_cif_parser_order(const Crystal& c);  // oxidation states (where c has them) moved with their sites

// The site order the readers of CSV/CIF crystals give (data.site_order).
enum class SiteOrder {
  kPymatgen,  // CifParser's (default): the reference code's text, sites grouped by element and sorted
  kFile,      // the CIF's own: each listed site followed by its images, as data/cif.h reads them
};
// "pymatgen" | "file" (data.site_order); throws naming the allowed values.
SiteOrder parse_site_order(const std::string& s);
const char* site_order_name(SiteOrder o);

}  // namespace cg
