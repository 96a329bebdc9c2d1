// Sweep plans resolved with the real config code: a typo in a sweep key fails naming the key and the point,
// points with equal data.* settings (also when one spells out a default) share a shards folder, and each point's
// resolved config carries its own run folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "common/error.h"
#include "launch/sweep_plan.h"
#include "trainer/config.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

namespace fs = std::filesystem;
using namespace cg::sweep;

namespace {

const Resolver kResolve = [](const std::string& base, const std::vector<std::string>& overrides,
                             const std::vector<std::string>& origins) {
  return cg::to_yaml(cg::load_config(base, overrides, origins));
};

struct TempSweep {
  fs::path dir;
  TempSweep() {
    dir = fs::path(::testing::TempDir()) / ("cg_test_sweep_plan_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "base.yaml") << "train:\n  steps: 3\nlora:\n  r: 8\n";
  }
  ~TempSweep() { fs::remove_all(dir); }
  SweepSpec spec(const std::string& body) {
    return parse_sweep_spec("base: base.yaml\nout_dir: " + (dir / "out").string() + "\n" + body,
                            (dir / "sweep.yaml").string());
  }
};

std::string plan_error(TempSweep& t, const std::string& body) {
  try {
    plan_sweep(t.spec(body), kResolve);
  } catch (const cg::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SweepPlan, EqualDataSettingsShareShards) {
  TempSweep t;
  const SweepPlan plan = plan_sweep(t.spec("grid:\n  lora.r: [4, 8]\n  data.translate: [true, false]\n"), kResolve);
  EXPECT_EQ(plan.base_path, (t.dir / "base.yaml").string());  // found next to the sweep file
  ASSERT_EQ(plan.points.size(), 4u);
  ASSERT_EQ(plan.shards_dirs.size(), 2u);
  const auto& p = plan.points;
  EXPECT_EQ(p[0].name, "r4-translate1");
  EXPECT_EQ(p[0].shards_dir, p[2].shards_dir);  // r4/r8 with translate: same data
  EXPECT_EQ(p[1].shards_dir, p[3].shards_dir);
  EXPECT_NE(p[0].shards_dir, p[1].shards_dir);
  EXPECT_EQ(p[0].shards_dir, (t.dir / "out" / "shards" / ("data-" + p[0].data_key)).string());
  EXPECT_EQ(p[0].data_key.size(), 12u);

  // The resolved config is the point: its settings, its run folder, its shards, the sweep-wide overrides.
  const cg::Config c = cg::load_config_string(p[3].config_yaml);
  EXPECT_EQ(c.lora.r, 8);
  EXPECT_FALSE(c.data.translate);
  EXPECT_EQ(c.train.steps, 3);  // from the base config
  EXPECT_EQ(c.train.run_dir, (t.dir / "out" / "r8-translate0").string());
  EXPECT_EQ(c.data.shards_dir, p[3].shards_dir);
  EXPECT_EQ(c.sample.out_dir, (t.dir / "out" / "r8-translate0" / "samples").string());
  EXPECT_EQ(c.eval.input, c.sample.out_dir);
}

// The shards' key is what they hold, not where the base config would have put them (cgsweep sets data.shards_dir to
// out_dir/shards/data-<key> itself): a base config whose shards_dir changed keeps the shards already prepared.
TEST(SweepPlan, DataKeyLeavesOutTheShardsFolder) {
  const std::string a = "data:\n  shards_dir: /a\n  translate: true\n";
  EXPECT_EQ(data_settings_key(a), data_settings_key("data:\n  shards_dir: /b\n  translate: true\n"));
  EXPECT_NE(data_settings_key(a), data_settings_key("data:\n  shards_dir: /a\n  translate: false\n"));
}

// A sweep value reaches each point's config as the sweep file wrote it: text the command line would read otherwise
// (YAML's null, a quote's or a list's look, spaces at an end, a list item holding a comma) is passed on quoted.
// Before, '~' and '[x]' as text were refused, '"q"' lost its quotes and ['a,b', c] became three items.
TEST(SweepPlan, ValuesReachEachPointsConfigAsTheSweepFileWroteThem) {
  TempSweep t;
  const SweepPlan plan = plan_sweep(t.spec("overrides:\n  data.columns: ['a,b', 'c=[d]', e]\n"
                                           "grid:\n  sample.formula: ['~', 'null', 'Null', 'NULL', '[x]', ' padded ', "
                                           "'\"q\"', 'it''s', 'back\\slash', plain]\n"),
                                    kResolve);
  const std::vector<std::string> want = {"~", "null", "Null", "NULL", "[x]", " padded ",
                                         "\"q\"", "it's", "back\\slash", "plain"};
  ASSERT_EQ(plan.points.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const cg::Config c = cg::load_config_string(plan.points[i].config_yaml);
    EXPECT_EQ(c.sample.formula, want[i]);
    EXPECT_EQ(c.data.columns, (std::vector<std::string>{"a,b", "c=[d]", "e"}));
  }
  const auto& last = plan.points.back().overrides;  // plain text stays plain
  EXPECT_NE(std::find(last.begin(), last.end(), "sample.formula=plain"), last.end());
  const auto& first = plan.points.front().overrides;
  EXPECT_NE(std::find(first.begin(), first.end(), "sample.formula=\"~\""), first.end());
}

TEST(SweepPlan, SpelledOutDefaultSharesShardsAndOtherDataDoesNot) {
  TempSweep t;
  // translate defaults to true: point 1 spells it out and still shares point 0's shards; copies: 2 does not.
  const SweepPlan plan = plan_sweep(
      t.spec("points:\n  - {lora.r: 4}\n  - {lora.r: 16, data.translate: true}\n  - {data.copies: 2}\n"
             "  - {lora.alpha: 8, lora.targets: [q_proj, k_proj, v_proj, o_proj]}\n"),
      kResolve);
  ASSERT_EQ(plan.points.size(), 4u);
  EXPECT_EQ(plan.points[0].shards_dir, plan.points[1].shards_dir);
  EXPECT_NE(plan.points[0].shards_dir, plan.points[2].shards_dir);
  EXPECT_EQ(plan.points[0].shards_dir, plan.points[3].shards_dir);
  EXPECT_EQ(plan.shards_dirs.size(), 2u);
  const cg::Config c = cg::load_config_string(plan.points[3].config_yaml);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj"}));
  EXPECT_EQ(c.lora.alpha, 8);
}

TEST(SweepPlan, BadSweepKeyFailsEarlyNamingKeyAndPoint) {
  TempSweep t;
  const std::string typo = plan_error(t, "grid:\n  lora.rank: [4, 8]\n");
  EXPECT_NE(typo.find("sweep point 0 (rank4)"), std::string::npos) << typo;
  EXPECT_NE(typo.find("lora.rank"), std::string::npos) << typo;
  EXPECT_NE(typo.find("lora.r'"), std::string::npos) << typo;  // the suggestion
  // Where the bad key is: the sweep file and its section, not "(command line)".
  EXPECT_NE(typo.find("(sweep file " + (t.dir / "sweep.yaml").string() + ": grid)"), std::string::npos) << typo;
  EXPECT_EQ(typo.find("command line"), std::string::npos) << typo;
  const std::string value = plan_error(t, "points:\n  - {lora.r: 4}\n  - {data.infill_fraction: 2}\n");
  EXPECT_NE(value.find("sweep point 1 (infill2)"), std::string::npos) << value;
  EXPECT_NE(value.find("data.infill_fraction"), std::string::npos) << value;
  const std::string typed = plan_error(t, "points:\n  - {lora.r: 4}\n  - {lora.r: four}\n");
  EXPECT_NE(typed.find("got 'four' (sweep file " + (t.dir / "sweep.yaml").string() + ": points[1])"),
            std::string::npos) << typed;
  const std::string over = plan_error(t, "overrides: {train.stepz: 3}\ngrid:\n  lora.r: [4]\n");
  EXPECT_NE(over.find("'train.stepz' (sweep file " + (t.dir / "sweep.yaml").string() + ": overrides)"),
            std::string::npos) << over;
  SweepSpec cli = t.spec("grid:\n  lora.r: [4]\n");
  add_command_line_overrides(cli, {"train.stepz=3"});
  const std::string from_cli = [&] {
    try {
      plan_sweep(cli, kResolve);
    } catch (const cg::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(from_cli.find("'train.stepz' (command line)"), std::string::npos) << from_cli;
  const std::string base = [&] {
    try {
      plan_sweep(parse_sweep_spec("base: nowhere.yaml\ngrid: {lora.r: [1]}\n", (t.dir / "s.yaml").string()),
                 kResolve);
    } catch (const cg::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(base.find("base config 'nowhere.yaml' not found"), std::string::npos) << base;
}

// cg::load_config refuses a key given twice by one origin (the same command line): each point's overrides are layers
// of several origins (the sweep file's overrides:, cgsweep's command line, the point's own setting, cgsweep's run
// folders), which must not trip it; one key twice on cgsweep's command line does.
TEST(SweepPlan, LayeredOverridesOfOneKeyResolveAndATwiceGivenCommandLineKeyIsRefused) {
  TempSweep t;
  SweepSpec spec = t.spec("overrides: {train.steps: 5, lora.alpha: 4}\npoints:\n  - {lora.r: 4}\n"
                          "  - {lora.r: 8, lora.alpha: 32}\n");
  add_command_line_overrides(spec, {"train.steps=9"});
  const SweepPlan plan = plan_sweep(spec, kResolve);
  ASSERT_EQ(plan.points.size(), 2u);
  const cg::Config p0 = cg::load_config_string(plan.points[0].config_yaml);
  const cg::Config p1 = cg::load_config_string(plan.points[1].config_yaml);
  EXPECT_EQ(p0.train.steps, 9);  // the command line over the sweep file's overrides:
  EXPECT_EQ(p1.train.steps, 9);
  EXPECT_EQ(p0.lora.alpha, 4);   // overrides: where the point leaves the key
  EXPECT_EQ(p1.lora.alpha, 32);  // the point's own setting over overrides:
  SweepSpec twice = t.spec("grid:\n  lora.r: [4]\n");
  add_command_line_overrides(twice, {"train.lr=0.1", "train.lr=0.2"});
  const std::string e = [&] {
    try {
      plan_sweep(twice, kResolve);
    } catch (const cg::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(e.find("train.lr is given twice on the command line (0.1, then 0.2): give it once"), std::string::npos)
      << e;
}

TEST(SweepPlan, LayoutMustFitTheRanksPerPointBeforeAnythingRuns) {
  TempSweep t;
  const std::string tp = plan_error(t, "np: 1\noverrides: {parallel.tp: 2}\ngrid:\n  lora.r: [4]\n");
  EXPECT_NE(tp.find("sweep point 0 (r4): "), std::string::npos) << tp;
  EXPECT_NE(tp.find("parallel.tp 2 does not divide np 1"), std::string::npos) << tp;
  const std::string dp = plan_error(t, "np: 4\ngrid:\n  parallel.tp: [1, 2]\n  parallel.dp: [2]\n");
  EXPECT_NE(dp.find("sweep point 0 (tp1-dp2): "), std::string::npos) << dp;
  EXPECT_NE(dp.find("parallel.tp 1 x parallel.dp 2 = 2 but np is 4"), std::string::npos) << dp;
  EXPECT_EQ(plan_error(t, "np: 4\ngrid:\n  parallel.tp: [1, 2, 4]\n"), "");
  EXPECT_EQ(plan_error(t, "np: 4\noverrides: {parallel.dp: 2}\ngrid:\n  parallel.tp: [2]\n"), "");
}

// eval.out in the base config would send every point's report to one folder (the summary would read one point's
// scores for all): refused. The sweep file cannot set it (SweepSpec.KeysCgsweepSetsAreRefusedEverywhere).
TEST(SweepPlan, BaseConfigsEvalOutIsRefused) {
  TempSweep t;
  std::ofstream(t.dir / "base.yaml") << "train:\n  steps: 3\neval:\n  out: shared_eval\n";
  const std::string e = plan_error(t, "grid:\n  lora.r: [4, 8]\n");
  EXPECT_NE(e.find("the base config sets eval.out=shared_eval: every point would write its cgeval report there"),
            std::string::npos) << e;
}

TEST(SweepPlan, OutDirIsAbsoluteAndNormalizedSoEveryFolderIsSpelledOneWay) {
  TempSweep t;
  const std::string messy = (fs::relative(t.dir, fs::current_path()) / "." / "x" / ".." / "out" / "").string();
  const SweepPlan a = plan_sweep(t.spec("grid:\n  lora.r: [4]\n"), kResolve);
  SweepSpec spec = t.spec("grid:\n  lora.r: [4]\n");
  spec.out_dir = messy;
  const SweepPlan b = plan_sweep(spec, kResolve);
  EXPECT_EQ(b.spec.out_dir, (t.dir / "out").string());
  EXPECT_EQ(b.points[0].run_dir, a.points[0].run_dir);
  EXPECT_EQ(b.points[0].config_yaml, a.points[0].config_yaml);
  EXPECT_TRUE(fs::path(b.base_path).is_absolute());
  EXPECT_EQ(normalized_path("/a/./b/../c/"), "/a/c");
  EXPECT_EQ(normalized_path("/"), "/");
}

// Paths resolve as the kernel resolves them: "link/../sweep.yaml" is the sweep.yaml beside link's target, the file a
// read opens, so the base config next to it and the path recorded for it (point.yaml, sweep.sbatch) are that one's.
TEST(SweepPlan, PathsThroughSymbolicLinksNameTheFilesRead) {
  TempSweep t;
  fs::create_directories(t.dir / "real" / "deep");
  fs::create_directories(t.dir / "work");
  fs::create_directory_symlink(t.dir / "real" / "deep", t.dir / "work" / "link");
  std::ofstream(t.dir / "real" / "base.yaml") << "train:\n  steps: 7\n";
  std::ofstream(t.dir / "work" / "base.yaml") << "train:\n  steps: 99\n";
  std::ofstream(t.dir / "real" / "sweep.yaml") << "base: base.yaml\nout_dir: " << (t.dir / "out").string()
                                               << "\ngrid:\n  lora.r: [4]\n";
  const std::string through_link = (t.dir / "work" / "link" / ".." / "sweep.yaml").string();
  const SweepPlan plan = plan_sweep(load_sweep_spec(through_link), kResolve);
  EXPECT_EQ(plan.spec.path, (t.dir / "real" / "sweep.yaml").string());
  EXPECT_EQ(plan.base_path, (t.dir / "real" / "base.yaml").string());
  EXPECT_EQ(cg::load_config_string(plan.points[0].config_yaml).train.steps, 7);
  // out_dir through a link is the folder it names.
  fs::create_directory_symlink(t.dir / "real", t.dir / "rlink");
  SweepSpec spec = load_sweep_spec(through_link);
  spec.out_dir = (t.dir / "rlink" / "out").string();
  EXPECT_EQ(plan_sweep(spec, kResolve).spec.out_dir, (t.dir / "real" / "out").string());
  EXPECT_EQ(normalized_path((t.dir / "work" / "link" / ".." / "x" / "").string()), (t.dir / "real" / "x").string());
}
