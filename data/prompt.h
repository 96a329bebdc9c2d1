// Prompts of the paper's two tasks (Gruver et al. 2024), shared by cgprep (training text) and the sampler:
//   generation: "Below is a description of a bulk material. " + attribute sentences + instruction + crystal + EOS
//   infill:     masked crystal (one element's lines -> "[MASK]") + instruction + element + EOS
// EOS is a token, appended by the tokenizing caller, never part of these strings.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "data/crystal.h"
#include "data/crystal_text.h"
#include "data/rng.h"

namespace cg {

enum class Task : int { kGeneration = 0, kInfill = 1 };

// The conditioning properties, in the reference's order; a drawn subset may appear in any order.
enum class Property : int { kFormationEnergy = 0, kBandGap = 1, kEAboveHull = 2, kSpacegroup = 3 };

// Conditions of a generation prompt; nullopt: not stated.
struct GenerationConditions {
  std::optional<std::string> formula;            // "The chemical formula is X. " (always first)
  std::optional<double> formation_energy_per_atom;
  std::optional<double> band_gap;
  std::optional<double> e_above_hull;
  std::optional<int> spacegroup;
};

// The generation prompt up to and including "...within the lattice:\n". Property sentences appear in `order`
// (those not set are left out); the default is formation energy, band gap, e_above_hull, spacegroup.
std::string generation_prompt(const GenerationConditions& c,
                              const std::vector<Property>& order = {Property::kFormationEnergy, Property::kBandGap,
                                                                   Property::kEAboveHull, Property::kSpacegroup});
// The species lines of an infill prompt's crystal, "[MASK]" where the element was masked; empty when `prompt` is
// not an infill prompt.
std::vector<std::string> masked_species_of_prompt(const std::string& prompt);

// The conditions a generation prompt states (the inverse of generation_prompt, whatever the sentences' order);
// all nullopt for an unconditional or infill prompt. A sentence whose value does not parse is left out.
GenerationConditions conditions_of_prompt(const std::string& prompt);
// A property value as the reference writes it: Python str(round(x, 4)) ("-0.3013", "0.0", "1.5").
std::string format_property(double x);

// `text` with every line equal to `element` replaced by "[MASK]" (whole lines only: masking "N" leaves "Na").
std::string mask_element(const std::string& crystal_text, const std::string& element);
// The infill prompt for a crystal text with `element` masked, up to and including "...bulk material:\n".
std::string infill_prompt(const std::string& crystal_text, const std::string& element);
// Same from a Crystal, formatted with `opt`.
std::string infill_prompt(const Crystal& c, const std::string& element, const TextOptions& opt = {});

// One training example as text: tokens carry loss on the completion only when data.loss_on = completion.
struct TextSample {
  Task task = Task::kGeneration;
  std::string prompt;      // conditioning text
  std::string completion;  // what the model learns to write (crystal text, or the masked element)
};

// Generation example: draws k uniform in 0..4, then k distinct properties among those the crystal has
// (empty cells are never drawn), in random order; formula first whenever k > 0 (and the formula is known).
TextSample make_generation_sample(const Crystal& c, const TextOptions& opt, Rng& rng);
// Infill example: the masked element is the species of a uniformly drawn site (as the reference's
// random.choice over sites).
TextSample make_infill_sample(const Crystal& c, const TextOptions& opt, Rng& rng);

}  // namespace cg
