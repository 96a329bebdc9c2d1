// Compositional validity as SMACT and CDVAE define it (CDVAE scripts/eval_utils.py::smact_validity).
// A composition is valid when it is a single element, or made only of SMACT metals (an alloy), or some choice of ONE
// oxidation state per element (SMACT's default set) is charge-neutral at the reduced integer counts AND passes
// SMACT's Pauling test (every cation less electronegative than every anion). Tables: data/tables/, compiled in.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace cg {

// Integer counts reduced by their gcd, elements ordered by atomic number (CDVAE sorts atom types the same way).
struct Composition {
  std::vector<std::string> elements;  // distinct symbols, ascending atomic number
  std::vector<int> counts;            // reduced counts, gcd 1
  // "Fe2O3": elements in Hill-free atomic-number order with counts, "1" omitted. Used as a grouping key.
  std::string formula() const;
};

// Reduce a list of site species ("Fe","Fe","O",...) to a Composition. Throws on an unknown symbol.
Composition reduce_composition(const std::vector<std::string>& species);

// SMACT's tables, as transcribed in data/tables/ (nullopt / empty where SMACT has no value).
const std::vector<int>& smact_oxidation_states(const std::string& element);
std::optional<double> smact_pauling_electronegativity(const std::string& element);
bool smact_is_metal(const std::string& element);

// SMACT's Pauling test in the form CDVAE ran it (SMACT 2.x eneg_states_test, TypeError caught as "passes"):
// over ordered pairs i < j, a cation/anion pair fails when the cation is not strictly less electronegative; if such a
// pair has a missing electronegativity the whole test passes (CDVAE's except TypeError); a same-sign pair with a
// missing value fails.
bool smact_pauling_test(const std::vector<int>& oxidation_states, const std::vector<std::optional<double>>& enegs);

struct SmactOptions {
  bool use_pauling_test = true;
  bool include_alloys = true;
};

// The verdict, with the first oxidation-state assignment that passed (empty for single elements and alloys).
struct SmactResult {
  bool valid = false;
  std::string reason;             // "single element" | "alloy" | "charge balanced" | "no neutral assignment" | ...
  std::vector<int> oxidation_states;  // per Composition::elements when reason == "charge balanced"
};

SmactResult smact_validity(const Composition& comp, const SmactOptions& opts = {});
inline bool smact_valid(const std::vector<std::string>& species, const SmactOptions& opts = {}) {
  return smact_validity(reduce_composition(species), opts).valid;
}

}  // namespace cg
