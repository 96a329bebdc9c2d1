// spglib wrapper: cell in spglib's layout (lattice vectors as columns, fractional positions, atomic numbers).
#include "sampler/symmetry.h"

#include <vector>

#include "data/elements.h"

#ifdef CG_HAVE_SPGLIB
#include <spglib.h>
#endif

namespace cg {

bool have_spglib() {
#ifdef CG_HAVE_SPGLIB
  return true;
#else
  return false;
#endif
}

std::optional<SpaceGroup> space_group(const Crystal& c, double symprec, double angle_tolerance) {
#ifdef CG_HAVE_SPGLIB
  if (c.num_sites() == 0) return std::nullopt;
  const Mat3 m = lattice_matrix(c.lattice);  // rows a, b, c
  double lattice[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) lattice[i][j] = m[size_t(j)][size_t(i)];  // spglib: columns are a, b, c
  std::vector<double> pos(3 * c.num_sites());
  std::vector<int> types(c.num_sites());
  for (size_t s = 0; s < c.num_sites(); ++s) {
    for (int k = 0; k < 3; ++k) pos[3 * s + size_t(k)] = c.frac[s][size_t(k)];
    types[s] = atomic_number(c.species[s]);
    if (types[s] == 0) return std::nullopt;
  }
  char symbol[11] = {};
  const int number = spgat_get_international(symbol, lattice, reinterpret_cast<double(*)[3]>(pos.data()),
                                             types.data(), int(c.num_sites()), symprec, angle_tolerance);
  if (number < 1 || number > 230) return std::nullopt;
  return SpaceGroup{number, symbol};
#else
  (void)c;
  (void)symprec;
  (void)angle_tolerance;
  return std::nullopt;
#endif
}

}  // namespace cg
