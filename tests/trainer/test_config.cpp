// Config tree: YAML + overrides precedence, error messages that name the key, round trip, docs/config.md up to date.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/input_error.h"
#include "data/space_groups.h"
#include "trainer/config.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const cg::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsMatchHeader) {
  cg::Config c = cg::load_config("", {});
  EXPECT_EQ(c.train.lr, 1e-4);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(c.data.infill_fraction, 1.0 / 3.0);
}

TEST(Config, NestedYamlAndOverridesFileLosesToCommandLine) {
  cg::Config c = cg::load_config_string(
      "train: {lr: 3.0e-4, steps: 50, schedule: linear}\n"
      "lora:\n  r: 16\n  targets: [q_proj, k_proj, down_proj]\n  dropout: 0.1\n"
      "model:\n  hf_dir:\n",
      {"train.lr=1e-3", "lora.r=4", "model.activation_checkpointing=true"});
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);  // override wins over file
  EXPECT_EQ(c.train.steps, 50);        // file wins over default
  EXPECT_EQ(c.train.schedule, "linear");
  EXPECT_EQ(c.lora.r, 4);
  EXPECT_DOUBLE_EQ(c.lora.dropout, 0.1);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q_proj", "k_proj", "down_proj"}));
  EXPECT_EQ(c.model.hf_dir, "");
  EXPECT_TRUE(c.model.activation_checkpointing);
  EXPECT_EQ(c.train.warmup_steps, 100);  // untouched default
}

TEST(Config, ListOverridesBracketsCommasAndEmpty) {
  EXPECT_EQ(cg::load_config("", {"lora.targets=[q_proj,v_proj,o_proj]"}).lora.targets,
            (std::vector<std::string>{"q_proj", "v_proj", "o_proj"}));
  EXPECT_EQ(cg::load_config("", {"lora.targets=up_proj, gate_proj"}).lora.targets,
            (std::vector<std::string>{"up_proj", "gate_proj"}));
  EXPECT_EQ(cg::load_config("", {"lora.targets=all-linear"}).lora.targets,
            (std::vector<std::string>{"all-linear"}));
  EXPECT_NE(error_of([] { cg::load_config("", {"lora.targets=[]"}); }).find("'lora.targets'"), std::string::npos);
}

// An override's value reads as the same text would in the config file: YAML's quotes, decoded ('' and \" escapes),
// spaces kept inside them and trimmed outside, '=' and a quote inside the text kept. The file is the reference, each
// text is read both ways. Before, the quotes were cut off without decoding ('it''s' stayed it''s, "a\"b" kept its
// backslash) and a quoted list item holding a comma was cut in two.
TEST(Config, OverrideValuesReadAsTheSameTextInTheFile) {
  const std::vector<std::pair<std::string, std::string>> strings = {
      {"'it''s'", "it's"},           {"\"a\\\"b\\\\c\"", "a\"b\\c"}, {"\"  padded \"", "  padded "},
      {"  plain text  ", "plain text"}, {"a=b", "a=b"},              {"yes", "yes"},
      {"'~'", "~"},                  {"\"[1, 2]\"", "[1, 2]"},       {"Li2 O\"x", "Li2 O\"x"}};
  for (const auto& [text, want] : strings) {
    EXPECT_EQ(cg::load_config("", {"sample.formula=" + text}).sample.formula, want) << text;
    EXPECT_EQ(cg::load_config_string("sample:\n  formula: " + text + "\n").sample.formula, want) << text;
  }
  using List = std::vector<std::string>;
  const std::vector<std::pair<std::string, List>> lists = {
      {"['a,b', c]", {"a,b", "c"}},           {"[ 'x y' , \"z\\\"\" ]", {"x y", "z\""}},
      {"[a=b, c=d]", {"a=b", "c=d"}},         {"\"a=b,c=d\"", {"a=b", "c=d"}},  // a quoted scalar: split at ','
      {"[a=b,]", {"a=b"}},                    {"[]", {}}};
  for (const auto& [text, want] : lists) {
    EXPECT_EQ(cg::load_config("", {"data.columns=" + text}).data.columns, want) << text;
    EXPECT_EQ(cg::load_config_string("data:\n  columns: " + text + "\n").data.columns, want) << text;
  }
  // Empty after '=' is empty (the file's `key:`); the command line has no comments: '#' is text.
  EXPECT_EQ(cg::load_config("", {"data.val_csv="}).data.val_csv, "");
  EXPECT_EQ(cg::load_config("", {"data.columns="}).data.columns, List{});
  EXPECT_EQ(cg::load_config("", {"sample.formula=a # b"}).sample.formula, "a # b");
}

// What YAML would read as another type than text (null, a list, a map), a quote that does not close or closes
// early, a bad escape, a nested or unclosed list: an error that says what to write, where the command line took the
// text as it was ('~', "[x]", '"a' and '"x" y' were strings; "[a,[b]]" was the list ["[a", "[b]]"]).
TEST(Config, OverrideValuesYamlWouldNotReadAsTextAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sample.formula=~", "'~' is YAML's null; write sample.formula= (nothing after '=') for an empty value, or "
                           "quote it for the text: \"~\" (from a shell: sample.formula='\"~\"')"},
      {"sample.formula=NULL", "'NULL' is YAML's null"},
      {"data.columns=null", "write data.columns= (nothing after '=') for an empty list"},
      {"sample.formula=[x]", "is a string, and [x] reads as a YAML list; quote it for the text: \"[x]\""},
      {"sample.formula={a: 1}", "reads as a YAML map"},
      {"sample.formula=\"a", "the double quote at the start never closes"},
      {"sample.formula=\"x\" y", "the double quote at the start closes before the value's end"},
      {"sample.formula='x'y", "the single quote at the start closes before the value's end"},
      {"sample.formula=\"a\\qb\"", "\"a\\qb\" is not a valid YAML quoted string"},
      {"data.columns=['a,b' x]", "the single quote at the start closes before the value's end"},
      {"data.columns=[a,[b]]", "list item '[b]' in [a,[b]] is not a plain value"},
      {"data.columns=[a, ~]", "list item '~' in [a, ~] is not a plain value"},
      {"data.columns=[a, b", "[a, b opens '[' but does not end with ']'"},
      {"data.columns={a: b}", "expected a list, got the map {a: b}"}};
  for (const auto& [word, want] : cases) {
    const std::string e = error_of([&] { cg::load_config("", {word}); });
    EXPECT_NE(e.find(want), std::string::npos) << word << ": " << e;
    EXPECT_NE(e.find("(command line)"), std::string::npos) << e;
    // The config file does not read these as text either (an error, or null: an empty value). Not "a: yaml-cpp
    // lets a double-quoted string run on over the following lines, to the file's end.
    if (word == "sample.formula=\"a") continue;
    const size_t dot = word.find('.'), eq = word.find('=');
    const std::string yaml = word.substr(0, dot) + ":\n  " + word.substr(dot + 1, eq - dot - 1) + ": " +
                             word.substr(eq + 1) + "\n";
    cg::Config c;
    const std::string file_error = error_of([&] { c = cg::load_config_string(yaml); });
    EXPECT_TRUE(!file_error.empty() || (c.sample.formula.empty() && c.data.columns.empty())) << yaml;
  }
}

