// Reads pairs of crystals from stdin and prints our matcher's decision per pair, for matcher_reference.py to compare
// with pymatgen's StructureMatcher().fit. Input: one crystal per line, two lines per pair:
//   a b c alpha beta gamma  El x y z  El x y z ...      (Å, degrees, fractional coordinates)
// Output, one line per pair: "fit n1 n2" (fit 0/1; n1, n2 = site counts of the primitive cells the matcher found).
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "sampler/structure_match.h"

namespace {
bool read_crystal(const std::string& line, cg::Crystal* c) {
  std::istringstream in(line);
  if (!(in >> c->lattice.a >> c->lattice.b >> c->lattice.c >> c->lattice.alpha >> c->lattice.beta >>
        c->lattice.gamma))
    return false;
  std::string el;
  cg::Vec3 f;
  while (in >> el >> f[0] >> f[1] >> f[2]) {
    c->species.push_back(el);
    c->frac.push_back(f);
  }
  return !c->species.empty();
}
}  // namespace

int main() {
  std::string l1, l2;
  long n = 0;
  while (std::getline(std::cin, l1) && std::getline(std::cin, l2)) {
    cg::Crystal c1, c2;
    ++n;
    if (!read_crystal(l1, &c1) || !read_crystal(l2, &c2)) {
      std::fprintf(stderr, "matcher_dump: unreadable pair %ld\n", n);
      return 2;
    }
    const cg::StructureFingerprint f1 = cg::fingerprint(c1), f2 = cg::fingerprint(c2);
    std::printf("%d %zu %zu\n", static_cast<int>(cg::structures_match(f1, f2)), f1.frac.size(), f2.frac.size());
  }
  return 0;
}
