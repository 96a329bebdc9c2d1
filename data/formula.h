// Formulas as pymatgen writes them (Composition.reduced_formula, Composition.formula): Materials Project's
// pretty_formula, the formula cgprep derives for crystals whose source gives none (a CIF folder), and the CIF
// writer's data_ name and _chemical_formula_* items.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cg {

// pymatgen's Element.X, the electronegativity its formulas and site order sort by; NaN where pymatgen has none (He,
// Ne, Ar) and for a symbol that is no element.
double pymatgen_x(const std::string& element);

// Element counts in order of first appearance, as pymatgen's Composition of a structure holds them.
std::vector<std::pair<std::string, int64_t>> species_amounts(const std::vector<std::string>& species);

// pymatgen's Composition.reduced_formula and its factor (the CIF's data_ name and Z) of element counts given in
// order of first appearance: elements by pymatgen's Element.X then symbol, counts over their gcd, the last two
// elements as a parenthesised polyanion where pymatgen groups them ("Mg(InSe2)2"), its special formulas (O2, Li2O2).
std::pair<std::string, double> pymatgen_reduced_formula(const std::vector<std::pair<std::string, int64_t>>& amounts);

// The element counts a formula states ("Fe2O3"; "Mg(InSe2)2" with its groups multiplied out; "Si1 Os1", its parts
// separated by single spaces as pymatgen's Composition.formula writes them), summed per element; nullopt when it is
// not one: anything but element symbols, counts, parentheses and such spaces ("xyz", "fe2o3", "Si 1", " Si"), an
// empty group, a count of 0 or over 10^6.
std::optional<std::map<std::string, int64_t>> formula_counts(const std::string& formula);

// Whether two compositions are the same up to a common factor (Sr2Ti2O6 and SrTiO3).
bool same_reduced_composition(const std::map<std::string, int64_t>& a, const std::map<std::string, int64_t>& b);

// pymatgen's Composition.formula: elements by Element.X alone (ties keep their order), every count written, separated
// by spaces ("Li2 Fe2 O4").
std::string pymatgen_formula(std::vector<std::pair<std::string, int64_t>> amounts);

}  // namespace cg
