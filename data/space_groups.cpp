#include "data/space_groups.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "data/elements.h"

#ifdef CG_HAVE_SPGLIB
#include <spglib.h>
#endif

namespace cg {

double determinant(const SymmetryOp& op) {
  const auto& m = op.rot;
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

// "x, y, z", "-x+1/2, y-x, z+0.25", "1/2+x, -y, 2z": each of the three components a sum of signed terms, a term a
// number (optionally n/m), a number times x|y|z, or x|y|z. Case and spaces do not matter.
bool parse_xyz(const std::string& text, SymmetryOp* op) {
  *op = SymmetryOp{};
  std::string s;
  for (char ch : text)
    if (!std::isspace(static_cast<unsigned char>(ch))) s += char(std::tolower(static_cast<unsigned char>(ch)));
  int comp = 0;
  size_t i = 0;
  while (comp < 3) {
    bool any = false;
    while (i < s.size() && s[i] != ',') {
      double sign = 1;
      if (s[i] == '+' || s[i] == '-') sign = s[i++] == '-' ? -1 : 1;
      else if (any) return false;  // terms after the first need a sign
      size_t start = i;
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
      double num = 1;
      const bool has_num = i > start;
      if (has_num) {
        char* end = nullptr;
        const std::string digits = s.substr(start, i - start);
        num = std::strtod(digits.c_str(), &end);
        if (end != digits.c_str() + digits.size()) return false;
        if (i < s.size() && s[i] == '/') {
          const size_t d0 = ++i;
          while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
          if (i == d0) return false;
          const double den = std::strtod(s.substr(d0, i - d0).c_str(), nullptr);
          if (den == 0) return false;
          num /= den;
        }
      }
      if (i < s.size() && s[i] == '*' && has_num) ++i;  // "1/2*x" (COD's spelling)
      if (i < s.size() && s[i] >= 'x' && s[i] <= 'z') {
        op->rot[comp][s[i] - 'x'] += sign * num;
        ++i;
      } else if (has_num) {
        op->trans[comp] += sign * num;
      } else {
        return false;
      }
      any = true;
    }
    if (!any) return false;
    ++comp;
    if (comp < 3) {
      if (i >= s.size()) return false;
      ++i;  // the comma
    }
  }
  return i == s.size();
}

namespace {

constexpr int kHallSettings = 530;

// ---- Hall symbols (Hall 1981; International Tables B, A1.4.2) --------------------------------------------------------
// "-P 2ybc", "P 31 2c (0 0 1)", "-F 4vw 2vw 3": [-]L, then matrix symbols [-]N[screw][axis][translations], then an
// optional change-of-basis operator: an origin shift in twelfths "(0 0 1)", or an operation "(x,y,z+1/4)",
// "(1/2*x,y,-1/2*x+z)". Operations kept with translations in 24ths.

using IntMat = std::array<std::array<int, 3>, 3>;
struct Op24 {
  IntMat r;
  std::array<int, 3> t;  // 24ths, in [0, 24)
  bool operator<(const Op24& o) const { return std::tie(r, t) < std::tie(o.r, o.t); }
  bool operator==(const Op24& o) const { return r == o.r && t == o.t; }
};

Op24 multiply(const Op24& a, const Op24& b) {  // (Ra|ta)(Rb|tb) = (Ra Rb | Ra tb + ta)
  Op24 c{};
  for (int i = 0; i < 3; ++i) {
    int t = a.t[size_t(i)];
    for (int j = 0; j < 3; ++j) {
      t += a.r[size_t(i)][size_t(j)] * b.t[size_t(j)];
      for (int k = 0; k < 3; ++k) c.r[size_t(i)][size_t(j)] += a.r[size_t(i)][size_t(k)] * b.r[size_t(k)][size_t(j)];
    }
    c.t[size_t(i)] = ((t % 24) + 24) % 24;
  }
  return c;
}

// "-x+1/2,y,-z": an operation as CIFs write it, translations in lowest terms.
std::string to_xyz(const Op24& op) {
  std::string out;
  for (int i = 0; i < 3; ++i) {
    std::string c;
    for (int j = 0; j < 3; ++j) {
      const int k = op.r[size_t(i)][size_t(j)];
      if (k == 0) continue;
      c += (k < 0 ? "-" : c.empty() ? "" : "+") + (std::abs(k) == 1 ? "" : std::to_string(std::abs(k))) + "xyz"[j];
    }
    if (const int t = op.t[size_t(i)]; t != 0) {
      const int g = std::gcd(t, 24);
      c += fmt::format("+{}/{}", t / g, 24 / g);
    }
    out += (i ? "," : "") + (c.empty() ? "0" : c);
  }
  return out;
}

// The rotation part of a matrix symbol: order n about principal axis 'x'|'y'|'z', a face diagonal ('\'' or '"')
// perpendicular to principal axis `ref`, or the body diagonal '*'.
bool hall_rotation(int n, char axis, char ref, IntMat* r) {
  static const std::map<std::pair<int, char>, IntMat> principal = {
      {{1, 'z'}, IntMat{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}},   {{2, 'z'}, IntMat{{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}}},
      {{3, 'z'}, IntMat{{{0, -1, 0}, {1, -1, 0}, {0, 0, 1}}}}, {{4, 'z'}, IntMat{{{0, -1, 0}, {1, 0, 0}, {0, 0, 1}}}},
      {{6, 'z'}, IntMat{{{1, -1, 0}, {1, 0, 0}, {0, 0, 1}}}},  {{2, 'x'}, IntMat{{{1, 0, 0}, {0, -1, 0}, {0, 0, -1}}}},
      {{3, 'x'}, IntMat{{{1, 0, 0}, {0, 0, -1}, {0, 1, -1}}}}, {{4, 'x'}, IntMat{{{1, 0, 0}, {0, 0, -1}, {0, 1, 0}}}},
      {{6, 'x'}, IntMat{{{1, 0, 0}, {0, 1, -1}, {0, 1, 0}}}},  {{2, 'y'}, IntMat{{{-1, 0, 0}, {0, 1, 0}, {0, 0, -1}}}},
      {{3, 'y'}, IntMat{{{-1, 0, 1}, {0, 1, 0}, {-1, 0, 0}}}}, {{4, 'y'}, IntMat{{{0, 0, 1}, {0, 1, 0}, {-1, 0, 0}}}},
      {{6, 'y'}, IntMat{{{0, 0, 1}, {0, 1, 0}, {-1, 0, 1}}}}};
  static const std::map<std::pair<char, char>, IntMat> diagonal = {
      {{'\'', 'z'}, IntMat{{{0, -1, 0}, {-1, 0, 0}, {0, 0, -1}}}}, {{'"', 'z'}, IntMat{{{0, 1, 0}, {1, 0, 0}, {0, 0, -1}}}},
      {{'\'', 'x'}, IntMat{{{-1, 0, 0}, {0, 0, -1}, {0, -1, 0}}}}, {{'"', 'x'}, IntMat{{{-1, 0, 0}, {0, 0, 1}, {0, 1, 0}}}},
      {{'\'', 'y'}, IntMat{{{0, 0, -1}, {0, -1, 0}, {-1, 0, 0}}}}, {{'"', 'y'}, IntMat{{{0, 0, 1}, {0, -1, 0}, {1, 0, 0}}}}};
  if (n == 1) axis = 'z';
  if (axis == '*') {
    if (n != 3) return false;
    *r = IntMat{{{0, 0, 1}, {1, 0, 0}, {0, 1, 0}}};
    return true;
  }
  if (axis == '\'' || axis == '"') {
    auto it = diagonal.find({axis, ref});
    if (n != 2 || it == diagonal.end()) return false;
    *r = it->second;
    return true;
  }
  auto it = principal.find({n, axis});
  if (it == principal.end()) return false;
  *r = it->second;
  return true;
}

// The group a Hall symbol generates (centring, inversion and matrix symbols closed under multiplication,
// translations modulo 1), before its change-of-basis operator, sorted; *basis that operator V (x' = V x: the
// identity, an origin shift "(0 0 1)" in twelfths or "(x,y,z+1/4)", or a change of basis "(1/2*x,y,-1/2*x+z)").
// False with *why on a malformed symbol. Spelling: components separated by spaces or '_' (the CIF dictionary's),
// letters in any case.
bool parse_hall(const std::string& symbol, std::vector<Op24>* out, SymmetryOp* basis, std::string* why) {
  auto bad = [&](const std::string& what) {
    *why = fmt::format("Hall symbol '{}': {} (write it as in the International Tables, e.g. '-P 2ybc', "
                       "'P 31 2c (0 0 1)')", symbol, what);
    return false;
  };
  std::string text = symbol, shift_text;
  std::replace(text.begin(), text.end(), '_', ' ');
  if (const size_t open = text.find('('); open != std::string::npos) {
    const size_t close = text.find(')', open);
    if (close == std::string::npos || text.find_first_not_of(" \t", close + 1) != std::string::npos)
      return bad("the origin shift or change of basis must end the symbol, in parentheses: '(0 0 1)', "
                 "'(x,y,z+1/12)' or '(1/2*x,y,-1/2*x+z)'");
    shift_text = text.substr(open + 1, close - open - 1);
    text.erase(open);
  }
  std::vector<std::string> words;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j;
  }
  // The lattice letter is upper case, every other letter lower case.
  for (size_t k = 0; k < words.size(); ++k)
    for (char& ch : words[k])
      ch = char(k == 0 ? std::toupper(static_cast<unsigned char>(ch)) : std::tolower(static_cast<unsigned char>(ch)));
  if (words.empty()) return bad("empty");
  const Op24 identity{IntMat{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}, {0, 0, 0}};
  std::vector<Op24> gens;
  // Lattice symbol: centring translations (24ths), '-' for a centre of symmetry at the origin.
  std::string lattice = words[0];
  if (lattice[0] == '-') {
    Op24 inv{IntMat{{{-1, 0, 0}, {0, -1, 0}, {0, 0, -1}}}, {0, 0, 0}};
    gens.push_back(inv);
    lattice.erase(0, 1);
  }
  static const std::map<std::string, std::vector<std::array<int, 3>>> centring = {
      {"P", {}}, {"A", {{0, 12, 12}}}, {"B", {{12, 0, 12}}}, {"C", {{12, 12, 0}}}, {"I", {{12, 12, 12}}},
      {"R", {{16, 8, 8}, {8, 16, 16}}}, {"S", {{8, 8, 16}, {16, 16, 8}}}, {"T", {{8, 16, 8}, {16, 8, 16}}},
      {"F", {{0, 12, 12}, {12, 0, 12}, {12, 12, 0}}}};
  auto lat = centring.find(lattice);
  if (lat == centring.end()) return bad(fmt::format("'{}' is not a lattice symbol (P A B C I R S T F)", lattice));
  for (const auto& t : lat->second) gens.push_back({identity.r, t});
  // Matrix symbols.
  int prev_n = 0;
  char prev_axis = 0, first_axis = 0;
  for (size_t k = 1; k < words.size(); ++k) {
    const std::string& w = words[k];
    size_t i = 0;
    const bool improper = w[i] == '-';
    if (improper) ++i;
    if (i >= w.size() || !std::strchr("12346", w[i])) return bad(fmt::format("'{}' does not start with 1, 2, 3, 4 or 6", w));
    const int n = w[i++] - '0';
    int screw = 0;
    if (i < w.size() && std::isdigit(static_cast<unsigned char>(w[i]))) {
      screw = w[i++] - '0';
      if (screw >= n) return bad(fmt::format("'{}': a screw part must be below the order {}", w, n));
    }
    char axis = 0;
    std::array<int, 3> t{0, 0, 0};
    for (; i < w.size(); ++i) {
      const char ch = w[i];
      if (std::strchr("xyz'\"*", ch)) {
        if (axis) return bad(fmt::format("'{}' names two axes", w));
        axis = ch;
        continue;
      }
      static const std::map<char, std::array<int, 3>> shifts = {
          {'a', {12, 0, 0}}, {'b', {0, 12, 0}}, {'c', {0, 0, 12}}, {'n', {12, 12, 12}},
          {'u', {6, 0, 0}},  {'v', {0, 6, 0}},  {'w', {0, 0, 6}},  {'d', {6, 6, 6}}};
      auto sh = shifts.find(ch);
      if (sh == shifts.end()) return bad(fmt::format("'{}' holds '{}', not an axis or translation symbol", w, ch));
      for (int d = 0; d < 3; ++d) t[size_t(d)] += sh->second[size_t(d)];
    }
    if (!axis) {  // default axes: c first; a 2 after a 2 or 4 along a, after a 3 or 6 along a-b; a third 3 along a+b+c
      if (k == 1) axis = 'z';
      else if (k == 2 && n == 2 && (prev_n == 2 || prev_n == 4)) axis = 'x';
      else if (k == 2 && n == 2 && (prev_n == 3 || prev_n == 6)) axis = '\'';
      else if (k == 3 && n == 3) axis = '*';
      else if (n == 1) axis = 'z';
      else return bad(fmt::format("'{}' needs its axis written (x, y, z, ', \" or *)", w));
    }
    // A face diagonal lies perpendicular to the preceding principal axis (after the body diagonal of "P 3* 2", c's).
    char ref = (axis == '\'' || axis == '"') ? (k == 2 ? first_axis : prev_axis) : axis;
    if (ref != 'x' && ref != 'y') ref = 'z';
    Op24 g{};
    if (!hall_rotation(n, axis, ref, &g.r)) return bad(fmt::format("'{}' is not a rotation the symbols define", w));
    if (improper)
      for (auto& row : g.r)
        for (int& v : row) v = -v;
    if (screw) {
      const int d = axis == 'x' ? 0 : axis == 'y' ? 1 : axis == 'z' ? 2 : -1;
      if (d < 0) return bad(fmt::format("'{}': a screw part needs a principal axis", w));
      t[size_t(d)] += 24 * screw / n;
    }
    for (int d = 0; d < 3; ++d) g.t[size_t(d)] = t[size_t(d)] % 24;
    gens.push_back(g);
    prev_n = n;
    if (axis == 'x' || axis == 'y' || axis == 'z') prev_axis = axis;
    if (k == 1) first_axis = axis;
  }
  // Closure.
  std::set<Op24> seen = {identity};
  std::vector<Op24> group = {identity};
  for (size_t i = 0; i < group.size(); ++i) {
    for (const Op24& g : gens) {
      const Op24 p = multiply(group[i], g);
      if (seen.insert(p).second) group.push_back(p);
      if (group.size() > 192) return bad("it generates more than 192 operations");
    }
  }
  // Change-of-basis operator: "(vx vy vz)", an origin shift in twelfths, or an operation "(x+a, y+b, z+c)",
  // "(1/2*x, y, -1/2*x+z)".
  *basis = SymmetryOp{};
  for (int k = 0; k < 3; ++k) basis->rot[k][k] = 1;
  if (!shift_text.empty()) {
    if (shift_text.find_first_of("xyzXYZ") != std::string::npos) {
      if (!parse_xyz(shift_text, basis))
        return bad(fmt::format("'({})' is not of the form '(x,y,z+1/4)' or '(1/2*x,y,-1/2*x+z)'", shift_text));
    } else {
      std::istringstream in(shift_text);
      for (double& x : basis->trans) {
        int twelfths = 0;
        if (!(in >> twelfths)) return bad("the origin shift must be three integers (twelfths), e.g. '(0 0 1)'");
        x = twelfths / 12.0;
      }
      if (std::string rest; in >> rest) return bad("the origin shift must be three integers (twelfths)");
    }
  }
  std::sort(group.begin(), group.end());
  *out = std::move(group);
  return true;
}

// The group in the basis a Hall symbol's change-of-basis operator V = (M | m) gives (x' = V x; International Tables
// B, A1.4.2.3): V (R | t + n) V^-1 for every operation and every translation n of the old lattice, translations
// modulo 1. An origin shift v is V = (I | v): (R | t + v - R v). A basis of a larger cell (|det M| < 1, e.g.
// "(1/2*x,y,-1/2*x+z)") turns old lattice translations into centring ones: |G| / |det M| operations. False with
// *why when V is singular, its rotations are not integral in the new basis, its translations are not in 24ths, or
// it would make the lattice finer than the group's (|det M| > 1 without centring to absorb it).
bool change_basis(const std::vector<Op24>& group, const SymmetryOp& v, const std::string& symbol,
                  std::vector<Op24>* out, std::string* why) {
  auto bad = [&](const std::string& what) {
    *why = fmt::format("Hall symbol '{}': its change of basis {}; correct the symbol or list the symmetry operations "
                       "(_symmetry_equiv_pos_as_xyz)", symbol, what);
    return false;
  };
  const auto& m = v.rot;
  const double det = determinant(v);
  if (std::fabs(det) < 1e-9) return bad("is singular (its matrix has determinant 0)");
  double inv[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      inv[j][i] = (m[(i + 1) % 3][(j + 1) % 3] * m[(i + 2) % 3][(j + 2) % 3] -
                   m[(i + 1) % 3][(j + 2) % 3] * m[(i + 2) % 3][(j + 1) % 3]) / det;
  auto integral = [](double x) { return std::fabs(x - std::round(x)) < 1e-6; };
  // Old lattice translations n matter modulo the least d with d M integral: M n mod 1 repeats with period d.
  int period = 0;
  for (int d = 1; d <= 24 && !period; ++d) {
    bool all = true;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) all = all && integral(d * m[i][j]);
    if (all) period = d;
  }
  if (!period) return bad("has matrix entries that are not in 24ths");
  std::set<Op24> seen;
  for (const Op24& op : group) {
    Op24 moved{};  // rotation M R M^-1
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        double x = 0;
        for (int k = 0; k < 3; ++k)
          for (int l = 0; l < 3; ++l) x += m[i][k] * op.r[size_t(k)][size_t(l)] * inv[l][j];
        if (!integral(x)) return bad(fmt::format("does not keep the rotations integral (the rotation {} of the "
                                                 "unchanged group is not one of a lattice in the new basis)",
                                                 to_xyz(op)));
        moved.r[size_t(i)][size_t(j)] = int(std::lround(x));
      }
    for (int n0 = 0; n0 < period; ++n0)
      for (int n1 = 0; n1 < period; ++n1)
        for (int n2 = 0; n2 < period; ++n2) {
          const double n[3] = {double(n0), double(n1), double(n2)};
          for (int i = 0; i < 3; ++i) {  // M (t + n) + m - (M R M^-1) m
            double t = v.trans[i];
            for (int k = 0; k < 3; ++k)
              t += m[i][k] * (op.t[size_t(k)] / 24.0 + n[k]) - moved.r[size_t(i)][size_t(k)] * v.trans[k];
            if (!integral(24 * t)) return bad("gives translations that are not in 24ths");
            moved.t[size_t(i)] = int(((std::lround(24 * t) % 24) + 24) % 24);
          }
          seen.insert(moved);
        }
  }
  const double expected = double(group.size()) / std::fabs(det);
  if (std::fabs(double(seen.size()) - expected) > 1e-6)
    return bad(fmt::format("gives {} operations where a change of basis gives {:g} (|det| {:g}): it makes the "
                           "lattice finer than the group's",
                           seen.size(), expected, std::fabs(det)));
  out->assign(seen.begin(), seen.end());
  return true;
}

std::vector<SymmetryOp> to_symmetry_ops(const std::vector<Op24>& ops) {
  std::vector<SymmetryOp> out(ops.size());
  for (size_t i = 0; i < ops.size(); ++i)
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) out[i].rot[r][c] = ops[i].r[size_t(r)][size_t(c)];
      out[i].trans[r] = ops[i].t[size_t(r)] / 24.0;
    }
  return out;
}

