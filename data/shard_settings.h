// What a set of shards was made with, as cgprep records it in every shard (ShardMeta::settings_json): the text,
// augmentation, prompt and loss settings that decide which samples exist. cgtrain compares these across splits and
// digests them into a checkpoint's loader position, so they live in cg_data (torch processes may link it; cg_prep,
// with libsentencepiece, they may not).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/crystal_text.h"
#include "trainer/config.h"

namespace cg {

// Text settings of a data config (angle_mode, ...), validated.
TextOptions text_options(const DataConfig& d);

// The settings of shards made from `d` with text options `t`, as a JSON object (sorted keys). The tokenizer is not
// among them: it enters the shards by its sha256 (ShardMeta::tokenizer_sha256), not by how data.tokenizer named it.
std::string settings_json(const DataConfig& d, const TextOptions& t);

// The spellings an older cgprep gave the same settings: without text.site_order (cgprep before data.site_order, which
// wrote the file's order: so only for site_order file), and that one also recording "tokenizer" (data.tokenizer as
// written) and "tokenizer_vocab_size", taken here from `d`. Empty when `settings` is not this cgprep's spelling, or
// records site_order pymatgen (a CIF folder's text differs from what older cgpreps wrote). A checkpoint
// of a run on older shards holds the digest of that spelling; it resumes on the same shards made again.
std::vector<std::string> legacy_settings_jsons(const std::string& settings, const DataConfig& d);

// `settings` with its "loss_on" set to each other value: which tokens carry loss is cgtrain's data.loss_on, the
// shards hold the same samples either way (the value recorded is what cgprep's config said). Empty when `settings`
// is not JSON or has no loss_on.
std::vector<std::string> other_loss_on_settings(const std::string& settings);

// The data.* keys whose values differ between the settings shards recorded and those a config would record
// (settings_json of each), as "data.copies: 3 in the shards, 1 in the config"; keys an older spelling lacks are
// skipped. Empty when they agree.
std::vector<std::string> settings_differences(const std::string& shards, const std::string& config);

// data.columns as the shards in `dir` were made with it (their settings' "columns", identity entries left out; empty:
// MP-20's names), and the file each split present was read from ({split, ShardMeta::source_path}); nullopt when `dir`
// holds no readable shard. cgtrain records the shards' mapping; cgsample and cgeval read those files with it. Throws,
// saying to run cgprep again, for shards an older cgprep made with a mapping that renames a column away from its own
// name (they read it under both names; ShardMeta::columns_semantics tells them from shards made now).
struct ShardsColumns {
  std::vector<std::string> columns;
  std::vector<std::pair<std::string, std::string>> sources;
};
std::optional<ShardsColumns> shards_columns(const std::string& dir);

}  // namespace cg