// A bool or number key reads the same text the same way from the file and from the command line. Before, "16" was
// 16 in the file and an error as an override; 010, 0x10 and 0x1p-10 were read by strtoll / strtod (010 is 8 to PyYAML);
// 1e5 was no integer. Numbers are decimal (YAML 1.2 core), quotes do not change what the key's type reads, an
// integer key takes a whole number in any decimal spelling, and the rest is refused with what to write.
TEST(Config, NumberAndBoolValuesReadTheSameInFileAndOnCommandLine) {
  struct Case { std::string key, text, want; };  // want: the plain value it must equal
  const std::vector<Case> accepted = {
      {"train.seed", "\"16\"", "16"},          {"train.seed", "'16'", "16"},
      {"train.steps", "\" 16 \"", "16"},        {"train.steps", "+5", "5"},
      {"train.steps", "  5  ", "5"},            {"train.steps", "5.", "5"},
      {"train.steps", "1e5", "100000"},         {"train.steps", "2.5E3", "2500"},
      {"train.steps", "1.0", "1"},              {"train.steps", "100000e-5", "1"},
      {"train.steps", "0.3e1", "3"},            {"train.seed", "1e19", "10000000000000000000"},
      {"train.seed", "18446744073709551615", "18446744073709551615"},  // exact: no trip through a double
      {"train.seed", "-0", "0"},                {"train.steps", "10", "10"},
      {"train.lr", "\"1e-3\"", "0.001"},        {"train.lr", ".5", "0.5"},
      {"train.lr", "5.", "5"},                  {"train.lr", "+2.5E-4", "0.00025"},
      {"train.lr", "0.010", "0.01"},            {"train.lr", "01.5", "1.5"},  // a fraction: decimal to every reader
      {"lora.enabled", "\"false\"", "false"},   {"lora.enabled", "'true'", "true"},
      {"lora.enabled", "True", "true"},         {"lora.enabled", "TRUE", "true"},
      {"lora.enabled", "yes", "true"},          {"lora.enabled", "on", "true"},
      {"lora.enabled", "1", "true"},            {"lora.enabled", "Off", "false"},
      {"lora.enabled", "NO", "false"},          {"lora.enabled", "0", "false"},
  };
  auto as_file = [](const std::string& key, const std::string& text) {
    const size_t dot = key.find('.');
    return key.substr(0, dot) + ":\n  " + key.substr(dot + 1) + ": " + text + "\n";
  };
  for (const auto& c : accepted) {
    const cg::Config want = cg::load_config("", {c.key + "=" + c.want});
    cg::Config cli, file;
    EXPECT_EQ(error_of([&] { cli = cg::load_config("", {c.key + "=" + c.text}); }), "") << c.key << "=" << c.text;
    EXPECT_EQ(error_of([&] { file = cg::load_config_string(as_file(c.key, c.text)); }), "") << as_file(c.key, c.text);
    EXPECT_TRUE(cli == want) << c.key << "=" << c.text;
    EXPECT_TRUE(file == want) << as_file(c.key, c.text);
  }
  // The wanted values themselves, by hand: the table above compares with them.
  EXPECT_EQ(cg::load_config("", {"train.steps=100000"}).train.steps, 100000);
  EXPECT_EQ(cg::load_config("", {"train.seed=18446744073709551615"}).train.seed, 18446744073709551615ull);

  const std::vector<Case> refused = {
      {"train.steps", "010", "a leading zero reads as octal to YAML 1.1 readers (PyYAML), not to YAML 1.2 ones; "
                             "write 10 (or 8 if octal was meant)"},
      {"train.steps", "-010", "write -10 (or -8 if octal was meant)"},
      {"train.steps", "019", "write 19"},
      {"train.steps", "00", "write 0 (or 0 if octal was meant)"},
      {"train.lr", "010", "write 10 (or 8 if octal was meant)"},  // a PyYAML reader gets the int 8
      {"train.steps", "\"010\"", "write 10 (or 8"},
      {"train.steps", "0x10", "hexadecimal is not a decimal number; write 16"},
      {"train.seed", "0XFF", "hexadecimal is not a decimal number; write 255"},
      {"train.seed", "0xFFFFFFFFFFFFFFFF", "write 18446744073709551615"},  // exact, not through a double
      {"train.lr", "0x1p-10", "hexadecimal is not a decimal number; write 0.0009765625"},
      {"train.lr", "-0x10", "write -16"},
      {"train.steps", "0o17", "octal is not a decimal number; write 15"},
      {"train.steps", "1_000", "write 1000 (no '_' between digits: only YAML 1.1 reads them)"},
      {"train.lr", "1_0.5", "write 10.5 (no '_'"},
      {"train.steps", "1.5", "expected an integer, got"},
      {"train.steps", "1.5", "not a whole number"},
      {"train.steps", "1e-3", "not a whole number"},
      {"train.steps", "1e30", "out of range (at most 9223372036854775807 in magnitude)"},
      {"train.steps", "9223372036854775808", "out of range (at most 9223372036854775807 in magnitude)"},
      {"train.seed", "18446744073709551616", "out of range (at most 18446744073709551615)"},
      {"train.seed", "-1", "expected a non-negative integer"},
      {"train.lr", "inf", "give a finite decimal number"},
      {"train.lr", ".inf", "give a finite decimal number"},
      {"train.lr", "-.inf", "give a finite decimal number"},
      {"train.lr", "NaN", "give a finite decimal number"},
      {"train.lr", ".nan", "give a finite decimal number"},
      {"train.lr", "1e400", "too large"},
      {"train.lr", "1e-4x", "expected a finite number, got '1e-4x'"},
      {"train.lr", "1e", "expected a finite number, got '1e'"},
      {"train.lr", ".", "expected a finite number, got '.'"},
      {"train.steps", "5 5", "expected an integer, got '5 5'"},
      {"train.steps", "\"\"", "expected an integer"},
      {"train.steps", "'\"16\"'", "expected an integer, got '"},  // the text "16", quotes and all:
      {"train.steps", "'\"16\"'", "\"16\"'"},                        // decoded once, not twice
      {"lora.enabled", "tru", "expected a bool (true | false; also yes | no, on | off, 1 | 0)"},
      {"lora.enabled", "\"maybe\"", "expected a bool"},
      {"lora.enabled", "1.0", "expected a bool"},
  };
  for (const auto& c : refused) {
    const std::string cli = error_of([&] { cg::load_config("", {c.key + "=" + c.text}); });
    const std::string file = error_of([&] { cg::load_config_string(as_file(c.key, c.text)); });
    EXPECT_NE(cli.find("config key '" + c.key + "'"), std::string::npos) << c.text << ": " << cli;
    EXPECT_NE(cli.find(c.want), std::string::npos) << c.key << "=" << c.text << ": " << cli;
    EXPECT_NE(file.find("config key '" + c.key + "'"), std::string::npos) << c.text << ": " << file;
    EXPECT_NE(file.find(c.want), std::string::npos) << as_file(c.key, c.text) << ": " << file;
  }
  // A property condition (a string key that holds a number) follows the same rules for what is a number, with the
  // same hints; before, strtod read 010 as 10, 1E3 and " 5" passed and "5 " did not.
  const std::vector<Case> properties = {
      {"sample.formation_energy", "010", "'010' is not a finite decimal number (a leading zero reads as octal to YAML "
                                         "1.1 readers (PyYAML), not to YAML 1.2 ones; write 10 (or 8 if octal was "
                                         "meant)); give one (e.g. 1.25) or leave it empty"},
      {"sample.band_gap", "1_0.5", "(write 10.5 (no '_' between digits"},
      {"sample.band_gap", "0x1p-1", "(hexadecimal is not a decimal number; write 0.5)"},
      {"sample.band_gap", "\" 5\"", "' 5' is not a finite decimal number; give one"},
      {"sample.band_gap", "\"5 \"", "'5 ' is not a finite decimal number; give one"},
  };
  for (const auto& c : properties) {
    const std::string cli = error_of([&] { cg::load_config("", {c.key + "=" + c.text}); });
    const std::string file = error_of([&] { cg::load_config_string(as_file(c.key, c.text)); });
    EXPECT_NE(cli.find("config key '" + c.key + "': "), std::string::npos) << c.text << ": " << cli;
    EXPECT_NE(cli.find(c.want), std::string::npos) << c.key << "=" << c.text << ": " << cli;
    EXPECT_NE(file.find(c.want), std::string::npos) << as_file(c.key, c.text) << ": " << file;
  }
  EXPECT_EQ(cg::load_config("", {"sample.band_gap=1E3"}).sample.band_gap, "1E3");  // decimal: kept as written
  EXPECT_EQ(cg::decimal_number("1E3"), 1000.0);
  EXPECT_EQ(cg::decimal_number("+.5"), 0.5);
  EXPECT_EQ(cg::decimal_number("-010"), std::nullopt);
  // The whole message: the key, the type, the text as given and what to write.
  const std::string e = error_of([] { cg::load_config("", {"train.steps=010"}); });
  EXPECT_NE(e.find(": config key 'train.steps': expected an integer, got '010': a leading zero reads as octal to YAML "
                   "1.1 readers (PyYAML), not to YAML 1.2 ones; write 10 (or 8 if octal was meant) (command line)"),
            std::string::npos) << e;
}

