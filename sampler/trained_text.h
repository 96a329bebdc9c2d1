// What the model cgsample samples and cgeval scores was trained on, where its checkpoint says: the config of its run
// and the training_data record of its checkpoint; and the check that crystal text written for it (cgsample's infill
// prompts, cgeval's invariance check) uses the text settings of its training text.
#pragma once
#include <optional>
#include <string>

#include "trainer/config.h"

namespace cg {

// The config sample.adapter was trained under, where it can be found: a run folder's or step folder's config.yaml,
// or for a PEFT adapter cgexport wrote, the one of the checkpoint its cgtrain_source.json names. nullopt where none
// is found or it does not load (an older build's config: nothing to say).
std::optional<Config> adapter_training_config(const std::string& adapter);

// The training_data record (trainer/train_export.h) of the model sampled: of sample.adapter (a step folder, a run
// folder's latest checkpoint, a PEFT folder cgexport wrote), else of a merged export in model.hf_dir (its adapter/).
// "" where none is found (a checkpoint of an older build, a model of another tool, a plain base).
std::string model_training_data(const Config& c);

// Who writes crystal text for the model, as the error of check_text_settings_trained names it.
struct CrystalTextUse {
  const char* setting;  // the setting that makes it: "sample.task=infill"
  const char* text;     // what would be written that way: "its prompts"
};
inline constexpr CrystalTextUse kInfillPrompts{"sample.task=infill", "its prompts"};
inline constexpr CrystalTextUse kInvarianceText{"eval.invariance=true", "the texts it scores"};

// Crystal text written with the config's data.site_order and data.angle_mode (the crystals of data.test_csv) is text
// the model never saw unless its training text was written the same way (pymatgen's and a file's order list a CIF's
// sites differently; round and truncate make other angles). Refused, every setting that differs named at once, where
// the train shards its training_data record names (else its run's config.yaml) say otherwise; where neither can be
// found (a plain base, a checkpoint of an older build whose shards are gone) nothing is compared.
void check_text_settings_trained(const Config& c, const CrystalTextUse& use);

}  // namespace cg