// G = M M^T for the row lattice vectors M; rotation R (fractional) keeps the cell's metric when R^T G R = G, here
// each entry within 1e-3 of sqrt(G_ii G_jj): lengths to ~0.05%, angles to ~0.06 degrees.
bool keeps_metric(const std::vector<SymmetryOp>& ops, const Lattice& lattice) {
  const Mat3 m = lattice_matrix(lattice);
  double g[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) g[i][j] = dot(m[size_t(i)], m[size_t(j)]);
  for (const SymmetryOp& op : ops)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        double v = 0;
        for (int k = 0; k < 3; ++k)
          for (int l = 0; l < 3; ++l) v += op.rot[k][i] * g[k][l] * op.rot[l][j];
        if (std::fabs(v - g[i][j]) > 1e-3 * std::sqrt(g[i][i] * g[j][j])) return false;
      }
  return true;
}

// A Hermann-Mauguin symbol as the tables spell it: no spaces or '_' (pymatgen's normalisation), SHELX's "2(1)" as
// "21", the lattice letter upper case and the rest lower case ("p 1 21/C 1" -> "P121/c1").
std::string normalise_hm(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == '_') continue;
    if (ch == '(' && i + 2 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) && s[i + 2] == ')') {
      out += s[i + 1];
      i += 2;
      continue;
    }
    out += char(out.empty() ? std::toupper(static_cast<unsigned char>(ch)) : std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

bool is_p1(const SpaceGroupName& n) {
  return (n.hm.empty() || normalise_hm(n.hm) == "P1") && (n.number == 0 || n.number == 1) &&
         (n.hall.empty() || normalise_hm(n.hall) == "P1");
}

#ifdef CG_HAVE_SPGLIB
// Symbols of the five groups with an e-glide as written before 2002 (ITA Table 4.3.2.1, and COD's list), by spglib
// Hall number: setting by setting, one letter of the old symbol per double glide plane. Also two e-symbols that
// spglib spells otherwise (it writes C2ce and Bbcb where the International Tables and COD write C2eb and Bbeb).
constexpr std::pair<int, const char*> kFormerSymbols[] = {
    {191, "Abm2"}, {192, "Bma2"}, {193, "B2cm"}, {194, "C2mb"}, {195, "Cm2a"}, {196, "Ac2m"},  // 39 Aem2
    {203, "Aba2"}, {204, "Bba2"}, {205, "B2cb"}, {206, "C2cb"}, {207, "Cc2a"}, {208, "Ac2a"},  // 41 Aea2
    {304, "Cmca"}, {305, "Ccmb"}, {306, "Abma"}, {307, "Acam"}, {308, "Bbcm"}, {309, "Bmab"},  // 64 Cmce
    {316, "Cmma"}, {317, "Cmmb"}, {318, "Abmm"}, {319, "Acmm"}, {320, "Bmcm"}, {321, "Bmam"},  // 67 Cmme
    {322, "Ccca"}, {323, "Ccca"}, {324, "Cccb"}, {325, "Cccb"}, {326, "Abaa"}, {327, "Abaa"},  // 68 Ccce
    {328, "Acaa"}, {329, "Acaa"}, {330, "Bbcb"}, {331, "Bbcb"}, {332, "Bbab"}, {333, "Bbab"},
    {206, "C2eb"}, {331, "Bbeb"}};

struct Entry {
  int number = 0;
  std::string choice;              // spglib's: "", "1", "2", "H", "R", "b1", "ba-c", "1cab", ...
  std::string full;                // "P 1 2_1/c 1"
  std::vector<std::string> names;  // normalised Hermann-Mauguin spellings of this setting
  std::vector<Op24> ops;           // sorted
};

// The 530 settings, read from spglib once for all threads (spglib keeps its error code in a global). Names are
// those of the setting, never of the group as a whole: the full symbol; for monoclinic settings also the full
// symbol without its 1s ("P 1 21/n 1" -> "P21/n", "A 1 1 2/m" -> "A2/m"), since spglib's short symbol is the
// standard setting's for all of them; for the others spglib's short symbol (setting-specific: "Pnma", "Pmcn").
const std::vector<Entry>& table() {
  static std::vector<Entry> entries;
  static std::once_flag once;
  std::call_once(once, [] {
    entries.resize(kHallSettings + 1);
    for (int h = 1; h <= kHallSettings; ++h) {
      const SpglibSpacegroupType t = spg_get_spacegroup_type(h);
      Entry& e = entries[size_t(h)];
      e.number = t.number;
      e.choice = t.choice;
      e.full = t.international_full;
      e.names.push_back(normalise_hm(e.full));
      if (e.number >= 3 && e.number <= 15) {
        std::istringstream in(e.full);
        std::string word, shortened;
        while (in >> word)
          if (word != "1") shortened += word;
        e.names.push_back(normalise_hm(shortened));
      } else {
        e.names.push_back(normalise_hm(t.international_short));
        e.names.push_back(normalise_hm(t.international));
      }
      int rot[192][3][3];
      double trans[192][3];
      const int n = spg_get_symmetry_from_database(rot, trans, h);
      for (int i = 0; i < n; ++i) {
        Op24 o{};
        for (int r = 0; r < 3; ++r) {
          for (int c = 0; c < 3; ++c) o.r[size_t(r)][size_t(c)] = rot[i][r][c];
          o.t[size_t(r)] = ((int(std::lround(trans[i][r] * 24)) % 24) + 24) % 24;
        }
        e.ops.push_back(o);
      }
      std::sort(e.ops.begin(), e.ops.end());
    }
    for (const auto& [h, name] : kFormerSymbols) entries[size_t(h)].names.push_back(name);
  });
  return entries;
}

// Settings (Hall numbers, in the International Tables' order) a normalised base symbol names.
std::vector<int> settings_named(const std::string& base) {
  std::vector<int> out;
  const std::vector<Entry>& t = table();
  for (int h = 1; h <= kHallSettings; ++h)
    if (std::count(t[size_t(h)].names.begin(), t[size_t(h)].names.end(), base)) out.push_back(h);
  return out;
}

// The settings a Hermann-Mauguin symbol allows: its base name's, narrowed by a qualifier (":1"/":2" origin choice,
// also ICSD's trailing S/Z; ":H"/":R", also pymatgen's "R-3mH"; ":b1", ":ba-c", ... spglib's setting names), and
// symbols from before 1983 written without the bar ("Fm3m", "Pa3").
std::vector<int> settings_of_hm(const std::string& hm) {
  std::string base = normalise_hm(hm), qualifier;
  if (const size_t colon = base.find(':'); colon != std::string::npos) {
    qualifier = base.substr(colon + 1);
    base.erase(colon);
  }
  std::vector<int> named = settings_named(base);
  if (named.empty() && qualifier.empty() && base.size() > 1 && std::strchr("hrsz", base.back())) {
    qualifier = base.substr(base.size() - 1);  // no symbol ends in h, r, s or z
    base.pop_back();
    named = settings_named(base);
  }
  if (named.empty())
    for (const char* glide : {"m3", "n3", "a3", "d3"})
      if (const size_t at = base.find(glide); at != std::string::npos && base.find("-3") == std::string::npos) {
        named = settings_named(base.substr(0, at + 1) + "-" + base.substr(at + 1));
        break;
      }
  if (qualifier.size() == 1 && std::strchr("hrsz", qualifier[0]))
    qualifier = qualifier == "s" ? "1" : qualifier == "z" ? "2" : std::string(1, char(std::toupper(qualifier[0])));
  if (qualifier.empty()) return named;
  std::vector<int> out;
  for (int h : named) {
    const std::string& choice = table()[size_t(h)].choice;
    // "1"/"2" name the origin choice of any axis setting ("Cccb:2" is choice "2ba-c").
    if (choice == qualifier || ((qualifier == "1" || qualifier == "2") && choice.rfind(qualifier, 0) == 0))
      out.push_back(h);
  }
  return out;
}

// The table's setting whose operations are `group` (0: none, e.g. an origin shift of its own).
int hall_number_of(const std::vector<Op24>& group) {
  const std::vector<Entry>& t = table();
  for (int h = 1; h <= kHallSettings; ++h)
    if (t[size_t(h)].ops == group) return h;
  return 0;
}

std::string setting_symbol(int h) {
  const Entry& e = table()[size_t(h)];
  return e.choice.empty() ? e.full : e.full + " :" + e.choice;
}
#endif

}  // namespace

