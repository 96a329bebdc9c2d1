// Prints what cg::parse_cif reads, for cif_reference.py to compare with pymatgen's CifParser.
//   cif_dump FILE.cif ...        one line per file: "ok a b c alpha beta gamma El x y z El x y z ..." or "error <reason>"
//   cif_dump --csv SPLIT.csv.gz  the same line per crystal of an MP-20 split (CIF column), skipped rows as "error"
#include <cstdio>
#include <cstring>
#include <string>

#include "data/cif.h"
#include "data/csv.h"
#include "data/mp20.h"

namespace {
void print(const cg::Crystal& c) {
  const cg::Lattice& l = c.lattice;
  std::printf("ok %.17g %.17g %.17g %.17g %.17g %.17g", l.a, l.b, l.c, l.alpha, l.beta, l.gamma);
  for (size_t i = 0; i < c.num_sites(); ++i)
    std::printf(" %s %.17g %.17g %.17g", c.species[i].c_str(), c.frac[i][0], c.frac[i][1], c.frac[i][2]);
  std::printf("\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--csv") == 0) {
    const cg::Mp20Split split = cg::read_mp20(argv[2]);
    for (const auto& c : split.crystals) print(c);
    for (const auto& s : split.skipped) std::printf("error %s\n", s.reason.c_str());
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    cg::Crystal c;
    std::string reason;
    if (cg::parse_cif(cg::read_maybe_gz(argv[i]), argv[i], &c, &reason))
      print(c);
    else
      std::printf("error %s\n", reason.c_str());
  }
  return 0;
}
