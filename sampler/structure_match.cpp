#include "sampler/structure_match.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "sampler/smact.h"
#include "sampler/structure_checks.h"

namespace cg {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Row-vector convention throughout: cart = frac * M, rows of M are the lattice vectors a, b, c.
struct Cell {
  Mat3 m{};
  std::vector<Vec3> frac;  // [0, 1)
  std::vector<int> el;     // element index per site
};

Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
double det(const Mat3& m) { return dot(m[0], cross(m[1], m[2])); }
Mat3 inverse(const Mat3& m) {
  const double d = det(m);
  const Vec3 c0 = cross(m[1], m[2]), c1 = cross(m[2], m[0]), c2 = cross(m[0], m[1]);
  // m * [c0 c1 c2] (as columns) = d * I, so the inverse has c0, c1, c2 as columns / d.
  Mat3 inv{};
  for (int i = 0; i < 3; ++i) inv[i] = {c0[i] / d, c1[i] / d, c2[i] / d};
  return inv;
}
double angle_deg(const Vec3& a, const Vec3& b) {
  const double c = std::clamp(dot(a, b) / (norm(a) * norm(b)), -1.0, 1.0);
  return std::acos(c) * 180.0 / kPi;
}
Vec3 wrap(const Vec3& f) { return {wrap01(f[0]), wrap01(f[1]), wrap01(f[2])}; }
Vec3 wrap_half(const Vec3& d) {  // to [-0.5, 0.5)
  return {d[0] - std::round(d[0]), d[1] - std::round(d[1]), d[2] - std::round(d[2])};
}

// Re-express the sites of `c` in the basis `m` (same lattice), wrapped into [0, 1).
Cell rebase(const Cell& c, const Mat3& m) {
  Cell r{m, {}, c.el};
  const Mat3 inv = inverse(m);
  for (const Vec3& f : c.frac) r.frac.push_back(wrap(frac_to_cart(inv, frac_to_cart(c.m, f))));
  return r;
}

// a * b for 3x3 matrices.
Mat3 mul(const Mat3& a, const Mat3& b) {
  Mat3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
  return r;
}
Mat3 transpose(const Mat3& m) {
  Mat3 t{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) t[i][j] = m[j][i];
  return t;
}

// The start of pymatgen's Niggli reduction: its LLL reduction (Lattice._calculate_lll, delta 0.75) transcribed, on
// rows instead of pymatgen's columns. The Niggli parameters would not depend on the start but for pymatgen's quirk
// (see niggli()), which from another start can end on another frame. With the greedy shortest-vector start used
// before, 80 of 2,000 random lattices ended with one vector's sign flipped against pymatgen's (mixed acute and obtuse
// angles: a mirrored frame) and 52 of 840 cells with ties (a = b = c, fcc) on other bases (90/60/120 degrees where
// pymatgen has fcc's 60/60/60); tests/sampler/niggli_reference.py. Rounding is half to even, as Python's round().
Mat3 lll(Mat3 a) {
  constexpr double delta = 0.75;
  Mat3 bs{};               // Gram-Schmidt vectors of a
  double u[3][3] = {};     // Gram-Schmidt coefficients, u[i][j] = a_i . bs_j / |bs_j|^2 (j < i)
  double m[3] = {};        // |bs_i|^2
  auto gram_schmidt_row = [&](int i) {  // u[i][0..i), bs[i], m[i] from a[i] and the earlier bs
    for (int j = 0; j < i; ++j) u[i][j] = dot(a[i], bs[j]) / m[j];
    bs[i] = a[i];
    for (int j = 0; j < i; ++j) bs[i] = sub(bs[i], scaled(bs[j], u[i][j]));
    m[i] = dot(bs[i], bs[i]);
  };
  for (int i = 0; i < 3; ++i) gram_schmidt_row(i);
  int k = 2;  // pymatgen's 1-based index of the vector being reduced
  while (k <= 3) {
    for (int i = k - 1; i >= 1; --i) {  // size reduction of a[k-1] against a[i-1]
      const double q = std::nearbyint(u[k - 1][i - 1]);
      if (q != 0) {
        a[k - 1] = sub(a[k - 1], scaled(a[i - 1], q));
        for (int j = 0; j < i - 1; ++j) u[k - 1][j] -= q * u[i - 1][j];
        u[k - 1][i - 1] -= q;
      }
    }
    if (dot(bs[k - 1], bs[k - 1]) >= (delta - u[k - 1][k - 2] * u[k - 1][k - 2]) * dot(bs[k - 2], bs[k - 2])) {
      ++k;  // Lovasz condition holds
    } else {
      std::swap(a[k - 1], a[k - 2]);
      gram_schmidt_row(k - 2);
      gram_schmidt_row(k - 1);
      if (k > 2) {
        --k;
      } else {  // k == 2: the third vector's coefficients on the two new Gram-Schmidt vectors
        for (int j = 0; j < 2; ++j) u[2][j] = dot(a[2], bs[j]) / m[j];
      }
    }
  }
  return a;
}

// The Niggli cell, pymatgen's Lattice.get_niggli_reduced_lattice(tol=1e-5) transcribed (Grosse-Kunstleve, Sauter &
// Adams 2004, steps A1-A8 on the metric tensor G, epsilon 1e-5 V^(1/3)), with the basis carried along each step
// (pymatgen instead looks for a basis with the final parameters: the first within a relative e in length and 1 degree
// in angle, which now and then is another basis than the loop's). Shortest vectors alone are not enough: where
// several bases are equally short (here b = c) they differ in their angles, and the matcher takes the second
// crystal's angles as its target, so another choice than pymatgen's turns an angle 5.2 degrees off into one 4.9 off
// (test_structure.cpp, CeZn2). pymatgen's quirks are kept: after A1 the A2 test and the signs of A3/A4 use the
// parameters from before A1, so the loop can end on a frame that breaks Niggli's conditions (mixed acute and obtuse
// angles; 1 in 20 random lattices) and that depends on the start (hence lll(), pymatgen's).
Mat3 niggli(Mat3 b) {
  const double e = 1e-5 * std::cbrt(std::fabs(det(b)));
  Mat3 g = mul(b, transpose(b));
  auto apply = [&](const Mat3& m) {  // G -> M^T G M, basis rows -> M^T B
    g = mul(transpose(m), mul(g, m));
    b = mul(transpose(m), b);
  };
  auto sign = [](double x) { return x / std::fabs(x); };
  for (int iter = 0; iter < 100; ++iter) {
    double A = g[0][0], B = g[1][1], C = g[2][2], E = 2 * g[1][2], N = 2 * g[0][2], Y = 2 * g[0][1];
    if (A > B + e || (std::fabs(A - B) < e && std::fabs(E) > std::fabs(N) + e))
      apply({Vec3{0, -1, 0}, Vec3{-1, 0, 0}, Vec3{0, 0, -1}});  // A1
    if (B > C + e || (std::fabs(B - C) < e && std::fabs(N) > std::fabs(Y) + e)) {
      apply({Vec3{-1, 0, 0}, Vec3{0, 0, -1}, Vec3{0, -1, 0}});  // A2
      continue;
    }
    const int l = std::fabs(E) < e ? 0 : (E > 0 ? 1 : -1);
    const int m = std::fabs(N) < e ? 0 : (N > 0 ? 1 : -1);
    const int n = std::fabs(Y) < e ? 0 : (Y > 0 ? 1 : -1);
    if (l * m * n == 1) {  // A3
      apply({Vec3{l == -1 ? -1.0 : 1.0, 0, 0}, Vec3{0, m == -1 ? -1.0 : 1.0, 0}, Vec3{0, 0, n == -1 ? -1.0 : 1.0}});
    } else {  // A4 (l m n is 0 or -1)
      int i = l == 1 ? -1 : 1, j = m == 1 ? -1 : 1, k = n == 1 ? -1 : 1;
      if (i * j * k == -1) {
        if (n == 0)
          k = -1;
        else if (m == 0)
          j = -1;
        else if (l == 0)
          i = -1;
      }
      apply({Vec3{double(i), 0, 0}, Vec3{0, double(j), 0}, Vec3{0, 0, double(k)}});
    }
    A = g[0][0], B = g[1][1], C = g[2][2], E = 2 * g[1][2], N = 2 * g[0][2], Y = 2 * g[0][1];
    if (std::fabs(E) > B + e || (std::fabs(E - B) < e && 2 * N < Y - e) || (std::fabs(E + B) < e && Y < -e)) {
      apply({Vec3{1, 0, 0}, Vec3{0, 1, -sign(E)}, Vec3{0, 0, 1}});  // A5
      continue;
    }
    if (std::fabs(N) > A + e || (std::fabs(A - N) < e && 2 * E < Y - e) || (std::fabs(A + N) < e && Y < -e)) {
      apply({Vec3{1, 0, -sign(N)}, Vec3{0, 1, 0}, Vec3{0, 0, 1}});  // A6
      continue;
    }
    if (std::fabs(Y) > A + e || (std::fabs(A - Y) < e && 2 * E < N - e) || (std::fabs(A + Y) < e && N < -e)) {
      apply({Vec3{1, -sign(Y), 0}, Vec3{0, 1, 0}, Vec3{0, 0, 1}});  // A7
      continue;
    }
    if (E + N + Y + A + B < -e || (std::fabs(E + N + Y + A + B) < e && e < Y + (A + N) * 2)) {
      apply({Vec3{1, 0, 1}, Vec3{0, 1, 1}, Vec3{0, 0, 1}});  // A8
      continue;
    }
    break;
  }
  if (det(b) < 0)  // pymatgen negates a left-handed result
    for (auto& v : b) v = scaled(v, -1);
  return b;
}

// pymatgen's get_reduced_structure(): the Niggli cell, sites re-expressed in it.
Cell reduce_basis(const Cell& c) { return rebase(c, niggli(lll(c.m))); }

}  // namespace

