// MP-20 CSV rows -> Crystals.
#include "data/mp20.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/parallel.h"
#include "common/sha256.h"
#include "data/cif.h"
#include "data/csv.h"
#include "data/formula.h"
#include "data/pymatgen_order.h"
#include "data/shard_settings.h"
#include "data/space_groups.h"
#include "trainer/config.h"

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

// The columns of `t` nothing reads whose cells, in the first 50 rows, are numbers (at least one non-empty): another
// dataset's properties. The index column pandas writes (named "" or "Unnamed: 0") is not one.
std::vector<std::string> unread_numeric_columns(const CsvTable& t, const std::vector<int64_t>& read) {
  std::vector<std::string> out;
  for (size_t c = 0; c < t.header.size(); ++c) {
    const std::string& name = t.header[c];
    // A known name's own column data.columns reads another in place of is no other dataset's property to map.
    if (name.empty() || name == "Unnamed: 0" || std::find(read.begin(), read.end(), int64_t(c)) != read.end() ||
        std::find(std::begin(kKnownColumns), std::end(kKnownColumns), name) != std::end(kKnownColumns))
      continue;
    bool numeric = true, any = false;
    for (size_t r = 0; r < std::min<size_t>(t.rows.size(), 50) && numeric; ++r) {
      if (t.rows[r].size() <= c) continue;
      std::optional<double> v;
      numeric = parse_optional_double(t.rows[r][c], &v);
      any |= v.has_value();
    }
    if (numeric && any) out.push_back(name);
  }
  return out;
}

// "0, 4 and 9"; past five rows "0, 4, 9, 12 and 3 more".
std::string rows_list(const std::vector<int64_t>& rows) {
  const size_t shown = rows.size() > 5 ? 4 : rows.size() - 1;
  return fmt::format("{} and {}", fmt::join(rows.begin(), rows.begin() + shown, ", "),
                     rows.size() > 5 ? fmt::format("{} more", rows.size() - shown) : fmt::to_string(rows.back()));
}

// A formula cell with blanks around it dropped and each run of blanks inside it one space ("Si1  Os1 " -> "Si1 Os1";
// "" for blanks only): padded by hand or by a fixed-width export, or its parts spaced twice, it hides no formula, as
// pymatgen's Composition reads past them, and the cell is respelled either way. formula_counts itself stays strict
// for sample.formula, which is written into the prompt as given.
std::string single_blanks(const std::string& cell) {
  std::string out;
  bool blank = false;
  for (const char ch : cell) {
    if (ch == ' ' || ch == '\t') {
      blank = true;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    out += ch;
  }
  return out;
}

// The crystal parse_cif read (file order) in the order the reader gives.
Crystal in_site_order(Crystal c, SiteOrder order) {
  return order == SiteOrder::kPymatgen ? in_cif_parser_order(c) : c;
}

}  // namespace

std::string CsvColumns::of(const std::string& name) const {
  const auto it = renamed.find(name);
  if (it != renamed.end()) return it->second;
  for (const auto& [other, column] : renamed)  // renamed away: reading it too would state one value as two properties
    if (column == name) return "";
  return name;
}

std::vector<std::pair<std::string, std::string>> CsvColumns::vacated() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* name : kKnownColumns)
    if (!renamed.count(name))
      for (const auto& [other, column] : renamed)
        if (column == name) out.emplace_back(name, other);
  return out;
}

std::string CsvColumns::describe() const {
  std::string out;
  for (const char* name : kKnownColumns)
    if (renamed.count(name)) out += (out.empty() ? "" : ", ") + std::string(name) + "=" + renamed.at(name);
  return out;
}

namespace {

// "name=name": the column read under its own name, as with no entry.
bool is_identity_entry(const std::string& e) {
  const size_t eq = e.find('=');
  return eq != std::string::npos && e.compare(0, eq, e, eq + 1, std::string::npos) == 0;
}

}  // namespace

std::vector<std::string> effective_columns(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const std::string& e : entries)
    if (!is_identity_entry(e)) out.push_back(e);
  return out;
}

