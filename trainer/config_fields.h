// The config's field list, for the config code (trainer/config*.cpp): each field of cg::Config (trainer/config.h)
// with its dotted key, a pointer to it, its doc string and the rule its value must keep. Internal to cg_config.
#pragma once
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "trainer/config.h"

namespace cg::config_detail {

using FieldPtr = std::variant<bool*, int64_t*, uint64_t*, double*, std::string*, std::vector<std::string>*>;

// What a value may be, beyond its type. Numbers: [min, max] (an open end when *_open); strings: one of `choices`
// (lists: each element), non-empty, or a number-or-empty.
struct Rule {
  std::optional<double> min, max;
  bool min_open = false, max_open = false;
  std::vector<std::string> choices;
  bool nonempty = false;
  bool numeric_or_empty = false;
  bool space_group = false;  // an int that may be written as its space group's Hermann-Mauguin symbol (Fm-3m)
};

// One config key: its dotted name, where its value lives, its doc, its rule.
struct Field {
  std::string key;
  FieldPtr ptr;
  std::string doc;
  Rule rule;
};

// Every field of `c`, in the field list's order (the order of --help, to_yaml and docs/config.md).
std::vector<Field> fields_of(Config& c);
std::vector<Field> fields_of(const Config& c);

}  // namespace cg::config_detail