Mat3 niggli_reduced_lattice(const Mat3& m) { return niggli(lll(m)); }

namespace {

// The primitive cell, pymatgen's Structure.get_primitive_structure(tolerance) transcribed (pymatgen 2022.11):
// sites are grouped by element (alphabetical, as pymatgen sorts them by species string). Candidate translations
// (min_vecs) are the vectors from the first site of the smallest group to the others of that group that map every
// site of every group onto a site of its group within 2 * tol / (a, b, c) per fractional axis. Then, for each
// determinant d dividing the gcd of the group sizes (ascending) and each of its Hermite normal forms M, the sublattice
// whose basis is M^-1 (in the cell's fractional coordinates) is tried when every row of M^-1 lies within
// tol / (a, b, c) of a min_vec: in the new cell's coordinates (f M) the sites of each group must fall into cliques
// of exactly d sites closer than tol / (new a, b, c) on every axis (and no two of them closer than 2 tol on every
// axis in the old cell). The first valid cell replaces the sites of each clique by their mean and is reduced again,
// recursively.
Cell primitive(const Cell& c, double tol, const std::vector<std::string>& elements) {
  const size_t n_el = elements.size();
  std::vector<int> by_name(n_el);
  std::iota(by_name.begin(), by_name.end(), 0);
  std::sort(by_name.begin(), by_name.end(), [&](int x, int y) { return elements[x] < elements[y]; });
  std::vector<std::vector<Vec3>> gf;  // fractional coordinates per group, sites in cell order
  std::vector<int> gel;               // element of each group
  for (int e : by_name) {
    std::vector<Vec3> f;
    for (size_t k = 0; k < c.frac.size(); ++k)
      if (c.el[k] == e) f.push_back(c.frac[k]);
    if (!f.empty()) {
      gf.push_back(std::move(f));
      gel.push_back(e);
    }
  }
  if (gf.empty()) return c;
  auto within = [](const Vec3& d, const Vec3& t) {  // |d - round(d)| < t on every axis
    for (int a = 0; a < 3; ++a)
      if (std::fabs(d[a] - std::round(d[a])) >= t[a]) return false;
    return true;
  };
  const Lattice lp = lattice_parameters(c.m);
  const Vec3 super_ftol = {tol / lp.a, tol / lp.b, tol / lp.c};
  const Vec3 super_ftol_2 = scaled(super_ftol, 2);

  size_t gmin = 0;
  for (size_t g = 1; g < gf.size(); ++g)
    if (gf[g].size() < gf[gmin].size()) gmin = g;
  std::vector<Vec3> min_vecs;
  for (const Vec3& f : gf[gmin]) min_vecs.push_back(sub(f, gf[gmin][0]));
  for (const auto& g : gf)
    for (const Vec3& f : g) {
      std::vector<Vec3> kept;
      for (const Vec3& v : min_vecs)
        if (std::any_of(g.begin(), g.end(), [&](const Vec3& u) { return within(sub(v, sub(u, f)), super_ftol_2); }))
          kept.push_back(v);
      min_vecs.swap(kept);
    }

  // Sites of a group closer than 2 tol on every axis may not be merged (except a site with itself).
  std::vector<std::vector<std::vector<char>>> non_nbrs(gf.size());
  int num_fu = 0;
  for (size_t g = 0; g < gf.size(); ++g) {
    const size_t m = gf[g].size();
    num_fu = std::gcd(num_fu, static_cast<int>(m));
    non_nbrs[g].assign(m, std::vector<char>(m, 0));
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < m; ++j) non_nbrs[g][i][j] = i == j || !within(sub(gf[g][j], gf[g][i]), super_ftol_2);
  }

