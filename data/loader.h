// Loader: the data-parallel batch stream over tokenized shards (no torch). Per (seed, epoch) one global order,
// cut into global batches of micro_batch x dp x grad_accum samples (one optimizer step), each cut into grad_accum
// micro-steps split across dp ranks, so every sample is seen exactly once per epoch whatever dp is, and layouts with
// the same global batch (dp 2 x accum 1, dp 1 x accum 2) train on the same samples step by step. Length bucketing
// sorts windows of global batches by length to cut padding.
// The position (epoch, cursor) is a small serialisable LoaderState: batches after restore equal an unbroken run's.
// TP ranks of one dp group construct the same loader (same dp_rank) and get identical batches.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/shard.h"

namespace cg {

struct LoaderOptions {
  int64_t micro_batch = 8;       // sequences per rank per batch (train.micro_batch)
  int64_t seq_len = 512;         // longest input row T; samples longer than seq_len + 1 tokens are dropped (logged)
  int64_t dp_rank = 0, dp_size = 1;
  int64_t grad_accum = 1;        // micro-steps per global batch (train.grad_accum)
  uint64_t seed = 0;             // order and bucketing; same on every rank
  bool shuffle = true;           // false: file order, no bucketing
  bool loss_on_completion = false;  // data.loss_on = completion; false: every token after BOS carries loss
  int64_t bucket_batches = 16;   // bucketing window in global batches; <= 1: off
  int32_t pad_id = 0;            // input id at padded positions (their targets are -100)
  std::string what = "loader";   // named in warnings and errors (from_shards: "the <split> split in <dir>")
};

// Where the stream stands; everything a resumed run needs (stored in TrainState / checkpoints).
struct LoaderState {
  int64_t epoch = 0;
  int64_t cursor = 0;            // next global batch within the epoch
  uint64_t seed = 0;             // checked on restore
  int64_t global_batch = 0;      // micro_batch x dp_size x grad_accum, checked on restore (any of them may change
                                 // as long as the product stays)
  int64_t num_samples = 0;       // checked on restore
  int64_t grad_accum = 0;        // informational (the error on a mismatch); 0: a state of a build before grad_accum
                                 // was part of the global batch, whose global_batch is micro_batch x dp
  // What the shards hold (from_shards: a digest of the tokenizer, cgprep's settings, the source CSV and the
  // properties cgprep derived), checked on
  // restore: shards made again with other settings keep their count but not their samples. "" (a loader over
  // samples in memory, or a state of an older build): not checked.
  std::string shards;
  std::string to_json() const;
  static LoaderState from_json(const std::string& json);
  bool operator==(const LoaderState& o) const {
    return epoch == o.epoch && cursor == o.cursor && seed == o.seed && global_batch == o.global_batch &&
           num_samples == o.num_samples && shards == o.shards;
  }
};

// One rank's share of one micro-step of a global batch. Row b holds sample s: tokens[b*T + t] = s[t] for
// t < len(s) - 1 (pad after);
// targets[b*T + t] = s[t + 1] when that token carries loss, else -100 (pads, and prompt tokens in completion mode).
struct Batch {
  int64_t B = 0, T = 0;          // B may be 0 on some ranks in the last, partial global batch of an epoch
  std::vector<int32_t> tokens;   // (B, T)
  std::vector<int32_t> targets;  // (B, T), already shifted
  int64_t loss_tokens = 0;       // targets != -100 in this batch
  int64_t real_tokens = 0;       // non-pad positions in this batch
  int64_t global_loss_tokens = 0;  // loss tokens of the whole global batch (all micro-steps and dp ranks)
  int64_t global_samples = 0;    // samples in the whole global batch
  int64_t epoch = 0, index = 0;  // global batch `index` of `epoch`
  std::vector<int64_t> sample_ids;  // indices into the loaded sample set, row order
  std::vector<int8_t> tasks;        // each row's task (SampleSet::tasks: 0 generation, 1 infill)
};

class Loader {
 public:
  Loader(SampleSet samples, LoaderOptions opt);
  // Every shard of `split` in `dir` (list_shards), checked to come from one tokenizer.
  static Loader from_shards(const std::string& dir, const std::string& split, LoaderOptions opt);

  Batch next();                               // this rank's next micro-step batch; rolls over into the next epoch
  LoaderState state() const;                  // between global batches (after a whole optimizer step)
  // Throws naming what differs (seed, global batch, samples, shards). `also_shards`: further digests that count as
  // these shards (shards_digest of another spelling of their settings, e.g. an older cgprep's).
  void restore(const LoaderState& s, const std::vector<std::string>& also_shards = {});
  void check_restore(const LoaderState& s, const std::vector<std::string>& also_shards = {}) const;  // restore's checks
  // The LoaderState::shards digest these shards would have with `settings_json` in place of their own settings.
  std::string shards_digest(const std::string& settings_json) const;
  // Validation: the first n samples in file order among those that fit seq_len (cgprep shuffled them with
  // data.seed; n = 0: all), sorted by length and cut into batches of micro_batch x dp, this rank's slices. The samples do not depend on dp,
  // micro_batch or the loader seed, so a token-weighted loss over them only differs in summation order.
  std::vector<Batch> fixed_batches(int64_t n) const;

  int64_t batches_per_epoch() const;          // global batches (optimizer steps) per epoch (the last may be partial)
  int64_t num_samples() const { return int64_t(len_.size()); }
  int64_t grad_accum() const { return opt_.grad_accum; }  // micro-steps per global batch
  int64_t dropped_too_long() const { return dropped_; }
  int64_t longest_sample() const;             // tokens of the longest sample loaded (kept or not)
  double padding_waste() const;               // pad positions / all positions, over batches returned so far
  const ShardMeta& meta() const { return meta_; }  // of the first shard (from_shards), else default

 private:
  std::vector<std::vector<int64_t>> plan(int64_t epoch) const;  // global batches of sample ids
  // This rank's slice of micro-step `micro` of `parts` of a global batch.
  Batch make_batch(const std::vector<int64_t>& global, int64_t epoch, int64_t index, int64_t micro = 0,
                   int64_t parts = 1) const;
  int64_t global_batch() const { return opt_.micro_batch * opt_.dp_size * opt_.grad_accum; }
  LoaderState position() const;     // state() without its between-steps check

  SampleSet data_;
  LoaderOptions opt_;
  ShardMeta meta_;
  std::string shards_;              // LoaderState::shards
  std::vector<int64_t> keep_;       // sample ids used (length <= seq_len + 1)
  std::vector<int64_t> len_;        // length of each kept sample, parallel to keep_
  std::vector<int64_t> loss_;       // loss tokens of each kept sample
  int64_t dropped_ = 0;
  int64_t epoch_ = 0, cursor_ = 0, micro_ = 0;  // micro_: next micro-step of global batch cursor_
  mutable int64_t plan_epoch_ = -1;
  mutable std::vector<std::vector<int64_t>> plan_cache_;
  int64_t pad_positions_ = 0, all_positions_ = 0;
};

}  // namespace cg
