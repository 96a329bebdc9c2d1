// Parsing of cgsweep files and expansion of the grid into named points.
#include "launch/sweep_spec.h"

#include <spdlog/fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/sha256.h"
#include "trainer/config.h"

namespace cg::sweep {
namespace {

// Sweep-file keys and what they mean (also printed by `cgsweep --help`).
const std::set<std::string> kTopKeys = {"base", "out_dir", "np", "launcher", "bin_dir", "sample",
                                        "overrides", "grid", "points", "slurm"};
// Points in one sweep file, at most: each is a training run with its own folder.
constexpr size_t kMaxPoints = 10000;
const std::set<std::string> kSlurmKeys = {"time", "partition", "nodes", "gpus_per_node", "cpus_per_task",
                                          "signal_seconds"};

// Text as an override's value (or list item) that the config code reads back as this text (trainer/config_values.cpp: a
// value reads as in YAML). Text that starts with a quote, '[' or '{', is YAML's null or has spaces at an end would
// read otherwise, as would a list item holding ',' or a bracket: such text is written in double quotes.
std::string override_text(const std::string& s, bool item) {
  if (s.empty()) return s;
  const auto space = [](char c) { return c == ' ' || c == '\t'; };
  const bool plain = std::string("\"'[{").find(s.front()) == std::string::npos && s != "~" && s != "null" &&
                     s != "Null" && s != "NULL" && !space(s.front()) && !space(s.back()) &&
                     (!item || s.find_first_of(",[]{}") == std::string::npos);
  if (plain) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return out + "\"";
}

// A node as an override value: scalars as their text (quoted where the text would read otherwise), sequences in
// flow style "[a, b]", null empty.
std::string node_to_value(const YAML::Node& n, const std::string& where) {
  if (n.IsNull()) return "";  // `key:`, `key: null` or `key: ~`: empty, as in a config file (data.val_csv: null)
  if (n.IsScalar()) {
    check_no_control_chars(n.Scalar(), where + ": the value", "write it on one line, without tabs");
    return override_text(n.Scalar(), false);
  }
  if (n.IsSequence()) {
    std::string out = "[";
    for (size_t i = 0; i < n.size(); ++i) {
      CG_CHECK(n[i].IsScalar(), "{}: nested lists/maps are not supported as a value", where);
      check_no_control_chars(n[i].Scalar(), where + ": the value", "write it on one line, without tabs");
      out += (i ? ", " : "") + override_text(n[i].Scalar(), true);
    }
    return out + "]";
  }
  CG_FAIL("{}: expected a scalar or a list of scalars", where);
}

// A map key as text: a plain scalar, not a YAML complex key (`? [a, b]`) or an empty one.
std::string key_of(const YAML::Node& k, const std::string& where) {
  CG_CHECK(k.IsScalar(), "{}: a key must be a plain name, not {}", where,
           k.IsNull() ? "empty" : "'" + YAML::Dump(k) + "'");
  return k.Scalar();
}

// section.key (names of [A-Za-z0-9_], one or more dots between): what becomes a key=value override word.
bool is_dotted_key(const std::string& key) {
  static const std::regex re("[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)+");
  return std::regex_match(key, re);
}

std::vector<Setting> read_settings_map(const YAML::Node& m, const std::string& where) {
  CG_CHECK(m.IsMap(), "{}: expected a map of dotted.key: value", where);
  std::vector<Setting> out;
  for (const auto& kv : m) {
    const std::string key = key_of(kv.first, where);
    CG_CHECK(is_dotted_key(key), "{}: '{}' is not a dotted config key (write e.g. lora.r, data.translate)", where,
             key);
    out.push_back({key, node_to_value(kv.second, where + "." + key)});
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Label of a key in point names; well-known keys get the short names people use when talking about sweeps.
std::string short_label(const std::string& key) {
  static const std::map<std::string, std::string> kAbbrev = {
      {"data.infill_fraction", "infill"}, {"lora.targets", "targets"}, {"train.lr", "lr"},
      {"lora.dropout", "dropout"},         {"train.steps", "steps"},     {"data.max_rows", "rows"}};
  auto it = kAbbrev.find(key);
  if (it != kAbbrev.end()) return it->second;
  return key.substr(key.rfind('.') + 1);
}

// 8 hex digits standing for an exact value in a point name whose readable part lost or cut characters.
std::string short_hash(const std::string& exact) { return sha256_hex(exact.data(), exact.size()).substr(0, 8); }

// Longest point name: a folder name (255 bytes on most filesystems) with room for the files cgsweep adds beside it.
constexpr size_t kMaxNameLength = 96;
// Longest value in a name, so that a long one (a path) leaves room for the other settings.
constexpr size_t kMaxValueLength = 40;

std::string name_value(const std::string& raw) {
  std::string v = raw;
  const std::string lv = lower(v);
  if (lv == "true") return "1";
  if (lv == "false") return "0";
  if (!v.empty() && v.front() == '[' && v.back() == ']') {
    std::string out;
    std::stringstream ss(v.substr(1, v.size() - 2));
    std::string item;
    while (std::getline(ss, item, ',')) {
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (item.size() > 5 && item.compare(item.size() - 5, 5, "_proj") == 0) item.resize(item.size() - 5);
      out += (out.empty() ? "" : "+") + item;
    }
    v = out;
  } else {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (!v.empty() && end && *end == '\0') {
      // 6 significant digits where they hold the value (the names sweeps have always had), else the shortest form
      // that reads back as the same double: lr 1.2345678e-4 and 1.2345679e-4 are two points, not one.
      v = fmt::format("{:g}", d);
      if (std::strtod(v.c_str(), nullptr) != d) v = fmt::format("{}", d);
    }
  }
  bool replaced = false;
  for (char& c : v)  // a point's name is a folder name
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '_' || c == '-')) {
      c = '_';
      replaced = true;
    }
  // "a b" and "a_b" would both read a_b, and a long path's start says little: the hash of the exact value keeps
  // such values apart.
  if (v.size() > kMaxValueLength) return v.substr(0, kMaxValueLength - 9) + "_" + short_hash(raw);
  return replaced ? v + "_" + short_hash(raw) : v;
}

// `s` with its control characters spelled out (\n, \t, \xNN), for a message on one line.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f) out += char(c);
    else out += c == '\n' ? "\\n" : c == '\t' ? "\\t" : fmt::format("\\x{:02x}", c);
  }
  return out;
}

