// Fuzz harness: the CIF reader (data/cif.h: CIF 1.1 syntax, symmetry operations, Hall and Hermann-Mauguin names),
// which reads users' CIF folders (cgprep, cgeval). Checks: no crash, no exception from parse_cif_blocks (its
// failures are results with a reason); an accepted block gives a sane crystal, which our CIF writer's output reads
// back with the same species, cell and coordinates (to the writer's 8 decimals).
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/cif.h"
#include "sampler/cif_writer.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

bool close(double a, double b, double tol) { return std::fabs(a - b) <= tol * std::max(1.0, std::fabs(a)); }

// Periodic distance of two fractional coordinates along one axis.
double frac_gap(double a, double b) {
  double d = std::fabs(a - b);
  d -= std::floor(d);
  return std::min(d, 1 - d);
}

void check_round_trip(const cg::Crystal& c) {
  const std::string cif = cg::to_cif(c);
  cg::Crystal back;
  std::string reason;
  if (!cg::parse_cif(cif, "round-trip", &back, &reason))
    cg::fuzz::finding("our own CIF of an accepted crystal is refused: " + reason + "\n" + cif);
  if (back.species != c.species) cg::fuzz::finding("species changed in the CIF round trip:\n" + cif);
  const cg::Lattice &l = c.lattice, &m = back.lattice;
  if (!(close(l.a, m.a, 1e-6) && close(l.b, m.b, 1e-6) && close(l.c, m.c, 1e-6) && close(l.alpha, m.alpha, 1e-6) &&
        close(l.beta, m.beta, 1e-6) && close(l.gamma, m.gamma, 1e-6)))
    cg::fuzz::finding("cell changed in the CIF round trip:\n" + cif);
  for (size_t i = 0; i < c.frac.size(); ++i)
    for (int k = 0; k < 3; ++k)
      if (frac_gap(c.frac[i][k], back.frac[i][k]) > 1e-6) cg::fuzz::finding("site moved in the CIF round trip:\n" + cif);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view cif(reinterpret_cast<const char*>(data), size);
  std::vector<cg::CifBlockResult> blocks;
  try {
    blocks = cg::parse_cif_blocks(cif, "fuzz");
  } catch (const std::exception& e) {
    cg::fuzz::finding(std::string("parse_cif_blocks threw instead of returning a failed result: ") + e.what());
  }
  for (const auto& b : blocks) {
    if (!b.ok) {
      if (b.reason.empty()) cg::fuzz::finding("block refused without a reason");
      continue;
    }
    const cg::Crystal& c = b.crystal;
    const cg::Lattice& l = c.lattice;
    for (double v : {l.a, l.b, l.c, l.alpha, l.beta, l.gamma})
      if (!(std::isfinite(v) && v > 0)) cg::fuzz::finding("accepted a cell parameter that is not finite and > 0");
    if (!(cg::cell_volume(l) > 0)) cg::fuzz::finding("accepted a cell of no volume");
    if (c.species.empty() || c.species.size() != c.frac.size()) cg::fuzz::finding("site lists disagree");
    if (!c.oxidation.empty() && c.oxidation.size() != c.species.size())
      cg::fuzz::finding("oxidation states for other sites than the crystal's");
    for (const auto& f : c.frac)
      for (double x : f)
        if (!std::isfinite(x)) cg::fuzz::finding("accepted a coordinate that is not finite");
    check_round_trip(c);
  }
  return 0;
}
