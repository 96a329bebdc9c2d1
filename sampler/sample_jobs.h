// What cgsample will ask the model, from the config alone (no torch, no model): one prompt per sample, from the
// fixed conditions (sample.formula, ...), from rows of sample.conditions_from, or masked test crystals (infill).
// cgsample builds them before it loads a model (a bad formula or CSV must not cost a 70B load), and cgsweep builds
// them for every sampling point before the first point trains.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "trainer/config.h"

namespace cg {

struct SampleJob {
  std::string prompt;
  std::string truth;  // infill: the masked element
};

// The prompts of c.sample (reads sample.conditions_from's CSV or, for infill, data.test_csv); throws naming the key
// to change when a condition is not one, a CSV has no usable row, or infill has no crystal. Warns (spdlog) about
// prompts the model never saw in training and rows left out.
std::vector<SampleJob> make_sample_jobs(const Config& c);

// The checks of c.sample that need no file, device or model (sample.formula a formula; sample.conditions_from a
// path or a key that names one; infill given a data.test_csv, and sample.min_new_tokens below its budget of
// kInfillMaxNewTokens): made first, so that a typo is refused before
// any tokenizer, CSV or model is read. Throws naming the key and what to write. make_sample_jobs makes them too.
void check_sample_settings(const Config& c);

// A sample.adapter that is not there, refused as itself: the tokenizer is read first, from the adapter's folder when it
// has one and else from data.tokenizer, so a mistyped adapter path was said as the shards' missing tokenizer.model.
// load_sampling_tokenizer (sampler/sampling_model.h) makes this check first.
void check_sample_adapter_exists(const Config& c);

// A property condition (sample.formation_energy / band_gap / e_above_hull): nothing when empty, else a finite
// decimal number; throws otherwise.
std::optional<double> number_or_none(const std::string& s);

}  // namespace cg
