// Sweep files: grid expansion order, point names, explicit point lists, and the errors for malformed sweeps.
#include <gtest/gtest.h>

#include "common/error.h"
#include "launch/sweep_spec.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

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
  // An override of null (null, ~ or nothing) is the empty value, as in a config file.
  const auto e = parse_sweep_spec("base: b.yaml\noverrides:\n  data.val_csv: null\n  data.test_csv: ~\n"
                                  "  sample.formula:\ngrid: {lora.r: [2]}\n", "s.yaml");
  EXPECT_EQ(point_overrides(e, e.points[0]),
            (std::vector<std::string>{"data.val_csv=", "data.test_csv=", "sample.formula=", "lora.r=2"}));
}

TEST(SweepSpec, NamesOfNumbersListsAndCollidingLabels) {
  EXPECT_EQ(point_name({"lora.alpha", "data.infill_fraction"}, {{"lora.alpha", "32.0"}, {"data.infill_fraction", "0.5"}}),
            "alpha32-infill0.5");
  EXPECT_EQ(point_name({"lora.targets"}, {{"lora.targets", "[q_proj, k_proj, v_proj]"}}), "targetsq+k+v");
  EXPECT_EQ(point_name({"lora.targets"}, {{"lora.targets", "all-linear"}}), "targetsall-linear");
  // data.seed and train.seed share the label "seed": both get their full key.
  EXPECT_EQ(point_name({"data.seed", "train.seed"}, {{"data.seed", "1"}, {"train.seed", "2"}}),
            "data_seed1-train_seed2");
  // Characters replaced: the readable part, then a hash of the exact value (see DistinctValuesGetDistinctNames).
  EXPECT_EQ(point_name({"data.tokenizer"}, {{"data.tokenizer", "tok/a b.model"}}).substr(0, 23),
            "tokenizertok_a_b.model_");
  EXPECT_EQ(point_name({}, {}), "base");
}

TEST(SweepSpec, NumbersNamedByTheirValueNotItsFirstSixDigits) {
  // 6 significant digits where they are exact (the names sweeps always had) ...
  EXPECT_EQ(point_name({"train.lr"}, {{"train.lr", "1e-4"}}), "lr0.0001");
  EXPECT_EQ(point_name({"train.lr"}, {{"train.lr", "0.000300"}}), "lr0.0003");
  EXPECT_EQ(point_name({"train.steps"}, {{"train.steps", "1000000"}}), "steps1e+06");
  // ... and every digit it takes where they are not: two lrs that differ in the 8th digit are two folders.
  EXPECT_EQ(point_name({"train.lr"}, {{"train.lr", "1.2345678e-4"}}), "lr0.00012345678");
  EXPECT_NE(point_name({"train.lr"}, {{"train.lr", "1.2345678e-4"}}),
            point_name({"train.lr"}, {{"train.lr", "1.2345679e-4"}}));
  EXPECT_EQ(error_of("base: b.yaml\ngrid: {train.lr: [1.2345678e-4, 1.2345679e-4]}\n"), "");
  EXPECT_NE(error_of("base: b.yaml\ngrid: {train.lr: [1e-4, 0.0001]}\n").find("same setting"), std::string::npos);
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

// Point names are folder names and keys become key=value words: a key is [A-Za-z0-9_] names joined by dots (the
// fuzzer found a key's bytes reaching a folder name, and a key with '=' splitting its override word elsewhere), and a
// value keeps only [A-Za-z0-9.+_-].
TEST(SweepSpec, KeysAreDottedNamesAndPointNamesFolderSafe) {
  const auto s = parse_sweep_spec("base: b.yaml\npoints:\n  - {lora.r: \"../x\"}\n  - {lora.r: \"a b/c\"}\n", "n.yaml");
  const auto n = names(s);
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].substr(0, 6), "r.._x_");
  EXPECT_EQ(n[1].substr(0, 7), "ra_b_c_");
  for (const auto& name : n) EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._+-"),
                                       std::string::npos) << name;
  for (const std::string key : {"lora.a/b", "lora.", ".r", "lora..r", "d=ta.infill_fraction", "lora r.x", "lora"}) {
    const std::string why = error_of("base: b.yaml\npoints:\n  - {\"" + key + "\": 1}\n");
    EXPECT_NE(why.find("'" + key + "' is not a dotted config key"), std::string::npos) << why;
    EXPECT_NE(error_of("base: b.yaml\ngrid: {\"" + key + "\": [1, 2]}\n").find("is not a dotted config key"),
              std::string::npos) << key;
  }
  // A YAML complex key is not a name (yaml-cpp's conversion error would otherwise escape).
  EXPECT_NE(error_of("base: b.yaml\ngrid:\n  ? [lora.r]\n  : [1, 2]\n").find("grid: a key must be a plain name, not"),
            std::string::npos);
  EXPECT_NE(error_of("? {base: b.yaml}\n: 1\n").find("a key must be a plain name"), std::string::npos);
  SweepSpec spec = parse_sweep_spec("base: b.yaml\ngrid: {lora.r: [1, 2]}\n", "g.yaml");
  EXPECT_THROW(add_command_line_overrides(spec, {"a=b.c=1"}), cg::Error);
  add_command_line_overrides(spec, {"train.lr=1e-4"});
  EXPECT_EQ(spec.command_line.back().value, "1e-4");
}