CsvColumns parse_columns(const std::vector<std::string>& entries) {
  CsvColumns out;
  std::map<std::string, std::string> given;  // name -> entry, identity ones included: a name given twice is refused
  std::map<std::string, std::string> read_as;  // column -> name, identity entries included
  const std::string known = fmt::format("{}", fmt::join(kKnownColumns, ", "));
  for (const std::string& e : entries) {
    const size_t eq = e.find('=');
    CG_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < e.size(), "data.columns entry '{}' is not name=column: "
             "write e.g. data.columns=[formation_energy_per_atom=heat_ref], a name one of {}", e, known);
    const std::string name = e.substr(0, eq), column = e.substr(eq + 1);
    CG_CHECK(std::find(std::begin(kKnownColumns), std::end(kKnownColumns), name) != std::end(kKnownColumns),
             "data.columns entry '{}': '{}' is no column cgtrain reads; the left side is one of {} (the right side "
             "your CSV's column)", e, name, known);
    CG_CHECK(!given.count(name), "data.columns maps {} twice ({} and {}): keep one", name, given[name], e);
    given[name] = e;
    // One column read as two properties would state one value twice; an identity entry reads its column too.
    CG_CHECK(!read_as.count(column), "data.columns maps both {} and {} to column '{}': each column can be one of "
             "them; keep one", read_as[column], name, column);
    read_as[column] = name;
    if (is_identity_entry(e)) continue;  // as no entry: shards made with and without it are the same
    out.renamed[name] = column;
  }
  return out;
}

std::string columns_setting(const std::vector<std::string>& entries) {
  return fmt::format("data.columns=[{}]", fmt::join(effective_columns(entries), ", "));
}

namespace {

// Whether `path` names the same file as `other`, however spelled.
bool same_file(const std::string& path, const std::string& other) {
  std::error_code ec;
  return !path.empty() && !other.empty() && (path == other || std::filesystem::equivalent(path, other, ec));
}

// The first of the config's data.*_csv laid out as the mapped dataset (a CSV file with every column `config` maps)
// whose columns are those of `header`, in any order; "" for none. A split that does not read (missing, a CIF folder)
// is passed over: its layout is not known.
std::string split_with_header(const std::vector<std::string>& header, const CsvColumns& config, const DataConfig& d) {
  const std::set<std::string> columns(header.begin(), header.end());
  std::error_code ec;
  for (const std::string* split : {&d.train_csv, &d.val_csv, &d.test_csv}) {
    if (split->empty() || !std::filesystem::is_regular_file(*split, ec) || is_cif_file(*split)) continue;
    try {
      const std::vector<std::string> theirs = read_csv_header(*split);
      const std::set<std::string> their_columns(theirs.begin(), theirs.end());
      bool mapped = true;
      for (const auto& [name, column] : config.renamed) mapped = mapped && their_columns.count(column);
      if (mapped && their_columns == columns) return *split;
    } catch (const Error&) {  // unreadable: said where the split itself is read
    }
  }
  return "";
}

// data.columns for a CSV that is none of the config's data.*_csv (cgsample's sample.conditions_from, cgeval's
// eval.ref_csv): applied where the file is laid out like the mapped dataset (its columns are those of one of
// data.*_csv, or it has every mapped column and lacks one of the names they are read as), not where it has MP-20's
// names itself. Said either way; where it has both every mapped column and every name they are read as (both columns
// of a swap, band_gap beside gap for band_gap=gap) the layout does not tell, and the warning says which was taken.
CsvColumns other_csv_columns(const std::string& path, const DataConfig& d) {
  const CsvColumns config = parse_columns(d.columns);
  if (config.renamed.empty()) return config;
  const std::vector<std::string> header = read_csv_header(path);
  const std::string setting = columns_setting(d.columns);
  if (const std::string split = split_with_header(header, config, d); !split.empty()) {
    spdlog::info("{} is none of data.*_csv but has the columns of {}: read with {}, as that file is", path, split,
                 setting);
    return config;
  }
  const auto has = [&](const std::string& c) { return std::find(header.begin(), header.end(), c) != header.end(); };
  std::vector<std::string> mapped_missing, own_missing;
  for (const auto& [name, column] : config.renamed) {
    if (!has(column)) mapped_missing.push_back(column);
    if (!has(name)) own_missing.push_back(name);
  }
  if (mapped_missing.empty() && !own_missing.empty()) {
    spdlog::info("{} is none of data.*_csv but laid out like them (it has the columns {} maps, not {}): read with "
                 "that mapping", path, setting, fmt::join(own_missing, ", "));
    return config;
  }
  std::vector<std::string> names, columns;
  for (const auto& [name, column] : config.renamed) names.push_back(name), columns.push_back(column);
  std::sort(columns.begin(), columns.end());  // names are in order already (the map's keys)
  if (own_missing.empty() && mapped_missing.empty())
    spdlog::warn("{} has both the columns {} maps ({}) and MP-20's names they are read as ({}), and its columns are "
                 "not those of any of data.*_csv, so its layout does not say which it is: read by MP-20's names, "
                 "without the mapping. To read it with the mapping, name it as one of the config's splits "
                 "(data.test_csv={} and sample.conditions_from=data.test_csv or eval.ref_csv=data.test_csv), or "
                 "give it the columns of data.train_csv; to read it by MP-20's names without this warning, give this "
                 "run data.columns=[]", path, setting, fmt::join(columns, ", "),
                 fmt::join(names, ", "), path);
  else if (own_missing.empty())
    spdlog::info("{} has MP-20's column names ({}) itself: read as it is, without {} (which applies to files laid "
                 "out like data.*_csv)", path, fmt::join(names, ", "), setting);
  else
    spdlog::warn("{} is laid out neither like data.*_csv ({} maps columns it lacks: {}) nor with MP-20's names (it "
                 "lacks {}): read by MP-20's names without the mapping; give it the columns of one or the other",
                 path, setting, fmt::join(mapped_missing, ", "), fmt::join(own_missing, ", "));
  return {};
}

}  // namespace