TEST(Config, ReadsFileAndTheOverrideWins) {
  std::string path = ::testing::TempDir() + "/cfg_test.yaml";
  std::ofstream(path) << "train:\n  lr: 0.5\n  run_dir: runs/x\n";
  cg::Config c = cg::load_config(path, {"train.lr=0.125"});
  EXPECT_EQ(c.train.lr, 0.125);
  EXPECT_EQ(c.train.run_dir, "runs/x");
}

// One key twice on one command line took the last value silently (a sweep script's typo, a copied line): refused,
// naming the key and both values, whatever the spelling of the key (--key, spaces). Overrides of different origins
// are layers (cgsweep: sweep file overrides: < command line < the point's own setting), the later one wins.
TEST(Config, KeyGivenTwiceOnOneCommandLineIsRefused) {
  std::string e = error_of([] { cg::load_config("", {"train.lr=1e-4", "lora.r=4", "train.lr=2e-4"}); });
  EXPECT_NE(e.find("train.lr is given twice on the command line (1e-4, then 2e-4): give it once"), std::string::npos)
      << e;
  e = error_of([] { cg::load_config("", {"--lora.r=4", " lora.r =4"}); });  // the same value too: one of them is a slip
  EXPECT_NE(e.find("lora.r is given twice on the command line (4, then 4)"), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"lora.r=4", "lora.r=8"}, {"sweep file s.yaml: overrides",
                                                                   "sweep file s.yaml: overrides"}); });
  EXPECT_NE(e.find("lora.r is given twice in sweep file s.yaml: overrides (4, then 8)"), std::string::npos) << e;
  const cg::Config layered =
      cg::load_config("", {"lora.r=4", "lora.r=8", "lora.r=16"},
                      {"sweep file s.yaml: overrides", "command line", "sweep file s.yaml: grid"});
  EXPECT_EQ(layered.lora.r, 16);
  // Through the tools' command-line parser, with a config file whose value one override replaces.
  const std::string path = ::testing::TempDir() + "/cfg_cli_twice.yaml";
  std::ofstream(path) << "train: {lr: 0.5}\n";
  std::vector<std::string> words = {"cgx", path, "train.lr=1e-4", "train.lr=2e-4"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  e = error_of([&] { cg::parse_cli(4, argv.data(), "cgx", "t", nullptr); });
  EXPECT_NE(e.find("train.lr is given twice on the command line (1e-4, then 2e-4): give it once"), std::string::npos)
      << e;
  std::optional<cg::Config> once;
  ASSERT_NO_THROW(once = cg::parse_cli(3, argv.data(), "cgx", "t", nullptr));
  EXPECT_EQ(once->train.lr, 1e-4);
}

// sample.spacegroup takes the Hermann-Mauguin symbol users think in, read as its number (the prompt states the
// number; numbers from pymatgen's SpaceGroup(symbol).int_number); it was "expected an integer" before. A symbol no
// table knows, or a number that is no space group, is refused naming the value and what is accepted, the origin last.
TEST(Config, SpaceGroupTakesItsSymbol) {
  if (!cg::have_spglib()) GTEST_SKIP() << "the space group tables come with spglib";
  const std::vector<std::pair<std::string, int64_t>> known = {
      {"Fm-3m", 225}, {"F m -3 m", 225}, {"\"F m -3 m\"", 225}, {"P6_3/mmc", 194}, {"P 63/m m c", 194},
      {"P2_1/c", 14}, {"Pnma", 62}, {"R-3m", 166}, {"Fd-3m", 227}, {"I4/mmm", 139}, {"P1", 1}, {"225", 225},
      {"0", 0}};
  for (const auto& [text, number] : known)
    EXPECT_EQ(cg::load_config("", {"sample.spacegroup=" + text}).sample.spacegroup, number) << text;
  EXPECT_EQ(cg::load_config_string("sample:\n  spacegroup: P6_3/mmc\n", {}).sample.spacegroup, 194);
  EXPECT_NE(cg::to_yaml(cg::load_config("", {"sample.spacegroup=Fm-3m"})).find("spacegroup: 225"), std::string::npos);
  std::string e = error_of([] { cg::load_config("", {"sample.spacegroup=Xy-9"}); });
  EXPECT_NE(e.find("config key 'sample.spacegroup': 'Xy-9' is neither a space group number 1..230 nor a "
                   "Hermann-Mauguin symbol the International Tables know: write one of them (225, Fm-3m"),
            std::string::npos) << e;
  EXPECT_NE(e.find("or 0 for none (command line)"), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"sample.spacegroup=231"}); });
  EXPECT_NE(e.find("config key 'sample.spacegroup': 231 is out of range; allowed: [0, 230] (the number of a space "
                   "group, 1..230, or 0 for none), or the space group's Hermann-Mauguin symbol (Fm-3m)"),
            std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"sample.spacegroup=-1"}); });
  EXPECT_NE(e.find("-1 is out of range; allowed: [0, 230] (the number of a space group"), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"sample.spacegroup=2.5"}); });  // a number, not a symbol: as any int
  EXPECT_NE(e.find("expected an integer, got '2.5': not a whole number"), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"lora.r=x"}); });  // other int keys take no symbol
  EXPECT_NE(e.find("config key 'lora.r': expected an integer, got 'x'"), std::string::npos) << e;
}