// A grid's size is checked before it is expanded: 30 keys of 2 values would be 10^9 points in memory. At most 10,000.
TEST(SweepSpec, GridLargerThanTenThousandPointsIsRefusedBeforeExpanding) {
  auto grid = [](int keys) {
    std::string y = "base: b.yaml\ngrid:\n";
    for (int k = 0; k < keys; ++k) y += "  s.k" + std::to_string(k) + ": [1, 2]\n";
    return y;
  };
  EXPECT_EQ(parse_sweep_spec(grid(13), "ok.yaml").points.size(), 8192u);  // 2^13
  std::string hundred = "[0";  // 100 x 100: exactly the most there may be
  for (int i = 1; i < 100; ++i) hundred += ", " + std::to_string(i);
  hundred += "]";
  EXPECT_EQ(parse_sweep_spec("base: b.yaml\ngrid: {lora.r: " + hundred + ", lora.alpha: " + hundred + "}\n",
                             "ok.yaml").points.size(), 10000u);
  const std::string why = error_of(grid(14));                               // 2^14 = 16384
  EXPECT_NE(why.find("grid has more than 10000 points (s.k0 x s.k1 x"), std::string::npos) << why;
  EXPECT_NE(error_of(grid(64)).find("more than 10000 points"), std::string::npos);  // 2^64 would wrap a size_t
  std::string points = "base: b.yaml\npoints:\n";
  for (int i = 0; i < 10001; ++i) points += "  - {lora.r: " + std::to_string(i) + "}\n";
  EXPECT_NE(error_of(points).find("lists 10001 points, more than 10000"), std::string::npos);
}

// The folders (and the adapter) cgsweep sets for every point: a value anywhere would be silently replaced.
TEST(SweepSpec, KeysCgsweepSetsAreRefusedEverywhere) {
  for (const std::string key :
       {"train.run_dir", "data.shards_dir", "sample.out_dir", "sample.adapter", "eval.input", "eval.out"}) {
    const std::string grid = error_of("base: b.yaml\ngrid: {" + key + ": [/tmp/a, /tmp/b]}");
    EXPECT_NE(grid.find("grid: " + key + " is set by cgsweep for every point"), std::string::npos) << grid;
    EXPECT_NE(grid.find("out_dir (or --out-dir)"), std::string::npos) << grid;
    // Each says where cgsweep puts that folder: the shards are shared, not under the point.
    EXPECT_NE(grid.find(key == "data.shards_dir" ? "(out_dir/shards/data-<hash>, shared by the points"
                        : key == "train.run_dir" ? "(out_dir/<point>)"
                                                 : "(out_dir/<point>/"), std::string::npos) << grid;
    const std::string points = error_of("base: b.yaml\npoints: [{lora.r: 2}, {" + key + ": /tmp/a}]");
    EXPECT_NE(points.find("points[1]: " + key + " is set by cgsweep"), std::string::npos) << points;
    const std::string over = error_of("base: b.yaml\noverrides: {" + key + ": /tmp/a}\ngrid: {lora.r: [2]}");
    EXPECT_NE(over.find("overrides: " + key + " is set by cgsweep"), std::string::npos) << over;
    auto s = parse_sweep_spec("base: b.yaml\ngrid: {lora.r: [2, 4]}\n", "s.yaml");
    try {
      add_command_line_overrides(s, {key + "=/tmp/x"});
      ADD_FAILURE() << key << " accepted on the command line";
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find(key + "=/tmp/x on the command line: " + key + " is set by cgsweep"),
                std::string::npos) << e.what();
    }
  }
}

