// What a folder a setting names holds, told by the file that marks it: the tools take adapters, cgtrain runs and base
// models in settings that are easily mixed up (model.hf_dir, sample.adapter, lora.init_adapter), and dispatch on, or
// name in their errors, what was given.
#pragma once
#include <string>

namespace cg {

// A PEFT adapter folder: adapter_config.json (beside adapter_model.safetensors).
bool is_peft_adapter_folder(const std::string& dir);

// A cgtrain run folder (its checkpoints/) or one of its checkpoints/step-N folders (manifest.json).
bool is_cgtrain_folder(const std::string& dir);

}  // namespace cg