  auto divisors = [](int x) {
    std::vector<int> d;
    for (int i = 1; i <= x; ++i)
      if (x % i == 0) d.push_back(i);
    return d;
  };
  for (int det_m : divisors(num_fu)) {
    if (det_m == 1) continue;
    for (int a : divisors(det_m))
      for (int e : divisors(det_m / a)) {
        const int gg = det_m / a / e;
        for (int b = 0; b < a; ++b)
          for (int cc = 0; cc < a; ++cc)
            for (int f = 0; f < e; ++f) {
              const Mat3 m = {Vec3{double(a), double(b), double(cc)}, Vec3{0, double(e), double(f)},
                              Vec3{0, 0, double(gg)}};
              const Mat3 inv_m = inverse(m);
              bool near = true;
              for (int r = 0; r < 3 && near; ++r)
                near = std::any_of(min_vecs.begin(), min_vecs.end(),
                                   [&](const Vec3& v) { return within(sub(inv_m[r], v), super_ftol); });
              if (!near) continue;
              const Mat3 new_m = {frac_to_cart(c.m, inv_m[0]), frac_to_cart(c.m, inv_m[1]),
                                  frac_to_cart(c.m, inv_m[2])};
              const Vec3 ftol = {tol / norm(new_m[0]), tol / norm(new_m[1]), tol / norm(new_m[2])};
              Cell p{new_m, {}, {}};
              bool valid = true;
              for (size_t g = 0; g < gf.size() && valid; ++g) {
                const size_t ng = gf[g].size();
                std::vector<Vec3> all_frac(ng);
                for (size_t i = 0; i < ng; ++i) all_frac[i] = frac_to_cart(m, gf[g][i]);
                std::vector<std::vector<char>> grp(ng, std::vector<char>(ng));
                for (size_t i = 0; i < ng; ++i)
                  for (size_t j = 0; j < ng; ++j)
                    grp[i][j] = within(sub(all_frac[j], all_frac[i]), ftol) && non_nbrs[g][i][j];
                for (size_t j = 0; j < ng && valid; ++j) {
                  int col = 0;
                  for (size_t i = 0; i < ng; ++i) col += grp[i][j];
                  valid = col == det_m;
                }
                for (size_t i = 0; i < ng && valid; ++i)
                  for (size_t j = 0; j < ng && valid; ++j)
                    for (size_t k = 0; k < ng && valid; ++k)
                      if (grp[i][j] && grp[i][k]) valid = grp[j][k];
                if (!valid) break;
                std::vector<char> added(ng, 0);
                for (size_t i = 0; i < ng; ++i) {
                  if (added[i]) continue;
                  Vec3 coords{};
                  int members = 0;
                  for (size_t j = 0; j < ng; ++j) {
                    if (!grp[i][j]) continue;
                    added[j] = 1;
                    const Vec3 fj = wrap(all_frac[j]);
                    if (members == 0) {
                      coords = fj;
                    } else {
                      const Vec3 off = wrap_half(sub(fj, coords));
                      for (int x = 0; x < 3; ++x) coords[x] += off[x] / (members + 1);
                    }
                    ++members;
                  }
                  p.frac.push_back(coords);
                  p.el.push_back(gel[g]);
                }
              }
              if (valid) return primitive(p, tol, elements);
            }
      }
  }
  return c;
}

