// What the model was trained on, and the check of crystal text written for it: see trained_text.h.
#include "sampler/trained_text.h"

#include <spdlog/fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "data/crystal_text.h"
#include "data/pymatgen_order.h"
#include "data/shard.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/train_export.h"

namespace cg {
namespace {

// A data.* setting that shapes crystal text written for the model. Of cgsample's prompts only infill prompts carry
// crystal text (written with data.site_order and data.angle_mode); generation prompts, conditions_from's included,
// state conditions alone, which no data.* setting spells otherwise (conditions_from's formula and space group are the
// same in either site order). cgeval's invariance check writes the crystals of data.test_csv the same way.
struct CrystalTextSetting {
  const char* key;      // "data.site_order"
  const char* pointer;  // where cgprep records it in the shards' settings: "/text/site_order"
  std::string DataConfig::*field;       // the config's value
  std::string (*recorded)(const std::string&);  // that value as cgprep records it (the config may spell it otherwise)
  const char* unrecorded;  // what shards of an older cgprep that recorded none were written with ("": not known)
  const char* unrecorded_where;  // said of such a shard: "records no site order, so was written in the file's"
  const char* written;  // the prompts' crystals are written "with their sites in " <key>=<value> <after>
  const char* trained;  // the model was trained on "text in " <value> <after>
  const char* after;    // "'s order"
  const char* effect;   // its prompts would "list the sites as it never saw them"
};

const CrystalTextSetting kCrystalTextSettings[] = {
    {"data.site_order", "/text/site_order", &DataConfig::site_order,
     [](const std::string& v) { return std::string(site_order_name(parse_site_order(v))); },
     "file", "records no site order, so was written in the file's", "their sites in ", "in ", "'s order",
     "list the sites as it never saw them"},
    {"data.angle_mode", "/text/angle_mode", &DataConfig::angle_mode,
     [](const std::string& v) { return std::string(angle_mode_name(parse_angle_mode(v))); }, "", "",
     "their angles made integers by ", "with its angles made integers by ", "",
     "state angles as it never saw them (89.6 is 90 by round, 89 by truncate)"},
};

// Where the text settings of the model's training text can be read: the settings of the train shards its
// training_data record names (null where none reads), else its run's config.yaml.
struct TrainedText {
  std::string shard;
  nlohmann::json settings;
  std::optional<Config> config;
};

TrainedText trained_text(const Config& c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  TrainedText t;
  const auto record = nlohmann::json::parse(model_training_data(c), nullptr, false);
  if (record.is_object() && record.contains("shards_dir") && record["shards_dir"].is_string()) {
    const std::string shard = shard_path(record["shards_dir"].get<std::string>(), "train", 0);
    if (fs::is_regular_file(shard, ec)) {
      try {
        auto settings = nlohmann::json::parse(read_shard_meta(shard).settings_json, nullptr, false);
        if (settings.is_object()) t.shard = shard, t.settings = std::move(settings);
      } catch (const std::exception&) {  // unreadable shards: the config below, if any
      }
    }
  }
  const std::string adapter = !c.sample.adapter.empty() ? c.sample.adapter
                              : c.model.hf_dir.empty()  ? ""
                                                        : (fs::path(c.model.hf_dir) / "adapter").string();
  t.config = adapter_training_config(adapter);
  return t;
}

// The value of `s` in the model's training text, and where that was found; {"", ""} where neither the shards nor
// the run's config say (a plain base, a checkpoint of an older build whose shards are gone).
std::pair<std::string, std::string> trained_value(const TrainedText& t, const CrystalTextSetting& s) {
  if (t.settings.is_object()) {
    const nlohmann::json::json_pointer p(s.pointer);
    if (t.settings.contains(p) && t.settings[p].is_string()) {
      std::string dotted = std::string(s.pointer).substr(1);
      std::replace(dotted.begin(), dotted.end(), '/', '.');
      return {t.settings[p].get<std::string>(), fmt::format("{} records {} {}", t.shard, dotted,
                                                            t.settings[p].get<std::string>())};
    }
    if (*s.unrecorded) return {s.unrecorded, fmt::format("{} {}", t.shard, s.unrecorded_where)};
  }
  if (t.config) {
    try {
      const std::string v = s.recorded(t.config->data.*s.field);
      return {v, fmt::format("its run's config.yaml has {} {}", s.key, v)};
    } catch (const Error&) {  // a value of an older build's: nothing to compare
    }
  }
  return {"", ""};
}

}  // namespace

std::optional<Config> adapter_training_config(const std::string& adapter) {
  namespace fs = std::filesystem;
  if (adapter.empty()) return std::nullopt;
  std::error_code ec;
  std::string path = (fs::path(adapter) / "config.yaml").string();
  if (!fs::is_regular_file(path, ec)) {
    const std::string checkpoint = peft_adapter_record(adapter).checkpoint;
    if (checkpoint.empty()) return std::nullopt;
    path = (fs::path(checkpoint) / "config.yaml").string();
    if (!fs::is_regular_file(path, ec)) return std::nullopt;
  }
  try {
    return load_saved_config(path);
  } catch (const Error&) {
    return std::nullopt;  // an older build's config: nothing to say
  }
}

std::string model_training_data(const Config& c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string& a = c.sample.adapter;
  if (!a.empty()) {
    if (std::string r = recorded_training_data(a); !r.empty()) return r;
    if (fs::is_directory(fs::path(a) / "checkpoints", ec))
      if (const auto latest = find_latest_complete(a)) return recorded_training_data(latest->path);
    return "";
  }
  if (!c.model.hf_dir.empty()) return recorded_training_data((fs::path(c.model.hf_dir) / "adapter").string());
  return "";
}

void check_text_settings_trained(const Config& c, const CrystalTextUse& use) {
  const TrainedText t = trained_text(c);
  const std::string what = !c.sample.adapter.empty() ? "sample.adapter " + c.sample.adapter
                                                      : "model.hf_dir " + c.model.hf_dir;
  std::vector<std::string> wrong;
  for (const CrystalTextSetting& s : kCrystalTextSettings) {
    const auto [trained, where] = trained_value(t, s);
    const std::string& value = c.data.*s.field;
    if (trained.empty() || trained == s.recorded(value)) continue;
    wrong.push_back(fmt::format("{} would write the crystals of data.test_csv with {}{}={}{}, but {} was trained on "
                                "text {}{}{} ({}): {} would {}; set {}={}", use.setting, s.written, s.key, value,
                                s.after, what, s.trained, trained, s.after, where, use.text, s.effect, s.key,
                                trained));
  }
  CG_CHECK(wrong.empty(), "{}", fmt::join(wrong, "; and "));
}

}  // namespace cg
