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

// cgexport writes an export into OUT/.cgexport.tmp, renames that to OUT/kExportMovingDir once every file is written,
// then moves its entries into OUT one by one. A folder that still holds kExportMovingDir was stopped during those
// renames (a SIGKILL, a power loss): its files are part the earlier export's, part the new one's, and the next
// cgexport into it finishes the move first.
inline constexpr const char* kExportMovingDir = ".cgexport.moving";
// Where cgexport writes an export before it is complete (inside OUT).
inline constexpr const char* kExportStagingDir = ".cgexport.tmp";
// " (it holds DIR/.cgexport.tmp: ...)" when `dir` holds kExportStagingDir, for the "no adapter / model here" errors of
// the tools that read one: a cgexport into it runs, or was stopped before its files were complete; else "".
std::string unfinished_export_note(const std::string& dir);
// Throws, naming `dir`, `what` reads it (e.g. "model.hf_dir") and what to do, when `dir` holds kExportMovingDir.
void check_no_unfinished_export(const std::string& dir, const std::string& what);

}  // namespace cg
