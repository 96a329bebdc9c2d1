// CIF reading (CIF 1.1 syntax; symmetry operations expanded to the full cell as pymatgen's CifParser does). What
// is read and refused: docs/formats.md#cif. Writing: sampler/cif_writer.h.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "data/crystal.h"

namespace cg {

// Parses `cif` into *out (id, lattice, species, frac; properties untouched). On failure returns false and sets
// *reason to a one-line message that starts with `id` ("mp-123: partial occupancy 0.5 at site 2 (Fe)").
// Sites: every listed site followed by its images under the listed operations (none, or only x,y,z: as written);
// without operations, under those of the space group the CIF names (data/space_groups.h; none named: P1).
// Rejected: malformed CIF syntax (with its line), a space group that is not in the tables or does not fit the cell,
// an operation that is not one, a site listed twice, missing cell parameter or atom loop, Cartesian-only sites,
// unknown element, occupancy != 1, unparsable numbers, degenerate cells.
// Several space-group tags (H-M, Hall, number; no operations listed): the one pymatgen's CifParser reads, in its
// order of tags (docs/formats.md#cif).
// *warning (when given): "" or a one-line message starting with `id` for a crystal read despite a contradiction:
// listed operations whose space group is not the one the CIF's number or H-M symbol names (or a number out of
// 1..230), the listed operations used, as pymatgen's CifParser uses them; or, without operations, space-group tags
// that name other settings or groups than the tag read; the message names the tag used and those not.
bool parse_cif(std::string_view cif, const std::string& id, Crystal* out, std::string* reason,
               std::string* warning = nullptr);

// Every data block of `cif` (ASE, COD and pymatgen write several structures to one file), one result each, in file
// order; a block's id is "<id>/<block name>" when there are several, else `id`. A syntax error that stops the whole
// file gives one failed result.
struct CifBlockResult {
  std::string id;
  bool ok = false;
  Crystal crystal;     // when ok
  std::string reason;  // when not ok, starting with the block's id
  std::string warning; // when ok: parse_cif's *warning
};
std::vector<CifBlockResult> parse_cif_blocks(std::string_view cif, const std::string& id);

// Throwing form: cg::Error with the same reason.
Crystal parse_cif(std::string_view cif, const std::string& id);


}  // namespace cg
