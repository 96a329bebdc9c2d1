#include "data/crystal.h"

#include <algorithm>
#include <cmath>

namespace cg {

namespace {
constexpr double kDeg = M_PI / 180.0;
}

Mat3 lattice_matrix(const Lattice& l) {
  // pymatgen Lattice.from_parameters(vesta=False).
  const double ca = std::cos(l.alpha * kDeg), cb = std::cos(l.beta * kDeg), cg_ = std::cos(l.gamma * kDeg);
  const double sa = std::sin(l.alpha * kDeg), sb = std::sin(l.beta * kDeg);
  double val = (ca * cb - cg_) / (sa * sb);
  val = std::max(-1.0, std::min(1.0, val));
  const double gamma_star = std::acos(val);
  Mat3 m{};
  m[0] = {l.a * sb, 0.0, l.a * cb};
  m[1] = {-l.b * sa * std::cos(gamma_star), l.b * sa * std::sin(gamma_star), l.b * ca};
  m[2] = {0.0, 0.0, l.c};
  return m;
}

double cell_volume(const Lattice& l) {
  const Mat3 m = lattice_matrix(l);
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  return std::fabs(det);
}

bool forms_cell(const Lattice& l) { return cell_volume(l) > 1e-6 * l.a * l.b * l.c; }

Vec3 frac_to_cart(const Mat3& m, const Vec3& f) {
  Vec3 r{};
  for (int j = 0; j < 3; ++j) r[j] = f[0] * m[0][j] + f[1] * m[1][j] + f[2] * m[2][j];
  return r;
}

double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }

Lattice lattice_parameters(const Mat3& m) {
  auto angle = [&](int j, int k) {  // pymatgen: arccos(abs_cap(dot / (|m_j| |m_k|))) * 180 / pi
    const double c = std::max(-1.0, std::min(1.0, dot(m[j], m[k]) / (norm(m[j]) * norm(m[k]))));
    return std::acos(c) * 180.0 / M_PI;
  };
  return {norm(m[0]), norm(m[1]), norm(m[2]), angle(1, 2), angle(2, 0), angle(0, 1)};
}

double wrap01(double x) {
  double w = x - std::floor(x);
  if (w >= 1.0) w = 0.0;  // floating edge: x = -1e-17 gives 1.0 after subtraction
  return w;
}

}  // namespace cg
