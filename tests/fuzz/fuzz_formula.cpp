// Fuzz harness: chemical formulas (sampler/conditions.h), from the prompts of samples.jsonl and users' conditions
// ("Fe2O3", "BaLi2Mg(PO4)2"). Checks: never throws; composition_of_formula and pymatgen_reduced_formula_of accept
// the same formulas; the reduced formula names the same composition (it parses back, and reduces to itself).
#include <cstdint>
#include <string>

#include "sampler/conditions.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string formula(reinterpret_cast<const char*>(data), size);
  std::optional<cg::Composition> c;
  std::string reduced;
  cg::fuzz::accepts([&] {
    c = cg::composition_of_formula(formula);
    reduced = cg::pymatgen_reduced_formula_of(formula);
  });
  if (c.has_value() != !reduced.empty())
    cg::fuzz::finding("'" + formula + "': composition and reduced formula disagree on accepting it");
  if (!c) return 0;
  std::optional<cg::Composition> back;
  cg::fuzz::accepts([&] { back = cg::composition_of_formula(reduced); });
  if (!back || back->elements != c->elements || back->counts != c->counts)
    cg::fuzz::finding("'" + formula + "' reduces to '" + reduced + "', another composition");
  if (cg::pymatgen_reduced_formula_of(reduced) != reduced)
    cg::fuzz::finding("'" + reduced + "' (from '" + formula + "') does not reduce to itself");
  return 0;
}
