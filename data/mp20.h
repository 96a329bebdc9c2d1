// MP-20 CSVs in CDVAE's layout -> Crystals with their properties; malformed rows are skipped with a reason.
// Columns: "",material_id,formation_energy_per_atom,band_gap,pretty_formula,e_above_hull,elements,cif,spacegroup.number
// material_id and cif are required; a property column the file lacks (other CDVAE datasets, a user's own CSV) leaves
// that property unknown for every row.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/crystal.h"
#include "data/pymatgen_order.h"

namespace cg {

struct SkippedRow {
  int64_t row = 0;         // 0-based data row (header excluded)
  std::string reason;      // starts with the material_id when the row has one
};

// The optional property columns, in the order missing_columns lists them.
inline constexpr const char* kPropertyColumns[] = {"formation_energy_per_atom", "band_gap", "pretty_formula",
                                                   "e_above_hull", "spacegroup.number"};

// Every column cgtrain reads from a CSV, by MP-20's names; data.columns maps them to another dataset's names.
inline constexpr const char* kKnownColumns[] = {"material_id", "cif", "pretty_formula", "spacegroup.number",
                                                "formation_energy_per_atom", "band_gap", "e_above_hull"};

// data.columns parsed: the file's column each known name is read from (perov-5's heat_ref for
// formation_energy_per_atom). A rename, as pandas' rename: a mapped column is read under its new name only. Names not
// mapped are read under their own name, unless their column is mapped to another name (band_gap=
// formation_energy_per_atom): that name is then read from no column, as from a CSV lacking it, so that one measured
// value is never stated as two properties.
struct CsvColumns {
  std::map<std::string, std::string> renamed;  // known name -> the file's column
  // The file's column for `name`; "" where no column gives it (its own column is read as another name).
  std::string of(const std::string& name) const;
  // {name, other}: each unmapped known name whose own column is read as `other`, so that no column gives it.
  std::vector<std::pair<std::string, std::string>> vacated() const;
  // "formation_energy_per_atom=heat_ref, material_id=id" (known names in kKnownColumns order); "" when none.
  std::string describe() const;
};
// data.columns' entries ("name=column") parsed; throws naming the entry and what to write instead (an unknown name,
// no '=', an empty side, a name mapped twice). An identity entry (material_id=material_id) is checked, then left out:
// it reads the column under its own name, as no entry does.
CsvColumns parse_columns(const std::vector<std::string>& entries);
// data.columns' entries as they take effect, in the order given: identity entries left out. What the shards record
// (settings_json), so that shards made with and without one are the same shards.
std::vector<std::string> effective_columns(const std::vector<std::string>& entries);

// "data.columns=[formation_energy_per_atom=heat_ref, material_id=id]": `entries` as a setting to write, identity
// entries left out ("data.columns=[]" for none).
std::string columns_setting(const std::vector<std::string>& entries);

struct DataConfig;
// The mapping to read `path` with, for cgsample (sample.conditions_from, sample.task=infill) and cgeval (its
// references, eval.invariance), said where it is not d.columns as given:
// - a file the shards in d.shards_dir were made from: the mapping they were made with (warned of where d.columns
//   says another), as cgprep read it;
// - one of d's data.*_csv files: d.columns;
// - any other CSV: d.columns where it is laid out like the mapped dataset (its columns are those of one of d's
//   data.*_csv that has every mapped column, or it has every mapped column and lacks one of their MP-20 names; an
//   info line), else none (MP-20's names; an info line where it has them, a warning where it has neither layout, or
//   both every mapped column and every MP-20 name they are read as, which its layout cannot tell apart);
// - a CIF folder or file: none (no columns).
// Throws where d.columns does not parse (parse_columns).
CsvColumns data_csv_columns(const std::string& path, const DataConfig& d);

struct Mp20Split {
  std::vector<Crystal> crystals;    // in file order
  std::vector<int64_t> source_rows; // data row index of each crystal
  std::vector<SkippedRow> skipped;  // every row not in `crystals`, with why
  int64_t rows_read = 0;            // data rows looked at (after max_rows)
  std::vector<std::string> missing_columns;  // optional property columns the file lacks (unknown for every row)
  // Rows kept whose property cell (formation energy, band gap, e_above_hull, space group number) is no valid number:
  // that property is left unknown, as an empty cell is, and the crystal is kept (strict: the first one throws).
  std::vector<SkippedRow> bad_properties;
  // Columns the file has but nothing reads, whose cells (the first rows' non-empty ones) are numbers: another
  // dataset's properties (perov-5's heat_ref), which data.columns can map to a known name. The index column is not one.
  std::vector<std::string> unread_numeric_columns;
  // data.columns entries {name, column} whose name the file also has as a column of its own (band_gap=foo beside a
  // band_gap column) that no entry reads as another name: the mapped column is read, the file's own is not (read_mp20
  // warns, naming both). A swap (band_gap=x, x=band_gap) reads both and is none.
  std::vector<std::pair<std::string, std::string>> shadowed_columns;
  // CsvColumns::vacated: {name, other}, each name the file has a column of that is read as `other` (data.columns), so
  // that no column gives `name` (unknown for every row, not in missing_columns: read_mp20 says it in one info line).
  std::vector<std::pair<std::string, std::string>> vacated_columns;
  // Crystals kept whose CIF names its space group in ways that disagree: operations of another space group than
  // its number or H-M symbol names (or a number out of 1..230), read with the listed operations; or, listing none,
  // space-group tags that name other settings or groups, read from the tag pymatgen reads (data/cif.h). read_mp20
  // warns once, with the count and the first one's message.
  std::vector<SkippedRow> cif_warnings;
  // Rows skipped for an empty material_id (also in `skipped`): read_mp20 warns of them once, with what to do.
  std::vector<int64_t> no_id_rows;
};

// The one warning read_mp20 gives for split.cif_warnings (none when empty), for readers of CIFs that do not go
// through it (read_cif_folder, cgeval's inputs).
void warn_cif_warnings(const std::string& path, const Mp20Split& split);

// Parses CSV text (already gunzipped). max_rows > 0: only the first max_rows data rows.
// strict: the first malformed row throws cg::Error with its reason instead of being skipped.
// columns: where each known column is read from (data.columns); a mapped column the file lacks throws, naming both.
// order: each crystal's sites in pymatgen's CifParser order (default: the order the reference code's
// Structure.from_str gives, and so its text's; data/pymatgen_order.h), or as its CIF lists them (kFile: each listed
// site followed by its images, data/cif.h). Every reader of CSV/CIF crystals (cgprep, cgsample, cgeval) comes here.
Mp20Split parse_mp20_csv(const std::string& text, int64_t max_rows = 0, bool strict = false,
                         const CsvColumns& columns = {}, SiteOrder order = SiteOrder::kPymatgen);
// Same from a file (gz or plain), or from a folder of CIF files (read_cif_folder; `columns` does not apply).
Mp20Split read_mp20(const std::string& path, int64_t max_rows = 0, bool strict = false,
                    const CsvColumns& columns = {}, SiteOrder order = SiteOrder::kPymatgen);

// What derive_properties filled in.
struct DerivedProperties {
  int64_t formulas = 0;        // crystals given their formula
  int64_t spacegroups = 0;     // crystals given their space group
  int64_t no_spacegroup = 0;   // crystals lacking one where spglib found none (overlapping atoms), or is not built in
  // Formula cells that are no formula ("xyz", "fe2o3") or state another composition than the crystal's: replaced by
  // the derived formula, which the prompts state instead. `first_replaced` says the first ("mp-1: 'xyz' is not a
  // formula; OsSi stated instead").
  int64_t formulas_replaced = 0;
  std::string first_replaced;
  // Formula cells of the crystal's composition spelled otherwise than pymatgen's reduced formula ("Sr2Ti2O6"): written
  // as it is ("SrTiO3"), as the prompts of every other crystal write their formula. First: "mp-2: Sr2Ti2O6 -> SrTiO3".
  int64_t formulas_respelled = 0;
  std::string first_respelled;
  // For the shards (ShardMeta::derived_properties): which properties were derived and how, "" when none were.
  std::string what;
};

// The symprec (Å) Materials Project's spacegroup.number was found with, and so the one derive_properties uses.
inline constexpr double kMaterialsProjectSymprec = 0.1;

// Fills in the properties the structures themselves tell, for crystals whose source gives none (a CIF folder; a CSV
// without the pretty_formula or spacegroup.number column, or with an empty cell), and for formula cells that are no
// formula or another composition's (formulas_replaced), and writes a formula cell of the crystal's composition as
// pymatgen's reduced formula (formulas_respelled): the formula as Materials Project's
// pretty_formula writes it (pymatgen's reduced formula) and the space group spglib finds at symprec 0.1 Å and 5°
// (Materials Project's setting), both of the sites in the order pymatgen's CifParser gives them
// (data/pymatgen_order.h), as pymatgen finds them from the crystal's CIF; the crystal keeps the order it has. Values
// the source gives are kept as they are. Energies and band gaps cannot be derived and stay unknown. `threads` workers
// (spglib takes ~8 ms a crystal). `stop` (a signal number, 0: none) set while it runs: it returns early, some crystals
// filled in and the rest not; the caller, who asked it to stop, discards them.
DerivedProperties derive_properties(std::vector<Crystal>* crystals, int threads,
                                    const std::atomic<int>* stop = nullptr);

// Logs what derive_properties did to the formula cells of `path` (`who`: "train", "cgsample: sample.conditions_from"):
// a warning for cells replaced (count and the first), a line for cells respelled. Nothing when neither happened.
void log_formula_cells(const std::string& who, const std::string& path, const DerivedProperties& d);

// What was derived, for a log line: "the formula of 60 crystal(s), the space group (spglib at 0.1 A, as Materials
// Project) of 58" (parts with a count of 0 left out).
std::string derived_summary(const DerivedProperties& d);

// How many of `crystals` carry each property a prompt can state, as a JSON object named as sample.condition_on names
// them: {"crystals": 3, "formula": 3, "spacegroup": 3, "formation_energy": 0, "band_gap": 0, "e_above_hull": 0}.
std::string property_counts_json(const std::vector<Crystal>& crystals);

// A folder of CIF files (*.cif, *.cif.gz, the extension in any case; not subfolders) in name order, or one such file,
// each structure data block one row:
// material_id "<file name without .cif[.gz]>" ("<name>/<block>" in files of several blocks), properties unknown (all
// five in missing_columns; derive_properties fills in formula and space group). Unreadable blocks are skipped with
// their reason (strict: the first one throws). Throws
// when the folder holds no CIF file. Sites in `order`, as parse_mp20_csv.
Mp20Split read_cif_folder(const std::string& dir, int64_t max_rows = 0, bool strict = false,
                          SiteOrder order = SiteOrder::kPymatgen);
// True when `dir` is a folder holding at least one *.cif / *.cif.gz file.
bool is_cif_folder(const std::string& dir);
// True when `path` is a file named *.cif / *.cif.gz (any case).
bool is_cif_file(const std::string& path);
// For a folder without CIFs of its own whose subfolders hold some (ICSD and COD downloads nest them): "; subfolders
// are not read, and <sub> holds N CIF file(s): give that folder, or move the files up into <dir>"; else "".
std::string cifs_in_subfolders_hint(const std::string& dir);
// sha256 (hex) of a split's source: the file's bytes, or for a CIF folder the sha256 of "<name> <file sha256>\n" over
// its CIF files in name order.
std::string source_sha256(const std::string& path);

}  // namespace cg
