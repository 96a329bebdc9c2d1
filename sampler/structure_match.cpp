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

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
double det(const Mat3& m) { return dot(m[0], cross(m[1], m[2])); }
Vec3 times(const Vec3& f, const Mat3& m) {  // f * M
  Vec3 x{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) x[j] += f[i] * m[i][j];
  return x;
}
Mat3 inverse(const Mat3& m) {
  const double d = det(m);
  const Vec3 c0 = cross(m[1], m[2]), c1 = cross(m[2], m[0]), c2 = cross(m[0], m[1]);
  // m * [c0 c1 c2] (as columns) = d * I, so the inverse has c0, c1, c2 as columns / d.
  Mat3 inv{};
  for (int i = 0; i < 3; ++i) inv[i] = {c0[i] / d, c1[i] / d, c2[i] / d};
  return inv;
}
Vec3 wrap(const Vec3& f) { return {wrap01(f[0]), wrap01(f[1]), wrap01(f[2])}; }
Vec3 wrap_half(const Vec3& d) {  // to [-0.5, 0.5)
  return {d[0] - std::round(d[0]), d[1] - std::round(d[1]), d[2] - std::round(d[2])};
}
double angle_deg(const Vec3& a, const Vec3& b) {
  const double c = std::clamp(dot(a, b) / (norm(a) * norm(b)), -1.0, 1.0);
  return std::acos(c) * 180.0 / kPi;
}
Lattice parameters(const Mat3& m) {
  return {norm(m[0]), norm(m[1]), norm(m[2]), angle_deg(m[1], m[2]), angle_deg(m[0], m[2]), angle_deg(m[0], m[1])};
}

// Re-express the sites of `c` in the basis `m` (same lattice), wrapped into [0, 1).
Cell rebase(const Cell& c, const Mat3& m) {
  Cell r{m, {}, c.el};
  const Mat3 inv = inverse(m);
  for (const Vec3& f : c.frac) r.frac.push_back(wrap(times(times(f, c.m), inv)));
  return r;
}

// Greedy basis reduction: sort by length, subtract integer multiples pairwise (Gauss / Lagrange steps) and try
// c +- a +- b, until nothing gets shorter. Gives the shortest vectors for the cells we meet; pymatgen uses Niggli.
Cell reduce_basis(const Cell& c) {
  Mat3 b = c.m;
  for (int iter = 0; iter < 200; ++iter) {
    std::sort(b.begin(), b.end(), [](const Vec3& x, const Vec3& y) { return dot(x, x) < dot(y, y); });
    bool changed = false;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        if (i == j) continue;
        const double mu = std::round(dot(b[j], b[i]) / dot(b[i], b[i]));
        if (mu == 0) continue;
        const Vec3 nb = sub(b[j], scaled(b[i], mu));
        if (dot(nb, nb) < dot(b[j], b[j]) * (1 - 1e-12)) {
          b[j] = nb;
          changed = true;
        }
      }
    for (int s1 = -1; s1 <= 1; ++s1)
      for (int s2 = -1; s2 <= 1; ++s2) {
        const Vec3 nc = {b[2][0] + s1 * b[0][0] + s2 * b[1][0], b[2][1] + s1 * b[0][1] + s2 * b[1][1],
                         b[2][2] + s1 * b[0][2] + s2 * b[1][2]};
        if (dot(nc, nc) < dot(b[2], b[2]) * (1 - 1e-12)) {
          b[2] = nc;
          changed = true;
        }
      }
    if (!changed) break;
  }
  if (det(b) < 0) b[2] = scaled(b[2], -1);
  return rebase(c, b);
}