// slurm: {time, partition, nodes, ...}: each value read as its type and range-checked, errors naming file and key.
void read_slurm(const YAML::Node& s, const std::string& path, SweepSpec& spec) {
  CG_CHECK(s.IsMap(), "sweep file {}: slurm: expected a map", path);
  for (const auto& kv : s)
    CG_CHECK(kSlurmKeys.count(key_of(kv.first, "sweep file " + path + ": slurm")), "sweep file {}: unknown key "
             "'slurm.{}' (known: time, partition, nodes, gpus_per_node, cpus_per_task, signal_seconds)", path,
             kv.first.Scalar());
  const auto text = [&](const char* key, std::string& field, bool nonempty) {
    if (!s[key]) return;
    CG_CHECK(s[key].IsScalar() || (!nonempty && s[key].IsNull()), "sweep file {}: slurm.{}: expected a {}value", path,
             key, nonempty ? "non-empty " : "");
    field = s[key].IsNull() ? "" : s[key].Scalar();
    CG_CHECK(!nonempty || !field.empty(), "sweep file {}: slurm.{} must not be empty", path, key);
  };
  const auto number = [&](const char* key, int64_t& field, int64_t min) {
    if (!s[key]) return;
    CG_CHECK(s[key].IsScalar(), "sweep file {}: slurm.{}: expected an integer, got a list or map", path, key);
    // As a config key reads it: yaml-cpp's as<int64_t> would take 010 as 8 and 0x10 as 16.
    field = integer_value(fmt::format("sweep file {}: slurm.{}", path, key), s[key].Scalar(), s[key].Tag() == "!");
    CG_CHECK(field >= min, "sweep file {}: slurm.{} must be >= {}, got {}", path, key, min, field);
  };
  text("time", spec.slurm_time, true);
  text("partition", spec.slurm_partition, false);
  // Both go into #SBATCH lines, where sbatch splits words on spaces, takes quotes and '#' itself: only the
  // characters Slurm's own time formats and partition names use.
  static const std::regex time_re("[A-Za-z0-9:-]+"), partition_re("[A-Za-z0-9._,+-]*");
  CG_CHECK(std::regex_match(spec.slurm_time, time_re), "sweep file {}: slurm.time '{}' is not a Slurm time limit; "
           "write e.g. 04:00:00, 1-12:00:00 or 90 (minutes), without spaces, quotes or '#'", path,
           printable(spec.slurm_time));
  CG_CHECK(std::regex_match(spec.slurm_partition, partition_re), "sweep file {}: slurm.partition '{}' is not a "
           "partition name; write one name or a comma-separated list (letters, digits, '.', '_', '-'), without "
           "spaces, quotes or '#'", path, printable(spec.slurm_partition));
  number("nodes", spec.slurm_nodes, 1);
  number("gpus_per_node", spec.slurm_gpus_per_node, 0);
  number("cpus_per_task", spec.slurm_cpus_per_task, 1);
  number("signal_seconds", spec.slurm_signal_seconds, 1);
}

}  // namespace

