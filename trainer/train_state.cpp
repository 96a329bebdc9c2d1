// TrainState <-> JSON (nlohmann), with the loader position as a nested object.
#include "trainer/train_state.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_int.h"

namespace cg {

std::string TrainState::to_json() const {
  nlohmann::json j;
  j["step"] = step;
  j["tokens_seen"] = tokens_seen;
  j["loss_tokens_seen"] = loss_tokens_seen;
  j["bad_steps"] = bad_steps;
  j["bad_in_row"] = bad_in_row;
  j["last_val_loss"] = last_val_loss;  // a non-finite loss (a diverged validation) is written as null
  j["loader"] = nlohmann::json::parse(loader.to_json());
  return j.dump();
}

TrainState TrainState::from_json(const std::string& text) {
  constexpr const char* kDamaged = "the checkpoint is damaged: delete it to resume from an older one";
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  CG_CHECK(!j.is_discarded(), "train state is not valid JSON; {}", kDamaged);
  CG_CHECK(j.is_object(), "train state is {}, not a JSON object; {}", j.dump(), kDamaged);
  auto require = [&](const char* key) {
    CG_CHECK(j.contains(key), "train state has no '{}'; the checkpoint was written by another cgtrain version", key);
  };
  TrainState s;
  const std::string where = fmt::format("train state ({})", kDamaged);
  for (auto [key, v] : {std::pair<const char*, int64_t*>{"step", &s.step}, {"tokens_seen", &s.tokens_seen},
                        {"loss_tokens_seen", &s.loss_tokens_seen}, {"bad_steps", &s.bad_steps},
                        {"bad_in_row", &s.bad_in_row}}) {
    require(key);
    *v = json_int_at(j, key, where, 0);
  }
  require("last_val_loss");
  const nlohmann::json& val = j.at("last_val_loss");
  CG_CHECK(val.is_number() || val.is_null(), "train state: \"last_val_loss\" is {}, not a number; {}", val.dump(),
           kDamaged);
  s.last_val_loss = val.is_null() ? std::numeric_limits<double>::quiet_NaN() : val.get<double>();
  require("loader");
  s.loader = LoaderState::from_json(j.at("loader").dump());
  return s;
}

bool TrainState::operator==(const TrainState& o) const {
  const bool same_val = last_val_loss == o.last_val_loss || (std::isnan(last_val_loss) && std::isnan(o.last_val_loss));
  return step == o.step && tokens_seen == o.tokens_seen && loss_tokens_seen == o.loss_tokens_seen &&
         bad_steps == o.bad_steps && bad_in_row == o.bad_in_row && same_val && loader == o.loader;
}

}  // namespace cg