// A key or word with an invisible character would print as the key it resembles ("unknown config key 'parallel.tp'
// ... did you mean 'parallel.tp'?"): it is shown escaped, and the message says so.
TEST(Config, KeysWithInvisibleCharactersAreShownEscaped) {
  const std::string note = " (with characters that are not printable ASCII, shown escaped)";
  for (const auto& [word, shown] : std::vector<std::pair<std::string, std::string>>{
           {"parallel.tp\v=2", "parallel.tp\\v"},
           {"parallel.t\tp=2", "parallel.t\\tp"},
           {"parallel.tp\f=2", "parallel.tp\\f"},
           {"\x1b[0mparallel.tp=2", "\\x1b[0mparallel.tp"},
           {"parallel.tp\xc2\xa0=2", "parallel.tp\\u00a0"},           // a non-breaking space
           {"parallel.\xe2\x80\x8btp=2", "parallel.\\u200btp"},       // a zero-width space
           {"parallel.tp\xff=2", "parallel.tp\\xff"}}) {             // no UTF-8
    const std::string e = error_of([&] { cg::load_config("", {word}); });
    EXPECT_NE(e.find("unknown config key '" + shown + "'" + note + " (command line); did you mean 'parallel.tp'?"),
              std::string::npos) << e;
  }
  std::string e = error_of([] { cg::load_config_string("parallel:\n  \"tp\\v\": 2\n"); });
  EXPECT_NE(e.find("unknown config key 'parallel.tp\\v'" + note), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"parallel.tp\v"}); });  // no '=': an override word echoed whole
  EXPECT_NE(e.find("override 'parallel.tp\\v'" + note), std::string::npos) << e;
  const char* argv[] = {"cgtrain", "--he\x1blp"};
  e = error_of([&] { cg::parse_cli(2, const_cast<char**>(argv), "cgtrain", ""); });
  EXPECT_NE(e.find("cgtrain: unknown option '--he\\x1blp'" + note), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"parallel.tp=2"}); });  // a plain key stays as it was
  EXPECT_EQ(e, "");
  e = error_of([] { cg::load_config("", {"parallel.tq=2"}); });
  EXPECT_NE(e.find("unknown config key 'parallel.tq' (command line); did you mean"), std::string::npos) << e;
}

// A value with an invisible character is as wrong as such a key, and would print as the right word: "'fp32' is not
// allowed; allowed: auto | fp32 | ..." for fp32 and a non-breaking space. Every error that echoes a value shows it
// escaped, with the note.
TEST(Config, ValuesWithInvisibleCharactersAreShownEscaped) {
  const std::string note = " (with characters that are not printable ASCII, shown escaped)";
  for (const auto& [word, want] : std::vector<std::pair<std::string, std::string>>{
           {"model.dtype=fp32\xc2\xa0", "config key 'model.dtype': 'fp32\\u00a0'" + note + " is not allowed"},
           {"model.dtype=\xe2\x80\x8b" "fp32", "config key 'model.dtype': '\\u200bfp32'" + note + " is not allowed"},
           {"train.steps=10\xc2\xa0", "config key 'train.steps': expected an integer, got '10\\u00a0'" + note},
           {"train.lr=1e-4\v", "config key 'train.lr': expected a finite number, got '1e-4\\v'" + note},
           {"train.seed=7\x1b[0m", "config key 'train.seed': expected a non-negative integer, got '7\\x1b[0m'" + note},
           {"log.all_ranks=true\f", "config key 'log.all_ranks': expected a bool (true | false; also yes | no, on | "
                                    "off, 1 | 0), got 'true\\f'" + note},
           {"lora.targets=[q_proj,v_proj\xe2\x80\x8b]", "config key 'lora.targets': 'v_proj\\u200b'" + note},
           {"sample.band_gap=1.5\xc2\xa0", "config key 'sample.band_gap': '1.5\\u00a0'" + note +
                                            " is not a finite decimal number"},
           {"sample.spacegroup=Fm-3m\xff", "'Fm-3m\\xff'" + note},
           {"sample.formula=[x\v]", "config key 'sample.formula' is a string, and '[x\\v]'" + note + " reads as"},
           {"sample.formula=\"a\v", "in '\"a\\v'" + note + ", the double quote at the start never closes"}}) {
    const std::string e = error_of([&] { cg::load_config("", {word}); });
    EXPECT_NE(e.find(want), std::string::npos) << e;
  }
  // A quoted string in the file keeps its tab; an override's value is trimmed (as YAML trims a plain scalar).
  std::string e = error_of([] { cg::load_config_string("model:\n  dtype: \"fp32\\t\"\n"); });
  EXPECT_NE(e.find("'model.dtype': 'fp32\\t'" + note + " is not allowed"), std::string::npos) << e;
  EXPECT_EQ(cg::load_config("", {"train.steps=10\t"}).train.steps, 10);
  e = error_of([] { cg::load_config_string("lora:\n  r: 8\n  r: \"9\\v\"\n"); });
  EXPECT_NE(e.find("key 'lora.r' is given twice: 8 at line 2, then '9\\v'" + note + " at line 3"), std::string::npos)
      << e;
  e = error_of([] { cg::load_config("", {"train.lr=1e-4", "train.lr=2e-4\xc2\xa0"}); });
  EXPECT_NE(e.find("train.lr is given twice on the command line (1e-4, then '2e-4\\u00a0'" + note + ")"),
            std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"lora.enabled=false", "lora.init_adapter=/a\xe2\x80\x8b"}); });
  EXPECT_NE(e.find("'lora.init_adapter' ('/a\\u200b'" + note + ")"), std::string::npos) << e;
  e = error_of([] { cg::resolve_csv("data.train\xc2\xa0_csv", cg::Config()); });
  EXPECT_NE(e.find("'data.train\\u00a0_csv'" + note + " is no config key"), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"model.dtype=fp33"}); });  // a plain value stays as it was
  EXPECT_NE(e.find("config key 'model.dtype': 'fp33' is not allowed; allowed: "), std::string::npos) << e;
}

