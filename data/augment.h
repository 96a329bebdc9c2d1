// Augmentation of a crystal before it is written as text: one random translation of all fractional coordinates
// (wrapped into [0, 1)) and, optionally, a random atom order. Deterministic given the Rng's seed.
#pragma once
#include "data/crystal.h"
#include "data/rng.h"

namespace cg {

struct AugmentOptions {
  bool translate = true;  // add one uniform shift in [0, 1)^3 to every site, then wrap (data.translate)
  bool permute = false;   // shuffle the site order (data.permute)
};

// Returns the augmented copy. Draws, in order: 3 uniforms for the shift (when translate), then the permutation
// (when permute). Properties, id and lattice are unchanged.
Crystal augment(const Crystal& c, const AugmentOptions& opt, Rng& rng);

}  // namespace cg
