// MP-20 CSVs in CDVAE's layout -> Crystals with their properties; malformed rows are skipped with a reason.
// Columns: "",material_id,formation_energy_per_atom,band_gap,pretty_formula,e_above_hull,elements,cif,spacegroup.number
// material_id and cif are required; a property column the file lacks (other CDVAE datasets, a user's own CSV) leaves
// that property unknown for every row.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/crystal.h"

namespace cg {

struct SkippedRow {
  int64_t row = 0;         // 0-based data row (header excluded)
  std::string reason;      // starts with the material_id when the row has one
};

struct Mp20Split {
  std::vector<Crystal> crystals;    // in file order
  std::vector<int64_t> source_rows; // data row index of each crystal
  std::vector<SkippedRow> skipped;  // every row not in `crystals`, with why
  int64_t rows_read = 0;            // data rows looked at (after max_rows)
  std::vector<std::string> missing_columns;  // optional property columns the file lacks (unknown for every row)
};

// Parses CSV text (already gunzipped). max_rows > 0: only the first max_rows data rows.
// strict: the first malformed row throws cg::Error with its reason instead of being skipped.
Mp20Split parse_mp20_csv(const std::string& text, int64_t max_rows = 0, bool strict = false);
// Same from a file (gz or plain).
Mp20Split read_mp20(const std::string& path, int64_t max_rows = 0, bool strict = false);

}  // namespace cg