CsvColumns data_csv_columns(const std::string& path, const DataConfig& d) {
  const CsvColumns config = parse_columns(d.columns);  // a bad mapping is an error wherever it is given
  std::error_code ec;
  if (path.empty() || std::filesystem::is_directory(path, ec) || is_cif_file(path)) return {};  // no columns to map
  // A file the shards were made from: read as cgprep read it, so that its rows are the ones the model trained on.
  if (const auto shards = shards_columns(d.shards_dir))
    for (const auto& [split, source] : shards->sources) {
      if (!same_file(path, source)) continue;
      const CsvColumns made = parse_columns(shards->columns);
      if (made.renamed != config.renamed)
        spdlog::warn("{} is the file the {} shards in {} were made from, with {}, but this config says {}: it is read "
                     "with the shards' mapping, as cgprep read it; set {} in this config to silence this", path, split,
                     d.shards_dir, columns_setting(shards->columns), columns_setting(d.columns),
                     columns_setting(shards->columns));
      return made;
    }
  for (const std::string* split : {&d.train_csv, &d.val_csv, &d.test_csv})
    if (same_file(path, *split)) return config;
  return other_csv_columns(path, d);
}

Mp20Split parse_mp20_csv(const std::string& text, int64_t max_rows, bool strict, const CsvColumns& columns,
                         SiteOrder order) {
  // A tab-separated export (a spreadsheet's): its first line has tabs and no comma; read as CSV it would fail later
  // on whatever quote comes first.
  const std::string first_line = text.substr(0, text.find('\n'));
  CG_CHECK(first_line.find('\t') == std::string::npos || first_line.find(',') != std::string::npos, "the file is "
           "tab-separated (its header line has tabs and no comma); CDVAE's layout is comma-separated: save it as CSV");
  // A semicolon-separated one (a spreadsheet in a European locale, pandas' sep=";"): read as CSV, its CIF cells'
  // quotes would fail as a cell never closed, which says nothing of the cause.
  CG_CHECK(first_line.find(';') == std::string::npos || first_line.find(',') != std::string::npos, "the file is "
           "semicolon-separated (its header line has ';' and no comma); CDVAE's layout is comma-separated: save it as "
           "CSV with commas (pandas: df.to_csv(path), without sep=\";\"; a spreadsheet: choose ',' as the separator)");
  CsvTable t = parse_csv(text);
  for (const auto& [name, column] : columns.renamed)  // a mapping that names no column is a mistake, not "unknown"
    CG_CHECK(t.find(column) >= 0, "data.columns maps {} to column '{}', which the CSV lacks; its columns are {}: "
             "correct data.columns (name=column, the column as the header spells it)", name, column,
             t.quoted_header());
  // The column `name` is read from; -1 where the file lacks it or data.columns reads it as another name ("" is no
  // name to look for: pandas' index column is named so).
  const auto column_of = [&](const char* name) {
    const std::string column = columns.of(name);
    return column.empty() ? int64_t(-1) : t.find(column);
  };
  const auto required = [&](const char* name) {  // the two columns every row needs
    for (const auto& [vacated, other] : columns.vacated())
      CG_CHECK(vacated != name, "data.columns ({}) reads column '{}' as {}, so no column gives {}, which every row "
               "needs: map {} to the column that holds the {} too (data.columns=[{}, {}=<that column>])",
               columns.describe(), vacated, other, name, name,
               std::string(name) == "cif" ? "CIFs" : "crystals' ids", columns.describe(), name);
    const int64_t c = column_of(name);
    CG_CHECK(c >= 0, "CSV has no column '{}'; its columns are {}: if one of them holds the {}, name it with "
             "data.columns=[{}{}=<that column>] (docs/formats.md#other-datasets)", columns.of(name),
             t.quoted_header(), std::string(name) == "cif" ? "CIFs" : "crystals' ids",
             columns.renamed.empty() ? "" : columns.describe() + ", ", name);
    return size_t(c);
  };
  const size_t c_id = required("material_id"), c_cif = required("cif");
  Mp20Split out;
  std::vector<int64_t> read = {int64_t(c_id), int64_t(c_cif), t.find("elements")};  // elements: MP-20's, derived
  auto optional_column = [&](const char* name) {
    const int64_t c = column_of(name);
    if (c < 0 && !columns.of(name).empty()) out.missing_columns.push_back(name);  // renamed away: vacated_columns
    read.push_back(c);
    return c;
  };
  const int64_t c_fe = optional_column(kPropertyColumns[0]), c_bg = optional_column(kPropertyColumns[1]),
                c_formula = optional_column(kPropertyColumns[2]), c_eh = optional_column(kPropertyColumns[3]),
                c_sg = optional_column(kPropertyColumns[4]);
  out.unread_numeric_columns = unread_numeric_columns(t, read);
  std::set<std::string> read_as_names;  // the file's columns data.columns reads
  for (const auto& entry : columns.renamed) read_as_names.insert(entry.second);
  for (const auto& [name, column] : columns.renamed)  // the file's own column, unless read as another name (a swap)
    if (t.find(name) >= 0 && !read_as_names.count(name)) out.shadowed_columns.emplace_back(name, column);
  for (const auto& [name, other] : columns.vacated())
    if (t.find(name) >= 0) out.vacated_columns.emplace_back(name, other);
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
    // Where a reason is shown, its row is shown beside it: the reason names the crystal, not the row again.
    if (row.size() != t.header.size()) {
      skip(fmt::format("{}{} cells, header has {}", id.empty() ? "" : id + ": ", row.size(), t.header.size()));
      continue;
    }
    if (id.empty()) {
      skip("empty material_id");
      out.no_id_rows.push_back(int64_t(r));
      continue;
    }
    std::string warning;
    if (!parse_cif(row[c_cif], id, &c, &reason, &warning)) {
      skip(reason);
      continue;
    }
    if (!warning.empty()) out.cif_warnings.push_back({int64_t(r), warning});
    auto cell = [&](int64_t col) { return col < 0 ? std::string() : row[size_t(col)]; };
    c.formula = cell(c_formula);
    struct Prop {
      int64_t col;
      const char* name;
      std::optional<double>* dst;
    };
    // A property cell that is no number says nothing about the crystal: the property is unknown, as when empty.
    auto bad_property = [&](const std::string& why) {
      if (strict) CG_FAIL("row {} (CSV line {}): {} (data.strict=true; set data.strict=false to leave such "
                          "properties unknown)", r, t.row_lines[r], why);
      out.bad_properties.push_back({int64_t(r), why});
    };
    for (const Prop& p : {Prop{c_fe, "formation_energy_per_atom", &c.formation_energy_per_atom},
                          Prop{c_bg, "band_gap", &c.band_gap}, Prop{c_eh, "e_above_hull", &c.e_above_hull}})
      if (!parse_optional_double(cell(p.col), p.dst)) {
        bad_property(fmt::format("{}: {} '{}' is not a number", id, columns.of(p.name), cell(p.col)));
        p.dst->reset();
      }
    std::optional<double> sg;
    if (!parse_optional_double(cell(c_sg), &sg) || (sg && (*sg != std::floor(*sg) || *sg < 1 || *sg > 230))) {
      bad_property(fmt::format("{}: {} '{}' is not an integer in 1..230", id, columns.of("spacegroup.number"),
                               cell(c_sg)));
      sg.reset();
    }
    if (sg) c.spacegroup = int(*sg);
    out.crystals.push_back(in_site_order(std::move(c), order));
    out.source_rows.push_back(int64_t(r));
  }
  return out;
}

