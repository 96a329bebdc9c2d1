// cgprep's pipeline as a library call: MP-20 CSVs -> Crystals -> augmented text samples -> token ids -> HDF5 shards
// in data.shards_dir (plus tokenizer.model). Deterministic for a seed, whatever the thread count.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "data/crystal.h"
#include "data/crystal_text.h"
#include "data/prompt.h"
#include "data/shard.h"
#include "data/shard_settings.h"  // text_options
#include "data/tokenizer.h"
#include "trainer/config.h"

namespace cg {

// One crystal copy -> tokens: BOS + encode(prompt + completion) + EOS, and the prompt's token count (the tokens
// the prompt alone determines: the common prefix of encode(prompt) and the full encoding).
struct TokenizedSample {
  std::vector<int32_t> tokens;
  int32_t prompt_len = 0;
};
TokenizedSample tokenize_sample(const Tokenizer& tok, const TextSample& s);

// The text sample for copy `copy` of `c` (data row `row` of split `split_id`: 0 train, 1 val, 2 test): augmentation
// (train only: val and test keep the crystal as written, so validation losses of runs that differ in data.translate
// or data.permute score the same text), task draw (infill with probability data.infill_fraction), then the task's
// own draws, from Rng(seed, split_id, row, copy).
TextSample make_sample(const Crystal& c, const DataConfig& d, int split_id, int64_t row, int64_t copy);

struct SplitReport {
  std::string split;
  int64_t rows_read = 0, rows_used = 0, rows_skipped = 0, samples = 0, tokens = 0, shards = 0;
};
struct PrepReport {
  std::vector<SplitReport> splits;  // train, val, test
  std::string tokenizer_path;       // shards_dir/tokenizer.model
  double seconds = 0;
};

// Runs the whole pipeline for the train, val and test CSVs of `d` (a CSV path that is empty is left out).
// threads <= 0: hardware concurrency. Train gets data.copies copies per crystal; val and test get one.
// stop (may be null): a signal number, 0 until cgprep's SIGINT/SIGTERM/SIGHUP handler stores one. run_prep reads it
// between steps and splits, every crystal while making samples and before committing the shards; set by then, it
// throws a cg::Error saying so, after which, as after any failure, nothing of the run is left (no staging folder,
// no data.shards_dir it made, an earlier run's shards untouched). Set once the commit has begun, it is ignored: the
// run completes rather than leave a folder of half old, half new shards.
// config_yaml (cgprep: the resolved config): written as cgprep_config.yaml into the staging folder, so that it moves
// into data.shards_dir with the shards it describes; a failure writing it (a full disk) leaves the earlier run's
// shards and cgprep_config.yaml as they were. Empty: none is written.
PrepReport run_prep(const DataConfig& d, int threads = 0, const std::atomic<int>* stop = nullptr,
                    const std::string& config_yaml = "");

// Before cgprep writes into `dir` (data.shards_dir): it replaces tokenizer.model and every {train,val,test}-NNNNN.h5
// there, so it refuses a folder that is a model, adapter or run folder (config.json, *.safetensors,
// adapter_config.json, checkpoints/, .cgtrain.lock) and one holding such files without the cgprep_config.yaml that
// cgprep writes beside its shards. A missing or empty folder is fine.
void check_shards_dir_owned(const std::string& dir);

}  // namespace cg