std::string value_to_override(const std::string& yaml_flow) {
  return node_to_value(YAML::Load(yaml_flow), "value");
}

std::string point_name(const std::vector<std::string>& keys, const std::vector<Setting>& point) {
  std::map<std::string, int> label_count;
  for (const auto& k : keys) label_count[short_label(k)]++;
  std::string name;
  for (const auto& k : keys) {
    auto it = std::find_if(point.begin(), point.end(), [&](const Setting& s) { return s.key == k; });
    if (it == point.end()) continue;
    std::string label = short_label(k);
    if (label_count[label] > 1) {
      label = k;
      std::replace(label.begin(), label.end(), '.', '_');
    }
    name += (name.empty() ? "" : "-") + label + name_value(it->value);
  }
  if (name.size() > kMaxNameLength) {  // "File name too long" otherwise, after a dry run that passed
    std::string exact;
    for (const auto& s : point) exact += s.key + "=" + s.value + "\n";
    name = name.substr(0, kMaxNameLength - 9) + "_" + short_hash(exact);
  }
  return name.empty() ? "base" : name;
}

void check_no_control_chars(const std::string& value, const std::string& what, const std::string& fix) {
  const bool bad = std::any_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  CG_CHECK(!bad, "{} '{}' contains a newline, tab or other control character, which cannot be written into the "
           "sweep's scripts, comments and tables; {}", what, printable(value), fix);
}

std::vector<std::string> point_overrides(const SweepSpec& spec, const std::vector<Setting>& point) {
  std::vector<std::string> out;
  for (const auto& s : spec.overrides) out.push_back(s.key + "=" + s.value);
  for (const auto& s : spec.command_line) out.push_back(s.key + "=" + s.value);
  for (const auto& s : point) out.push_back(s.key + "=" + s.value);
  return out;
}

std::vector<std::string> point_override_origins(const SweepSpec& spec, size_t index) {
  std::vector<std::string> out(spec.overrides.size(), "sweep file " + spec.path + ": overrides");
  out.insert(out.end(), spec.command_line.size(), "command line");
  const std::string own = spec.from_grid ? "sweep file " + spec.path + ": grid"
                                         : fmt::format("sweep file {}: points[{}]", spec.path, index);
  out.insert(out.end(), spec.points.at(index).size(), own);
  return out;
}

// Keys cgsweep sets for every point (its folders, and the adapter its own stages pass along): a value given for them
// would be ignored, so it is refused.
static void check_not_set_by_cgsweep(const std::string& key, const std::string& where) {
  static const std::set<std::string> kOwned = {"train.run_dir", "data.shards_dir", "sample.out_dir", "sample.adapter",
                                               "eval.input", "eval.out"};
  CG_CHECK(!kOwned.count(key), "{}: {} is set by cgsweep for every point ({}); move the whole sweep with out_dir (or "
           "--out-dir) instead", where, key,
           key == "train.run_dir"     ? "out_dir/<point>"
           : key == "data.shards_dir" ? "out_dir/shards/data-<hash>, shared by the points of one data setting"
           : key == "sample.adapter"  ? "out_dir/<point>/adapter"
           : key == "eval.out"        ? "out_dir/<point>/samples/eval"
                                      : "out_dir/<point>/samples");
}