namespace {

// "x.cif" / "x.cif.gz" -> "x", the extension in any case (X.CIF from Windows tools); "" for other files.
std::string cif_stem(const std::filesystem::path& f) {
  const std::string name = f.filename().string();
  if (name.empty() || name[0] == '.') return "";  // hidden files, macOS's ._x.cif resource forks
  std::string lower = name;
  for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* ext : {".cif", ".cif.gz"})
    if (lower.size() > std::strlen(ext) && lower.compare(lower.size() - std::strlen(ext), std::string::npos, ext) == 0)
      return name.substr(0, name.size() - std::strlen(ext));
  return "";
}

// A folder's CIF files in name order: regular files, and CIF-named entries whose type cannot be read (a broken or
// looping symlink), which then fail to read and are counted as skipped rather than vanishing. With `subfolders`, also
// how many CIF files each folder below holds (up to 100000 entries walked; links to folders not followed), in the
// same listing of the folder: reading it warns of them.
struct CifListing {
  std::vector<std::filesystem::path> files;
  std::map<std::string, int64_t> below;  // subfolder -> CIF files directly in it
};

CifListing list_cifs(const std::string& dir, bool subfolders) {
  CifListing out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  CG_CHECK(!ec, "cannot list {}: {}", dir, ec.message());
  int64_t walked = 0;
  for (const auto& e : it) {
    std::error_code type_ec;
    if (!cif_stem(e.path()).empty() && (e.is_regular_file(type_ec) || type_ec)) out.files.push_back(e.path());
    if (!subfolders || e.is_symlink(type_ec) || !e.is_directory(type_ec)) continue;
    std::error_code sub_ec;
    for (std::filesystem::recursive_directory_iterator sub(e.path(), sub_ec), end;
         !sub_ec && sub != end && walked < 100000; sub.increment(sub_ec), ++walked)
      if (!cif_stem(sub->path()).empty()) ++out.below[sub->path().parent_path().string()];
  }
  std::sort(out.files.begin(), out.files.end());
  return out;
}

