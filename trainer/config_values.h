// Config values as text, for the config code (trainer/config*.cpp): a field's value printed (for --help, YAML and
// messages), the text of an override or a YAML scalar read as a string, a list or a decimal number, and the rules a
// value must keep. How the readers are used on a field: assign() in trainer/config.cpp. Internal to cg_config.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/config_fields.h"

namespace cg::config_detail {

// "int", "list": a field's type, for --help and docs/config.md.
const char* type_name(const FieldPtr& p);
// "an int", "a list": the type with its article, for messages.
std::string a_type_name(const FieldPtr& p);
// "train" for "train.lr".
std::string section_of(const std::string& key);
// s without leading and trailing spaces, tabs and line breaks.
std::string trim(const std::string& s);
// A key, value or command-line word echoed in an error: 'text' (bare when !quoted). A control character (\v, \f,
// ESC, a tab) prints invisibly and a non-breaking or zero-width space looks like nothing or a plain space, so
// "unknown config key 'parallel.tp' ... did you mean 'parallel.tp'?" or "'fp32' is not allowed; allowed: fp32 | ..."
// would hide what is wrong: those are escaped (\t, \v, \x1b, \u00a0; a byte that is no UTF-8 as \xNN), always in
// quotes, and the message says so.
std::string shown(const std::string& s, bool quoted = true);
// Human/YAML form of a value: lists as [a, b], strings bare (quoting is the caller's business).
std::string value_string(const FieldPtr& p);
// A value as the YAML config writes it: strings and list items quoted.
std::string yaml_value(const FieldPtr& p);

// An override's or a YAML scalar's text (trimmed) as a string key's value: a quoted string decoded as YAML does;
// YAML's null, a list or a map refused with what to write.
std::string string_value(const std::string& key, const std::string& raw);
// [a, b], a,b or a quoted string of either; items plain or quoted. A trailing comma ends the list ([a,] is [a]).
std::vector<std::string> list_value(const std::string& key, const std::string& raw_in);

// Numbers are decimal, as YAML 1.2's core schema writes them: [-+]? digits with an optional fraction and exponent
// (5, +5, 5., .5, 1.5e-3, 2E5). Other spellings that strtod / strtoll would take, or that YAML readers disagree on,
// are refused with what to write instead.
struct DecimalParts {
  bool negative = false;
  std::string int_digits, frac_digits;  // "12" and "5" in 12.5e3
  int64_t exponent = 0;                 // 3 in 12.5e3 (clamped to +-100000: beyond, any nonzero value is out of range)
};
// `s` split into sign, digits and exponent; nullopt when it is not a decimal number.
std::optional<DecimalParts> decimal_parts(const std::string& s);
// Why `s` (trimmed, unquoted) is not a decimal number, with what to write ("" when nothing more can be said, as for
// "ten"); nullopt when it is one.
std::optional<std::string> number_problem(const std::string& s);
// A decimal number that is whole, exactly: 100000 for 1e5 and 1.0e5, nullopt for 1.5 or 1e-3. *overflow when it is
// whole but beyond 64 bits.
std::optional<std::string> whole_digits(const DecimalParts& p, bool* overflow);
// An override's or a YAML scalar's text for a bool or number key: trimmed, and YAML's quotes decoded when the
// override has them (`quoted`: the file's scalar was quoted, and YAML has decoded it). "16" reads as 16 and "true" as
// true in the file and on the command line alike: the key's type says what the text is, and quotes cannot change it.
std::string scalar_text(const std::string& key, const std::string& raw_in, bool quoted);

// A rule as --help and docs/config.md state it: "[0, 1]", "> 0", "a | b".
std::string describe_rule(const Rule& r);
// Throws, naming the key, when the field's value breaks its rule (or does not fit a 32-bit float).
void check_rule(const Field& f);

}  // namespace cg::config_detail
