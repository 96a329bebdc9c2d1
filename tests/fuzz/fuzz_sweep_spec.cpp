// Fuzz harness: the cgsweep file parser (launch/sweep_spec.h), YAML written by users. Checks: only cg::Error escapes
// (yaml-cpp's conversions must become errors naming the entry); an accepted sweep has points, every point has a
// distinct folder-safe name, and its overrides are key=value words with a dotted key.
#include <cstdint>
#include <set>
#include <string>

#include "launch/sweep_spec.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  cg::sweep::SweepSpec spec;
  if (!cg::fuzz::accepts([&] { spec = cg::sweep::parse_sweep_spec(yaml, "/tmp/fuzz_sweep.yaml"); })) return 0;
  if (spec.points.empty()) cg::fuzz::finding("an accepted sweep has no points");
  std::set<std::string> names;
  for (const auto& p : spec.points) {
    const std::string name = cg::sweep::point_name(spec.keys, p);
    if (name.empty() || name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+_-")
                            != std::string::npos)
      cg::fuzz::finding("point name '" + name + "' is not folder-safe");
    if (!names.insert(name).second) cg::fuzz::finding("two points share the folder " + name);
    for (const std::string& o : cg::sweep::point_overrides(spec, p)) {
      const size_t eq = o.find('=');
      if (eq == std::string::npos || o.find('.') > eq) cg::fuzz::finding("override '" + o + "' is not section.key=value");
    }
  }
  return 0;
}
