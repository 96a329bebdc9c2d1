// Export of a training run: the PEFT adapter (full factors, gathered over the checkpoint's tp shards) and, with merge,
// a full HF checkpoint with W + scale·B·A folded in (or, for a full-parameter run, its trained weights).
#pragma once
#include <cstdint>
#include <string>

namespace cg {

struct ShardMeta;  // data/shard.h

struct ExportOptions {
  std::string run_dir;          // a cgtrain train.run_dir (config.yaml + checkpoints/)
  int64_t step = -1;            // checkpoint step; < 0: the newest complete one
  std::string out;              // output folder
  bool merge = false;           // also write a merged HF checkpoint
  std::string dtype;            // fp32 | bf16 | fp16 for the adapter and the written weights; empty: the adapter
                                // fp32, a merged checkpoint in the base's own dtype (fp16 for Meta's LLaMA-2, fp32
                                // for a random-init base), a full-parameter run's weights in its HF base's dtypes
                                // (as trained when there is no base); config.json's torch_dtype follows
  int64_t max_shard_bytes = int64_t{5} << 30;  // HF checkpoint shard size (model-0000i-of-0000n.safetensors)
  std::string base;             // the base HF folder when it moved since training; empty: the run's model.hf_dir
};

// A merged checkpoint's config.json records what was merged into it under this key: {"adapter_sha256": sha256 of
// the adapter's adapter_model.safetensors, "checkpoint": the step folder's canonical path, "run_dir": its run's}.
// Every adapter cgexport writes has kAdapterSourceFile beside it ({"checkpoint", "run_dir", kSourceTokenizerKey: the
// sha256 of the tokenizer.model trained with, which cgexport copies beside it}; PEFT ignores the file).
inline constexpr const char* kMergedKey = "cgtrain_merged";
// An adapter of a run without model.hf_dir (a random-init base) names its base this prefix + model.flavor.
inline constexpr const char* kRandomBasePrefix = "cgtrain-";
inline constexpr const char* kAdapterSourceFile = "cgtrain_source.json";
inline constexpr const char* kSourceTokenizerKey = "tokenizer_sha256";
struct MergedFrom {
  std::string adapter_sha256, checkpoint, run_dir;  // "" where unknown
  std::string tokenizer_sha256;                      // a PEFT folder's kSourceTokenizerKey; "" where unknown
};
// What applying an adapter would add: a PEFT folder (its weights' sha256, and its kAdapterSourceFile when cgexport
// wrote it), or a run's step folder (checkpoint and run).
MergedFrom peft_adapter_source(const std::string& peft_dir);
// Only what kAdapterSourceFile records (no adapter_sha256: the weights are not read).
MergedFrom peft_adapter_record(const std::string& peft_dir);
MergedFrom checkpoint_source(const std::string& step_folder);
// Why applying `candidate` to the model in hf_dir would add an update already merged into it (the same adapter
// file, or any checkpoint of the merged one's run), naming `what` (e.g. "sample.adapter X"); "" when it would not.
std::string merged_twice(const std::string& hf_dir, const MergedFrom& candidate, const std::string& what);

// The sample (model::BaseSample JSON) of the base a LoRA adapter was trained on, as cgtrain records it in a step
// folder (model::kBaseSampleFile) and cgexport in a PEFT folder's kAdapterSourceFile (model::kBaseSampleKey); "" when
// there is none (a random base, a checkpoint of an older build, an adapter of another tool).
std::string recorded_base_sample(const std::string& folder);
// What a run trained on, as cgtrain records it in each step folder (kTrainingDataFile) and cgexport copies into an
// adapter's kAdapterSourceFile (kTrainingDataKey): {"shards_dir", "source_path", "source_sha256",
// "derived_properties", "property_counts": the train shards' ShardMeta::property_counts, or null from an older cgprep}.
inline constexpr const char* kTrainingDataFile = "training_data.json";
inline constexpr const char* kTrainingDataKey = "training_data";
// That record of the train shards described by `meta`, read from `shards_dir`.
std::string training_data_json(const ShardMeta& meta, const std::string& shards_dir);
// The record of `folder` (a step folder's kTrainingDataFile, a PEFT folder's kAdapterSourceFile key); "" when there is
// none (a checkpoint of an older build, an adapter of another tool).
std::string recorded_training_data(const std::string& folder);
// Why the adapter `what`, trained on the base sampled as `recorded`, does not belong on model.hf_dir=`hf_dir`
// (sampled as `now`): "<what> was trained on other weights than model.hf_dir=<hf_dir> holds: <the values that differ>";
// "" when they are one base (or nothing was recorded).
std::string other_base(const std::string& recorded, const std::string& now, const std::string& what,
                       const std::string& hf_dir);

// Writes into out:
//   LoRA run:   adapter_model.safetensors + adapter_config.json (PEFT), tokenizer.model;
//               merge: config.json + model*.safetensors (merged) too, and the adapter moves to out/adapter/;
//               the base's config.json fields, its tokenizer.json / tokenizer_config.json /
//               special_tokens_map.json / generation_config.json are kept, each weight keeps the base's dtype.
//   full run:   config.json + model*.safetensors, tokenizer.model.
// The HF checkpoint is streamed from the base folder (model.hf_dir): one tensor at a time is read, merged in fp32
// (W + scale·B·A), cast to dtype and written, so memory stays a few times the largest tensor (~1 GB each for 70B).
// A failed write (full disk) throws naming the file and what to do (free space, or another --out) and leaves nothing
// of the unfinished export: no file of it, no temporary file, no --out folder it made; an earlier export stays whole.
// Returns the checkpoint folder used. Single process, no MPI.
std::string export_run(const ExportOptions& o);

}  // namespace cg