// What a user gets wrong first: a value of the wrong type in the file says where it is (file and line, as an override
// says "command line"); a config file that is missing or a folder says so and what to give instead.
TEST(Config, FileErrorsNameTheFileLineAndFix) {
  const std::string dir = ::testing::TempDir() + "/cfg_errors";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/configs.yaml");
  std::ofstream(dir + "/a.yaml") << "train:\n  lr: 1e-4\n  steps: ten\n";
  std::ofstream(dir + "/configs.yaml/tiny.yaml") << "train:\n  steps: 5\n";
  std::string e = error_of([&] { cg::load_config(dir + "/a.yaml", {}); });
  EXPECT_NE(e.find("config key 'train.steps': expected an integer, got 'ten' (in " + dir + "/a.yaml, line 3)"),
            std::string::npos) << e;
  e = error_of([] { cg::load_config_string("lora:\n  enabled: maybe\n"); });
  EXPECT_NE(e.find("config key 'lora.enabled': expected a bool (true | false; also yes | no, on | off, 1 | 0), got "
                   "'maybe' (line 2)"), std::string::npos) << e;
  e = error_of([&] { cg::load_config(dir + "/none.yaml", {}); });
  EXPECT_NE(e.find("config file '" + dir + "/none.yaml' does not exist: give the path of a CONFIG.yaml, e.g. "
                   "configs/tiny.yaml"), std::string::npos) << e;
  e = error_of([&] { cg::load_config(dir + "/configs.yaml", {}); });
  EXPECT_NE(e.find("config file '" + dir + "/configs.yaml' is a folder: give the YAML file itself (DIR/CONFIG.yaml); "
                   "it holds tiny.yaml"), std::string::npos) << e;
  const std::string folder = dir + "/configs.yaml";  // named without .yaml: a word that is a folder
  std::filesystem::rename(folder, dir + "/configs");
  const std::string word = dir + "/configs";
  const char* argv[] = {"cgprep", word.c_str()};
  e = error_of([&] { cg::parse_cli(2, const_cast<char**>(argv), "cgprep", ""); });
  EXPECT_NE(e.find("cgprep: unexpected argument '" + word + "': it is a folder; give the config file (CONFIG.yaml) or "
                   "section.key=value; it holds tiny.yaml"), std::string::npos) << e;
  // An error in the command line or config is every rank's alike: dist::run_main says it once (common/input_error.h).
  EXPECT_THROW(cg::parse_cli(2, const_cast<char**>(argv), "cgprep", ""), cg::InputError);
  const char* typo[] = {"cgprep", "train.stepz=5"};
  EXPECT_THROW(cg::parse_cli(2, const_cast<char**>(typo), "cgprep", ""), cg::InputError);
}

// The usage line names every option the tool takes: cgtrain's own --plan and --device-gb too, which its main takes off
// the command line before parse_cli.
TEST(Config, UsageLineNamesTheToolsOwnOptions) {
  EXPECT_EQ(cg::config_help("cgtrain", "").rfind("usage: cgtrain [--plan [--device-gb=N]] [CONFIG.yaml] "
                                                 "[section.key=value ...] [--help]\n", 0), 0u);
  EXPECT_EQ(cg::config_help("cgprep", "").rfind("usage: cgprep [CONFIG.yaml] [section.key=value ...] [--help]\n", 0),
            0u);
}

TEST(Config, UnknownKeysNameTheDottedKeyAndSuggest) {
  std::string e = error_of([] { cg::load_config_string("trian:\n  lr: 1e-4\n"); });
  EXPECT_NE(e.find("'trian.lr'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.lr'"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("train:\n  lrr: 1e-4\n"); });
  EXPECT_NE(e.find("'train.lrr'"), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"lora.rank=8"}); });
  EXPECT_NE(e.find("'lora.rank'"), std::string::npos) << e;
  // A key without its section, as other tools' options are written (--steps=5): the keys that end in it.
  e = error_of([] { cg::load_config("", {"--steps=5"}); });
  EXPECT_NE(e.find("unknown config key 'steps' (command line); keys are section.key: did you mean 'train.steps'?"),
            std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"seed=1"}); });
  EXPECT_NE(e.find("did you mean 'data.seed' or 'train.seed' or 'sample.seed'?"), std::string::npos) << e;
  EXPECT_NE(e.find("command line"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("train: 5\n"); });
  EXPECT_NE(e.find("'train' is a section"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("train:\n  lr: {a: 1}\n"); });
  EXPECT_NE(e.find("'train.lr'"), std::string::npos) << e;
  // YAML's complex keys (a map or list as a key; found by fuzzing, where yaml-cpp's conversion error escaped).
  e = error_of([] { cg::load_config_string("train:\n  ? {steps: 10}\n  : 1\n"); });
  EXPECT_NE(e.find("a key in section 'train' must be a plain name, not '{steps: 10}'"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("? [a, b]\n: 1\n"); });
  EXPECT_NE(e.find("a key must be a plain name, not '[a, b]'"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("trian:\n  ? [x]\n  : 1\n"); });
  EXPECT_NE(e.find("a key in section 'trian' must be a plain name"), std::string::npos) << e;
  // A second YAML document would be dropped by a plain load: refused, in a file too; a leading '---' is one document.
  e = error_of([] { cg::load_config_string("train:\n  steps: 3\n---\ntrain:\n  lr: 0.5\n"); });
  EXPECT_NE(e.find("config: 2 YAML documents (separated by '---' lines), but a config is one"), std::string::npos) << e;
  const std::string two = ::testing::TempDir() + "/cfg_two_docs.yaml";
  std::ofstream(two) << "train:\n  steps: 3\n---\ntrain:\n  lr: 0.5\n";
  e = error_of([&] { cg::load_config(two, {}); });
  EXPECT_NE(e.find(two + ": 2 YAML documents"), std::string::npos) << e;
  EXPECT_EQ(cg::load_config_string("---\ntrain:\n  steps: 3\n").train.steps, 3);
  EXPECT_EQ(cg::load_config_string("").train.steps, cg::Config().train.steps);
}

TEST(Config, KeyGivenTwiceInOneMapIsRefusedNamingKeyAndFile) {
  std::string e = error_of([] { cg::load_config_string("lora:\n  r: 8\n  r: 9\n"); });
  EXPECT_NE(e.find("key 'lora.r' is given twice: 8 at line 2, then 9 at line 3; keep one"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("lora: {targets: [q_proj], r: 2, targets: [v_proj]}\n"); });
  EXPECT_NE(e.find("key 'lora.targets' is given twice: at lines 1 and 1"), std::string::npos) << e;
  const std::string path = ::testing::TempDir() + "/cfg_twice.yaml";
  std::ofstream(path) << "train:\n  steps: 3\nlora:\n  r: 8\ntrain:\n  lr: 0.1\n";
  e = error_of([&] { cg::load_config(path, {}); });
  EXPECT_NE(e.find("section 'train' is given twice (in " + path + "): at lines 1 and 5; keep one (its keys under one "
                   "heading)"), std::string::npos) << e;
  // The same key in different sections is fine.
  EXPECT_NO_THROW(cg::load_config_string("data:\n  seed: 1\ntrain:\n  seed: 2\n"));
}

