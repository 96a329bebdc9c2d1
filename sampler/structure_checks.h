// Structural validity (CDVAE's structure_validity): every periodic interatomic distance >= min_distance and the
// cell volume >= min_volume. Distances are minimum-image over as many neighbouring cells as the cell's perpendicular
// widths require, so skewed cells are handled exactly; a site's distance to its own images (a lattice vector) counts.
#pragma once
#include <vector>

#include "data/crystal.h"

namespace cg {

// Perpendicular widths of the cell (distance between opposite faces), Å; V / |b x c|, V / |c x a|, V / |a x b|.
Vec3 cell_widths(const Mat3& m);

// Shortest distance between two sites (or a site and its own images when i == j), over all lattice shifts. Å.
double periodic_distance(const Crystal& c, size_t i, size_t j);

// Shortest distance over all pairs of sites including self-images; +inf for an empty crystal, 0 for a flat cell.
double min_periodic_distance(const Crystal& c);

struct StructureVerdict {
  bool valid = false;
  double min_distance = 0;  // Å
  double volume = 0;        // Å^3
  const char* reason = "";  // "" | "atoms too close" | "volume too small" | "no atoms"
};

StructureVerdict structure_validity(const Crystal& c, double min_distance = 0.5, double min_volume = 0.1);

}  // namespace cg
