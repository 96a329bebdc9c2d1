// Config loading: a YAML file and dotted key=value overrides applied to the field list (trainer/config_fields.h),
// values read by trainer/config_values.h, then validated; the resolved config written back as YAML, hashed and
// compared; the command line of every tool (parse_cli). --help and docs/config.md: trainer/config_help.cpp.
#include "trainer/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <variant>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/input_error.h"
#include "common/log.h"
#include "common/sha256.h"
#include "data/space_groups.h"
#include "trainer/config_fields.h"
#include "trainer/config_values.h"

namespace cg {

using namespace config_detail;  // cg_config's own files only share a unity translation unit

namespace {

// The number of the space group a Hermann-Mauguin symbol names (sample.spacegroup=Fm-3m: 225), as the CIF reader
// reads the symbol (data/space_groups.h); throws naming what is accepted when it names none.
int64_t space_group_number(const std::string& what, const std::string& symbol) {
  if (const int n = space_group_number_of_hm(symbol); n > 0) return n;
  CG_CHECK(have_spglib(), "{}: {} is no space group number, and this build has no spglib, whose tables read "
           "Hermann-Mauguin symbols: write the number, 1..230 (Fm-3m is 225), or install libsymspg-dev and rebuild",
           what, shown(symbol));
  CG_FAIL("{}: {} is neither a space group number 1..230 nor a Hermann-Mauguin symbol the International Tables "
          "know: write one of them (225, Fm-3m, \"F m -3 m\", P6_3/mmc, P2_1/c), or 0 for none", what, shown(symbol));
}

// Parses `raw_in` into the field's type; throws naming the key and the expected type. `quoted`: the text is a quoted
// YAML scalar from the file, already decoded. `label` names the value in errors (default: "config key '<key>'").
void assign(const Field& f, const std::string& raw_in, bool quoted = false, const std::string& label = "") {
  struct V {
    const Field& f;
    const std::string& raw_in;
    bool quoted;
    const std::string& label;
    [[noreturn]] void fail(const std::string& what, const std::string& why = "") const {
      CG_FAIL("{}: expected {}, got {}{}", label.empty() ? fmt::format("config key '{}'", f.key) : label, what,
              shown(raw_in), why.empty() ? "" : ": " + why);
    }
    std::string text() const { return scalar_text(f.key, raw_in, quoted); }
    void operator()(bool* v) const {
      std::string s = text();
      std::transform(s.begin(), s.end(), s.begin(), ::tolower);
      if (s == "true" || s == "yes" || s == "on" || s == "1") *v = true;
      else if (s == "false" || s == "no" || s == "off" || s == "0") *v = false;
      else fail("a bool (true | false; also yes | no, on | off, 1 | 0)");
    }
    // Integers are whole decimal numbers: 1e5 and 100.0 read as 100000 and 100, exactly; 1.5 is refused.
    std::string whole(const char* what, bool is_unsigned, const char* range) const {
      const std::string s = text();
      if (const auto why = number_problem(s)) fail(what, *why);
      const DecimalParts p = *decimal_parts(s);
      bool overflow = false;
      const auto digits = whole_digits(p, &overflow);
      if (overflow) fail(what, range);
      if (!digits) fail(what, "not a whole number");
      if (is_unsigned && p.negative && *digits != "0") fail(what);
      return (p.negative ? "-" : "") + *digits;
    }
    void operator()(int64_t* v) const {
      if (f.rule.space_group && number_problem(text())) {  // a symbol: Fm-3m is 225
        *v = space_group_number(label.empty() ? fmt::format("config key '{}'", f.key) : label, text());
        return;
      }
      const char* range = "out of range (at most 9223372036854775807 in magnitude)";
      const std::string s = whole("an integer", false, range);
      errno = 0;
      const long long x = std::strtoll(s.c_str(), nullptr, 10);
      if (errno == ERANGE) fail("an integer", range);
      *v = x;
    }
    void operator()(uint64_t* v) const {
      const char* range = "out of range (at most 18446744073709551615)";
      const std::string s = whole("a non-negative integer", true, range);
      errno = 0;
      const unsigned long long x = s == "-0" ? 0 : std::strtoull(s.c_str(), nullptr, 10);
      if (errno == ERANGE) fail("a non-negative integer", range);
      *v = x;
    }
    void operator()(double* v) const {
      const std::string s = text();
      if (const auto why = number_problem(s)) fail("a finite number", *why);
      const double x = std::strtod(s.c_str(), nullptr);
      if (!std::isfinite(x)) fail("a finite number", "too large (it is used as a 32-bit float: at most 3.4e38)");
      *v = x;
    }
    void operator()(std::string* v) const { *v = string_value(f.key, trim(raw_in)); }
    void operator()(std::vector<std::string>* v) const { *v = list_value(f.key, trim(raw_in)); }
  };
  std::visit(V{f, raw_in, quoted, label}, f.ptr);
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// What an unknown key's error tells to do: a config the user writes is checked against --help's list; one cgtrain
// wrote (load_saved_config: a run folder's or a checkpoint's config.yaml) came from a version that has the key.
constexpr const char* kListKeysAdvice = "run with --help to list every key";
constexpr const char* kSavedConfigAdvice = "the file was written by a cgtrain version that has that key (a newer one), "
                                           "or edited since: read the run with that version, or correct the file";

[[noreturn]] void unknown_key(const std::vector<Field>& fields, const std::string& key, const std::string& where,
                              const char* advice = kListKeysAdvice) {
  const Field* best = nullptr;
  size_t best_d = 0;
  for (const auto& f : fields) {
    size_t d = edit_distance(key, f.key);
    if (!best || d < best_d) best = &f, best_d = d;
  }
  std::string hint = best && best_d <= 4 ? fmt::format("; did you mean '{}'?", best->key) : "";
  // A key without its section (steps=5, --steps=5): the keys that end in it, however far their spelling is.
  if (key.find('.') == std::string::npos) {
    std::vector<std::string> ends;
    for (const auto& f : fields)
      if (f.key.size() > key.size() + 1 && f.key.compare(f.key.size() - key.size() - 1, std::string::npos,
                                                         "." + key) == 0)
        ends.push_back("'" + f.key + "'");
    if (!ends.empty()) hint = fmt::format("; keys are section.key: did you mean {}?", fmt::join(ends, " or "));
  }
  CG_FAIL("unknown config key {}{}{}; {}", shown(key), where, hint, advice);
}

Field* find_field(std::vector<Field>& fields, const std::string& key) {
  for (auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

bool is_section(const std::vector<Field>& fields, const std::string& prefix) {
  for (const auto& f : fields)
    if (f.key.compare(0, prefix.size() + 1, prefix + ".") == 0) return true;
  return false;
}

// Keys older versions had and wrote into run folders (config.yaml, point.yaml): ignored with one warning per process,
// so those folders still load (cgexport, cgsample, resuming). Nothing reads them any more.
bool is_retired(const std::string& key, const std::string& where) {
  // key -> what replaced it ("" for nothing)
  static const std::map<std::string, std::string> retired = {
      {"model.max_seq_len", ""},
      {"train.val_batches", "train.val_samples (validation scores the first N samples of the val split, the same "
                            "ones whatever the layout and seed)"}};
  const auto it = retired.find(key);
  if (it == retired.end()) return false;
  static std::set<std::string> warned;
  if (warned.insert(key).second)
    spdlog::warn("config key '{}'{} is no longer used and is ignored{} (nothing to change in run folders and "
                 "checkpoints; drop it from the configs you edit)", key, where,
                 it->second.empty() ? "" : "; see " + it->second);
  return true;
}

// A map key as a name. YAML allows lists, maps and null as keys ("? [a, b]: 1"); a config has none of them.
std::string key_name(const YAML::Node& k, const std::string& prefix, const std::string& where) {
  CG_CHECK(k.IsScalar(), "config{}: a key{} must be a plain name, not {}", where,
           prefix.empty() ? "" : " in section '" + prefix + "'", k.IsNull() ? "empty" : "'" + YAML::Dump(k) + "'");
  return k.Scalar();
}

void apply_yaml(std::vector<Field>& fields, const YAML::Node& node, const std::string& prefix,
                const std::string& where, const char* advice = kListKeysAdvice) {
  // yaml-cpp keeps a repeated key, and the last one would win unnoticed: refused, naming both lines.
  std::map<std::string, std::pair<YAML::Mark, YAML::Node>> seen;  // name -> where it was first, its value
  for (const auto& kv : node) {
    const std::string name = key_name(kv.first, prefix, where);
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    const YAML::Node& v = kv.second;
    if (const auto [it, fresh] = seen.emplace(name, std::pair{kv.first.Mark(), v}); !fresh) {
      const auto& [first, before] = it->second;
      const auto line = [](const YAML::Mark& m) { return m.is_null() ? std::string("?") : std::to_string(m.line + 1); };
      if (v.IsScalar() && before.IsScalar())
        CG_FAIL("config key {} is given twice{}: {} at line {}, then {} at line {}; keep one", shown(key), where,
                shown(before.Scalar(), false), line(first), shown(v.Scalar(), false), line(kv.first.Mark()));
      CG_FAIL("config {} {} is given twice{}: at lines {} and {}; keep one{}", v.IsMap() ? "section" : "key",
              shown(key), where, line(first), line(kv.first.Mark()), v.IsMap() ? " (its keys under one heading)" : "");
    }
    if (is_retired(key, where)) continue;
    if (Field* f = find_field(fields, key)) {
      if (v.IsMap()) CG_FAIL("config key '{}'{} is a value, not a section", key, where);
      if (v.IsSequence()) {
        auto* list = std::get_if<std::vector<std::string>*>(&f->ptr);
        CG_CHECK(list, "config key '{}'{}: expected {}, got a list", key, where, a_type_name(f->ptr));
        (*list)->clear();
        for (const auto& item : v) {
          CG_CHECK(item.IsScalar(), "config key '{}'{}: list items must be plain values", key, where);
          (*list)->push_back(item.Scalar());
        }
      } else if (v.IsNull()) {
        CG_CHECK(std::holds_alternative<std::string*>(f->ptr) ||
                     std::holds_alternative<std::vector<std::string>*>(f->ptr),
                 "config key '{}'{} has no value; expected {}", key, where, a_type_name(f->ptr));
        assign(*f, "");
      } else if (auto* str = std::get_if<std::string*>(&f->ptr); str && v.Tag() == "!") {
        **str = v.Scalar();  // a quoted YAML string is taken whole: its spaces and quote characters are the value's
      } else {
        try {
          assign(*f, v.Scalar(), /*quoted=*/v.Tag() == "!");
        } catch (const Error& e) {  // say where in the file the value is, as an override says "(command line)"
          const YAML::Mark m = v.Mark();
          if (m.is_null()) throw;
          throw Error(fmt::format("{} ({}line {})", e.what(), where.empty() ? "" : where.substr(2, where.size() - 3) +
                                  ", ", m.line + 1));
        }
      }
    } else if (is_section(fields, key)) {
      CG_CHECK(v.IsMap(), "config key '{}'{} is a section: give it a map of keys, e.g. {}: {{...}}", key, where, name);
      apply_yaml(fields, v, key, where, advice);
    } else {
      // Name the first full dotted key under an unknown section, so `trian: {lr: ..}` reports 'trian.lr'.
      std::string full = key;
      YAML::Node n = v;
      while (n.IsMap() && n.size() > 0) {
        auto first = n.begin();
        full += "." + key_name(first->first, full, where);
        n.reset(first->second);  // reset, not operator=: assignment would rewrite the node n refers to
      }
      unknown_key(fields, full, where, advice);
    }
  }
}

// An override's key (trimmed; "--" in front allowed) and its value text; nullopt when it has no '='.
std::optional<std::pair<std::string, std::string>> split_override(const std::string& word) {
  const std::string w = word.rfind("--", 0) == 0 ? word.substr(2) : word;
  const size_t eq = w.find('=');
  if (eq == std::string::npos) return std::nullopt;
  return std::pair{trim(w.substr(0, eq)), w.substr(eq + 1)};
}

// `origin` says where the override came from in errors ("command line", "sweep file s.yaml: grid", ...).
void apply_override(std::vector<Field>& fields, const std::string& word, const std::string& origin) {
  const auto kv = split_override(word);
  CG_CHECK(kv.has_value(), "override {} ({}) must look like section.key=value", shown(word), origin);
  const auto& [key, value] = *kv;
  if (is_retired(key, " (" + origin + ")")) return;
  Field* f = find_field(fields, key);
  CG_CHECK(f || !is_section(fields, key), "override {} ({}) sets the section {}, not a key: name one of its keys, "
           "{}.key=value (run with --help to list them)", shown(word), origin, key, key);
  if (!f) unknown_key(fields, key, " (" + origin + ")");
  try {
    assign(*f, value);
  } catch (const Error& e) {
    throw Error(fmt::format("{} ({})", e.what(), origin));  // e.what() already names file:line
  }
}

// A key set twice by overrides of one origin (the same command line, a sweep file's one list): the later value
// would silently win, hiding a typo in a script or a sweep. Overrides of different origins are layers (a sweep
// file's overrides: < the command line < a sweep point's own setting) where the later one is meant to win.
void check_no_repeated_override(const std::vector<std::string>& overrides, const std::vector<std::string>& origins) {
  std::map<std::pair<std::string, std::string>, std::string> seen;  // (origin, key) -> first value
  for (size_t i = 0; i < overrides.size(); ++i) {
    const auto kv = split_override(overrides[i]);
    if (!kv) continue;  // apply_override says what it must look like
    const auto& [key, value] = *kv;
    const std::string origin = i < origins.size() ? origins[i] : "command line";
    const auto [it, fresh] = seen.emplace(std::pair{origin, key}, value);
    CG_CHECK(fresh, "{} is given twice {} ({}, then {}): give it once", shown(key, false),
             origin == "command line" ? std::string("on the command line") : "in " + origin, shown(it->second, false),
             shown(value, false));
  }
}

Config load_impl(const YAML::Node* root, const std::string& where, const std::vector<std::string>& overrides,
                 const std::vector<std::string>& origins = {}, bool validate = true) {
  check_no_repeated_override(overrides, origins);
  Config c;
  auto fields = fields_of(c);
  if (root && !root->IsNull()) {
    CG_CHECK(root->IsMap(), "config{} must be a map of sections (model:, data:, train:, ...)", where);
    apply_yaml(fields, *root, "", where, validate ? kListKeysAdvice : kSavedConfigAdvice);
  }
  for (size_t i = 0; i < overrides.size(); ++i)
    apply_override(fields, overrides[i], i < origins.size() ? origins[i] : "command line");
  if (validate) validate_config(c);
  return c;
}

// The one YAML document of a config; a second one (after a `---` line) would be ignored by YAML::Load.
YAML::Node load_one_document(const std::string& text, const std::string& where) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    CG_FAIL("{}: YAML syntax error: {}", where, e.what());
  }
  CG_CHECK(docs.size() <= 1, "{}: {} YAML documents (separated by '---' lines), but a config is one: merge them into "
           "one, or remove the '---' between them", where, docs.size());
  return docs.empty() ? YAML::Node() : docs.front();
}

// "; it holds a.yaml, b.yaml": the config files in a folder given in place of one (the first few, sorted).
std::string yaml_files_in(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string ext = it->path().extension().string();
    if (ext == ".yaml" || ext == ".yml") names.push_back(it->path().filename().string());
  }
  if (names.empty()) return "";
  std::sort(names.begin(), names.end());
  std::string out = "; it holds ";
  for (size_t i = 0; i < names.size() && i < 4; ++i) out += (i ? ", " : "") + names[i];
  return out + (names.size() > 4 ? fmt::format(" and {} more", names.size() - 4) : "");
}

YAML::Node read_yaml_file(const std::string& yaml_path) {
  // Said here, with the fix, before read_file's plainer "cannot read ...: No such file or directory".
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto st = fs::status(yaml_path, ec);
  const std::string from = fs::path(yaml_path).is_relative() ? " in " + fs::current_path(ec).string() : "";
  CG_CHECK(st.type() != fs::file_type::not_found, "config file {} does not exist{}: give the path of a CONFIG.yaml, "
           "e.g. configs/tiny.yaml", shown(yaml_path), from);
  CG_CHECK(!fs::is_directory(st), "config file {} is a folder: give the YAML file itself (DIR/CONFIG.yaml){}",
           shown(yaml_path), yaml_files_in(yaml_path));
  return load_one_document(read_file(yaml_path, "config file"), yaml_path);
}

}  // namespace

std::optional<double> decimal_number(const std::string& v) {
  if (number_problem(v)) return std::nullopt;  // the same numbers as a float key takes (no spaces: this is text)
  const double x = std::strtod(v.c_str(), nullptr);
  if (!std::isfinite(x) || std::fabs(x) >= 1e16) return std::nullopt;
  return x;
}

int64_t integer_value(const std::string& what, const std::string& text, bool quoted) {
  int64_t v = 0;
  assign(Field{what, FieldPtr(&v), "", {}}, text, quoted, what);
  return v;
}

void validate_config(const Config& c) {
  for (const auto& f : fields_of(c)) check_rule(f);
  const auto& t = c.lora.targets;
  CG_CHECK(std::find(t.begin(), t.end(), "all-linear") == t.end() || t.size() == 1,
           "config key 'lora.targets': all-linear stands alone; got {}", value_string(FieldPtr(const_cast<std::vector<std::string>*>(&t))));
  const auto& sm = c.sample;
  CG_CHECK(sm.conditions_from.empty() || (sm.formula.empty() && sm.spacegroup == 0 && sm.formation_energy.empty() &&
                                          sm.band_gap.empty() && sm.e_above_hull.empty() && sm.task == "generate"),
           "sample.conditions_from={} draws every sample's conditions from a CSV; it does not combine with the fixed "
           "sample.formula / spacegroup / formation_energy / band_gap / e_above_hull or with sample.task=infill: "
           "unset one side", shown(sm.conditions_from, false));
  CG_CHECK(sm.task != "infill" || (sm.formula.empty() && sm.spacegroup == 0 && sm.formation_energy.empty() &&
                                   sm.band_gap.empty() && sm.e_above_hull.empty()),
           "sample.task=infill asks for a masked element of the test crystals; the conditions sample.formula / "
           "spacegroup / formation_energy / band_gap / e_above_hull are for task=generate: unset them");
  // A band gap and an energy above the hull are >= 0 by definition: a negative target is a prompt no training
  // crystal ever had (the sign dropped, or formation energy meant).
  for (const auto& [key, value] : {std::pair{"sample.band_gap", sm.band_gap}, {"sample.e_above_hull", sm.e_above_hull}})
    CG_CHECK(value.empty() || std::strtod(value.c_str(), nullptr) >= 0, "config key '{}' is {}, but it is >= 0 by "
             "definition (eV{}); give a value >= 0{}", key, shown(value, false),
             std::string(key) == "sample.band_gap" ? "" : "/atom",
             std::string(key) == "sample.band_gap" ? "" : " (a negative energy is sample.formation_energy)");
  CG_CHECK(c.lora.enabled || c.lora.init_adapter.empty(), "config key 'lora.init_adapter' ({}) starts LoRA adapters, "
           "but lora.enabled=false trains the whole model: drop lora.init_adapter, or set lora.enabled=true",
           shown(c.lora.init_adapter, false));
}

std::string resolve_csv(const std::string& value, const Config& c) {
  if (value == "data.train_csv") return c.data.train_csv;
  if (value == "data.test_csv") return c.data.test_csv;
  if (value == "data.val_csv") return c.data.val_csv;
  const bool key_like =
      value.rfind("data.", 0) == 0 && value.size() > 9 && value.compare(value.size() - 4, 4, "_csv") == 0;
  CG_CHECK(!key_like, "{} is no config key: give data.train_csv, data.val_csv or data.test_csv (that key's file), or "
           "a path", shown(value));
  return value;
}

std::string sample_out_dir(const Config& c) {
  if (!c.sample.out_dir.empty()) return c.sample.out_dir;
  return (std::filesystem::path(c.train.run_dir) / "samples").string();
}

std::string eval_input(const Config& c) { return c.eval.input.empty() ? sample_out_dir(c) : c.eval.input; }

Config load_config_string(const std::string& yaml_text, const std::vector<std::string>& overrides) {
  YAML::Node root = load_one_document(yaml_text, "config");
  return load_impl(&root, "", overrides);
}

Config load_config(const std::string& yaml_path, const std::vector<std::string>& overrides,
                   const std::vector<std::string>& origins) {
  if (yaml_path.empty()) return load_impl(nullptr, "", overrides, origins);
  const YAML::Node root = read_yaml_file(yaml_path);
  return load_impl(&root, fmt::format(" (in {})", yaml_path), overrides, origins);
}

Config load_saved_config(const std::string& yaml_path) {
  const YAML::Node root = read_yaml_file(yaml_path);
  return load_impl(&root, fmt::format(" (in {})", yaml_path), {}, {}, /*validate=*/false);
}

std::string to_yaml(const Config& c) {
  std::string out, section;
  for (const auto& f : fields_of(c)) {
    std::string sec = section_of(f.key);
    if (sec != section) {
      out += fmt::format("{}{}:\n", out.empty() ? "" : "\n", sec);
      section = sec;
    }
    out += fmt::format("  {}: {}  # {}\n", f.key.substr(sec.size() + 1), yaml_value(f.ptr), f.doc);
  }
  return out;
}

std::string config_hash(const Config& c) {
  std::string canon;
  for (const auto& f : fields_of(c)) canon += f.key + "=" + yaml_value(f.ptr) + "\n";
  return sha256_hex(canon.data(), canon.size()).substr(0, 16);
}

std::vector<std::string> config_differences(const Config& before, const Config& after) {
  auto fa = fields_of(before), fb = fields_of(after);
  std::vector<std::string> out;
  for (size_t i = 0; i < fa.size(); ++i)
    if (yaml_value(fa[i].ptr) != yaml_value(fb[i].ptr))
      out.push_back(fmt::format("{} {} -> {}", fa[i].key, value_string(fa[i].ptr), value_string(fb[i].ptr)));
  return out;
}

bool operator==(const Config& a, const Config& b) { return config_differences(a, b).empty(); }

namespace {

std::optional<Config> parse_cli_impl(int argc, char** argv, const std::string& tool, const std::string& summary,
                                     std::vector<std::string>* positional) {
  std::string yaml_path;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w == "--help" || w == "-h") {
      std::cout << config_help(tool, summary);
      return std::nullopt;
    }
    auto ends_with = [&](const char* suf) {
      std::string s(suf);
      return w.size() >= s.size() && w.compare(w.size() - s.size(), s.size(), s) == 0;
    };
    // key=value where the key is dotted words; a config file's path (sweeps/lr=1e-3/config.yaml, lr=1e-3/a.yaml
    // from inside sweeps/) is not an override.
    const size_t eq = w.find('=');
    const bool yaml_name = ends_with(".yaml") || ends_with(".yml");
    std::error_code ec;
    const bool config_file = yaml_name && std::filesystem::is_regular_file(w, ec);
    if (eq != std::string::npos && eq > 0 && w.find('/') > eq && !config_file) {
      overrides.push_back(w);
    } else if (yaml_name) {
      CG_CHECK(yaml_path.empty(), "{}: two config files given ({} and {}); pass one and use key=value overrides",
               tool, shown(yaml_path, false), shown(w, false));
      yaml_path = w;
    } else if (w.rfind("-", 0) == 0) {
      CG_FAIL("{}: unknown option {}; run {} --help", tool, shown(w), tool);
    } else {
      // What the word most likely meant: a config file under another name, a folder, an override without its value.
      std::string hint = "expected CONFIG.yaml or section.key=value";
      if (std::filesystem::is_directory(w, ec))
        hint = "it is a folder; give the config file (CONFIG.yaml) or section.key=value" + yaml_files_in(w);
      else if (std::filesystem::is_regular_file(w, ec))
        hint = "a config file is read when its name ends in .yaml or .yml: rename it (or give section.key=value)";
      else if (std::filesystem::is_regular_file(w + ".yaml", ec))  // configs/tiny for configs/tiny.yaml
        hint = fmt::format("did you mean {}?", shown(w + ".yaml", false));
      else if (std::filesystem::is_regular_file(w + ".yml", ec))
        hint = fmt::format("did you mean {}?", shown(w + ".yml", false));
      else if (eq == std::string::npos && w.find('.') != std::string::npos && w.find('/') == std::string::npos)
        hint = fmt::format("an override needs a value: write {}=VALUE", w);
      CG_CHECK(positional, "{}: unexpected argument {}: {}", tool, shown(w), hint);
      positional->push_back(w);
    }
  }
  return load_config(yaml_path, overrides);
}

}  // namespace

std::optional<Config> parse_cli(int argc, char** argv, const std::string& tool, const std::string& summary,
                                std::vector<std::string>* positional) {
  // Every rank of a job gets the same words and reads the same file: an error in them is every rank's, and said once.
  try {
    return parse_cli_impl(argc, argv, tool, summary, positional);
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw InputError(e.what());
  }
}

}  // namespace cg