void add_command_line_overrides(SweepSpec& spec, const std::vector<std::string>& words) {
  for (const auto& w : words) {
    const auto eq = w.find('=');
    CG_CHECK(eq != std::string::npos || !is_dotted_key(w), "argument '{}' is an override without its value: write "
             "{}=VALUE", w, w);
    CG_CHECK(eq != std::string::npos && is_dotted_key(w.substr(0, eq)),
             "argument '{}' is not a section.key=value override (after the sweep file, cgsweep takes only those)", w);
    const std::string key = w.substr(0, eq);
    check_no_control_chars(w, "argument", "give the value on one line, without tabs");
    check_not_set_by_cgsweep(key, w + " on the command line");
    CG_CHECK(std::find(spec.keys.begin(), spec.keys.end(), key) == spec.keys.end(),
             "{} on the command line: the sweep file {} sweeps {} ({}), and each point's own value would win; remove "
             "it from the command line, or change the sweep file", w, spec.path, key,
             spec.from_grid ? "grid:" : "points:");
    spec.command_line.push_back({key, w.substr(eq + 1)});
  }
}

SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    CG_FAIL("sweep file {}: YAML error: {}", path, e.what());
  }
  CG_CHECK(root.IsMap(), "sweep file {}: expected a map with base: and grid: or points:", path);
  SweepSpec spec;
  spec.path = path;
  for (const auto& kv : root) {
    const std::string k = key_of(kv.first, "sweep file " + path);
    CG_CHECK(kTopKeys.count(k), "sweep file {}: unknown key '{}' (known: base, out_dir, np, launcher, bin_dir, "
             "sample, overrides, grid, points, slurm)", path, k);
  }
  const auto get = [&](const char* key, auto& field) {
    if (!root[key]) return;
    try {
      field = root[key].as<std::decay_t<decltype(field)>>();
    } catch (const YAML::Exception&) {
      using T = std::decay_t<decltype(field)>;
      const YAML::Node& v = root[key];
      CG_FAIL("sweep file {}: '{}' (line {}) must be {}, got {}", path, key, v.Mark().line + 1,
              std::is_same_v<T, bool> ? "true or false" : std::is_integral_v<T> ? "a whole number" : "a plain value",
              v.IsScalar() ? "'" + v.Scalar() + "'" : v.IsSequence() ? "a list" : v.IsMap() ? "a map" : "nothing");
    }
  };
  get("base", spec.base);
  get("out_dir", spec.out_dir);
  get("np", spec.np);
  get("launcher", spec.launcher);
  get("bin_dir", spec.bin_dir);
  get("sample", spec.sample);
  CG_CHECK(!spec.base.empty(), "sweep file {}: 'base:' (the base config YAML) is required", path);
  CG_CHECK(spec.np >= 1, "sweep file {}: np must be >= 1, got {}", path, spec.np);
  if (root["overrides"]) spec.overrides = read_settings_map(root["overrides"], path + ": overrides");
  for (const auto& s : spec.overrides) check_not_set_by_cgsweep(s.key, "sweep file " + path + ": overrides");
  if (const auto s = root["slurm"]) read_slurm(s, path, spec);

  const bool has_grid = bool(root["grid"]), has_points = bool(root["points"]);
  spec.from_grid = has_grid;
  CG_CHECK(has_grid != has_points, "sweep file {}: give exactly one of 'grid:' (cartesian product) or 'points:' "
           "(explicit list)", path);
  if (has_grid) {
    const YAML::Node g = root["grid"];
    CG_CHECK(g.IsMap() && g.size() > 0, "sweep file {}: grid: expected a map of dotted.key: [values]", path);
    std::vector<std::vector<std::string>> values;
    for (const auto& kv : g) {
      const std::string key = key_of(kv.first, "sweep file " + path + ": grid");
      CG_CHECK(is_dotted_key(key), "sweep file {}: grid key '{}' is not a dotted config key (write e.g. lora.r)", path,
               key);
      CG_CHECK(std::find(spec.keys.begin(), spec.keys.end(), key) == spec.keys.end(),
               "sweep file {}: grid key '{}' given twice", path, key);
      check_not_set_by_cgsweep(key, "sweep file " + path + ": grid");
      std::vector<std::string> vs;
      if (kv.second.IsSequence()) {
        for (const auto& v : kv.second) vs.push_back(node_to_value(v, path + ": grid." + key));
      } else {
        vs.push_back(node_to_value(kv.second, path + ": grid." + key));
      }
      CG_CHECK(!vs.empty(), "sweep file {}: grid.{} has no values", path, key);
      spec.keys.push_back(key);
      values.push_back(std::move(vs));
    }
    // A grid's size is the product of its lists: check it before expanding (30 keys of 2 values are 10^9 points).
    size_t total = 1;
    for (const auto& vs : values) {
      total = vs.size() > kMaxPoints / total ? kMaxPoints + 1 : total * vs.size();
      CG_CHECK(total <= kMaxPoints, "sweep file {}: grid has more than {} points ({}); sweep fewer keys or values, "
               "or split it into several sweep files", path, kMaxPoints,
               fmt::join(spec.keys.begin(), spec.keys.end(), " x "));
    }
    // Cartesian product, the last key varying fastest (like nested loops in file order).
    std::vector<size_t> idx(values.size(), 0);
    while (true) {
      std::vector<Setting> p;
      for (size_t i = 0; i < values.size(); ++i) p.push_back({spec.keys[i], values[i][idx[i]]});
      spec.points.push_back(std::move(p));
      size_t d = values.size();
      while (d > 0 && ++idx[d - 1] == values[d - 1].size()) idx[--d] = 0;
      if (d == 0) break;
    }
  } else {
    const YAML::Node ps = root["points"];
    CG_CHECK(ps.IsSequence() && ps.size() > 0, "sweep file {}: points: expected a non-empty list of maps", path);
    CG_CHECK(ps.size() <= kMaxPoints, "sweep file {}: points: lists {} points, more than {}; split it into several "
             "sweep files", path, ps.size(), kMaxPoints);
    for (size_t i = 0; i < ps.size(); ++i) {
      auto p = read_settings_map(ps[i], fmt::format("{}: points[{}]", path, i));
      for (const auto& s : p) check_not_set_by_cgsweep(s.key, fmt::format("sweep file {}: points[{}]", path, i));
      for (const auto& s : p)
        if (std::find(spec.keys.begin(), spec.keys.end(), s.key) == spec.keys.end()) spec.keys.push_back(s.key);
      spec.points.push_back(std::move(p));
    }
  }
  // A grid sets its keys for every point, so an overrides: value for one of them would never be used. (points: may
  // leave a key to overrides: in some points.)
  for (const auto& s : spec.overrides)
    CG_CHECK(!spec.from_grid || std::find(spec.keys.begin(), spec.keys.end(), s.key) == spec.keys.end(),
             "sweep file {}: {} is in overrides: and in grid:, which sets it for every point, so the overrides: value "
             "is never used; keep it in one of them", path, s.key);
  // Two points with the same name would share a run folder.
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < spec.points.size(); ++i) {
    const std::string n = point_name(spec.keys, spec.points[i]);
    auto [it, fresh] = seen.emplace(n, i);
    CG_CHECK(fresh, "sweep file {}: points {} and {} are the same setting ({})", path, it->second, i, n);
  }
  return spec;
}

std::string normalized_path(const std::string& path) {
  // Not lexically_normal(): "link/../x" is x beside link's target for the kernel, which is the file a read opens.
  std::filesystem::path p = std::filesystem::weakly_canonical(std::filesystem::absolute(path));
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p.string();
}

SweepSpec load_sweep_spec(const std::string& path) {
  std::error_code ec;
  CG_CHECK(std::filesystem::exists(path, ec), "sweep file {} does not exist: give the path of a sweep YAML file, e.g. "
           "launch/sweeps/rank_translate.yaml", path);
  CG_CHECK(!std::filesystem::is_directory(path, ec), "sweep file {} is a folder: give the sweep YAML file itself",
           path);
  return parse_sweep_spec(read_file(path, "sweep file"), normalized_path(path));
}

}  // namespace cg::sweep
