// Fuzz harness: the crystal text parser (data/crystal_text.h), which reads every model completion cgsample and
// cgeval see, so arbitrary bytes are its everyday input. Checks: no crash, no exception (the bool form never
// throws); an accepted text gives a sane crystal; its canonical text, when accepted again, is a fixed point.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/crystal_text.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

void check_sane(const cg::Crystal& c, std::string_view text) {
  const cg::Lattice& l = c.lattice;
  for (double v : {l.a, l.b, l.c})
    if (!(std::isfinite(v) && v > 0)) cg::fuzz::finding("accepted a length that is not finite and > 0: " + std::string(text));
  for (double v : {l.alpha, l.beta, l.gamma})
    if (!(v > 0 && v < 180)) cg::fuzz::finding("accepted an angle outside (0, 180): " + std::string(text));
  if (c.species.empty() || c.species.size() != c.frac.size()) cg::fuzz::finding("site lists disagree: " + std::string(text));
  for (const auto& f : c.frac)
    for (double x : f)
      if (!(x >= 0 && x <= 1)) cg::fuzz::finding("accepted a coordinate outside [0, 1]: " + std::string(text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cg::Crystal c;
  std::string error;
  if (!cg::parse_crystal_text(text, &c, &error)) {
    if (error.empty()) cg::fuzz::finding("refused without a reason");
    return 0;
  }
  check_sane(c, text);
  // Angles rounded (the default): printing is a fixed point after one pass. (data.angle_mode=truncate is not: it
  // truncates angles recomputed from the lattice matrix, so 35 may print as 34, then 33, as the reference does.)
  const std::string canonical = cg::crystal_to_text(c);
  cg::Crystal again;
  // A length under 0.05 prints as "0.0", which the parser rightly refuses; the fixed point is for what parses.
  if (!cg::parse_crystal_text(canonical, &again, &error)) return 0;
  check_sane(again, canonical);
  if (cg::crystal_to_text(again) != canonical)
    cg::fuzz::finding("canonical text is not a fixed point:\n" + canonical + "\n--- became ---\n" +
                      cg::crystal_to_text(again));
  cg::TextOptions truncate;
  truncate.angles = cg::AngleMode::kTruncate;
  cg::crystal_to_text(c, truncate);
  return 0;
}