TEST(Config, RetiredKeyIsIgnoredSoOldRunFoldersStillLoad) {
  // model.max_seq_len was never read; configs written before its removal still load.
  const cg::Config c = cg::load_config_string("model:\n  max_seq_len: 1024\n  flavor: tiny\n", {"model.max_seq_len=2"});
  EXPECT_TRUE(c == cg::load_config("", {}));
  EXPECT_EQ(cg::to_yaml(c).find("max_seq_len"), std::string::npos);
}

TEST(Config, OverrideErrorsNameWhereTheOverrideCameFrom) {
  std::string e = error_of([] { cg::load_config("", {"train.steps=3", "lora.rank=2"}, {"a", "sweep file s.yaml: grid"}); });
  EXPECT_NE(e.find("'lora.rank' (sweep file s.yaml: grid)"), std::string::npos) << e;
  EXPECT_EQ(e.find("command line"), std::string::npos) << e;
  e = error_of([] { cg::load_config("", {"lora.r=x"}, {"sweep file s.yaml: points[1]"}); });
  EXPECT_NE(e.find("expected an integer, got 'x' (sweep file s.yaml: points[1])"), std::string::npos) << e;
}

TEST(Config, BadValuesNameKeyAndWhatIsAllowed) {
  struct Case { std::string override, key, allowed; };
  std::vector<Case> cases = {
      {"train.schedule=foo", "'train.schedule'", "cosine | linear | constant"},
      {"parallel.mpi_wait=spin", "'parallel.mpi_wait'", "auto | sleep | poll"},
      {"train.steps=-5", "'train.steps'", ">= 1"},
      {"train.steps=ten", "'train.steps'", "an integer"},
      {"train.lr=abc", "'train.lr'", "a finite number"},
      {"train.lr=0", "'train.lr'", "(0, 10]"},
      {"train.lr=1e38", "'train.lr'", "(0, 10]"},
      {"train.lr=1e300", "'train.lr'", "does not fit a 32-bit float"},
      {"sample.num_samples=2000000000", "'sample.num_samples'", "out of range; allowed: [1, "},
      {"train.eps=1e-300", "'train.eps'", "does not fit a 32-bit float"},
      {"lora.alpha=-1e39", "'lora.alpha'", "does not fit a 32-bit float"},
      {"lora.r=0", "'lora.r'", ">= 1"},
      {"lora.dropout=1", "'lora.dropout'", "[0, 1)"},
      {"lora.dropout=-0.1", "'lora.dropout'", "[0, 1)"},
      {"lora.targets=[q_proj,qkv]", "'lora.targets'", "'qkv' is not allowed"},
      {"lora.targets=[all-linear,q_proj]", "'lora.targets'", "all-linear stands alone"},
      {"model.activation_checkpointing=maybe", "'model.activation_checkpointing'", "a bool"},
      {"train.seed=-1", "'train.seed'", "a non-negative integer"},
      {"sample.band_gap=wide", "'sample.band_gap'", "not a finite decimal number"},
      {"sample.band_gap=nan", "'sample.band_gap'", "not a finite decimal number"},
      {"sample.band_gap=inf", "'sample.band_gap'", "not a finite decimal number"},
      {"sample.formation_energy=0x10", "'sample.formation_energy'", "not a finite decimal number"},
      {"sample.e_above_hull=1e20", "'sample.e_above_hull'", "not a finite decimal number"},
      {"sample.spacegroup=231", "'sample.spacegroup'", "[0, 230]"},
      {"sample.band_gap=-5", "'sample.band_gap'", "is -5, but it is >= 0 by definition"},
      {"sample.e_above_hull=-0.1", "'sample.e_above_hull'", "a negative energy is sample.formation_energy"},
      {"eval.match_ltol=0", "'eval.match_ltol'", "> 0"},  // 0 would make identical copies differ
      {"eval.match_stol=0", "'eval.match_stol'", "> 0"},
      {"eval.match_angle_tol=0", "'eval.match_angle_tol'", "> 0"},
      {"train.run_dir=", "'train.run_dir'", "must not be empty"},
      {"train.lr", "train.lr", "section.key=value"},
      {"train=1", "'train=1'", "sets the section train, not a key: name one of its keys, train.key=value"},
  };
  for (const auto& c : cases) {
    std::string e = error_of([&] { cg::load_config("", {c.override}); });
    EXPECT_NE(e.find(c.key), std::string::npos) << c.override << " -> " << e;
    EXPECT_NE(e.find(c.allowed), std::string::npos) << c.override << " -> " << e;
  }
  // A closed bound is a value allowed: the refusals above stop at it. train.min_lr_ratio=1 keeps the peak lr after
  // warmup, lora.dropout=0 is no dropout.
  EXPECT_EQ(cg::load_config("", {"train.min_lr_ratio=1"}).train.min_lr_ratio, 1.0);
  EXPECT_EQ(cg::load_config("", {"train.min_lr_ratio=0"}).train.min_lr_ratio, 0.0);
  EXPECT_EQ(cg::load_config("", {"train.lr=10"}).train.lr, 10.0);
  EXPECT_EQ(cg::load_config("", {"lora.dropout=0"}).lora.dropout, 0.0);
  EXPECT_EQ(cg::load_config("", {"sample.spacegroup=230"}).sample.spacegroup, 230);
  EXPECT_EQ(cg::load_config("", {"train.warmup_steps=0"}).train.warmup_steps, 0);
  EXPECT_EQ(cg::load_config("", {"sample.band_gap=1e-3"}).sample.band_gap, "1e-3");  // exponents are decimal too
  EXPECT_EQ(cg::load_config("", {"sample.band_gap=0"}).sample.band_gap, "0");        // a metal
  EXPECT_EQ(cg::load_config("", {"sample.formation_energy=-2.5"}).sample.formation_energy, "-2.5");
  // The value cgsample states: what validation admitted, read as that number.
  EXPECT_EQ(cg::decimal_number("-1.25"), -1.25);
  EXPECT_EQ(cg::decimal_number("1e-3"), 0.001);
  EXPECT_EQ(cg::decimal_number("9999999999999999"), std::nullopt);  // >= 1e16: Python would write 1e+16
  for (const char* bad : {"", " ", "1.5x", "nan", "-inf", "0x10", "1e16"})
    EXPECT_EQ(cg::decimal_number(bad), std::nullopt) << bad;
  {  // a CSV named by its key, or a path; a key that is none is said to be none
    cg::Config c = cg::load_config("", {"data.test_csv=t.csv"});
    EXPECT_EQ(cg::resolve_csv("data.test_csv", c), "t.csv");
    EXPECT_EQ(cg::resolve_csv("data.csv", c), "data.csv");  // a file that happens to start with "data."
    EXPECT_NE(error_of([&] { cg::resolve_csv("data.bogus_csv", c); }).find("'data.bogus_csv' is no config key"),
              std::string::npos);
  }
  // Retired for train.val_samples: older run folders' configs still load (the key is ignored with a warning).
  EXPECT_EQ(cg::load_config("", {"train.val_batches=4"}).train.val_samples, 512);
  std::string e = error_of([] { cg::load_config("", {"lora.enabled=false", "lora.init_adapter=/runs/a/adapter"}); });
  EXPECT_NE(e.find("'lora.init_adapter' (/runs/a/adapter)"), std::string::npos) << e;
  EXPECT_NE(e.find("set lora.enabled=true"), std::string::npos) << e;
  // Same rules apply to values from the file.
  // A run folder written before a rule existed still reads (cgexport, cgsample, resume), as it was written.
  const std::string saved = ::testing::TempDir() + "/saved_config.yaml";
  std::ofstream(saved) << "lora:\n  enabled: false\n  init_adapter: /runs/a/adapter\n";
  EXPECT_THROW(cg::load_config(saved, {}), cg::Error);
  EXPECT_EQ(cg::load_saved_config(saved).lora.init_adapter, "/runs/a/adapter");
  // A key this version lacks, in a config cgtrain wrote: a newer version's run (or an edited file), not a typo that
  // --help would show; a config the user wrote gets --help's list.
  std::ofstream(saved) << "train:\n  steps: 5\n  warp_drive: 9\n";
  e = error_of([&] { cg::load_saved_config(saved); });
  EXPECT_NE(e.find("unknown config key 'train.warp_drive' (in " + saved + "); the file was written by a cgtrain "
                   "version that has that key"), std::string::npos) << e;
  EXPECT_EQ(e.find("--help"), std::string::npos) << e;
  e = error_of([&] { cg::load_config(saved, {}); });
  EXPECT_NE(e.find("run with --help to list every key"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("train:\n  schedule: foo\n"); });
  EXPECT_NE(e.find("'train.schedule'"), std::string::npos) << e;
  // A list or nothing where one value is expected: the type is named with its article ("a int" read wrongly).
  e = error_of([] { cg::load_config_string("train:\n  steps: [1, 2]\n"); });
  EXPECT_NE(e.find("config key 'train.steps': expected an int, got a list"), std::string::npos) << e;
  e = error_of([] { cg::load_config_string("train:\n  lr:\n"); });
  EXPECT_NE(e.find("config key 'train.lr' has no value; expected a float"), std::string::npos) << e;
}

