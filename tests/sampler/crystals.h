// Hand-built cells shared by the evaluation tests.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "data/crystal.h"

namespace cg::test {

// A cubic cell of edge a (Å) with the given sites.
inline Crystal cubic(double a, std::vector<std::string> species, std::vector<Vec3> frac) {
  Crystal c;
  c.lattice = {a, a, a, 90, 90, 90};
  c.species = std::move(species);
  c.frac = std::move(frac);
  return c;
}

}  // namespace cg::test
