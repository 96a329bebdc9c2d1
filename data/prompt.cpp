// Prompt builders for generation and infill.
#include "data/prompt.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "common/error.h"

namespace cg {
namespace {

constexpr const char* kGenHead = "Below is a description of a bulk material. ";
constexpr const char* kGenInstruction =
    "Generate a description of the lengths and angles of the lattice vectors and then the element type and "
    "coordinates for each atom within the lattice:\n";
constexpr const char* kInfillHead =
    "Below is a partial description of a bulk material where one element has been replaced with the string "
    "\"[MASK]\":\n";
constexpr const char* kInfillInstruction = "\nGenerate an element that could replace [MASK] in the bulk material:\n";

// The condition sentences' leads; each sentence is lead + value + ". ".
constexpr const char* kFormulaLead = "The chemical formula is ";
constexpr const char* kFormationEnergyLead = "The formation energy per atom is ";
constexpr const char* kBandGapLead = "The band gap is ";
constexpr const char* kEAboveHullLead = "The energy above the convex hull is ";
constexpr const char* kSpacegroupLead = "The spacegroup number is ";

}  // namespace

std::string format_property(double x) {
  // "%.4f" rounds the exact binary value as Python's round(x, 4) does; str() then drops trailing zeros.
  std::string s = fmt::format("{:.4f}", x);
  while (s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

std::string generation_prompt(const GenerationConditions& c, const std::vector<Property>& order) {
  std::string s = kGenHead;
  if (c.formula) s += kFormulaLead + *c.formula + ". ";
  for (Property p : order) {
    switch (p) {
      case Property::kFormationEnergy:
        if (c.formation_energy_per_atom)
          s += kFormationEnergyLead + format_property(*c.formation_energy_per_atom) + ". ";
        break;
      case Property::kBandGap:
        if (c.band_gap) s += kBandGapLead + format_property(*c.band_gap) + ". ";
        break;
      case Property::kEAboveHull:
        if (c.e_above_hull) s += kEAboveHullLead + format_property(*c.e_above_hull) + ". ";
        break;
      case Property::kSpacegroup:
        if (c.spacegroup) s += kSpacegroupLead + std::to_string(*c.spacegroup) + ". ";
        break;
    }
  }
  return s + kGenInstruction;
}

std::vector<std::string> masked_species_of_prompt(const std::string& prompt) {
  const size_t head = std::char_traits<char>::length(kInfillHead);
  const size_t end = prompt.rfind(kInfillInstruction);
  if (prompt.rfind(kInfillHead, 0) != 0 || end == std::string::npos || end < head) return {};
  // The crystal text: two lattice lines, then per site its element line and its coordinate line.
  // Blank lines (a prompt edited by hand) are no part of it; any other shape is no crystal text: nothing.
  std::vector<std::string> lines;
  size_t pos = head;
  while (pos <= end) {
    size_t nl = prompt.find('\n', pos);
    if (nl == std::string::npos || nl > end) nl = end;
    if (nl > pos) lines.push_back(prompt.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (lines.size() < 4 || lines.size() % 2 != 0) return {};
  std::vector<std::string> species;
  for (size_t i = 2; i < lines.size(); i += 2) species.push_back(lines[i]);
  return species;
}

GenerationConditions conditions_of_prompt(const std::string& prompt) {
  GenerationConditions c;
  if (prompt.rfind(kGenHead, 0) != 0) return c;
  // The value after `lead`, up to the ". " that ends the sentence (numbers have no '.' followed by a space).
  auto value = [&](const char* lead) -> std::optional<std::string> {
    const size_t at = prompt.find(lead);
    if (at == std::string::npos) return std::nullopt;
    const size_t start = at + std::char_traits<char>::length(lead);
    const size_t end = prompt.find(". ", start);
    if (end == std::string::npos || end == start) return std::nullopt;
    return prompt.substr(start, end - start);
  };
  auto number = [](const std::optional<std::string>& s) -> std::optional<double> {
    if (!s) return std::nullopt;
    char* end = nullptr;
    const double x = std::strtod(s->c_str(), &end);
    if (end != s->c_str() + s->size()) return std::nullopt;
    return x;
  };
  c.formula = value(kFormulaLead);
  c.formation_energy_per_atom = number(value(kFormationEnergyLead));
  c.band_gap = number(value(kBandGapLead));
  c.e_above_hull = number(value(kEAboveHullLead));
  if (const auto sg = number(value(kSpacegroupLead)); sg && *sg >= 1 && *sg <= 230 && *sg == int(*sg))
    c.spacegroup = int(*sg);
  return c;
}

std::string mask_element(const std::string& text, const std::string& element) {
  std::string out;
  out.reserve(text.size() + 64);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl;
    if (text.compare(pos, end - pos, element) == 0 && end - pos == element.size())
      out += "[MASK]";
    else
      out.append(text, pos, end - pos);
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
  }
  return out;
}

std::string infill_prompt(const std::string& crystal_text, const std::string& element) {
  return kInfillHead + mask_element(crystal_text, element) + kInfillInstruction;
}

std::string infill_prompt(const Crystal& c, const std::string& element, const TextOptions& opt) {
  return infill_prompt(crystal_to_text(c, opt), element);
}

TextSample make_generation_sample(const Crystal& c, const TextOptions& opt, Rng& rng) {
  std::vector<Property> avail;
  if (c.formation_energy_per_atom) avail.push_back(Property::kFormationEnergy);
  if (c.band_gap) avail.push_back(Property::kBandGap);
  if (c.e_above_hull) avail.push_back(Property::kEAboveHull);
  if (c.spacegroup) avail.push_back(Property::kSpacegroup);
  const size_t k = std::min(size_t(rng.below(5)), avail.size());
  // Partial Fisher-Yates: the first k of a random order.
  for (size_t i = 0; i < k; ++i) std::swap(avail[i], avail[i + rng.below(avail.size() - i)]);
  avail.resize(k);
  GenerationConditions cond;
  if (k > 0) {
    if (!c.formula.empty()) cond.formula = c.formula;
    cond.formation_energy_per_atom = c.formation_energy_per_atom;
    cond.band_gap = c.band_gap;
    cond.e_above_hull = c.e_above_hull;
    cond.spacegroup = c.spacegroup;
  }
  TextSample s;
  s.task = Task::kGeneration;
  s.prompt = generation_prompt(cond, avail);
  s.completion = crystal_to_text(c, opt);
  return s;
}

TextSample make_infill_sample(const Crystal& c, const TextOptions& opt, Rng& rng) {
  CG_CHECK(c.num_sites() > 0, "{}: cannot build an infill prompt for a crystal without sites", c.id);
  const std::string& element = c.species[rng.below(c.num_sites())];
  TextSample s;
  s.task = Task::kInfill;
  s.prompt = infill_prompt(c, element, opt);
  s.completion = element;
  return s;
}

}  // namespace cg
