// TrainState <-> JSON (nlohmann), with the loader position as a nested object.
#include "trainer/train_state.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace cg {

std::string TrainState::to_json() const {
  nlohmann::json j;
  j["step"] = step;
  j["tokens_seen"] = tokens_seen;
  j["loss_tokens_seen"] = loss_tokens_seen;
  j["bad_steps"] = bad_steps;
  j["bad_in_row"] = bad_in_row;
  j["last_val_loss"] = last_val_loss;
  j["loader"] = nlohmann::json::parse(loader.to_json());
  return j.dump();
}

TrainState TrainState::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    CG_FAIL("train state is not valid JSON ({}); the checkpoint is damaged: delete it to resume from an older one",
            e.what());
  }
  TrainState s;
  auto get = [&](const char* key, auto& v) {
    CG_CHECK(j.contains(key), "train state has no '{}'; the checkpoint was written by another cgtrain version", key);
    v = j.at(key).get<std::decay_t<decltype(v)>>();
  };
  get("step", s.step);
  get("tokens_seen", s.tokens_seen);
  get("loss_tokens_seen", s.loss_tokens_seen);
  get("bad_steps", s.bad_steps);
  get("bad_in_row", s.bad_in_row);
  get("last_val_loss", s.last_val_loss);
  CG_CHECK(j.contains("loader"), "train state has no 'loader'");
  s.loader = LoaderState::from_json(j.at("loader").dump());
  return s;
}

bool TrainState::operator==(const TrainState& o) const {
  return step == o.step && tokens_seen == o.tokens_seen && loss_tokens_seen == o.loss_tokens_seen &&
         bad_steps == o.bad_steps && bad_in_row == o.bad_in_row && last_val_loss == o.last_val_loss &&
         loader == o.loader;
}

}  // namespace cg
