// Sampling conditions no training prompt stated (its data carried no such property): the model never learned to
// follow them. One check for both tools that can say so: cgsample from a checkpoint's training_data record, before it
// loads the model, and cgsweep from a point's train shards right after cgprep, before the point trains.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sampler/sample_jobs.h"

namespace cg {

// The conditions the prompts of `jobs` state, named as sample.condition_on names them (formula, spacegroup,
// formation_energy, band_gap, e_above_hull).
std::set<std::string> conditions_stated(const std::vector<SampleJob>& jobs);

struct UntrainedConditions {
  std::vector<std::string> never;  // of those asked, the ones no training prompt stated (in name order); empty: none
  // Why, from the counts: "(<source>, 7 crystals: band_gap 0, formula 7; a formula is stated only beside another
  // property)" (the last part only when the formula is among them).
  std::string counts;
};

// Of `asked` (conditions_stated), those no training prompt stated, by `property_counts`: the train split's counts of
// crystals carrying each property (ShardMeta::property_counts, the "property_counts" of a training_data record:
// {"crystals": n, "formula": n, "spacegroup": n, ...}). A formula counts only beside another property, as training
// prompts state it; a count that is no integer counts as stated. `source`: the split's source path ("": "its train
// split"). nullopt when property_counts is no JSON object (shards of an older cgprep): nothing is known.
std::optional<UntrainedConditions> untrained_conditions(const std::set<std::string>& asked,
                                                        const std::string& property_counts, const std::string& source);

}  // namespace cg
