#include "sampler/eval_report.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "data/elements.h"
#include "data/pymatgen_order.h"
#include "sampler/cif_writer.h"
#include "sampler/smact.h"
#include "sampler/structure_checks.h"

namespace cg {

namespace {

InfillReport infill_report(const std::vector<EvalInput::Infill>& items) {
  InfillReport f;
  for (const auto& it : items) {
    ++f.items;
    f.with_truth += !it.truth.empty();  // an item left unanswered is a miss, as cgsample's infill_accuracy counts it
    if (it.answer.empty()) continue;
    ++f.answered;
    f.recovered += !it.truth.empty() && it.answer == it.truth;
    // The proposal in place of every masked line; a plausible substitution when that composition is SMACT-valid.
    std::vector<std::string> species = it.masked_species;
    bool known = !species.empty();
    for (auto& s : species) {
      if (s == "[MASK]") s = it.answer;
      known &= is_element(s);
    }
    f.smact_valid += known && smact_valid(species);
  }
  return f;
}

}  // namespace

EvalReport evaluate(const EvalInput& input, const std::vector<Crystal>* train, const std::vector<Crystal>* reference,
                    const EvalOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  EvalReport r;
  r.input = input.path;
  r.kind = input.kind;
  r.total = input.total;
  r.parsed = static_cast<int64_t>(input.crystals.size());
  for (const auto& [why, n] : input.unparsed_reasons) r.invalid_reasons["unparsed: " + why] += n;

  std::vector<Crystal> valid;
  std::vector<size_t> valid_index;  // into input.crystals
  const size_t n = input.crystals.size();
  auto last_log = t0;
  for (size_t i = 0; i < n; ++i) {
    const Crystal& c = input.crystals[i];
    const StructureVerdict sv = structure_validity(c, opts.min_distance, opts.min_volume);
    const SmactResult cv = smact_validity(reduce_composition(c.species));
    r.struct_valid += sv.valid;
    r.comp_valid += cv.valid;
    ItemVerdict item;
    item.id = c.id;
    item.formula = pymatgen_reduced_formula(species_amounts(c.species)).first;  // pymatgen's spelling
    item.struct_valid = sv.valid;
    item.comp_valid = cv.valid;
    item.struct_reason = sv.valid ? "" : sv.reason;
    item.comp_reason = cv.valid ? "" : cv.reason;
    r.items.push_back(std::move(item));
    if (!sv.valid) ++r.invalid_reasons[std::string("structure: ") + sv.reason];
    if (!cv.valid) ++r.invalid_reasons["composition: " + reason_key(cv.reason)];
    if (sv.valid && cv.valid) {
      ++r.valid;
      valid.push_back(c);
      valid_index.push_back(i);
    }
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_log).count() > 5.0) {
      spdlog::info("cgeval: validity {}/{} crystals", i + 1, n);
      last_log = now;
    }
  }
  spdlog::info("cgeval: validity done: structural {}, compositional {}, both {} of {}", r.struct_valid, r.comp_valid,
               r.valid, r.total);

  std::vector<StructureFingerprint> fps;
  fps.reserve(valid.size());
  for (const auto& c : valid) fps.push_back(fingerprint(c, opts.match));
  const std::vector<size_t> dup = duplicate_of(fps, opts.match);
  r.unique = 0;
  for (size_t i = 0; i < dup.size(); ++i) {
    r.unique += dup[i] == i;
    r.items[valid_index[i]].unique = dup[i] == i;
    if (dup[i] != i) r.items[valid_index[i]].duplicate_of = r.items[valid_index[dup[i]]].id;
  }
  spdlog::info("cgeval: uniqueness: {} distinct of {} valid", r.unique, valid.size());

  if (train) {
    r.train_size = static_cast<int64_t>(train->size());
    NoveltyIndex index(train, opts.match);
    r.novel = 0;
    for (size_t i = 0; i < dup.size(); ++i)  // a duplicate is as novel as the crystal it repeats
      if (dup[i] == i) {
        const bool novel = index.is_novel(fps[i]);
        r.novel += novel;
        r.items[valid_index[i]].novel = novel;
      }
    for (size_t i = 0; i < dup.size(); ++i) r.items[valid_index[i]].novel = r.items[valid_index[dup[i]]].novel;
    spdlog::info("cgeval: novelty: {} of {} unique valid match no training crystal ({} in train)", r.novel, r.unique,
                 r.train_size);
  }
  if (reference) {
    r.ref_size = static_cast<int64_t>(reference->size());
    r.dist = compare_distributions(valid, *reference);
  }
  SpaceGroupCache space_groups(input.crystals, opts.symprec);
  if (opts.spacegroups && have_spglib()) {
    std::vector<int> numbers;
    for (size_t i : valid_index) {
      numbers.push_back(space_groups.number(i));
      r.items[i].spacegroup = std::max(0, numbers.back());
    }
    // The reference's own spacegroup.number column, and spglib's groups where it has none (a CIF folder, empty
    // cells), as cgprep derives them.
    std::vector<int> ref_numbers;
    int64_t by_spglib = 0;
    if (reference) {
      by_spglib = std::count_if(reference->begin(), reference->end(), [](const Crystal& c) { return !c.spacegroup; });
      // spglib sees their sites in pymatgen's CifParser order, as cgprep's derivation does.
      std::vector<Crystal> sorted;
      if (by_spglib > 0) {
        spdlog::info("cgeval: {} of {} reference crystals have no space group number: spglib finds theirs",
                     by_spglib, reference->size());
        sorted.reserve(reference->size());
        for (const Crystal& c : *reference) sorted.push_back(c.spacegroup ? Crystal{} : in_cif_parser_order(c));
      }
      SpaceGroupCache ref_groups(sorted, opts.symprec);
      for (size_t i = 0; i < reference->size(); ++i) {
        const Crystal& c = (*reference)[i];
        ref_numbers.push_back(c.spacegroup ? *c.spacegroup : ref_groups.number(i));
      }
    }
    r.symmetry = space_group_report(numbers, reference ? &ref_numbers : nullptr, opts.symprec);
    r.symmetry->ref_from_spglib = by_spglib;
    spdlog::info("cgeval: space groups: {} of {} valid crystals assigned, {} P1{}", r.symmetry->found,
                 r.symmetry->crystals,
                 r.symmetry->found > 0 ? fmt::format("{:.1f}%", 100 * r.symmetry->share(1)) : "n/a",
                 r.symmetry->tv >= 0 ? fmt::format(", TV {:.3f} vs the reference", r.symmetry->tv) : "");
  }
  if (!input.conditioned.empty()) {
    r.conditions = check_conditions(input.conditioned, space_groups);
    const ConditionReport& c = *r.conditions;
    spdlog::info("cgeval: conditions: formula {} of {}, space group {} of {}{}, property {} (not checked)",
                 c.formula_match, c.formula, c.spacegroup_match, c.spacegroup,
                 c.spglib ? "" : " (built without spglib: not checked)", c.property);
  }
  if (!input.infill.empty()) {
    const InfillReport f = infill_report(input.infill);
    spdlog::info("cgeval: infill: {} of {} answered, {} of {} recovered the masked element, {} SMACT-valid",
                 f.answered, f.items, f.recovered, f.with_truth, f.smact_valid);
    r.infill = f;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

namespace {
// a / b, or null / "n/a" when nothing was counted (0 items is no evidence of 0%).
nlohmann::json frac(int64_t a, int64_t b) {
  return b > 0 ? nlohmann::json(static_cast<double>(a) / b) : nlohmann::json(nullptr);
}
std::string pct(int64_t a, int64_t b) { return b > 0 ? fmt::format("{:.2f}%", 100.0 * a / b) : "n/a"; }
}  // namespace

std::string items_jsonl(const EvalReport& r) {
  std::string out;
  for (const ItemVerdict& v : r.items) {
    nlohmann::ordered_json j = {{"id", v.id},
                                {"formula", v.formula},
                                {"valid", v.struct_valid && v.comp_valid},
                                {"structural_valid", v.struct_valid},
                                {"compositional_valid", v.comp_valid}};
    if (!v.struct_valid) j["structural_reason"] = v.struct_reason;
    if (!v.comp_valid) j["compositional_reason"] = v.comp_reason;
    if (v.struct_valid && v.comp_valid) {
      j["unique"] = v.unique;
      if (!v.unique) j["duplicate_of"] = v.duplicate_of;
      if (v.novel >= 0) j["novel"] = v.novel == 1;
      if (v.spacegroup > 0) j["spacegroup"] = v.spacegroup;
    }
    out += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";  // ids quote input bytes
  }
  return out;
}

std::string report_json(const EvalReport& r) {
  nlohmann::json j;
  j["input"] = r.input;
  j["kind"] = r.kind;
  j["total"] = r.total;
  j["parsed"] = r.parsed;
  j["parse_rate"] = frac(r.parsed, r.total);
  j["structural_validity"] = frac(r.struct_valid, r.total);
  j["compositional_validity"] = frac(r.comp_valid, r.total);
  j["validity"] = frac(r.valid, r.total);
  j["counts"] = {{"structurally_valid", r.struct_valid}, {"compositionally_valid", r.comp_valid}, {"valid", r.valid}};
  if (r.unique >= 0) {
    j["counts"]["unique_valid"] = r.unique;
    j["uniqueness"] = frac(r.unique, r.valid);
  }
  if (r.novel >= 0) {
    j["counts"]["novel_unique_valid"] = r.novel;
    j["novelty"] = frac(r.novel, r.unique);
    j["train_size"] = r.train_size;
  }
  if (r.dist) {
    const DistributionReport& d = *r.dist;
    j["reference_size"] = r.ref_size;
    // wdist_density and wdist_num_elements are CDVAE's GenEval metrics; the rest are ours.
    j["distributions"] = {{"wdist_density", d.wdist_density},
                          {"wdist_num_elements", d.wdist_num_elements},
                          {"wdist_num_atoms", d.wdist_num_atoms},
                          {"wdist_volume_per_atom", d.wdist_volume_per_atom},
                          {"element_total_variation", d.element_tv},
                          {"mean_density", d.mean_density},
                          {"ref_mean_density", d.ref_mean_density},
                          {"mean_num_atoms", d.mean_num_atoms},
                          {"ref_mean_num_atoms", d.ref_mean_num_atoms},
                          {"mean_num_elements", d.mean_num_elements},
                          {"ref_mean_num_elements", d.ref_mean_num_elements},
                          {"element_frequency", d.element_freq},
                          {"ref_element_frequency", d.ref_element_freq}};
  }
  if (r.symmetry) {
    const SpaceGroupReport& g = *r.symmetry;
    nlohmann::json counts = nlohmann::json::object(), ref_counts = nlohmann::json::object();
    for (const auto& [num, k] : g.counts) counts[std::to_string(num)] = k;
    for (const auto& [num, k] : g.ref_counts) ref_counts[std::to_string(num)] = k;
    j["space_groups"] = {{"symprec", g.symprec}, {"crystals", g.crystals}, {"assigned", g.found},
                         {"distinct", g.counts.size()}, {"counts", counts},
                         {"p1_share", g.found > 0 ? nlohmann::json(g.share(1)) : nlohmann::json(nullptr)}};
    if (g.tv >= 0) {
      j["space_groups"]["total_variation"] = g.tv;
      j["space_groups"]["ref_p1_share"] = g.ref_share(1);
      j["space_groups"]["ref_counts"] = ref_counts;
      j["space_groups"]["ref_groups"] = g.ref_from_spglib == 0                ? "spacegroup.number"
                                        : g.ref_from_spglib == g.ref_rows ? "spglib"
                                                                          : "spacegroup.number, spglib where empty";
    }
  }
  if (r.conditions) {
    const ConditionReport& c = *r.conditions;
    nlohmann::json cj = {{"formula_items", c.formula}, {"formula_match", c.formula_match},
                         {"formula_accuracy", frac(c.formula_match, c.formula)},
                         {"spacegroup_items", c.spacegroup}, {"property_items", c.property},
                         {"symprec", c.symprec}};
    if (c.spglib) {
      cj["spacegroup_match"] = c.spacegroup_match;
      cj["spacegroup_accuracy"] = frac(c.spacegroup_match, c.spacegroup);
    }
    j["conditions"] = cj;
  }
  if (r.infill) {
    const InfillReport& f = *r.infill;
    j["infill"] = {{"items", f.items}, {"answered", f.answered}, {"with_truth", f.with_truth},
                   {"recovered", f.recovered}, {"smact_valid", f.smact_valid},
                   {"recovery_rate", frac(f.recovered, f.with_truth)},
                   {"smact_valid_rate", frac(f.smact_valid, f.items)}};
  }
  j["invalid_reasons"] = r.invalid_reasons;
  j["seconds"] = r.seconds;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";  // reasons quote input bytes
}

std::string report_markdown(const EvalReport& r) {
  std::string s = fmt::format("# cgeval report\n\nInput: `{}` ({}), {} items, {} parsed{}.\n\n", r.input, r.kind,
                              r.total, r.parsed,
                              r.infill ? fmt::format("; {} infill records, scored below", r.infill->items) : "");
  if (r.total == 0 && r.infill) s += "No generated crystals: only the infill records are scored (below).\n\n";
  s += "| metric | value |\n|---|---|\n";
  s += fmt::format("| parse rate | {} |\n", pct(r.parsed, r.total));
  s += fmt::format("| structural validity | {} |\n", pct(r.struct_valid, r.total));
  s += fmt::format("| compositional validity (SMACT) | {} |\n", pct(r.comp_valid, r.total));
  s += fmt::format("| validity (both) | {} |\n", pct(r.valid, r.total));
  if (r.unique >= 0) s += fmt::format("| uniqueness (of valid) | {} |\n", pct(r.unique, r.valid));
  if (r.novel >= 0)
    s += fmt::format("| novelty (of unique valid, vs {} train) | {} |\n", r.train_size, pct(r.novel, r.unique));
  if (r.dist) {
    // NaN: no valid crystal to compare (JSON null), never a perfect 0.
    const auto v = [](double x) {
      return std::isnan(x) ? std::string("n/a (no valid crystal)") : fmt::format("{:.3f}", x);
    };
    s += fmt::format("| W1 density, g/cm³ (CDVAE; vs {} reference) | {} |\n", r.ref_size, v(r.dist->wdist_density));
    s += fmt::format("| W1 #elements (CDVAE) | {} |\n", v(r.dist->wdist_num_elements));
    s += fmt::format("| W1 #atoms (ours) | {} |\n", v(r.dist->wdist_num_atoms));
    s += fmt::format("| W1 volume/atom, Å³ (ours) | {} |\n", v(r.dist->wdist_volume_per_atom));
    s += fmt::format("| element frequency TV (ours) | {} |\n", v(r.dist->element_tv));
  }
  if (r.symmetry) {
    const SpaceGroupReport& g = *r.symmetry;
    s += fmt::format("| space groups of valid crystals (spglib, {} Å): distinct / P1 share | {} / {}{} |\n",
                     g.symprec, g.counts.size(), g.found > 0 ? fmt::format("{:.2f}%", 100 * g.share(1)) : "n/a",
                     g.tv >= 0 ? fmt::format(" (reference {:.2f}%)", 100 * g.ref_share(1)) : "");
    if (g.tv >= 0)
      s += fmt::format("| space group TV (ours; vs {}) | {:.3f} |\n",
                       g.ref_from_spglib == 0 ? std::string("the reference's spacegroup.number")
                       : g.ref_from_spglib == g.ref_rows
                           ? fmt::format("spglib's groups of the reference at {} Å", g.symprec)
                           : fmt::format("the reference's spacegroup.number, spglib's at {} Å for its {} without",
                                         g.symprec, g.ref_from_spglib),
                       g.tv);
  }
  if (r.conditions) {
    const ConditionReport& c = *r.conditions;
    if (c.formula > 0)
      s += fmt::format("| formula as asked ({} items) | {} |\n", c.formula, pct(c.formula_match, c.formula));
    if (c.spacegroup > 0) {
      if (c.spglib)
        s += fmt::format("| space group as asked ({} items, symprec {} Å) | {} |\n", c.spacegroup, c.symprec,
                         pct(c.spacegroup_match, c.spacegroup));
      else
        s += fmt::format("| space group as asked ({} items) | not checked (built without spglib) |\n", c.spacegroup);
    }
    if (c.property > 0)
      s += fmt::format("| property conditions ({} items) | not checked (needs a property model) |\n", c.property);
  }
  if (r.infill) {
    const InfillReport& f = *r.infill;
    s += fmt::format("\nInfill ({} records, not counted above): {} answered with an element; {} recovered the "
                     "masked element (of the {} with it recorded; unanswered ones are misses); {} of the records "
                     "propose an element that makes a SMACT-valid composition.\n",
                     f.items, pct(f.answered, f.items), pct(f.recovered, f.with_truth), f.with_truth,
                     pct(f.smact_valid, f.items));
  }
  if (!r.invalid_reasons.empty()) {
    s += "\nWhy items were invalid (an item can fail both checks):\n\n";
    for (const auto& [why, n] : r.invalid_reasons) s += fmt::format("- {}: {}\n", why, n);
  }
  s += fmt::format("\nMetrics computed in {} (reading the input and the references not counted).\n",
                   human_duration(r.seconds));
  return s;
}

}  // namespace cg