bool space_group_setting(const SpaceGroupName& name, const Lattice& lattice, SpaceGroupSetting* out,
                         std::string* why) {
  if (is_p1(name)) {
    *out = {1, 1, "P 1", {SymmetryOp{}}};
    for (int k = 0; k < 3; ++k) out->ops[0].rot[k][k] = 1;
    return true;
  }
  const std::string described =
      fmt::format("{}{}{}", name.hm.empty() ? "" : fmt::format(" H-M '{}'", name.hm),
                  name.hall.empty() ? "" : fmt::format(" Hall '{}'", name.hall),
                  name.number == 0 ? "" : fmt::format(" number {}", name.number));
  auto misfit = [&](int number) {
    *why = fmt::format("space group{}{} does not fit the cell (a {} b {} c {}, alpha {} beta {} gamma {}): no "
                       "setting's rotations keep its lengths and angles; check the cell or list the symmetry "
                       "operations (_symmetry_equiv_pos_as_xyz)",
                       described, number ? fmt::format(" (No. {})", number) : "", lattice.a, lattice.b, lattice.c,
                       lattice.alpha, lattice.beta, lattice.gamma);
    return false;
  };
  if (name.number < 0 || name.number > 230) {
    *why = fmt::format("space group number {} is not one of 1..230", name.number);
    return false;
  }
  // A Hall symbol is a setting by itself (origin shift or change of basis included): generated here, no tables
  // needed.
  std::vector<Op24> hall_group;
  std::vector<Op24> hall_ops;
  if (!name.hall.empty()) {
    SymmetryOp basis;
    if (!parse_hall(name.hall, &hall_group, &basis, why) || !change_basis(hall_group, basis, name.hall, &hall_ops, why))
      return false;
  }
#ifndef CG_HAVE_SPGLIB
  if (hall_ops.empty()) {
    *why = fmt::format("the CIF names space group{} but lists no symmetry operations, and this build has no "
                       "space-group tables (built without spglib: install libsymspg-dev and rebuild); or list the "
                       "operations (_symmetry_equiv_pos_as_xyz), or give the Hall symbol",
                       described);
    return false;
  }
  // Without tables the Hall symbol alone decides; its name and number cannot be checked against it.
  std::vector<SymmetryOp> ops = to_symmetry_ops(hall_ops);
  if (!keeps_metric(ops, lattice)) return misfit(0);
  *out = {0, 0, "Hall '" + name.hall + "'", std::move(ops)};
  return true;
#else
  const std::vector<Entry>& t = table();
  // Settings the symbol and the number allow. An unknown symbol is refused even when the number is known: the
  // symbol may name a setting the number alone would not pick (P 21/n is not P 21/c).
  const std::vector<int> by_hm = name.hm.empty() ? std::vector<int>{} : settings_of_hm(name.hm);
  if (!name.hm.empty() && by_hm.empty() && hall_ops.empty()) {
    *why = fmt::format("space group H-M '{}' is not in the tables (write it as the International Tables do: "
                       "'P 21/c', 'P 1 21/n 1', 'Fd-3m:2', 'R -3 m :H'), or list the symmetry operations "
                       "(_symmetry_equiv_pos_as_xyz)",
                       name.hm);
    return false;
  }
  std::vector<int> by_number;
  for (int h = 1; h <= kHallSettings && name.number; ++h)
    if (t[size_t(h)].number == name.number) by_number.push_back(h);
  // The Hall symbol's group: the table's setting with its operations; an origin shift or change of basis of its own
  // leaves the group the unchanged symbol's.
  const int hall_number = hall_ops.empty() ? 0 : hall_number_of(hall_ops);
  const int hall_base = hall_number ? hall_number : hall_ops.empty() ? 0 : hall_number_of(hall_group);
  const int hall_group_number = hall_base ? t[size_t(hall_base)].number : 0;
  // The group numbers the descriptions give must agree.
  std::vector<int> numbers;
  if (!by_hm.empty()) numbers.push_back(t[size_t(by_hm.front())].number);
  if (hall_group_number) numbers.push_back(hall_group_number);
  if (name.number) numbers.push_back(name.number);
  if (std::adjacent_find(numbers.begin(), numbers.end(), std::not_equal_to<>()) != numbers.end()) {
    *why = fmt::format("the space group's name and number disagree ({}); correct one of them", described);
    return false;
  }
  if (!hall_ops.empty()) {
    std::vector<SymmetryOp> ops = to_symmetry_ops(hall_ops);
    if (!keeps_metric(ops, lattice)) return misfit(hall_group_number);
    *out = {hall_number, hall_group_number,
            hall_number ? setting_symbol(hall_number) : "Hall '" + name.hall + "'", std::move(ops)};
    return true;
  }
  // The first setting, in the International Tables' order, that fits the cell.
  const std::vector<int>& candidates = !by_hm.empty() ? by_hm : by_number;
  for (int h : candidates) {
    std::vector<SymmetryOp> ops = to_symmetry_ops(t[size_t(h)].ops);
    if (!keeps_metric(ops, lattice)) continue;
    *out = {h, t[size_t(h)].number, setting_symbol(h), std::move(ops)};
    return true;
  }
  return misfit(t[size_t(candidates.front())].number);
#endif
}

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
  // spglib's cell layout: lattice vectors as columns, fractional positions, species numbers. The numbers are
  // SpacegroupAnalyzer's: 1, 2, ... by first appearance (spglib's choices among equal candidates follow them).
  const Mat3 m = lattice_matrix(c.lattice);  // rows a, b, c
  double lattice[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) lattice[i][j] = m[size_t(j)][size_t(i)];  // spglib: columns are a, b, c
  std::vector<double> pos(3 * c.num_sites());
  std::vector<int> types(c.num_sites());
  std::vector<std::string> seen;
  for (size_t s = 0; s < c.num_sites(); ++s) {
    for (int k = 0; k < 3; ++k) pos[3 * s + size_t(k)] = c.frac[s][size_t(k)];
    if (atomic_number(c.species[s]) == 0) return std::nullopt;
    const auto it = std::find(seen.begin(), seen.end(), c.species[s]);
    types[s] = int(it - seen.begin()) + 1;
    if (it == seen.end()) seen.push_back(c.species[s]);
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
