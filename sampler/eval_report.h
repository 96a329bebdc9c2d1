// cgeval's metrics over one set of crystals (CDVAE / Gruver et al. definitions):
//   structural validity   every periodic distance >= eval.min_distance and volume >= eval.min_volume
//   compositional validity SMACT (sampler/smact.h)
//   validity              both; all three are fractions of ALL items, unparsed ones counting as invalid
//   uniqueness            distinct structures (sampler/structure_match.h, pymatgen StructureMatcher defaults) among
//                         the valid ones / valid
//   novelty               unique valid structures that match no training crystal / unique valid
//   distributions         valid crystals vs the whole reference split: W1 of density and of #elements (CDVAE's two),
//                         plus ours: W1 of #atoms and volume/atom, element-frequency TV
//   space groups          spglib's space groups of the valid crystals: P1 share, total variation vs the reference
//                         split's spacegroup.number column
//   conditions            of the items whose prompt asks for a formula / space group, the share whose crystal has
//                         it (sampler/conditions.h); for a CSV, its rows against their own columns
// Not computed: CDVAE's coverage (COV-R / COV-P), which needs CrystalNN + Magpie fingerprints (matminer).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sampler/distributions.h"
#include "sampler/eval_input.h"
#include "sampler/structure_match.h"
#include "sampler/symmetry.h"

namespace cg {

struct EvalOptions {
  double min_distance = 0.5;  // Å
  double min_volume = 0.1;    // Å^3
  MatchTolerance match;
  double symprec = 0.1;       // Å, spglib's tolerance for the space group check (Materials Project's)
  bool spacegroups = true;    // space group histogram of the valid crystals (vs the reference's column)
};

// Infill (the paper's element substitution task): of the records, how many answered with an element symbol, how
// many recovered the masked element (of those where cgsample recorded it, an unanswered one a miss), and how many
// proposals make the crystal's composition SMACT-valid.
struct InfillReport {
  int64_t items = 0, answered = 0;
  int64_t with_truth = 0, recovered = 0;
  int64_t smact_valid = 0;
};

// One parsed crystal's verdicts (items.jsonl): which samples to take further (e.g. the valid, unique, novel ones to
// DFT). Unparsed items are not here: samples.jsonl holds their reasons.
struct ItemVerdict {
  std::string id;                        // the record's id, CIF block, or material_id
  std::string formula;                   // reduced, as the conditions check writes it
  bool struct_valid = false, comp_valid = false;
  std::string struct_reason, comp_reason;  // why not ("" when valid)
  bool unique = false;                   // valid, and the first of the valid crystals it matches
  std::string duplicate_of;              // valid and not unique: the id of the first valid crystal it matches
  int novel = -1;                        // valid: 1 matches no training crystal, 0 matches one; -1 not checked
  int spacegroup = 0;                    // spglib's number for valid crystals (0: not assigned or not checked)
};

struct EvalReport {
  std::string input, kind;
  int64_t total = 0, parsed = 0;
  int64_t struct_valid = 0, comp_valid = 0, valid = 0;  // counts over parsed crystals
  int64_t unique = -1;                   // among valid; -1: not computed
  int64_t novel = -1;                    // among unique valid; -1: no training set
  int64_t train_size = 0, ref_size = 0;
  std::optional<DistributionReport> dist;  // when a reference split was given
  std::optional<ConditionReport> conditions;  // when some items state conditions
  std::optional<SpaceGroupReport> symmetry;   // EvalOptions::spacegroups, built with spglib
  std::optional<InfillReport> infill;         // when the input holds infill records
  std::map<std::string, int64_t> invalid_reasons;  // "structure: atoms too close", "composition: ...", unparsed ones
  std::vector<ItemVerdict> items;                 // per parsed crystal, in input order
  double seconds = 0;

  double rate(int64_t n) const { return total > 0 ? static_cast<double>(n) / total : 0.0; }
};

// train / reference may be null (novelty / distributions are then left out). Logs progress lines.
EvalReport evaluate(const EvalInput& input, const std::vector<Crystal>* train, const std::vector<Crystal>* reference,
                    const EvalOptions& opts);

std::string report_json(const EvalReport& r);      // pretty-printed report.json
std::string report_markdown(const EvalReport& r);  // short summary table (report.md)
std::string items_jsonl(const EvalReport& r);      // one JSON line per ItemVerdict (items.jsonl)

}  // namespace cg
