// Translation and permutation augmentation.
#include "data/augment.h"

#include <numeric>
#include <vector>

namespace cg {

Crystal augment(const Crystal& c, const AugmentOptions& opt, Rng& rng) {
  Crystal out = c;
  if (opt.translate) {
    Vec3 shift{rng.uniform(), rng.uniform(), rng.uniform()};
    for (auto& f : out.frac)
      for (int k = 0; k < 3; ++k) f[k] = wrap01(f[k] + shift[k]);
  }
  if (opt.permute) {
    std::vector<size_t> order(c.num_sites());
    std::iota(order.begin(), order.end(), size_t(0));
    rng.shuffle(order);
    const Crystal src = out;
    for (size_t i = 0; i < order.size(); ++i) {
      out.species[i] = src.species[order[i]];
      out.frac[i] = src.frac[order[i]];
      if (src.oxidation.size() == src.species.size()) out.oxidation[i] = src.oxidation[order[i]];
    }
  }
  return out;
}

}  // namespace cg
