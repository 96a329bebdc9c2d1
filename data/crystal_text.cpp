// Crystal <-> the paper's text format.
#include "data/crystal_text.h"

#include <cmath>
#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "data/elements.h"

namespace cg {

AngleMode parse_angle_mode(const std::string& s) {
  if (s == "round") return AngleMode::kRound;
  if (s == "truncate") return AngleMode::kTruncate;
  CG_FAIL("data.angle_mode '{}' is not one of: round, truncate", s);
}

const char* angle_mode_name(AngleMode m) { return m == AngleMode::kRound ? "round" : "truncate"; }

std::string format_frac(double x, const TextOptions& opt) {
  double w = wrap01(x);
  // Round to 2 decimals exactly as printing would, to decide the fold.
  std::string s = fmt::format("{:.2f}", w);
  if (opt.fold_one && s == "1.00") s = "0.00";
  return s;
}

std::string crystal_to_text(const Crystal& c, const TextOptions& opt) {
  // truncate reproduces the reference code's int() of pymatgen's parameters, which pymatgen recomputes from the
  // lattice matrix it builds from the CIF (a CIF's 60 comes back as 59.99999999999999, int() makes it 59); round is
  // robust to such last-bit differences.
  const Lattice l =
      opt.angles == AngleMode::kTruncate ? lattice_parameters(lattice_matrix(c.lattice)) : c.lattice;
  auto angle = [&](double a) {
    long v = opt.angles == AngleMode::kRound ? std::lround(a) : long(a);  // long(a) truncates toward zero, as int()
    return v;
  };
  std::string s;
  s.reserve(32 + c.num_sites() * 24);
  s += fmt::format("{:.1f} {:.1f} {:.1f}\n{} {} {}", l.a, l.b, l.c, angle(l.alpha), angle(l.beta), angle(l.gamma));
  for (size_t i = 0; i < c.num_sites(); ++i) {
    s += '\n';
    s += c.species[i];
    s += '\n';
    s += format_frac(c.frac[i][0], opt);
    s += ' ';
    s += format_frac(c.frac[i][1], opt);
    s += ' ';
    s += format_frac(c.frac[i][2], opt);
  }
  return s;
}

namespace {

// [-]digits[.digits] -> double; false otherwise (no exponents, no '+', no spaces).
bool strict_number(std::string_view s, double* v) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  size_t d0 = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == d0) return false;
  if (i < s.size() && s[i] == '.') {
    size_t d1 = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == d1) return false;
  }
  if (i != s.size()) return false;
  *v = std::strtod(std::string(s).c_str(), nullptr);
  return true;
}

// Exactly three numbers separated by single spaces.
bool three_numbers(std::string_view line, double out[3]) {
  size_t p1 = line.find(' ');
  if (p1 == std::string_view::npos) return false;
  size_t p2 = line.find(' ', p1 + 1);
  if (p2 == std::string_view::npos || line.find(' ', p2 + 1) != std::string_view::npos) return false;
  return strict_number(line.substr(0, p1), &out[0]) && strict_number(line.substr(p1 + 1, p2 - p1 - 1), &out[1]) &&
         strict_number(line.substr(p2 + 1), &out[2]);
}

}  // namespace

bool parse_crystal_text(std::string_view text, Crystal* out, std::string* error, const std::string& id) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (true) {
    size_t nl = text.find('\n', pos);
    lines.push_back(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  auto fail = [&](size_t i, const std::string& what) {
    *error = fmt::format("line {}: {} (got '{}')", i + 1, what, i < lines.size() ? lines[i] : "");
    return false;
  };
  Crystal c;
  c.id = id;
  double v[3];
  if (!three_numbers(lines[0], v)) return fail(0, "expected three lattice lengths 'a b c'");
  if (!(v[0] > 0 && v[1] > 0 && v[2] > 0)) return fail(0, "lattice lengths must be positive");
  c.lattice.a = v[0], c.lattice.b = v[1], c.lattice.c = v[2];
  if (lines.size() < 2) return fail(1, "missing the angles line 'alpha beta gamma'");
  if (!three_numbers(lines[1], v)) return fail(1, "expected three lattice angles 'alpha beta gamma'");
  for (double a : v)
    if (!(a > 0 && a < 180)) return fail(1, "lattice angles must lie in (0, 180) degrees");
  c.lattice.alpha = v[0], c.lattice.beta = v[1], c.lattice.gamma = v[2];
  // Angles each in range can still form no cell (138 138 90): the CIF reader's test (data/cif.cpp), so a sample and
  // the CIF it would be written as get one verdict.
  if (!forms_cell(c.lattice)) return fail(1, "lattice lengths and angles form no cell (zero volume)");
  if (lines.size() < 4) return fail(lines.size(), "expected at least one site (element line, then 'x y z')");
  for (size_t i = 2; i < lines.size(); i += 2) {
    if (lines[i].empty()) return fail(i, "empty line where an element symbol should be (trailing newline?)");
    if (!is_element(lines[i])) return fail(i, "not an element symbol");
    if (i + 1 >= lines.size()) return fail(i + 1, "missing the coordinates line 'x y z' after the element");
    if (!three_numbers(lines[i + 1], v)) return fail(i + 1, "expected three fractional coordinates 'x y z'");
    for (double x : v)
      if (!(x >= 0 && x <= 1)) return fail(i + 1, "fractional coordinates must lie in [0, 1]");
    c.species.emplace_back(lines[i]);
    c.frac.push_back({v[0], v[1], v[2]});
  }
  *out = std::move(c);
  return true;
}

Crystal parse_crystal_text(std::string_view text, const std::string& id) {
  Crystal c;
  std::string err;
  if (!parse_crystal_text(text, &c, &err, id)) throw Error(id.empty() ? err : id + ": " + err);
  return c;
}

}  // namespace cg
