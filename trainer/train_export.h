// Export of a training run: the PEFT adapter (full factors, gathered over the checkpoint's tp shards) and, with merge,
// a full HF checkpoint with W + scale·B·A folded in (or, for a full-parameter run, its trained weights).
#pragma once
#include <cstdint>
#include <string>

namespace cg {

struct ExportOptions {
  std::string run_dir;          // a cgtrain train.run_dir (config.yaml + checkpoints/)
  int64_t step = -1;            // checkpoint step; < 0: the newest complete one
  std::string out;              // output folder
  bool merge = false;           // also write a merged HF checkpoint
  std::string dtype = "fp32";   // fp32 | bf16 | fp16: adapter and merged weights
};

// Writes into out:
//   LoRA run:   adapter_model.safetensors + adapter_config.json (PEFT), tokenizer.model;
//               merge: config.json + model*.safetensors (merged) too, and the adapter moves to out/adapter/.
//   full run:   config.json + model*.safetensors, tokenizer.model.
// Returns the checkpoint folder used. Single process, no MPI.
std::string export_run(const ExportOptions& o);

}  // namespace cg
