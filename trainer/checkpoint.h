// What a cgtrain checkpoint holds (the folder mechanics — step-N.tmp, manifest, rename — are trainer/checkpoint_dir.h).
//
//   run_dir/checkpoints/step-N/rank-00003.safetensors   one file per rank:
//     param/<name>                 this rank's trainable tensor (LoRA factor shard, or base shard in full mode)
//     optim/<name>.exp_avg|.exp_avg_sq|.step   AdamW state of that tensor
//     rng/torch_cpu, rng/dropout   generator states (uint8)
//     metadata: format, train_state (TrainState JSON), layout {tp, dp, tp_rank, dp_rank}, shards {name: {dim,
//               full_shape, start, len}}, config_hash, mode (lora | full)
//   config.yaml, model_config.json  the resolved config and the model's shape this step was trained under
//   tokenizer.model                the tokenizer the shards were made with (its sha256 is in the manifest)
//   manifest.json                  written last by checkpoint_dir (sizes + sha256 of every file)
// Resume: same tp → each rank reads the file of its own (tp_rank, dp_rank) (dp replica 0 when dp changed: replicas
// hold identical tensors); other tp → each rank reads every tp shard of the same replica (its own, or 0 when dp
// changed), rebuilds the full tensor and cuts its own slice. Dropout masks depend only on the dp replica's stream, so
// a tp change keeps it; a dp change re-seeds it from (seed, dp_rank, step).
#pragma once
#include <map>
#include <string>

#include "dist/parallel_dims.h"
#include "trainer/adamw.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/train_model.h"
#include "trainer/train_state.h"

namespace cg {

inline constexpr const char* kRankFileFormat = "cgtrain-rank-v1";

// Writes this rank's file into `dir` (a step-N.tmp folder). No collective.
void write_rank_checkpoint(const std::string& dir, const TrainModel& m, const AdamW& opt, const TrainState& state,
                           const dist::ParallelDims& dims, const std::string& config_hash);

// Restores trainable tensors, AdamW state and RNG states from a verified step folder (ckpt.manifest gives the
// layout it was written with) and returns its TrainState. Throws naming what does not match (lora.r, targets,
// full vs LoRA mode). No collective.
TrainState load_rank_checkpoint(const CheckpointInfo& ckpt, TrainModel& m, AdamW& opt,
                                const dist::ParallelDims& dims, uint64_t seed);

// The TrainState (step, tokens, loader position) of a verified step folder, from rank 0's file header alone: for
// checks that need no model. No collective.
TrainState read_checkpoint_train_state(const CheckpointInfo& ckpt);

// The config and model shape a checkpoint was trained under: the step folder's own config.yaml and
// model_config.json, else (checkpoints of older builds) the run folder's, which a later launch may have rewritten
// (with a warning when that config's hash differs from the manifest's).
struct CheckpointConfigs {
  Config config;
  model::LlamaConfig llama;
};
CheckpointConfigs read_checkpoint_configs(const std::string& run_dir, const CheckpointInfo& ckpt);

// The tokenizer a checkpoint was trained with, kept in every step folder.
inline constexpr const char* kCheckpointTokenizer = "tokenizer.model";
// Its sha256 from the manifest; "" for checkpoints of builds that did not keep it.
std::string checkpoint_tokenizer_sha(const CheckpointInfo& ckpt);
// Its path: the step folder's, else (older builds) "".
std::string checkpoint_tokenizer_path(const CheckpointInfo& ckpt);

// Full (un-sharded) trainable tensors of the dp-replica-0 files of a step folder, keyed by name ("param/" dropped):
// what cgexport writes. Reads the rank files only (one process is enough).
std::map<std::string, at::Tensor> read_full_params(const CheckpointInfo& ckpt);

}  // namespace cg