// A grid key also in overrides: the grid wins at every point, so the overrides: value is refused as never used;
// points: may leave a key to overrides: in some points.
TEST(SweepSpec, OverridesKeyThatTheGridSetsIsRefused) {
  const std::string e = error_of("base: b.yaml\noverrides: {lora.r: 16, train.steps: 3}\ngrid: {lora.r: [2, 4]}");
  EXPECT_NE(e.find("lora.r is in overrides: and in grid:, which sets it for every point"), std::string::npos) << e;
  const auto s = parse_sweep_spec("base: b.yaml\noverrides: {lora.alpha: 16}\npoints: [{lora.r: 2}, "
                                  "{lora.r: 4, lora.alpha: 8}]\n", "s.yaml");
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(point_overrides(s, s.points[0]), (std::vector<std::string>{"lora.alpha=16", "lora.r=2"}));
}

TEST(SweepSpec, CommandLineKeyThatIsSweptIsRefused) {
  auto s = parse_sweep_spec("base: b.yaml\noverrides: {train.steps: 5}\ngrid:\n  lora.r: [2, 4]\n", "s1.yaml");
  try {
    add_command_line_overrides(s, {"train.lr=0.1", "lora.r=8"});
    ADD_FAILURE() << "lora.r=8 accepted although lora.r is swept";
  } catch (const cg::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("lora.r=8 on the command line"), std::string::npos) << m;
    EXPECT_NE(m.find("sweeps lora.r (grid:)"), std::string::npos) << m;
  }
  auto ok = parse_sweep_spec("base: b.yaml\noverrides: {train.steps: 5}\ngrid:\n  lora.r: [2, 4]\n", "s1.yaml");
  add_command_line_overrides(ok, {"train.steps=9", "train.lr=0.1"});
  // After the file's overrides (so it wins over them), before the point's own settings.
  EXPECT_EQ(point_overrides(ok, ok.points[1]),
            (std::vector<std::string>{"train.steps=5", "train.steps=9", "train.lr=0.1", "lora.r=4"}));
  EXPECT_EQ(point_override_origins(ok, 1),
            (std::vector<std::string>{"sweep file s1.yaml: overrides", "command line", "command line",
                                      "sweep file s1.yaml: grid"}));
  auto pts = parse_sweep_spec("base: b.yaml\npoints: [{lora.r: 8}, {lora.alpha: 4}]", "p.yaml");
  EXPECT_THROW(add_command_line_overrides(pts, {"lora.alpha=2"}), cg::Error);  // swept by one point
  EXPECT_THROW(add_command_line_overrides(pts, {"lora_r=2"}), cg::Error);      // not section.key=value
  EXPECT_EQ(point_override_origins(pts, 1), std::vector<std::string>{"sweep file p.yaml: points[1]"});
}