// Samples and their evaluation follow the run: unset, sample.out_dir is <train.run_dir>/samples and eval.input is
// that folder; an explicit value (file or command line) wins, and eval.input follows an explicit sample.out_dir.
TEST(Config, SamplesFolderAndEvalInputFollowTheRunUnlessSet) {
  const cg::Config defaults = cg::load_config("", {});
  EXPECT_EQ(cg::sample_out_dir(defaults), "runs/tiny/samples");
  EXPECT_EQ(cg::eval_input(defaults), "runs/tiny/samples");
  const cg::Config seven = cg::load_config_string("train:\n  run_dir: runs/llama7b\n");
  EXPECT_EQ(cg::sample_out_dir(seven), "runs/llama7b/samples");
  EXPECT_EQ(cg::eval_input(seven), "runs/llama7b/samples");
  // The command line's train.run_dir moves both, over the file's.
  const cg::Config moved = cg::load_config_string("train:\n  run_dir: runs/llama7b\n", {"train.run_dir=/scratch/r2/"});
  EXPECT_EQ(cg::sample_out_dir(moved), "/scratch/r2/samples");
  EXPECT_EQ(cg::eval_input(moved), "/scratch/r2/samples");
  // An explicit sample.out_dir: cgsample writes there, and cgeval reads from there.
  const cg::Config out = cg::load_config_string("sample:\n  out_dir: /shared/s1\n", {"train.run_dir=runs/x"});
  EXPECT_EQ(cg::sample_out_dir(out), "/shared/s1");
  EXPECT_EQ(cg::eval_input(out), "/shared/s1");
  // An explicit eval.input is read whatever cgsample writes; the command line's wins over the file's.
  const cg::Config in = cg::load_config_string("eval:\n  input: data/mp20/test.csv.gz\n",
                                               {"sample.out_dir=/shared/s1"});
  EXPECT_EQ(cg::eval_input(in), "data/mp20/test.csv.gz");
  EXPECT_EQ(cg::eval_input(cg::load_config_string("eval:\n  input: a.csv\n", {"eval.input=b.csv"})), "b.csv");
  // sample.out_dir= and eval.input= on the command line give the defaults back over a file's values.
  const cg::Config reset = cg::load_config_string("sample:\n  out_dir: /shared/s1\neval:\n  input: a.csv\n",
                                                  {"sample.out_dir=", "eval.input=", "train.run_dir=runs/y"});
  EXPECT_EQ(cg::eval_input(reset), "runs/y/samples");
  // A run folder's config.yaml of an older version holds the old default literally: it loads, and is that value.
  const std::string saved = ::testing::TempDir() + "/old_run_config.yaml";
  std::ofstream(saved) << "train:\n  run_dir: \"runs/old\"\nsample:\n  out_dir: \"runs/tiny/samples\"\n"
                          "eval:\n  input: \"runs/tiny/samples\"\n";
  for (const cg::Config& c : {cg::load_saved_config(saved), cg::load_config(saved, {})}) {
    EXPECT_EQ(cg::sample_out_dir(c), "runs/tiny/samples");
    EXPECT_EQ(cg::eval_input(c), "runs/tiny/samples");
  }
  // The empty defaults survive the YAML cgtrain saves into a run folder.
  const cg::Config again = cg::load_config_string(cg::to_yaml(seven));
  EXPECT_EQ(again.sample.out_dir, "");
  EXPECT_EQ(cg::eval_input(again), "runs/llama7b/samples");
}