// Minimum-cost perfect assignment (Hungarian algorithm, O(n^3)): row i -> column assign[i].
std::vector<int> min_cost_assignment(const std::vector<std::vector<double>>& cost) {
  const int n = static_cast<int>(cost.size());
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<int> assign(n, -1);
  for (int j = 1; j <= n; ++j)
    if (p[j] > 0) assign[p[j] - 1] = j - 1;
  return assign;
}

// Step 5 for one lattice mapping: `a` holds A's sites in the basis that matches B, `avg` is the average lattice.
bool sites_match(const Cell& a, const Cell& b, const Mat3& avg, const MatchTolerance& tol) {
  const std::vector<Vec3>& fa = a.frac;
  const size_t n = fa.size();
  const double norm_inv = std::cbrt(n / std::fabs(det(avg)));  // 1 / (V/N)^(1/3)
  const double reach2 = std::pow(2 * tol.stol / norm_inv, 2);  // no site of a match is further before centring
  std::vector<int> count;
  for (int e : b.el) {
    if (e >= static_cast<int>(count.size())) count.resize(e + 1, 0);
    ++count[e];
  }
  int rare = -1;
  for (int e = 0; e < static_cast<int>(count.size()); ++e)
    if (count[e] > 0 && (rare < 0 || count[e] < count[rare])) rare = e;
  const size_t i2 = std::find(b.el.begin(), b.el.end(), rare) - b.el.begin();
  constexpr double kForbidden = 1e18;  // pairs of different elements
  std::vector<std::vector<double>> d2(n, std::vector<double>(n));
  std::vector<std::vector<Vec3>> vec(n, std::vector<Vec3>(n));
  for (size_t j1 = 0; j1 < n; ++j1) {
    if (a.el[j1] != rare) continue;  // A and B share the element indices
    const Vec3 t = sub(fa[j1], b.frac[i2]);
    bool reachable = true;
    for (size_t i = 0; i < n && reachable; ++i) {
      double row_min = kForbidden;
      for (size_t j = 0; j < n; ++j) {
        d2[i][j] = kForbidden;
        if (b.el[i] != a.el[j]) continue;
        const Vec3 d = wrap_half(sub(fa[j], {b.frac[i][0] + t[0], b.frac[i][1] + t[1], b.frac[i][2] + t[2]}));
        for (int x = -1; x <= 1; ++x)
          for (int y = -1; y <= 1; ++y)
            for (int z = -1; z <= 1; ++z) {
              const Vec3 v = frac_to_cart(avg, {d[0] + x, d[1] + y, d[2] + z});
              const double l2 = dot(v, v);
              if (l2 < d2[i][j]) {
                d2[i][j] = l2;
                vec[i][j] = v;
              }
            }
        row_min = std::min(row_min, d2[i][j]);
      }
      reachable = row_min <= reach2;
    }
    if (!reachable) continue;
    const std::vector<int> assign = min_cost_assignment(d2);
    Vec3 mean{};
    for (size_t i = 0; i < n; ++i)
      for (int a = 0; a < 3; ++a) mean[a] += vec[i][assign[i]][a] / n;
    double worst = 0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, norm(sub(vec[i][assign[i]], mean)));
    if (worst * norm_inv < tol.stol) return true;
  }
  return false;
}

