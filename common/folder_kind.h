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

// The tool whose folder `dir` is, told by the file that marks it: cgprep's shards folder (cgprep_config.yaml) or a
// cgtrain run's folder (checkpoints/). For the tools that write into a folder they are given (cgexport --out,
// sample.out_dir), which must not write among another tool's files; `mark` gets the file that tells.
enum class OwnedBy { kNone, kCgprep, kCgtrain };
OwnedBy owned_by_tool(const std::string& dir, std::string* mark = nullptr);

}  // namespace cg