TEST(Config, YamlRoundTripGivesEqualConfig) {
  cg::Config c = cg::load_config("", {"train.lr=3.3e-5", "data.infill_fraction=0.123456789012345",
                                      "lora.targets=[k_proj,down_proj]", "sample.formula=Li2 O\"x",
                                      "train.seed=18446744073709551615", "model.hf_dir=/a: b # c",
                                      "sample.formation_energy=-1.5", "lora.alpha=16"});
  std::string y = cg::to_yaml(c);
  cg::Config back = cg::load_config_string(y);
  EXPECT_TRUE(back == c) << y;
  EXPECT_EQ(back.sample.formula, "Li2 O\"x");
  EXPECT_EQ(back.model.hf_dir, "/a: b # c");
  EXPECT_EQ(back.train.seed, 18446744073709551615ull);
  EXPECT_EQ(cg::to_yaml(back), y);
  EXPECT_NE(y.find("train:\n  run_dir: \"runs/tiny\"  # "), std::string::npos) << y;
  // A quoted YAML string is the value whole: a folder whose name ends in a space, or is wrapped in quote characters,
  // can be named (a plain scalar has no such spaces, and the command line trims as before).
  cg::Config q = cg::load_config_string("model:\n  hf_dir: \"/data/trail \"\nsample:\n  out_dir: '\"quoted\"'\n"
                                        "  formula: \" NaCl\"\n");
  EXPECT_EQ(q.model.hf_dir, "/data/trail ");
  EXPECT_EQ(q.sample.out_dir, "\"quoted\"");
  EXPECT_EQ(cg::load_config_string(cg::to_yaml(q)).model.hf_dir, "/data/trail ");
  EXPECT_EQ(cg::load_config_string("model:\n  hf_dir: /data/plain\n").model.hf_dir, "/data/plain");
}

TEST(Config, HashChangesWithValuesOnly) {
  cg::Config a = cg::load_config("", {});
  cg::Config b = cg::load_config_string(cg::to_yaml(a));
  EXPECT_EQ(cg::config_hash(a), cg::config_hash(b));
  EXPECT_EQ(cg::config_hash(a).size(), 16u);
  b.train.lr *= 2;
  EXPECT_NE(cg::config_hash(a), cg::config_hash(b));
  EXPECT_FALSE(a == b);
  b.lora.targets = {"q_proj"};
  EXPECT_EQ(cg::config_differences(a, b),
            (std::vector<std::string>{"lora.targets [q_proj, v_proj] -> [q_proj]", "train.lr 0.0001 -> 0.0002"}));
  EXPECT_TRUE(cg::config_differences(a, a).empty());
}

TEST(Config, ParseCliSplitsFileOverridesPositionalAndHelp) {
  std::string path = ::testing::TempDir() + "/cfg_cli.yaml";
  std::ofstream(path) << "train: {steps: 7}\n";
  std::vector<std::string> words = {"cgx", path, "train.steps=9", "extra", "--lora.r=2"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  std::vector<std::string> pos;
  auto c = cg::parse_cli(static_cast<int>(argv.size()), argv.data(), "cgx", "test tool", &pos);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->train.steps, 9);
  EXPECT_EQ(c->lora.r, 2);
  EXPECT_EQ(pos, std::vector<std::string>{"extra"});
  // A config file in a folder whose name holds '=' (hydra-style sweep folders) is the file, not an override.
  const std::string dir = ::testing::TempDir() + "/lr=1e-3";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.yaml") << "train: {steps: 5}\n";
  std::vector<std::string> eq_words = {"cgx", dir + "/config.yaml", "model.hf_dir=/models/a=b"};
  std::vector<char*> eq_argv;
  for (auto& w : eq_words) eq_argv.push_back(w.data());
  auto from_eq = cg::parse_cli(static_cast<int>(eq_argv.size()), eq_argv.data(), "cgx", "test tool", nullptr);
  ASSERT_TRUE(from_eq.has_value());
  EXPECT_EQ(from_eq->train.steps, 5);
  EXPECT_EQ(from_eq->model.hf_dir, "/models/a=b");
  // ... also named from the folder above it, where the word before '=' has no '/' (an existing .yaml file wins).
  const std::string cwd = std::filesystem::current_path().string();
  std::filesystem::current_path(::testing::TempDir());
  std::vector<std::string> rel_words = {"cgx", "lr=1e-3/config.yaml"};
  std::vector<char*> rel_argv = {rel_words[0].data(), rel_words[1].data()};
  std::optional<cg::Config> from_rel;
  EXPECT_NO_THROW(from_rel = cg::parse_cli(2, rel_argv.data(), "cgx", "test tool", nullptr));
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(from_rel.has_value());
  EXPECT_EQ(from_rel->train.steps, 5);
  // No positional sink: a stray word is an error, which says what it took the word for.
  EXPECT_THROW(cg::parse_cli(static_cast<int>(argv.size()), argv.data(), "cgx", "t", nullptr), cg::Error);
  const std::string conf = ::testing::TempDir() + "/cfg_cli.conf";
  std::ofstream(conf) << "train: {steps: 7}\n";
  const auto stray = [&](std::string word) {
    std::vector<char*> a = {words[0].data(), word.data()};
    return error_of([&] { cg::parse_cli(2, a.data(), "cgx", "t", nullptr); });
  };
  EXPECT_NE(stray(dir).find("'" + dir + "': it is a folder; give the config file"), std::string::npos) << stray(dir);
  EXPECT_NE(stray(conf).find("a config file is read when its name ends in .yaml or .yml: rename it"),
            std::string::npos) << stray(conf);
  EXPECT_NE(stray("train.steps").find("an override needs a value: write train.steps=VALUE"), std::string::npos)
      << stray("train.steps");
  EXPECT_NE(stray("extra").find("'extra': expected CONFIG.yaml or section.key=value"), std::string::npos);
  // A config file named without its extension (configs/tiny for configs/tiny.yaml): the file that is there.
  const std::string no_ext = ::testing::TempDir() + "/cfg_named";
  std::ofstream(no_ext + ".yaml") << "train: {steps: 7}\n";
  EXPECT_NE(stray(no_ext).find("cgx: unexpected argument '" + no_ext + "': did you mean " + no_ext + ".yaml?"),
            std::string::npos) << stray(no_ext);

  std::vector<std::string> help = {"cgx", "--help"};
  std::vector<char*> hargv = {help[0].data(), help[1].data()};
  ::testing::internal::CaptureStdout();
  auto none = cg::parse_cli(2, hargv.data(), "cgx", "test tool summary");
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_FALSE(none.has_value());
  EXPECT_NE(out.find("usage: cgx"), std::string::npos);
  EXPECT_NE(out.find("test tool summary"), std::string::npos);
  EXPECT_NE(out.find("train.lr"), std::string::npos);
  EXPECT_NE(out.find("cosine | linear | constant"), std::string::npos);
}

TEST(Config, DocsConfigMdIsUpToDate) {
  std::string generated = cg::config_reference_markdown();
  // Every key documented: each table row has a non-empty description cell.
  std::istringstream lines(generated);
  std::string line;
  int rows = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    ++rows;
    EXPECT_NE(line.substr(line.size() - 4), "|  |") << line;
  }
  EXPECT_GT(rows, 80);
  std::ifstream in(std::string(CG_SOURCE_DIR) + "/docs/config.md");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), generated)
      << "docs/config.md is stale: regenerate it with build/trainer/cgconfigdoc > docs/config.md";
}

}  // namespace
