// MP-20 CSV rows -> Crystals.
#include "data/mp20.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/error.h"
#include "data/cif.h"
#include "data/csv.h"

namespace cg {
namespace {

// Empty or "nan" cell: unknown (nullopt). Otherwise a finite number, or false when unparsable.
bool parse_optional_double(const std::string& s, std::optional<double>* v) {
  if (s.empty() || s == "nan" || s == "NaN") {
    v->reset();
    return true;
  }
  char* end = nullptr;
  double x = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(x)) return false;
  *v = x;
  return true;
}

}  // namespace

Mp20Split parse_mp20_csv(const std::string& text, int64_t max_rows, bool strict) {
  CsvTable t = parse_csv(text);
  const size_t c_id = t.column("material_id"), c_fe = t.column("formation_energy_per_atom"),
               c_bg = t.column("band_gap"), c_formula = t.column("pretty_formula"),
               c_eh = t.column("e_above_hull"), c_cif = t.column("cif"), c_sg = t.column("spacegroup.number");
  Mp20Split out;
  const size_t n = max_rows > 0 ? std::min(t.rows.size(), size_t(max_rows)) : t.rows.size();
  out.rows_read = int64_t(n);
  for (size_t r = 0; r < n; ++r) {
    const auto& row = t.rows[r];
    std::string id = row.size() > c_id ? row[c_id] : "";
    std::string reason;
    Crystal c;
    auto skip = [&](const std::string& why) {
      std::string msg = why;
      if (strict) CG_FAIL("row {} (CSV line {}): {} (data.strict=true; set data.strict=false to skip such rows)", r,
                          t.row_lines[r], msg);
      out.skipped.push_back({int64_t(r), msg});
    };
    std::string label = id.empty() ? fmt::format("row {}", r) : id;
    if (row.size() != t.header.size()) {
      skip(fmt::format("{}: {} cells, header has {}", label, row.size(), t.header.size()));
      continue;
    }
    if (id.empty()) {
      skip(fmt::format("row {}: empty material_id", r));
      continue;
    }
    if (!parse_cif(row[c_cif], id, &c, &reason)) {
      skip(reason);
      continue;
    }
    c.formula = row[c_formula];
    if (!parse_optional_double(row[c_fe], &c.formation_energy_per_atom)) {
      skip(fmt::format("{}: formation_energy_per_atom '{}' is not a number", id, row[c_fe]));
      continue;
    }
    if (!parse_optional_double(row[c_bg], &c.band_gap)) {
      skip(fmt::format("{}: band_gap '{}' is not a number", id, row[c_bg]));
      continue;
    }
    if (!parse_optional_double(row[c_eh], &c.e_above_hull)) {
      skip(fmt::format("{}: e_above_hull '{}' is not a number", id, row[c_eh]));
      continue;
    }
    std::optional<double> sg;
    if (!parse_optional_double(row[c_sg], &sg) || (sg && (*sg != std::floor(*sg) || *sg < 1 || *sg > 230))) {
      skip(fmt::format("{}: spacegroup.number '{}' is not an integer in 1..230", id, row[c_sg]));
      continue;
    }
    if (sg) c.spacegroup = int(*sg);
    out.crystals.push_back(std::move(c));
    out.source_rows.push_back(int64_t(r));
  }
  return out;
}

Mp20Split read_mp20(const std::string& path, int64_t max_rows, bool strict) {
  return parse_mp20_csv(read_maybe_gz(path), max_rows, strict);
}

}  // namespace cg
