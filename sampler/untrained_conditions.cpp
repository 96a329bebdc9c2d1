// Conditions a model's training prompts never stated: see untrained_conditions.h.
#include "sampler/untrained_conditions.h"

#include <spdlog/fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "data/prompt.h"

namespace cg {

std::set<std::string> conditions_stated(const std::vector<SampleJob>& jobs) {
  std::set<std::string> asked;
  for (const auto& j : jobs) {
    const GenerationConditions k = conditions_of_prompt(j.prompt);
    if (k.formula) asked.insert("formula");
    if (k.spacegroup) asked.insert("spacegroup");
    if (k.formation_energy_per_atom) asked.insert("formation_energy");
    if (k.band_gap) asked.insert("band_gap");
    if (k.e_above_hull) asked.insert("e_above_hull");
  }
  return asked;
}

std::optional<UntrainedConditions> untrained_conditions(const std::set<std::string>& asked,
                                                        const std::string& property_counts,
                                                        const std::string& source) {
  const auto counts = nlohmann::json::parse(property_counts, nullptr, false);
  if (!counts.is_object()) return std::nullopt;
  const auto count = [&](const std::string& key) -> int64_t {  // -1: not a count (a record of another making)
    const auto it = counts.find(key);
    return it != counts.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
  };
  UntrainedConditions u;
  std::vector<std::string> said;
  for (const auto& p : asked) {
    const bool stated = p == "formula" ? count("formula") != 0 && (count("spacegroup") != 0 ||
                                                                   count("formation_energy") != 0 ||
                                                                   count("band_gap") != 0 || count("e_above_hull") != 0)
                                       : count(p) != 0;
    if (stated) continue;
    u.never.push_back(p);
    said.push_back(fmt::format("{} {}", p, count(p)));
  }
  if (u.never.empty()) return u;
  u.counts = fmt::format("({}, {} crystals: {}{})", source.empty() ? "its train split" : source,
                         count("crystals") >= 0 ? std::to_string(count("crystals")) : std::string("?"),
                         fmt::join(said, ", "),
                         std::count(u.never.begin(), u.never.end(), "formula") ? "; a formula is stated only beside "
                                                                                 "another property"
                                                                               : "");
  return u;
}

}  // namespace cg
