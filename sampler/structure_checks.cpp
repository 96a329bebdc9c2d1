#include "sampler/structure_checks.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cg {

namespace {

constexpr int kMaxShift = 64;  // cap for absurdly flat cells; those fail the volume check anyway

// Smallest |(df + n) M| over integer shifts n, df already wrapped into [-0.5, 0.5); `bound` is a known upper bound
// of the answer, which limits the shifts: |df_k + n_k| * width_k <= |r| < bound.
double shortest_image(const Mat3& m, const Vec3& widths, const Vec3& df, double bound, bool skip_zero) {
  int range[3];
  for (int k = 0; k < 3; ++k) {
    const double r = widths[k] > 0 ? bound / widths[k] + 0.5 : kMaxShift;
    range[k] = static_cast<int>(std::min<double>(kMaxShift, std::ceil(r)));
  }
  double best2 = bound * bound;
  for (int n0 = -range[0]; n0 <= range[0]; ++n0)
    for (int n1 = -range[1]; n1 <= range[1]; ++n1)
      for (int n2 = -range[2]; n2 <= range[2]; ++n2) {
        if (skip_zero && n0 == 0 && n1 == 0 && n2 == 0) continue;
        const Vec3 f = {df[0] + n0, df[1] + n1, df[2] + n2};
        const Vec3 r = frac_to_cart(m, f);
        best2 = std::min(best2, dot(r, r));
      }
  return std::sqrt(best2);
}

double wrap_half(double x) { return x - std::round(x); }

}  // namespace

Vec3 cell_widths(const Mat3& m) {
  const double vol = std::fabs(dot(m[0], cross(m[1], m[2])));
  const double w0 = vol / std::max(1e-300, norm(cross(m[1], m[2])));
  const double w1 = vol / std::max(1e-300, norm(cross(m[2], m[0])));
  const double w2 = vol / std::max(1e-300, norm(cross(m[0], m[1])));
  return {w0, w1, w2};
}

double periodic_distance(const Crystal& c, size_t i, size_t j) {
  const Mat3 m = lattice_matrix(c.lattice);
  const Vec3 w = cell_widths(m);
  if (i == j) {
    // Shortest nonzero lattice vector; the shortest of a, b, c bounds it.
    const double bound = std::min({norm(m[0]), norm(m[1]), norm(m[2])}) * (1 + 1e-12);
    return shortest_image(m, w, {0, 0, 0}, bound, /*skip_zero=*/true);
  }
  const Vec3 df = {wrap_half(c.frac[j][0] - c.frac[i][0]), wrap_half(c.frac[j][1] - c.frac[i][1]),
                   wrap_half(c.frac[j][2] - c.frac[i][2])};
  const double bound = norm(frac_to_cart(m, df)) * (1 + 1e-12) + 1e-12;
  return shortest_image(m, w, df, bound, /*skip_zero=*/false);
}

double min_periodic_distance(const Crystal& c) {
  const size_t n = c.num_sites();
  if (n == 0) return std::numeric_limits<double>::infinity();
  const Mat3 m = lattice_matrix(c.lattice);
  const Vec3 w = cell_widths(m);
  if (std::min({w[0], w[1], w[2]}) < 1e-9) return 0.0;
  // One global upper bound (shortest lattice vector, and every pair's unshifted wrapped distance) keeps the shift
  // range small for all pairs at once.
  double bound = std::min({norm(m[0]), norm(m[1]), norm(m[2])});
  std::vector<Vec3> dfs;
  dfs.reserve(n * (n - 1) / 2);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      const Vec3 df = {wrap_half(c.frac[j][0] - c.frac[i][0]), wrap_half(c.frac[j][1] - c.frac[i][1]),
                       wrap_half(c.frac[j][2] - c.frac[i][2])};
      dfs.push_back(df);
      bound = std::min(bound, norm(frac_to_cart(m, df)));
    }
  const double b = bound * (1 + 1e-12) + 1e-12;
  double best = shortest_image(m, w, {0, 0, 0}, b, /*skip_zero=*/true);
  for (const Vec3& df : dfs) best = std::min(best, shortest_image(m, w, df, b, /*skip_zero=*/false));
  return best;
}

StructureVerdict structure_validity(const Crystal& c, double min_distance, double min_volume) {
  StructureVerdict v;
  v.volume = cell_volume(c.lattice);
  if (!std::isfinite(v.volume)) v.volume = 0;
  if (c.num_sites() == 0) {
    v.reason = "no atoms";
    return v;
  }
  v.min_distance = min_periodic_distance(c);
  if (v.volume < min_volume) {
    v.reason = "volume too small";
  } else if (v.min_distance < min_distance) {
    v.reason = "atoms too close";
  } else {
    v.valid = true;
  }
  return v;
}

}  // namespace cg