std::vector<std::filesystem::path> cif_files(const std::string& dir) { return list_cifs(dir, false).files; }

// For a folder without CIFs of its own: "; subfolders are not read, and sub holds 3 CIF file(s) (in all, 5 in 2
// subfolders): give that folder, or move the files up" ("" when none holds any). ICSD and COD downloads nest them.
std::string cifs_in_subfolders(const CifListing& listing, const std::string& dir) {
  const auto& per_folder = listing.below;
  if (per_folder.empty()) return "";
  int64_t total = 0;
  for (const auto& [f, n] : per_folder) total += n;
  const auto& [first, n] = *per_folder.begin();
  return fmt::format("; subfolders are not read, and {} holds {} CIF file(s){}: give that folder, or move the files "
                     "up into {}", first, n, per_folder.size() > 1 ? fmt::format(" (in all, {} in {} subfolders)",
                                                                                 total, per_folder.size()) : "",
                     dir);
}

}  // namespace

bool is_cif_folder(const std::string& dir) { return std::filesystem::is_directory(dir) && !cif_files(dir).empty(); }

bool is_cif_file(const std::string& path) {
  return std::filesystem::is_regular_file(path) && !cif_stem(path).empty();
}

std::string cifs_in_subfolders_hint(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) return "";
  const CifListing listing = list_cifs(dir, /*subfolders=*/true);
  return listing.files.empty() ? cifs_in_subfolders(listing, dir) : "";
}

