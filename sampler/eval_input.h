// What cgeval evaluates: crystals from a cgsample folder (samples.jsonl), a CSV in CDVAE layout (e.g. the MP-20
// splits), the reference's sample CSVs (gen_str,cif,model_name or ",cif"; any CSV with a cif column) or a folder of
// CIFs. Items that did not become crystals (unparsed samples, unreadable CIFs/rows) are kept
// as counts with reasons, since validity is reported over everything generated.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/crystal.h"
#include "sampler/conditions.h"

namespace cg {

struct EvalInput {
  std::string kind;                  // "samples" | "csv" | "reference_samples" (gen_str) | "cif_csv" | "cifs"
  std::string path;
  std::vector<Crystal> crystals;     // everything that parsed, in input order
  int64_t total = 0;                 // items looked at (parsed or not)
  std::map<std::string, int64_t> unparsed_reasons;  // short reason -> count
  // Items that state conditions: cgsample records whose prompt asks for a formula, space group or property; CSV
  // rows with their own pretty_formula and spacegroup.number (what a perfect generator would score).
  std::vector<ConditionedItem> conditioned;
  // cgsample infill records (not counted in total): the masked crystal's species ("[MASK]" where masked), the
  // proposed element (when the answer parsed) and the masked element (when recorded).
  struct Infill {
    std::vector<std::string> masked_species;
    std::string answer, truth;
  };
  std::vector<Infill> infill;
  int64_t unparsed() const { return total - static_cast<int64_t>(crystals.size()); }
};

// `path`: a folder with samples.jsonl, a .jsonl file, a .csv/.csv.gz file (columns material_id + cif, gen_str, or
// cif), or a folder of .cif files (also its
// cifs/ subfolder). max_rows > 0: only the first max_rows items. Throws naming the path when it is none of these.
EvalInput load_eval_input(const std::string& path, int64_t max_rows = 0);

// What kind of failure a parse error is, so reasons group: its line number, a leading "<id>: " and the "(got ...)"
// detail dropped ("line 3: not an element symbol (got 'Xy')" -> "not an element symbol"). cgsample's summary.json
// and cgeval's report count by it.
std::string reason_key(const std::string& reason);

}  // namespace cg
