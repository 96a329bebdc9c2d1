// Reads lattices from stdin and prints our Niggli reduction of each, for niggli_reference.py to compare with
// pymatgen's Lattice.get_niggli_reduced_lattice(). Input: one lattice per line, the rows a, b, c of its matrix
// (9 numbers, Å, Cartesian). Output: one line per lattice, the 9 numbers of the reduced basis (rows), full precision.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "sampler/structure_match.h"

int main() {
  std::string line;
  long n = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    std::istringstream in(line);
    cg::Mat3 m{};
    for (auto& row : m)
      for (double& x : row)
        if (!(in >> x)) {
          std::fprintf(stderr, "niggli_dump: line %ld is not 9 numbers: %s\n", n, line.c_str());
          return 2;
        }
    const cg::Mat3 r = cg::niggli_reduced_lattice(m);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) std::printf("%.17g%c", r[i][j], i == 2 && j == 2 ? '\n' : ' ');
  }
  return 0;
}
