// Shard settings: what cgprep records, and the spellings older cgpreps gave it.
#include "data/shard_settings.h"

#include <spdlog/fmt/ranges.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/error.h"

#include "data/mp20.h"
#include "data/pymatgen_order.h"
#include "data/shard.h"

namespace cg {

TextOptions text_options(const DataConfig& d) {
  TextOptions t;
  t.angles = parse_angle_mode(d.angle_mode);
  return t;
}

std::string settings_json(const DataConfig& d, const TextOptions& t) {
  nlohmann::json j;
  j["text"] = {{"angle_mode", angle_mode_name(t.angles)}, {"fold_one", t.fold_one}, {"length_decimals", 1},
               {"coord_decimals", 2}, {"site_order", site_order_name(parse_site_order(d.site_order))}};
  j["augment"] = {{"translate", d.translate}, {"permute", d.permute}, {"copies_train", d.copies},
                  {"copies_val_test", 1}, {"val_test", "not augmented"}};
  j["tasks"] = {{"infill_fraction", d.infill_fraction}, {"prompt_version", 1}};
  j["loss_on"] = d.loss_on;
  j["max_tokens"] = d.max_tokens;
  j["seed"] = d.seed;
  j["max_rows"] = d.max_rows;
  j["strict"] = d.strict;
  // Which column became which property; MP-20's (no entry, or only identity ones): not written.
  if (const auto columns = effective_columns(d.columns); !columns.empty()) j["columns"] = columns;
  j["tokens"] = "BOS + encode(prompt + completion) + EOS";
  return j.dump();
}

std::vector<std::string> legacy_settings_jsons(const std::string& settings, const DataConfig& d) {
  nlohmann::json j = nlohmann::json::parse(settings, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.contains("tokenizer")) return {};
  std::vector<std::string> out;
  // Before data.site_order, cgprep recorded no site order and wrote the file's: only file counts as that. pymatgen's
  // gives MP-20 the same text (no row of its three splits changes), but another source's CIFs other text, which a
  // resumed run must not take for the samples it trained on.
  const nlohmann::json::json_pointer order("/text/site_order");
  if (j.contains(order)) {
    if (j[order] != "file") return {};
    j["text"].erase("site_order");
    out.push_back(j.dump());
  }
  j["tokenizer"] = d.tokenizer;
  j["tokenizer_vocab_size"] = d.tokenizer_vocab_size;
  out.push_back(j.dump());
  return out;
}

std::vector<std::string> other_loss_on_settings(const std::string& settings) {
  nlohmann::json j = nlohmann::json::parse(settings, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!j.is_object() || !j.contains("loss_on")) return out;
  for (const char* v : {"all", "completion"}) {
    if (j["loss_on"] == v) continue;
    nlohmann::json o = j;
    o["loss_on"] = v;
    out.push_back(o.dump());
  }
  return out;
}

std::vector<std::string> settings_differences(const std::string& shards, const std::string& config) {
  const nlohmann::json a = nlohmann::json::parse(shards, nullptr, false);
  const nlohmann::json b = nlohmann::json::parse(config, nullptr, false);
  std::vector<std::string> out;
  if (!a.is_object() || !b.is_object()) return out;
  static const std::pair<const char*, const char*> keys[] = {
      {"/text/angle_mode", "data.angle_mode"}, {"/text/site_order", "data.site_order"},
      {"/augment/translate", "data.translate"},
      {"/augment/permute", "data.permute"}, {"/augment/copies_train", "data.copies"},
      {"/tasks/infill_fraction", "data.infill_fraction"}, {"/loss_on", "data.loss_on"},
      {"/max_tokens", "data.max_tokens"}, {"/seed", "data.seed"}, {"/max_rows", "data.max_rows"},
      {"/strict", "data.strict"}};
  for (const auto& [pointer, key] : keys) {
    const nlohmann::json::json_pointer p(pointer);
    if (!a.contains(p) || !b.contains(p) || a[p] == b[p]) continue;
    out.push_back(std::string(key) + ": " + a[p].dump() + " in the shards, " + b[p].dump() + " in the config");
  }
  return out;
}

namespace {

// Shards an older cgprep made with a mapping that renames a column away from its own name (band_gap=
// formation_energy_per_atom, not a swap) read that column under both names: their prompts state one measured value
// as two properties, and this build reads the source otherwise. Their settings are the same as shards made now, so
// only the marker tells them apart; shards without a mapping, or with one that renames nothing away, are alike either
// way and pass. Refused, as a shard of another format version is.
void check_columns_semantics(const std::string& path, const ShardMeta& meta, const std::vector<std::string>& columns) {
  if (meta.source_columns.empty() || meta.columns_semantics == kColumnsRename) return;  // no CSV mapped, or new
  const auto vacated = parse_columns(columns).vacated();
  if (vacated.empty()) return;
  std::vector<std::string> both;
  for (const auto& [name, other] : vacated)
    both.push_back(fmt::format("column '{}' as both {} and {} (this build: as {} only)", name, other, name, other));
  CG_FAIL("shard '{}' was made by a cgprep older than data.columns' renames: with {} it read {}, stating one value as "
          "two properties; run cgprep again with this config to remake the shards in {}", path,
          columns_setting(columns), fmt::join(both, ", and "), std::filesystem::path(path).parent_path().string());
}

}  // namespace

std::optional<ShardsColumns> shards_columns(const std::string& dir) {
  std::optional<ShardsColumns> out;
  for (const char* split : {"train", "val", "test"}) {
    const std::string path = shard_path(dir, split, 0);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    ShardMeta meta;
    try {
      meta = read_shard_meta(path);
    } catch (const Error&) {  // a damaged shard: cgtrain says what is wrong where it reads them
      continue;
    }
    if (!out) {  // one cgprep run made every split: the first split's settings are all of theirs
      out.emplace();
      const nlohmann::json j = nlohmann::json::parse(meta.settings_json, nullptr, false);
      if (j.is_object() && j.contains("columns") && j["columns"].is_array())
        for (const auto& e : j["columns"])
          if (e.is_string()) out->columns.push_back(e.get<std::string>());
      out->columns = effective_columns(out->columns);
    }
    check_columns_semantics(path, meta, out->columns);
    out->sources.emplace_back(split, meta.source_path);
  }
  return out;
}

}  // namespace cg