Mp20Split read_cif_folder(const std::string& dir, int64_t max_rows, bool strict, SiteOrder order) {
  const CifListing listing = is_cif_file(dir) ? CifListing{{dir}, {}} : list_cifs(dir, /*subfolders=*/true);
  const auto& files = listing.files;
  CG_CHECK(!files.empty(), "{} holds no .cif or .cif.gz file{}; give a folder of CIFs or a CSV in CDVAE's layout",
           dir, cifs_in_subfolders(listing, dir));
  // CIFs of its own and more below: the ones below would be left out without a word.
  if (!listing.below.empty())
    spdlog::warn("{} holds {} CIF file(s) of its own, which are read{}", dir, files.size(),
                 cifs_in_subfolders(listing, dir));
  Mp20Split out;
  out.missing_columns.assign(std::begin(kPropertyColumns), std::end(kPropertyColumns));  // no properties at all
  std::map<std::string, int> stems;  // x.cif and x.cif.gz both present: ids by file name
  for (const auto& f : files) ++stems[cif_stem(f)];
  for (const auto& f : files) {
    const std::string id = stems[cif_stem(f)] > 1 ? f.filename().string() : cif_stem(f);
    std::vector<CifBlockResult> blocks;
    std::error_code ec;
    if (std::filesystem::is_symlink(f, ec) && !std::filesystem::exists(f, ec)) {  // no setting names it: say what
      blocks.push_back({id, false, {}, fmt::format("{}: {} is a link to {}, which does not exist", id, f.string(),
                                                   std::filesystem::read_symlink(f, ec).string())});
    } else {
      try {
        blocks = parse_cif_blocks(read_maybe_gz(f.string()), id);
      } catch (const Error& e) {  // unreadable: missing permission, a truncated .gz
        blocks.push_back({id, false, {}, id + ": " + message_of(e)});
      }
    }
    for (auto& block : blocks) {
      if (max_rows > 0 && out.rows_read >= max_rows) return out;
      const int64_t row = out.rows_read++;
      if (block.ok) {
        out.crystals.push_back(in_site_order(std::move(block.crystal), order));
        out.source_rows.push_back(row);
        if (!block.warning.empty()) out.cif_warnings.push_back({row, block.warning});
      } else {
        if (strict) CG_FAIL("{} (data.strict=true; set data.strict=false to skip such CIFs)", block.reason);
        out.skipped.push_back({row, block.reason});
      }
    }
  }
  return out;
}

std::string source_sha256(const std::string& path) {
  if (!std::filesystem::is_directory(path)) return sha256_file(path);
  std::string list;
  for (const auto& f : cif_files(path)) {
    std::string h;
    try {
      h = sha256_file(f.string());
    } catch (const Error&) {
      h = "unreadable";  // read_cif_folder counts it as a skipped row
    }
    list += f.filename().string() + " " + h + "\n";
  }
  return sha256_hex(list.data(), list.size());
}

