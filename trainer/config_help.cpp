// The config's reference for people: docs/config.md (config_reference_markdown) and --help (config_help), both
// generated from the field list (trainer/config_fields.cpp).
#include "trainer/config.h"

#include <fmt/format.h>

#include "trainer/config_fields.h"
#include "trainer/config_values.h"

namespace cg {

using namespace config_detail;  // cg_config's own files only share a unity translation unit

std::string config_reference_markdown() {
  Config c;
  std::string out =
      "# Configuration reference\n\n"
      "Generated from `trainer/config_fields.cpp` by `build/trainer/cgconfigdoc > docs/config.md`; "
      "do not edit by hand\n"
      "(a test compares this file with the generated text).\n\n"
      "Every tool takes `[CONFIG.yaml] [section.key=value ...]`: defaults < YAML file < command-line overrides.\n"
      "Lists are written `lora.targets=[q_proj,v_proj]` or `lora.targets=q_proj,v_proj`. Unknown keys and bad\n"
      "values are errors that name the key. The resolved config is written to `<train.run_dir>/config.yaml`.\n"
      "A key given twice in CONFIG.yaml (the same map) or twice on the command line is an error naming both values\n"
      "(and lines): the later one would silently win. One override of a file value is the normal case.\n\n"
      "A `section.key=value` value reads as the same text would in CONFIG.yaml, except that `#` starts no comment:\n"
      "unquoted text is trimmed and taken as it is (`=` and quote characters inside it included); `\"...\"` and\n"
      "`'...'` are YAML's quotes (`\\\"` and `\\\\` inside `\"...\"`, `''` inside `'...'`; spaces inside kept), and a\n"
      "value that starts with a quote must be that quoted string, whole. What YAML reads as null, a list or a map\n"
      "(`~`, `null`, `[...]`, `{...}`) is an error for a string key: write `key=` for an empty value, or quote it\n"
      "for the text. A shell removes its own quotes first: `sample.formula='\"[x]\"'` gives the text `[x]`. List\n"
      "items are plain or quoted (`data.columns=['a,b', c]`); `key=` and `key=[]` are the empty list.\n\n"
      "Numbers are decimal, as YAML 1.2 writes them (`5`, `+5`, `-2.5`, `.5`, `5.`, `1e-4`, `2.5E3`), in the file and\n"
      "on the command line alike; an integer key takes any spelling of a whole number (`train.steps=1e5` is 100000,\n"
      "exactly; `1.5` is refused). Refused, with what to write instead: hexadecimal and octal (`0x10`, `0o17`,\n"
      "`0x1p-10`), an integer with a leading zero (`010` is 8 to YAML 1.1 readers such as PyYAML and 10 to YAML 1.2\n"
      "ones), `_` between digits (`1_000`), `inf` and `nan`; the same goes for the numbers that the text keys\n"
      "`sample.formation_energy`, `sample.band_gap` and `sample.e_above_hull` hold (no spaces around them).\n"
      "Bools: true/false, yes/no, on/off, 1/0, in any case.\n"
      "A number or bool may be quoted, in the file and on the command line alike (`seed: \"16\"` in the file,\n"
      "`train.seed='\"16\"'` from a shell: both 16): the key's type says how its text reads, and quotes do not\n"
      "change it, since a bool or number key cannot hold text.\n"
      "An error that echoes a key or a value shows a character that would print invisibly or as a plain space (a\n"
      "tab, ESC, a non-breaking or zero-width space) escaped, `'fp32\\u00a0'`, and says so.\n";
  std::string section;
  auto cell = [](std::string s) {
    std::string o;
    for (char ch : s) o += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return o;
  };
  for (const auto& f : fields_of(c)) {
    std::string sec = section_of(f.key);
    if (sec != section) {
      out += fmt::format("\n## {}\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n", sec);
      section = sec;
    }
    std::string def = value_string(f.ptr);
    out += fmt::format("| `{}` | {} | `{}` | {} | {} |\n", f.key, type_name(f.ptr), cell(def.empty() ? "\"\"" : def),
                       cell(describe_rule(f.rule)), cell(f.doc));
  }
  return out;
}

namespace {

// The options a tool's main takes off the command line before parse_cli sees it: its usage line names them too.
std::string own_options(const std::string& tool) {
  if (tool == "cgtrain") return " [--plan [--device-gb=N]]";
  return "";
}

}  // namespace

std::string config_help(const std::string& tool, const std::string& summary) {
  Config c;
  std::string out = fmt::format(
      "usage: {}{} [CONFIG.yaml] [section.key=value ...] [--help]\n\n{}\n\n"
      "Defaults < CONFIG.yaml < key=value overrides. Lists: key=[a,b] or key=a,b. A value reads as in the YAML\n"
      "file ('#' is text): \"...\"/'...' are YAML quotes; ~, null, [..] and {{..}} are refused for text\n"
      "(key= is empty). Numbers are decimal (1e-4, 1e5 for an integer; not 0x10 or 010), quoted or not.\n",
      tool, own_options(tool), summary);
  std::string section;
  for (const auto& f : fields_of(c)) {
    std::string sec = section_of(f.key);
    if (sec != section) {
      out += fmt::format("\n{}:\n", sec);
      section = sec;
    }
    std::string rule = describe_rule(f.rule);
    out += fmt::format("  {:<32} {:<6} = {}{}\n      {}\n", f.key, type_name(f.ptr), value_string(f.ptr),
                       rule.empty() ? "" : "   (" + rule + ")", f.doc);
  }
  return out;
}

}  // namespace cg
