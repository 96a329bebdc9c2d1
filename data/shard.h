// HDF5 shards of tokenized samples (layout in docs/formats.md, "HDF5 shards"): one flat int32 token array with
// int64 offsets, per-sample prompt length / task / source row / copy, and attributes describing how they were made.
// Readable with h5py + numpy alone. Written to "<path>.tmp" and renamed, so a shard on disk is always complete.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cg {

constexpr int64_t kShardFormatVersion = 1;
// ShardMeta::columns_semantics of this cgprep.
inline constexpr const char* kColumnsRename = "rename";

// Samples in memory: sample i is tokens[offsets[i] : offsets[i+1]] (BOS ... EOS).
struct SampleSet {
  std::vector<int32_t> tokens;
  std::vector<int64_t> offsets{0};  // size() + 1 entries
  std::vector<int32_t> prompt_lens; // tokens [0, prompt_len) are prompt (BOS included); the rest is completion
  std::vector<int8_t> tasks;        // 0 generation, 1 infill
  std::vector<int32_t> rows;        // source CSV data row (0-based, header excluded)
  std::vector<int16_t> copies;      // augmented copy index 0..data.copies-1

  size_t size() const { return prompt_lens.size(); }
  int64_t length(size_t i) const { return offsets[i + 1] - offsets[i]; }
  const int32_t* sample(size_t i) const { return tokens.data() + offsets[i]; }
  void add(const std::vector<int32_t>& toks, int32_t prompt_len, int8_t task, int32_t row, int16_t copy);
  void append(const SampleSet& other);
};

// Root attributes of a shard (all splits' shards carry their split's statistics).
struct ShardMeta {
  int64_t format_version = kShardFormatVersion;
  std::string split;              // train | val | test
  int64_t shard_index = 0, num_shards = 1;
  std::string tokenizer_sha256;   // sha256 of the tokenizer model bytes
  int64_t vocab_size = 0, bos_id = 1, eos_id = 2;
  std::string settings_json;      // every text/augmentation/prompt/loss setting used (JSON object)
  std::string source_path;        // CSV the samples came from
  std::string source_sha256;
  // data.columns as the source was read with it (CsvColumns::describe: "formation_energy_per_atom=heat_ref"); "" when
  // every column was read under its own name (then the attribute is not written, as by an older cgprep).
  std::string source_columns;
  // How cgprep applied that mapping: "rename" (a mapped column is read under its new name only), written with
  // source_columns. Shards of a cgprep before that lack it: they also read a column renamed to another name under its
  // own (band_gap=formation_energy_per_atom stated the value as both), which shards_columns refuses.
  std::string columns_semantics;
  // Properties cgprep derived from the structures where the source gave none (derive_properties: a CIF folder, a CSV
  // without the column), as DerivedProperties::what says it; "" when none were (then the attribute is not written,
  // as shards of an older cgprep lack it).
  std::string derived_properties;
  // How many of the split's crystals carry each property a prompt can state, as JSON: {"crystals": n, "formula": n,
  // "spacegroup": n, "formation_energy": n, "band_gap": n, "e_above_hull": n} (property_counts_json); "" in shards of
  // an older cgprep. cgtrain copies the train split's into each checkpoint (training_data.json), so cgsample can say
  // which conditions a model never saw in training.
  std::string property_counts;
  int64_t rows_read = 0;          // data rows looked at
  int64_t rows_used = 0;          // rows that produced samples
  int64_t rows_skipped = 0;       // rows_read - rows_used
  std::string skipped_json;       // [{"row": r, "reason": "..."}] for every skipped row (split-wide)
  int64_t samples = 0, tokens = 0;  // in this shard
};

// Writes `s` to `path` atomically (temporary name, then rename). Datasets are chunked, shuffled and deflated.
void write_shard(const std::string& path, const SampleSet& s, const ShardMeta& meta);
// Reads a whole shard (datasets and attributes); throws cg::Error naming the path and what is wrong.
SampleSet read_shard(const std::string& path, ShardMeta* meta = nullptr);
ShardMeta read_shard_meta(const std::string& path);
// "{dir}/{split}-00000.h5", "-00001", ... that exist, in order; throws when there are none (names what to run).
std::vector<std::string> list_shards(const std::string& dir, const std::string& split);
std::string shard_path(const std::string& dir, const std::string& split, int64_t index);

}  // namespace cg