TEST(SweepSpec, SlurmKeysAreTypedAndRangeChecked) {
  const std::string grid = "\ngrid: {lora.r: [1]}";
  struct Case { std::string slurm, want; };
  for (const Case& c : std::vector<Case>{
           {"{nodes: two}", "bad.yaml: slurm.nodes: expected an integer, got 'two'"},
           {"{nodes: 0}", "slurm.nodes must be >= 1, got 0"},
           {"{cpus_per_task: 0}", "slurm.cpus_per_task must be >= 1, got 0"},
           {"{signal_seconds: -5}", "slurm.signal_seconds must be >= 1, got -5"},
           {"{gpus_per_node: -1}", "slurm.gpus_per_node must be >= 0, got -1"},
           {"{gpus_per_node: [1]}", "slurm.gpus_per_node: expected an integer, got a list or map"},
           {"{time: ''}", "slurm.time must not be empty"},
           // Numbers as a config key reads them: yaml-cpp alone took 010 as 8 nodes and 0x10 as 16.
           {"{nodes: 010}", "slurm.nodes: expected an integer, got '010': a leading zero reads as octal"},
           {"{nodes: 0x10}", "slurm.nodes: expected an integer, got '0x10': hexadecimal is not a decimal number; "
                             "write 16"},
           {"{signal_seconds: 1.5}", "slurm.signal_seconds: expected an integer, got '1.5': not a whole number"}}) {
    const std::string e = error_of("base: b.yaml\nslurm: " + c.slurm + grid);
    EXPECT_NE(e.find(c.want), std::string::npos) << c.slurm << " -> " << e;
  }
  const auto s = parse_sweep_spec("base: b.yaml\nslurm: {nodes: 2, cpus_per_task: 6, signal_seconds: 90, "
                                  "partition: gpu, time: '1:00:00'}" + grid, "s.yaml");
  EXPECT_EQ(s.slurm_nodes, 2);
  EXPECT_EQ(s.slurm_cpus_per_task, 6);
  EXPECT_EQ(s.slurm_signal_seconds, 90);
  EXPECT_EQ(s.slurm_partition, "gpu");
  EXPECT_EQ(s.slurm_time, "1:00:00");
  const auto q = parse_sweep_spec("base: b.yaml\nslurm: {nodes: '4', signal_seconds: 1.2e2}" + grid, "q.yaml");
  EXPECT_EQ(q.slurm_nodes, 4);  // quoted, as a config key takes it
  EXPECT_EQ(q.slurm_signal_seconds, 120);
}

// Two values that read the same once made folder-safe are two points, not "the same setting", and a long value (a
// path) gives a name that fits a folder; plain values keep the names sweeps have always had.
TEST(SweepSpec, DistinctValuesGetDistinctNamesThatFitAFolder) {
  const auto s = parse_sweep_spec("base: b.yaml\ngrid:\n  data.val_csv: [\"g/a b.csv.gz\", \"g/a_b.csv.gz\", a_b]\n",
                                  "n.yaml");
  const auto n = names(s);
  ASSERT_EQ(n.size(), 3u);
  EXPECT_NE(n[0], n[1]);
  EXPECT_EQ(n[0].rfind("val_csvg_a_b.csv.gz_", 0), 0u) << n[0];
  EXPECT_EQ(n[2], "val_csva_b");  // nothing replaced: no hash
  const std::string long_path = "/data/" + std::string(240, 'v') + ".csv.gz";
  const auto l = parse_sweep_spec("base: b.yaml\ngrid:\n  data.val_csv: [\"" + long_path + "\", \"" + long_path +
                                  "x\"]\n  lora.r: [4]\n", "l.yaml");
  const auto ln = names(l);
  ASSERT_EQ(ln.size(), 2u);
  EXPECT_NE(ln[0], ln[1]);
  for (const auto& name : ln) {
    EXPECT_LE(name.size(), 96u) << name;
    EXPECT_NE(name.find("-r4"), std::string::npos) << "the short setting stays readable: " << name;
  }
  // Many long settings: the whole name is cut and keyed by all of them.
  std::vector<std::string> keys;
  std::vector<Setting> a, b;
  for (int i = 0; i < 6; ++i) {
    keys.push_back("data.k" + std::to_string(i));
    a.push_back({keys.back(), std::string(39, 'x')});
    b.push_back({keys.back(), std::string(39, 'x')});
  }
  b.back().value = std::string(38, 'x');
  EXPECT_LE(point_name(keys, a).size(), 96u);
  EXPECT_NE(point_name(keys, a), point_name(keys, b));
  EXPECT_EQ(point_name({"lora.r", "train.lr", "lora.targets"}, {{"lora.r", "16"}, {"train.lr", "3e-4"},
                                                               {"lora.targets", "[q_proj, v_proj]"}}),
            "r16-lr0.0003-targetsq+v");
}

