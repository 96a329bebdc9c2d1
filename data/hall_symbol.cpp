// Hall symbols (data/hall_symbol.h): symbol -> generators -> the group they close to, then its change of basis.
#include "data/hall_symbol.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include <fmt/format.h>

namespace cg {
namespace {

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

}  // namespace

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

}  // namespace cg