bool cells_match(Cell a, Cell b, const MatchTolerance& tol) {
  if (a.frac.size() != b.frac.size() || a.frac.empty()) return false;
  if (tol.scale) {
    const double r = std::pow(std::fabs(det(b.m)) / std::fabs(det(a.m)), 1.0 / 6);
    for (int i = 0; i < 3; ++i) {
      a.m[i] = scaled(a.m[i], r);
      b.m[i] = scaled(b.m[i], 1 / r);
    }
  }
  const Lattice lb = lattice_parameters(b.m);
  const double target[3] = {lb.a, lb.b, lb.c};
  const double radius = std::max({lb.a, lb.b, lb.c}) * (1 + tol.ltol);
  // Lattice vectors of A (integer coordinates n) whose lengths fit each of B's a, b, c.
  struct Vec {
    std::array<int, 3> n;
    Vec3 x;
  };
  std::vector<Vec> fit[3];
  const Vec3 w = cell_widths(a.m);
  int range[3];
  for (int k = 0; k < 3; ++k) range[k] = static_cast<int>(std::ceil(radius / w[k]));
  for (int i = -range[0]; i <= range[0]; ++i)
    for (int j = -range[1]; j <= range[1]; ++j)
      for (int k = -range[2]; k <= range[2]; ++k) {
        const Vec3 x = frac_to_cart(a.m, {double(i), double(j), double(k)});
        const double len = norm(x);
        if (len < 1e-9 || len > radius) continue;
        for (int q = 0; q < 3; ++q) {
          const double ratio = len / target[q];
          if (ratio < 1 + tol.ltol && ratio > 1 / (1 + tol.ltol)) fit[q].push_back({{i, j, k}, x});
        }
      }
  for (const Vec& va : fit[0])
    for (const Vec& vb : fit[1]) {
      if (std::fabs(angle_deg(va.x, vb.x) - lb.gamma) >= tol.angle_tol) continue;
      for (const Vec& vc : fit[2]) {
        if (std::fabs(angle_deg(vb.x, vc.x) - lb.alpha) >= tol.angle_tol) continue;
        if (std::fabs(angle_deg(va.x, vc.x) - lb.beta) >= tol.angle_tol) continue;
        const Mat3 nm = {Vec3{double(va.n[0]), double(va.n[1]), double(va.n[2])},
                         Vec3{double(vb.n[0]), double(vb.n[1]), double(vb.n[2])},
                         Vec3{double(vc.n[0]), double(vc.n[1]), double(vc.n[2])}};
        if (std::fabs(std::fabs(det(nm)) - 1) > 0.5) continue;  // a basis of A's lattice, not a sublattice
        const Mat3 latt = {va.x, vb.x, vc.x};
        const Cell fa = rebase(a, latt);
        const Lattice la = lattice_parameters(latt);
        const Lattice avg{(la.a + lb.a) / 2,         (la.b + lb.b) / 2,        (la.c + lb.c) / 2,
                          (la.alpha + lb.alpha) / 2, (la.beta + lb.beta) / 2, (la.gamma + lb.gamma) / 2};
        if (sites_match(fa, b, lattice_matrix(avg), tol)) return true;
      }
    }
  return false;
}