DerivedProperties derive_properties(std::vector<Crystal>* crystals, int threads, const std::atomic<int>* stop) {
  std::vector<Crystal>& cs = *crystals;
  const bool spglib = have_spglib();
  // formula: 1 derived here, 2 a cell that is no formula, 3 another composition's (both replaced), 4 respelled;
  // spacegroup: 1 derived here, -1 none found.
  std::vector<int8_t> formula(cs.size(), 0), spacegroup(cs.size(), 0);
  std::vector<std::string> given(cs.size());  // the cell a formula replaced or respelled
  parallel_chunks(0, int64_t(cs.size()), 16, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (stop && stop->load(std::memory_order_relaxed) != 0) return;
      Crystal& c = cs[size_t(i)];
      // pymatgen's reading of the crystal's CIF sorts its sites, and its composition and spglib see them so sorted
      // (read_mp20 gives them so by default, and sorting them again keeps them).
      const Crystal sorted = in_cif_parser_order(c);
      const auto amounts = species_amounts(sorted.species);
      const std::string derived = amounts.empty() ? "" : pymatgen_reduced_formula(amounts).first;
      // Empty, or a cell that prompts must not state as it is (MP-20's never differ).
      if (!amounts.empty() && c.formula != derived) {
        if (!c.formula.empty()) {
          const auto counts = formula_counts(single_blanks(c.formula));
          formula[size_t(i)] = !counts ? 2
                               : same_reduced_composition(*counts, {amounts.begin(), amounts.end()}) ? 4 : 3;
          given[size_t(i)] = c.formula;
        } else {
          formula[size_t(i)] = 1;
        }
        c.formula = derived;
      }
      if (!c.spacegroup) {
        const auto sg = spglib ? space_group(sorted, kMaterialsProjectSymprec) : std::nullopt;
        if (sg) c.spacegroup = sg->number;
        spacegroup[size_t(i)] = sg ? 1 : -1;
      }
    }
  });
  DerivedProperties d;
  for (size_t i = 0; i < cs.size(); ++i) {
    d.formulas += formula[i] == 1;
    d.spacegroups += spacegroup[i] == 1;
    d.no_spacegroup += spacegroup[i] == -1;
    if (formula[i] == 2 || formula[i] == 3) {
      if (d.formulas_replaced++ == 0)
        d.first_replaced = fmt::format("{}: '{}' is {}; {} stated instead", cs[i].id, given[i],
                                       formula[i] == 2 ? "not a formula such as Fe2O3"
                                                       : "not the composition of its structure",
                                       cs[i].formula);
    }
    if (formula[i] == 4 && d.formulas_respelled++ == 0)
      d.first_respelled = fmt::format("{}: {} -> {}", cs[i].id, given[i], cs[i].formula);
  }
  if (d.formulas > 0 || d.formulas_replaced > 0 || d.formulas_respelled > 0)
    d.what = "formula (pymatgen's reduced formula)";
  if (d.spacegroups > 0 || d.no_spacegroup > 0)
    d.what += (d.what.empty() ? "" : "; ") +
              (spglib ? fmt::format("spacegroup (spglib, symprec {} A, 5 degrees)", kMaterialsProjectSymprec)
                      : std::string("no spacegroup (built without spglib)"));
  return d;
}

void log_formula_cells(const std::string& who, const std::string& path, const DerivedProperties& d) {
  if (d.formulas_replaced > 0)
    spdlog::warn("{}: {} row(s) of {} have a formula cell that is not a formula or not the composition of their "
                 "structure; their prompts state the formula derived from the structure instead (the first: {}). "
                 "Correct or empty those cells to silence this", who, d.formulas_replaced, path, d.first_replaced);
  if (d.formulas_respelled > 0)
    spdlog::info("{}: {} formula cell(s) of {} written as pymatgen's reduced formula, as every prompt writes formulas "
                 "(the first: {})", who, d.formulas_respelled, path, d.first_respelled);
}

std::string derived_summary(const DerivedProperties& d) {
  std::string out;
  if (d.formulas > 0) out = fmt::format("the formula of {} crystal(s)", d.formulas);
  if (d.spacegroups > 0)
    out += fmt::format("{}the space group (spglib at {} A, as Materials Project) of {}", out.empty() ? "" : ", ",
                       kMaterialsProjectSymprec, d.spacegroups);
  return out;
}

std::string property_counts_json(const std::vector<Crystal>& crystals) {
  int64_t formula = 0, sg = 0, fe = 0, gap = 0, ehull = 0;
  for (const auto& c : crystals) {
    formula += !c.formula.empty();
    sg += c.spacegroup.has_value();
    fe += c.formation_energy_per_atom.has_value();
    gap += c.band_gap.has_value();
    ehull += c.e_above_hull.has_value();
  }
  return fmt::format(R"({{"crystals": {}, "formula": {}, "spacegroup": {}, "formation_energy": {}, "band_gap": {}, )"
                     R"("e_above_hull": {}}})", crystals.size(), formula, sg, fe, gap, ehull);
}

