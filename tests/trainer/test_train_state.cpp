// TrainState <-> JSON: every field round-trips (a non-finite validation loss included: JSON has no NaN, so it is
// written as null and read back as NaN); a damaged or edited state is refused with cg::Error naming the field, never
// with a JSON library exception or a wrapped integer; equality sees every field.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "trainer/train_state.h"

namespace {

cg::TrainState sample_state() {
  cg::TrainState s;
  s.step = 120;
  s.tokens_seen = 3'000'000'000;  // beyond int32
  s.loss_tokens_seen = 1'234'567;
  s.bad_steps = 2;
  s.bad_in_row = 1;
  s.last_val_loss = 0.8125;
  s.loader.epoch = 3;
  s.loader.cursor = 17;
  s.loader.seed = 18'000'000'000'000'000'000ull;  // beyond int64
  s.loader.global_batch = 32;
  s.loader.num_samples = 16206;
  s.loader.grad_accum = 4;
  s.loader.shards = "abc123";
  return s;
}

// The refusal of `text`, or "accepted".
std::string refusal(const std::string& text) {
  try {
    cg::TrainState::from_json(text);
  } catch (const cg::Error& e) {
    return e.what();
  }
  return "accepted";
}

std::string edited(const char* key, const nlohmann::json& value) {
  nlohmann::json j = nlohmann::json::parse(sample_state().to_json());
  if (value.is_discarded()) j.erase(key);
  else j[key] = value;
  return j.dump();
}

}  // namespace

TEST(TrainState, RoundTripsEveryField) {
  const cg::TrainState s = sample_state();
  const cg::TrainState back = cg::TrainState::from_json(s.to_json());
  EXPECT_EQ(back, s);
  EXPECT_EQ(back.tokens_seen, 3'000'000'000);
  EXPECT_EQ(back.loader.seed, 18'000'000'000'000'000'000ull);
  EXPECT_EQ(back.last_val_loss, 0.8125);
  cg::TrainState fresh;  // nothing measured yet: -1
  EXPECT_EQ(cg::TrainState::from_json(fresh.to_json()).last_val_loss, -1.0);
}

// The round trip above compares with ==: a state that differs in any one field must compare unequal, or a field
// that from_json dropped would pass.
TEST(TrainState, EqualityComparesEveryField) {
  const cg::TrainState s = sample_state();
  const std::vector<std::pair<const char*, void (*)(cg::TrainState&)>> edits = {
      {"step", [](cg::TrainState& t) { ++t.step; }},
      {"tokens_seen", [](cg::TrainState& t) { ++t.tokens_seen; }},
      {"loss_tokens_seen", [](cg::TrainState& t) { ++t.loss_tokens_seen; }},
      {"bad_steps", [](cg::TrainState& t) { ++t.bad_steps; }},
      {"bad_in_row", [](cg::TrainState& t) { ++t.bad_in_row; }},
      {"last_val_loss", [](cg::TrainState& t) { t.last_val_loss = std::nan(""); }},
      {"loader.cursor", [](cg::TrainState& t) { ++t.loader.cursor; }}};
  for (const auto& [field, edit] : edits) {
    cg::TrainState other = s;
    edit(other);
    EXPECT_FALSE(other == s) << field;
  }
  EXPECT_TRUE(cg::TrainState(s) == s);
}

TEST(TrainState, NonFiniteValidationLossStillResumes) {
  // A diverged validation (inf or NaN loss) must not make the checkpoint unreadable.
  for (double v : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    cg::TrainState s = sample_state();
    s.last_val_loss = v;
    const std::string text = s.to_json();
    EXPECT_NE(text.find("\"last_val_loss\":null"), std::string::npos) << text;
    const cg::TrainState back = cg::TrainState::from_json(text);
    EXPECT_TRUE(std::isnan(back.last_val_loss));
    EXPECT_EQ(back.step, 120);
    EXPECT_EQ(back.loader, s.loader);
  }
}

TEST(TrainState, DamagedStateIsRefusedNamingTheField) {
  EXPECT_NE(refusal("{\"step\": 1").find("not valid JSON"), std::string::npos);
  EXPECT_NE(refusal("[1, 2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(refusal(edited("bad_steps", nlohmann::json::value_t::discarded)).find("has no 'bad_steps'"),
            std::string::npos);
  // Whole numbers only, in range: a float is not truncated, 1e30 is not converted (undefined behaviour), a negative
  // count and a string are refused.
  for (const nlohmann::json& bad : {nlohmann::json(2.5), nlohmann::json(1e30), nlohmann::json(-3),
                                    nlohmann::json("7"), nlohmann::json(18'000'000'000'000'000'000ull)}) {
    const std::string why = refusal(edited("step", bad));
    EXPECT_NE(why.find("\"step\" is " + bad.dump() + ", not a whole number"), std::string::npos) << why;
    EXPECT_NE(why.find("the checkpoint is damaged"), std::string::npos) << why;
  }
  const std::string why = refusal(edited("last_val_loss", "low"));
  EXPECT_NE(why.find("\"last_val_loss\" is \"low\", not a number"), std::string::npos) << why;
  EXPECT_NE(refusal(edited("loader", 5)).find("loader state"), std::string::npos);
}