// The primitive cell: translations t (from a site of the rarest element to another site of it, snapped to
// multiples of 1/g, g = gcd of the element counts, which every lattice translation of the crystal is) that map
// every site onto a site of the same element within `tol` Å along each lattice axis, as pymatgen's
// get_primitive_structure tests them. Sites related by a translation are merged at their mean position.
Cell primitive(const Cell& c, double tol, int n_elements) {
  const size_t n = c.frac.size();
  std::vector<int> count(n_elements, 0);
  for (int e : c.el) ++count[e];
  int g = 0;
  for (int k : count)
    if (k > 0) g = std::gcd(g, k);
  if (g <= 1) return c;
  int rare = -1;
  for (int e = 0; e < n_elements; ++e)
    if (count[e] > 0 && (rare < 0 || count[e] < count[rare])) rare = e;
  const size_t i0 = std::find(c.el.begin(), c.el.end(), rare) - c.el.begin();
  const Vec3 ftol = {tol / norm(c.m[0]), tol / norm(c.m[1]), tol / norm(c.m[2])};

  // image[k] = the site that k + t lands on (same element, within ftol on every axis), or -1.
  auto images = [&](const Vec3& t, std::vector<int>* image) {
    image->assign(n, -1);
    std::vector<char> used(n, 0);
    for (size_t k = 0; k < n; ++k) {
      double best = 1e300;
      for (size_t m = 0; m < n; ++m) {
        if (c.el[m] != c.el[k]) continue;
        const Vec3 d = wrap_half({c.frac[k][0] + t[0] - c.frac[m][0], c.frac[k][1] + t[1] - c.frac[m][1],
                                  c.frac[k][2] + t[2] - c.frac[m][2]});
        double worst = 0;  // largest |d| in units of the tolerance
        for (int a = 0; a < 3; ++a) worst = std::max(worst, std::fabs(d[a]) / ftol[a]);
        if (worst < 1 && worst < best) {
          best = worst;
          (*image)[k] = static_cast<int>(m);
        }
      }
      if ((*image)[k] < 0 || used[(*image)[k]]) return false;
      used[(*image)[k]] = 1;
    }
    return true;
  };

  std::vector<Vec3> T = {{0, 0, 0}};
  std::vector<std::vector<int>> maps(1, std::vector<int>(n));
  std::iota(maps[0].begin(), maps[0].end(), 0);
  for (size_t j = 0; j < n; ++j) {
    if (c.el[j] != rare || j == i0) continue;
    Vec3 t = sub(c.frac[j], c.frac[i0]);
    for (int a = 0; a < 3; ++a) t[a] = wrap01(std::round(t[a] * g) / g);
    for (int a = 0; a < 3; ++a)
      if (t[a] > 1 - 1e-9) t[a] = 0;
    if (t[0] == 0 && t[1] == 0 && t[2] == 0) continue;
    if (std::any_of(T.begin(), T.end(), [&](const Vec3& u) { return norm(wrap_half(sub(u, t))) < 1e-9; })) continue;
    std::vector<int> image;
    if (!images(t, &image)) continue;
    T.push_back(t);
    maps.push_back(std::move(image));
  }
  const size_t nt = T.size();
  if (nt == 1 || n % nt != 0) return c;
  for (int k : count)
    if (k % static_cast<int>(nt) != 0) return c;

  // A basis of the lattice generated by T and the old lattice: fractional volume 1 / nt.
  struct Cand {
    double len;
    Vec3 f;
  };
  std::vector<Cand> cands;
  for (const Vec3& t : T)
    for (int a = -1; a <= 1; ++a)
      for (int b = -1; b <= 1; ++b)
        for (int d = -1; d <= 1; ++d) {
          const Vec3 f = {t[0] + a, t[1] + b, t[2] + d};
          const double len = norm(times(f, c.m));
          if (len > 1e-9) cands.push_back({len, f});
        }
  std::sort(cands.begin(), cands.end(), [](const Cand& x, const Cand& y) { return x.len < y.len; });
  const double want = 1.0 / nt;
  const size_t lim = std::min<size_t>(cands.size(), 40);
  Mat3 basis{};
  double best = 1e300;
  for (size_t i = 0; i < lim; ++i)
    for (size_t j = i + 1; j < lim; ++j)
      for (size_t k = j + 1; k < lim; ++k) {
        const double total = cands[i].len + cands[j].len + cands[k].len;
        if (total >= best) continue;
        const Mat3 f = {cands[i].f, cands[j].f, cands[k].f};
        if (std::fabs(std::fabs(det(f)) - want) > 1e-6) continue;
        best = total;
        basis = f;
      }
  if (best == 1e300) return c;
  Mat3 m = {times(basis[0], c.m), times(basis[1], c.m), times(basis[2], c.m)};
  if (det(m) < 0) m[2] = scaled(m[2], -1);

  // Merge each orbit {image of k under t} at its mean position.
  Cell p{m, {}, {}};
  const Mat3 inv = inverse(m);
  std::vector<char> done(n, 0);
  for (size_t k = 0; k < n; ++k) {
    if (done[k]) continue;
    Vec3 mean{};
    for (size_t ti = 0; ti < nt; ++ti) {
      const int mk = maps[ti][k];
      if (done[mk]) return c;  // orbits overlap: the translations are not a group at this tolerance
      done[mk] = 1;
      const Vec3 d = wrap_half(sub(sub(c.frac[mk], T[ti]), c.frac[k]));
      for (int a = 0; a < 3; ++a) mean[a] += d[a] / nt;
    }
    const Vec3 pos = {c.frac[k][0] + mean[0], c.frac[k][1] + mean[1], c.frac[k][2] + mean[2]};
    p.frac.push_back(wrap(times(times(pos, c.m), inv)));
    p.el.push_back(c.el[k]);
  }
  if (p.frac.size() * nt != n) return c;
  return p;
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
              const Vec3 v = times({d[0] + x, d[1] + y, d[2] + z}, avg);
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
  const Lattice lb = parameters(b.m);
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
        const Vec3 x = times({double(i), double(j), double(k)}, a.m);
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
        const Lattice la = parameters(latt);
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
  const Cell p = reduce_basis(primitive(reduce_basis(make_cell(c, comp.elements)), tol,
                                        static_cast<int>(comp.elements.size())));
  Crystal out = c;
  out.lattice = parameters(p.m);  // lattice_matrix(out.lattice) is p.m rotated; fractional coordinates carry over
  out.frac = p.frac;
  out.species.clear();
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
    cell = reduce_basis(primitive(cell, tol.primitive_tol, static_cast<int>(comp.elements.size())));
  fp.lattice = cell.m;
  fp.frac = cell.frac;
  fp.element = cell.el;
  fp.ok = true;
  return fp;
}

bool structures_match(const StructureFingerprint& a, const StructureFingerprint& b, const MatchTolerance& tol) {
  if (!a.ok || !b.ok || a.formula != b.formula || a.elements != b.elements) return false;
  // pymatgen's _match puts the structure with more sites first; with equal counts the order does not matter.
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