Cell make_cell(const Crystal& c, const std::vector<std::string>& elements) {
  Cell cell{lattice_matrix(c.lattice), {}, {}};
  for (size_t i = 0; i < c.num_sites(); ++i) {
    cell.frac.push_back(wrap(c.frac[i]));
    cell.el.push_back(static_cast<int>(std::find(elements.begin(), elements.end(), c.species[i]) - elements.begin()));
  }
  return cell;
}

}  // namespace

Crystal primitive_cell(const Crystal& c, double tol) {
  if (c.num_sites() == 0 || !(cell_volume(c.lattice) > 1e-6)) return c;
  const Composition comp = reduce_composition(c.species);
  const Cell p = reduce_basis(primitive(reduce_basis(make_cell(c, comp.elements)), tol, comp.elements));
  Crystal out = c;
  out.lattice = lattice_parameters(p.m);  // lattice_matrix(out.lattice) is p.m rotated; fractional coordinates carry over
  out.frac = p.frac;
  out.species.clear();
  out.oxidation.clear();  // the matcher compares elements; a reduced cell's sites are not the input's
  for (int e : p.el) out.species.push_back(comp.elements[e]);
  return out;
}

StructureFingerprint fingerprint(const Crystal& c, const MatchTolerance& tol) {
  StructureFingerprint fp;
  if (c.num_sites() == 0) return fp;
  const Composition comp = reduce_composition(c.species);
  fp.formula = comp.formula();
  fp.elements = comp.elements;
  if (!(cell_volume(c.lattice) > 1e-6)) return fp;
  Cell cell = reduce_basis(make_cell(c, comp.elements));
  if (tol.primitive_cell)
    cell = reduce_basis(primitive(cell, tol.primitive_tol, comp.elements));
  fp.lattice = cell.m;
  fp.frac = cell.frac;
  fp.element = cell.el;
  fp.ok = true;
  return fp;
}

