// Shard settings: what cgprep records, and the spellings older cgpreps gave it.
#include "data/shard_settings.h"

#include <nlohmann/json.hpp>

namespace cg {

std::string settings_json(const DataConfig& d, const TextOptions& t) {
  nlohmann::json j;
  j["text"] = {{"angle_mode", angle_mode_name(t.angles)}, {"fold_one", t.fold_one}, {"length_decimals", 1},
               {"coord_decimals", 2}};
  j["augment"] = {{"translate", d.translate}, {"permute", d.permute}, {"copies_train", d.copies},
                  {"copies_val_test", 1}, {"val_test", "not augmented"}};
  j["tasks"] = {{"infill_fraction", d.infill_fraction}, {"prompt_version", 1}};
  j["loss_on"] = d.loss_on;
  j["max_tokens"] = d.max_tokens;
  j["seed"] = d.seed;
  j["max_rows"] = d.max_rows;
  j["strict"] = d.strict;
  j["tokens"] = "BOS + encode(prompt + completion) + EOS";
  return j.dump();
}

std::vector<std::string> legacy_settings_jsons(const std::string& settings, const DataConfig& d) {
  nlohmann::json j = nlohmann::json::parse(settings, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.contains("tokenizer")) return {};
  j["tokenizer"] = d.tokenizer;
  j["tokenizer_vocab_size"] = d.tokenizer_vocab_size;
  return {j.dump()};
}

}  // namespace cg
