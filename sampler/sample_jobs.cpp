// The prompts cgsample asks: see sample_jobs.h.
#include "sampler/sample_jobs.h"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "common/error.h"
#include "common/path_note.h"
#include "data/crystal_text.h"
#include "data/elements.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/rng.h"
#include "sampler/conditions.h"
#include "sampler/sample_record.h"

namespace cg {

std::optional<double> number_or_none(const std::string& s) {
  if (s.empty()) return std::nullopt;  // not given
  const std::optional<double> x = decimal_number(s);
  CG_CHECK(x, "'{}' is not a finite decimal number: sample.formation_energy / band_gap / e_above_hull take one or "
           "nothing", s);
  return x;
}

namespace {

// cgprep's generation prompts state no condition, or the formula together with one to four of space group,
// formation energy, band gap and e_above_hull (data/prompt.cpp): other combinations are prompts the model never saw.
bool trained_form(bool formula, bool other) { return formula == other; }
void warn_untrained_form(bool formula, const char* add) {
  spdlog::warn("cgsample: the training prompts state no condition, or the formula with one to four of space group, "
               "formation energy, band gap and e_above_hull; {} is a prompt the model never saw (add {})",
               formula ? "the formula alone" : "a condition without the formula", add);
}

// Why `f` is no formula, for sample.formula's refusal: the first symbol that is no element ("'Xx' is no element
// symbol"), a count with a fraction, a symbol without its capital; "" where none of these is the trouble.
std::string formula_problem(const std::string& f) {
  const auto uc = [](char ch) { return static_cast<unsigned char>(ch); };
  for (size_t i = 0; i < f.size();) {
    if (std::isupper(uc(f[i]))) {
      size_t j = i + 1;
      while (j < f.size() && std::islower(uc(f[j]))) ++j;
      if (!is_element(f.substr(i, j - i))) return fmt::format(": '{}' is no element symbol", f.substr(i, j - i));
      i = j;
    } else if (std::islower(uc(f[i]))) {
      return ": element symbols begin with a capital letter (NaCl, not nacl)";
    } else if (f[i] == '.') {
      return ": counts are whole numbers, as in pymatgen's reduced formulas (Fe2O3, not Fe1.33O2)";
    } else {
      ++i;
    }
  }
  return "";
}

// The row's conditions named in `on`; "" when it has them all, else the first one it lacks (or, for the formula,
// holds as something that is not a formula: a prompt the model never saw, which cgeval could not check).
std::string row_conditions(const Crystal& r, const std::vector<std::string>& on, GenerationConditions* cond) {
  for (const auto& a : on) {
    if (a == "formula" && !r.formula.empty() && composition_of_formula(r.formula)) cond->formula = r.formula;
    else if (a == "spacegroup" && r.spacegroup) cond->spacegroup = r.spacegroup;
    else if (a == "formation_energy" && r.formation_energy_per_atom)
      cond->formation_energy_per_atom = r.formation_energy_per_atom;
    else if (a == "band_gap" && r.band_gap) cond->band_gap = r.band_gap;
    else if (a == "e_above_hull" && r.e_above_hull) cond->e_above_hull = r.e_above_hull;
    else return a == "formula" && !r.formula.empty() ? "a formula that is not one" : "no " + a;
  }
  return "";
}

// A missing input named by the key that gives it and, for a relative path, the folder it was looked for in (as
// cgprep says it): the likeliest mistake is running from another folder than the config's paths assume.
// `use`: what the key is read for here (" (sample.conditions_from)"), "" for none.
void check_exists(const std::string& key, const std::string& use, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return;
  CG_FAIL("{}{}: {} does not exist{}; set {} to a CSV in CDVAE's layout or a folder of CIF files", key, use, path,
          relative_path_note(path, "cgsample"), key);
}

}  // namespace

void check_sample_settings(const Config& c) {
  const auto& s = c.sample;
  if (!s.conditions_from.empty())
    CG_CHECK(!resolve_csv(s.conditions_from, c).empty(), "sample.conditions_from={} names a key that is empty in this "
             "config: set {} to a CSV, or give sample.conditions_from a path", s.conditions_from, s.conditions_from);
  if (s.task == "generate" && s.conditions_from.empty() && !s.formula.empty()) {
    // Training prompts state pymatgen's pretty formulas; anything else would be a prompt the model never saw, and
    // cgeval could not check it.
    CG_CHECK(composition_of_formula(s.formula).has_value(), "sample.formula={} is not a formula such as Fe2O3, "
             "NaCl or BaLi2Mg(PO4)2 (element symbols with integer counts from 1 to 1000000 each){}", s.formula,
             formula_problem(s.formula));
  }
  if (s.task == "infill") {
    CG_CHECK(!c.data.test_csv.empty(), "sample.task=infill masks elements of the crystals of data.test_csv, which is "
             "empty; set data.test_csv to a CSV in CDVAE's layout (e.g. data/mp20/test.csv.gz)");
    CG_CHECK(s.min_new_tokens < kInfillMaxNewTokens, "sample.min_new_tokens={} with sample.task=infill: an infill "
             "answer is the first line of at most {} new tokens (the reference's); set sample.min_new_tokens=0",
             s.min_new_tokens, kInfillMaxNewTokens);
  }
}

void check_sample_adapter_exists(const Config& c) {
  const std::string& a = c.sample.adapter;
  std::error_code ec;
  CG_CHECK(a.empty() || std::filesystem::exists(a, ec), "sample.adapter {} does not exist{}; give cgexport's --out "
           "folder, a cgtrain run_dir or a run_dir/checkpoints/step-N folder (or leave it empty)", a,
           relative_path_note(a, "the command"));  // cgsample, or cgeval with eval.invariance
}

std::vector<SampleJob> make_sample_jobs(const Config& c) {
  check_sample_settings(c);
  std::vector<SampleJob> jobs;
  const auto& s = c.sample;
  if (!s.conditions_from.empty()) {
    // Each sample states the conditions of one row, rows in a seeded random order (cycled when there are fewer).
    const std::string path = resolve_csv(s.conditions_from, c);  // not empty: check_sample_settings
    const bool formula = std::find(s.condition_on.begin(), s.condition_on.end(), "formula") != s.condition_on.end();
    if (!trained_form(formula, s.condition_on.size() > (formula ? 1u : 0u)))
      warn_untrained_form(formula, formula ? "another key to sample.condition_on" : "formula to sample.condition_on");
    if (path == s.conditions_from) check_exists("sample.conditions_from", "", path);
    else check_exists(s.conditions_from, " (sample.conditions_from)", path);
    std::vector<GenerationConditions> rows;
    Mp20Split split =
        read_mp20(path, 0, false, data_csv_columns(path, c.data), parse_site_order(c.data.site_order));
    // A CIF folder, or a CSV without those columns: formula and space group derived as cgprep derives them for
    // training, so conditions read from such a split are the ones a model trained on it saw.
    const bool spacegroup =
        std::find(s.condition_on.begin(), s.condition_on.end(), "spacegroup") != s.condition_on.end();
    if (formula || spacegroup) {
      const DerivedProperties d =
          derive_properties(&split.crystals, int(std::max(1u, std::thread::hardware_concurrency())));
      if (d.formulas > 0 || d.spacegroups > 0)
        spdlog::info("cgsample: sample.conditions_from={}: derived from the structures where {} gives none (as "
                     "cgprep does): {}", s.conditions_from, path, derived_summary(d));
      log_formula_cells("cgsample: sample.conditions_from", path, d);
    }
    std::map<std::string, int64_t> left_out;  // why -> rows
    // The first row left out, with its reason, so it can be looked at: "row 3: mp-12: no band_gap".
    int64_t first_row = -1;
    std::string first;
    if (!split.skipped.empty()) {
      left_out["a crystal that does not read"] = int64_t(split.skipped.size());
      first_row = split.skipped.front().row;
      first = fmt::format("row {}: {}", first_row, split.skipped.front().reason);
    }
    for (size_t i = 0; i < split.crystals.size(); ++i) {
      const Crystal& r = split.crystals[i];
      GenerationConditions cond;
      const std::string why = row_conditions(r, s.condition_on, &cond);
      if (why.empty()) {
        rows.push_back(std::move(cond));
        continue;
      }
      ++left_out[why];
      const int64_t row = i < split.source_rows.size() ? split.source_rows[i] : int64_t(i);
      if (first_row < 0 || row < first_row)
        first_row = row, first = fmt::format("row {}: {}: {}", row, r.id.empty() ? "?" : r.id, why);
    }
    std::vector<std::string> reasons;
    for (const auto& [why, n] : left_out) reasons.push_back(fmt::format("{} with {}", n, why));
    CG_CHECK(!rows.empty(), "sample.conditions_from={}: no row of {} ({} data rows) has all of sample.condition_on "
             "[{}]{}{}", s.conditions_from, path, split.rows_read, fmt::join(s.condition_on, ", "),
             reasons.empty() ? "" : ": ", fmt::join(reasons, ", "));
    if (!reasons.empty())
      spdlog::warn("cgsample: sample.conditions_from={}: {} of {} rows left out ({}; the first: {})",
                   s.conditions_from, split.rows_read - int64_t(rows.size()), split.rows_read,
                   fmt::join(reasons, ", "), first);
    Rng rng(Rng::derive({s.seed, 0x636f6e64ull}));  // "cond"
    rng.shuffle(rows);
    for (int64_t i = 0; i < s.num_samples; ++i)
      jobs.push_back(SampleJob{generation_prompt(rows[size_t(i) % rows.size()]), ""});
    spdlog::info("cgsample: conditions of {} rows of {} ({}), one per sample", std::min<size_t>(rows.size(),
                 size_t(s.num_samples)), path, fmt::join(s.condition_on, ", "));
  } else if (s.task == "generate") {
    GenerationConditions cond;
    if (!s.formula.empty()) {  // a formula (check_sample_settings)
      const std::string pretty = pymatgen_reduced_formula_of(s.formula);
      if (pretty != s.formula)
        spdlog::warn("cgsample: sample.formula={} is not written as the training prompts write it (pymatgen's reduced "
                     "formula: {}), so it is a spelling the model never saw; sample.formula={} asks for the same "
                     "composition", s.formula, pretty, pretty);
      cond.formula = s.formula;
    }
    cond.formation_energy_per_atom = number_or_none(s.formation_energy);
    cond.band_gap = number_or_none(s.band_gap);
    cond.e_above_hull = number_or_none(s.e_above_hull);
    if (s.spacegroup > 0) cond.spacegroup = static_cast<int>(s.spacegroup);
    const bool other = cond.spacegroup || cond.formation_energy_per_atom || cond.band_gap || cond.e_above_hull;
    if (!trained_form(cond.formula.has_value(), other))
      warn_untrained_form(cond.formula.has_value(), other ? "sample.formula" : "e.g. sample.spacegroup");
    jobs.assign(s.num_samples, SampleJob{generation_prompt(cond), ""});
  } else {
    CG_CHECK(s.task == "infill", "sample.task '{}' is not generate | infill", s.task);
    // Infill the first num_samples crystals of the test split (data.test_csv given: check_sample_settings); the
    // masked element is a seeded uniform site's.
    check_exists("data.test_csv", " (the crystals sample.task=infill masks)", c.data.test_csv);
    const Mp20Split split = read_mp20(c.data.test_csv, s.num_samples, false, data_csv_columns(c.data.test_csv, c.data),
                                      parse_site_order(c.data.site_order));
    const auto& crystals = split.crystals;
    CG_CHECK(!crystals.empty(), "sample.task=infill: data.test_csv {} holds no crystal that reads ({} data rows{}): "
             "give a test split with crystals", c.data.test_csv, split.rows_read,
             split.skipped.empty() ? "" : fmt::format(", e.g. row {}: {}", split.skipped.front().row,
                                                      split.skipped.front().reason));
    if (int64_t(crystals.size()) < s.num_samples)
      spdlog::warn("cgsample: data.test_csv {} has {} crystal(s) to infill, fewer than sample.num_samples={}: {} "
                   "sample(s), one per crystal", c.data.test_csv, crystals.size(), s.num_samples, crystals.size());
    std::mt19937_64 rng(s.seed);
    TextOptions text;  // the training text's format (cgprep's data.angle_mode)
    text.angles = parse_angle_mode(c.data.angle_mode);
    for (const auto& cr : crystals) {
      const std::string el = cr.species[rng() % cr.species.size()];
      jobs.push_back(SampleJob{infill_prompt(cr, el, text), el});
    }
  }
  return jobs;
}

}  // namespace cg