// Values go into point.yaml's comments, sweep.sbatch and points.tsv: a line break there would start a line (a
// command, in sweep.sbatch) of its own. Slurm settings go into #SBATCH lines, where spaces, quotes and '#' count.
TEST(SweepSpec, ControlCharactersAndUnsafeSlurmValuesAreRefused) {
  EXPECT_NE(error_of("base: b.yaml\ngrid: {data.val_csv: [\"a\\nrm -rf x\"]}\n").find("contains a newline"),
            std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\noverrides: {train.steps: \"1\\n2\"}\ngrid: {lora.r: [1]}\n").find("'1\\n2'"),
            std::string::npos) << error_of("base: b.yaml\noverrides: {train.steps: \"1\\n2\"}\ngrid: {lora.r: [1]}\n");
  EXPECT_NE(error_of("base: b.yaml\npoints: [{lora.targets: [\"q\\tv\"]}]\n").find("control character"),
            std::string::npos);
  SweepSpec spec = parse_sweep_spec("base: b.yaml\ngrid: {lora.r: [1]}\n", "s.yaml");
  try {
    add_command_line_overrides(spec, {"train.steps=1\ntouch x"});
    ADD_FAILURE() << "a newline in a command-line override was accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("contains a newline"), std::string::npos) << e.what();
  }
  const std::string grid = "grid: {lora.r: [1]}\n";
  for (const std::string t : {"\"1:00:00\\nrm -rf x\"", "\"1:00 #x\"", "\"'1:00'\"", "\"1:00 2\""})
    EXPECT_NE(error_of("base: b.yaml\nslurm: {time: " + t + "}\n" + grid).find("slurm.time"), std::string::npos) << t;
  for (const std::string p : {"\"gpu a100\"", "\"gpu\\nrm x\"", "\"gpu#2\"", "'\"gpu\"'"})
    EXPECT_NE(error_of("base: b.yaml\nslurm: {partition: " + p + "}\n" + grid).find("slurm.partition"),
              std::string::npos) << p;
  EXPECT_EQ(error_of("base: b.yaml\nslurm: {time: 1-12:00:00, partition: \"gpu,gpu-long\"}\n" + grid), "");
  EXPECT_EQ(error_of("base: b.yaml\nslurm: {time: UNLIMITED, partition: a100_80g}\n" + grid), "");
}

namespace {

// What a user gets wrong first says what was wrong and what to give: a value of the wrong type (its line and what it
// was), an override without its value, a sweep file that is missing or a folder.
TEST(SweepSpec, UserErrorsNameTheValueAndTheFix) {
  EXPECT_NE(error_of("base: b.yaml\nnp: two\ngrid: {lora.r: [4, 8]}\n")
                .find("sweep file bad.yaml: 'np' (line 2) must be a whole number, got 'two'"), std::string::npos);
  EXPECT_NE(error_of("base: b.yaml\nsample: [1]\ngrid: {lora.r: [4, 8]}\n")
                .find("sweep file bad.yaml: 'sample' (line 2) must be true or false, got a list"), std::string::npos);
  SweepSpec spec = parse_sweep_spec("base: b.yaml\ngrid: {lora.r: [4, 8]}\n", "s.yaml");
  std::string e;
  try {
    add_command_line_overrides(spec, {"train.steps"});
  } catch (const cg::Error& err) {
    e = err.what();
  }
  EXPECT_NE(e.find("argument 'train.steps' is an override without its value: write train.steps=VALUE"),
            std::string::npos) << e;
  const std::string dir = ::testing::TempDir();
  for (const auto& [path, want] : std::vector<std::pair<std::string, std::string>>{
           {dir + "/no_such_sweep.yaml", "does not exist: give the path of a sweep YAML file"},
           {dir, "is a folder: give the sweep YAML file itself"}}) {
    try {
      load_sweep_spec(path);
      ADD_FAILURE() << path << " loaded";
    } catch (const cg::Error& err) {
      EXPECT_NE(std::string(err.what()).find("sweep file " + path + " " + want), std::string::npos) << err.what();
    }
  }
}

}  // namespace