void warn_cif_warnings(const std::string& path, const Mp20Split& split) {
  if (!split.cif_warnings.empty())
    spdlog::warn("{}: {} CIF(s) name their space group in ways that disagree (listed symmetry operations and a name, "
                 "or several space-group tags); each was read as pymatgen's CifParser reads it, but for a Hall symbol "
                 "it reads as another group's H-M symbol (the first: {})", path, split.cif_warnings.size(),
                 split.cif_warnings[0].reason);
}

Mp20Split read_mp20(const std::string& path, int64_t max_rows, bool strict, const CsvColumns& columns,
                    SiteOrder order) {
  if (std::filesystem::is_directory(path) || is_cif_file(path)) {
    Mp20Split split = read_cif_folder(path, max_rows, strict, order);
    warn_cif_warnings(path, split);
    return split;
  }
  const std::string text = read_maybe_gz(path);
  Mp20Split split;
  try {
    split = parse_mp20_csv(text, max_rows, strict, columns, order);
  } catch (const Error& e) {  // the CSV's structure (not a row's): say which file, where several are in play
    throw Error(std::string(e.what()) + " (in " + path + ")");
  }
  // Ids name crystals in skip reasons, cgeval's items and the shards' rows: a repeated one makes them ambiguous.
  std::map<std::string, std::vector<int64_t>> rows_of;
  std::vector<std::string> ids;  // in order of first appearance
  for (size_t i = 0; i < split.crystals.size(); ++i) {
    auto& rows = rows_of[split.crystals[i].id];
    if (rows.empty()) ids.push_back(split.crystals[i].id);
    rows.push_back(split.source_rows[i]);
  }
  int64_t repeated_ids = 0, repeated_rows = 0;
  std::vector<std::string> first;  // the first few: "mp-1 in rows 0, 4 and 9"
  for (const std::string& id : ids) {
    const auto& rows = rows_of[id];
    if (rows.size() < 2) continue;
    ++repeated_ids;
    repeated_rows += int64_t(rows.size());
    if (first.size() < 3) first.push_back(id + " in rows " + rows_list(rows));
  }
  if (repeated_ids > 0)
    spdlog::warn("{}: {} material_id(s) are each given to more than one row, {} rows in all ({}{}); all are kept, but "
                 "skip reasons, cgeval's items and row numbers name crystals by it: give each row its own id", path,
                 repeated_ids, repeated_rows, fmt::join(first, "; "),
                 repeated_ids > int64_t(first.size()) ? "; ..." : "");
  // Each row's reason alone ("row 3: empty material_id") says neither how many nor what to do.
  if (!split.no_id_rows.empty())
    spdlog::warn("{}: {} row(s) have an empty material_id and are left out ({} {}): every crystal is named by its id "
                 "(in the shards, skip reasons and cgeval's items); fill in their material_id cells (any name, one per "
                 "row), or, if another column holds the ids, name it with data.columns=[material_id=<that column>]",
                 path, split.no_id_rows.size(), split.no_id_rows.size() > 1 ? "rows" : "row",
                 split.no_id_rows.size() > 1 ? rows_list(split.no_id_rows) : fmt::to_string(split.no_id_rows[0]));
  if (!split.shadowed_columns.empty()) {
    std::vector<std::string> each;
    for (const auto& [name, column] : split.shadowed_columns)
      each.push_back(fmt::format("{} is read from column '{}', not from its own '{}' column", name, column, name));
    spdlog::warn("{}: data.columns maps names the file also has as columns of its own: {}. Drop the entry to read the "
                 "file's own column, or rename that column to silence this", path, fmt::join(each, "; "));
  }
  for (const auto& [name, other] : split.vacated_columns)  // what the user asked for, but say what it costs
    spdlog::info("{}: {} is read as {} (data.columns), so no column gives {}; map {}=<another column> to read it "
                 "from one", path, name, other, name, name);
  warn_cif_warnings(path, split);
  if (!split.bad_properties.empty())
    spdlog::warn("{}: {} row(s) have a property cell that is no valid number; those properties are left unknown (a "
                 "formula or space group is then derived from the structure where cgprep or sample.conditions_from "
                 "read it) and the crystals kept (the first: row {}: {})", path, split.bad_properties.size(),
                 split.bad_properties[0].row, split.bad_properties[0].reason);
  return split;
}

}  // namespace cg