bool structures_match(const StructureFingerprint& a, const StructureFingerprint& b, const MatchTolerance& tol) {
  if (!a.ok || !b.ok || a.formula != b.formula || a.elements != b.elements) return false;
  // As pymatgen's fit(a, b): a's lattice is mapped onto b's parameters (its _match swaps them only when b has more
  // sites, which never matches here). The order can decide a pair near a tolerance, as it can in pymatgen; callers
  // keep pymatgen's order (NoveltyIndex: train first; duplicate_of: the earlier crystal first).
  return cells_match({a.lattice, a.frac, a.element}, {b.lattice, b.frac, b.element}, tol);
}

std::vector<size_t> duplicate_of(const std::vector<StructureFingerprint>& fps, const MatchTolerance& tol) {
  std::vector<size_t> dup(fps.size());
  std::unordered_map<std::string, std::vector<size_t>> firsts;  // formula -> representatives so far
  for (size_t i = 0; i < fps.size(); ++i) {
    dup[i] = i;
    auto& reps = firsts[fps[i].formula];
    for (size_t j : reps)
      if (structures_match(fps[j], fps[i], tol)) {
        dup[i] = j;
        break;
      }
    if (dup[i] == i) reps.push_back(i);
  }
  return dup;
}

NoveltyIndex::NoveltyIndex(const std::vector<Crystal>* reference, MatchTolerance tol) : ref_(reference), tol_(tol) {
  if (!ref_) return;
  fp_.resize(ref_->size());
  have_fp_.assign(ref_->size(), 0);
  for (size_t i = 0; i < ref_->size(); ++i) {
    if ((*ref_)[i].num_sites() == 0) continue;
    by_formula_[reduce_composition((*ref_)[i].species).formula()].push_back(i);
  }
}

bool NoveltyIndex::is_novel(const StructureFingerprint& fp) {
  if (!ref_) return true;
  auto it = by_formula_.find(fp.formula);
  if (it == by_formula_.end()) return true;
  for (size_t i : it->second) {
    if (!have_fp_[i]) {
      fp_[i] = fingerprint((*ref_)[i], tol_);
      have_fp_[i] = 1;
    }
    if (structures_match(fp_[i], fp, tol_)) return false;
  }
  return true;
}

}  // namespace cg
