// Sweep files: grid expansion order, point names, explicit point lists, and the errors for malformed sweeps.
#include <gtest/gtest.h>

#include "common/error.h"
#include "launch/sweep_spec.h"

using namespace cg::sweep;

namespace {

std::vector<std::string> names(const SweepSpec& s) {
  std::vector<std::string> out;
  for (const auto& p : s.points) out.push_back(point_name(s.keys, p));
  return out;
}

std::string error_of(const std::string& yaml) {
  try {
    parse_sweep_spec(yaml, "bad.yaml");
  } catch (const cg::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SweepSpec, GridIsCartesianLastKeyFastest) {
  const auto s = parse_sweep_spec(R"(
base: configs/tiny.yaml
out_dir: runs/sw
np: 2
overrides:
  train.steps: 10
grid:
  lora.r: [4, 8, 16]
  lora.alpha: 32
  data.translate: [true, false]
)", "s.yaml");
  EXPECT_EQ(s.base, "configs/tiny.yaml");
  EXPECT_EQ(s.out_dir, "runs/sw");
  EXPECT_EQ(s.np, 2);
  ASSERT_EQ(s.keys, (std::vector<std::string>{"lora.r", "lora.alpha", "data.translate"}));
  ASSERT_EQ(s.points.size(), 6u);  // 3 x 1 x 2
  EXPECT_EQ(names(s), (std::vector<std::string>{"r4-alpha32-translate1", "r4-alpha32-translate0",
                                                "r8-alpha32-translate1", "r8-alpha32-translate0",
                                                "r16-alpha32-translate1", "r16-alpha32-translate0"}));
  EXPECT_EQ(point_overrides(s, s.points[3]),
            (std::vector<std::string>{"train.steps=10", "lora.r=8", "lora.alpha=32", "data.translate=false"}));
}

TEST(SweepSpec, NamesOfNumbersListsAndCollidingLabels) {
  EXPECT_EQ(point_name({"lora.alpha", "data.infill_fraction"}, {{"lora.alpha", "32.0"}, {"data.infill_fraction", "0.5"}}),
            "alpha32-infill0.5");
  EXPECT_EQ(point_name({"lora.targets"}, {{"lora.targets", "[q_proj, k_proj, v_proj]"}}), "targetsq+k+v");
  EXPECT_EQ(point_name({"lora.targets"}, {{"lora.targets", "all-linear"}}), "targetsall-linear");
  // data.seed and train.seed share the label "seed": both get their full key.
  EXPECT_EQ(point_name({"data.seed", "train.seed"}, {{"data.seed", "1"}, {"train.seed", "2"}}),
            "data_seed1-train_seed2");
  EXPECT_EQ(point_name({"data.tokenizer"}, {{"data.tokenizer", "tok/a b.model"}}), "tokenizertok_a_b.model");
  EXPECT_EQ(point_name({}, {}), "base");
}

TEST(SweepSpec, ExplicitPointsAndListValues) {
  const auto s = parse_sweep_spec(R"(
base: b.yaml
sample: true
points:
  - {lora.r: 8, lora.targets: [q_proj, v_proj]}
  - {lora.r: 64, data.permute: true}
)", "s.yaml");
  EXPECT_TRUE(s.sample);
  ASSERT_EQ(s.keys, (std::vector<std::string>{"lora.r", "lora.targets", "data.permute"}));
  EXPECT_EQ(names(s), (std::vector<std::string>{"r8-targetsq+v", "r64-permute1"}));
  EXPECT_EQ(point_overrides(s, s.points[0]), (std::vector<std::string>{"lora.r=8", "lora.targets=[q_proj, v_proj]"}));
}

TEST(SweepSpec, GridOfListValues) {
  const auto s = parse_sweep_spec("base: b.yaml\ngrid:\n  lora.targets: [[q_proj, v_proj], all-linear]\n", "s.yaml");
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(s.points[0][0].value, "[q_proj, v_proj]");
  EXPECT_EQ(s.points[1][0].value, "all-linear");
}

TEST(SweepSpec, ErrorsNameTheProblem) {
  EXPECT_NE(error_of("grid: {lora.r: [1]}").find("'base:'"), std::string::npos);
  EXPECT_NE(error_of("base: b.yaml").find("exactly one of 'grid:'"), std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\ngrid: {lora.r: [1]}\npoints: [{lora.r: 2}]").find("exactly one"),
            std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\ngird: {lora.r: [1]}").find("unknown key 'gird'"), std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\ngrid: {rank: [1, 2]}").find("'rank' is not a dotted config key"),
            std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\npoints: [{lora.r: 8}, {lora.r: 8.0}]").find("points 0 and 1 are the same"),
            std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\nslurm: {gpus: 8}\ngrid: {lora.r: [1]}").find("slurm.gpus"), std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\nnp: 0\ngrid: {lora.r: [1]}").find("np must be >= 1"), std::string::npos);
}
