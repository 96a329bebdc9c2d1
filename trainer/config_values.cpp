// Config values as text (trainer/config_values.h): printing, reading strings, lists and decimal numbers as YAML
// would, and checking a value against its rule.
#include "trainer/config_values.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/error.h"

namespace cg::config_detail {

const char* type_name(const FieldPtr& p) {
  struct V {
    const char* operator()(bool*) const { return "bool"; }
    const char* operator()(int64_t*) const { return "int"; }
    const char* operator()(uint64_t*) const { return "uint"; }
    const char* operator()(double*) const { return "float"; }
    const char* operator()(std::string*) const { return "string"; }
    const char* operator()(std::vector<std::string>*) const { return "list"; }
  };
  return std::visit(V{}, p);
}

// "an int", "a list": the type with its article, for messages.
std::string a_type_name(const FieldPtr& p) {
  const std::string t = type_name(p);
  return (t == "int" ? "an " : "a ") + t;
}

std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string shown(const std::string& s, bool quoted) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c), ++i;
    } else if (c < 0x80) {
      const char* named[] = {"\\t", "\\n", "\\v", "\\f", "\\r"};
      out += c >= '\t' && c <= '\r' ? named[c - '\t'] : fmt::format("\\x{:02x}", c), ++i;
    } else {  // a UTF-8 sequence as its code point; a byte of none as \xNN
      const size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
      uint32_t cp = n == 1 ? c : c & (0x7f >> n);
      bool ok = n > 1 && i + n <= s.size();
      for (size_t k = 1; ok && k < n; ++k) {
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3f);
      }
      out += ok ? fmt::format("\\u{:04x}", cp) : fmt::format("\\x{:02x}", c);
      i += ok ? n : 1;
    }
  }
  if (out == s) return quoted ? "'" + s + "'" : s;
  return "'" + out + "' (with characters that are not printable ASCII, shown escaped)";
}

namespace {

std::string format_double(double v) {
  std::string s = fmt::format("{}", v);  // shortest representation that reads back exactly
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

// Human/YAML form of a value: lists as [a, b], strings bare (quoting is the caller's business).
std::string value_string(const FieldPtr& p) {
  struct V {
    std::string operator()(bool* v) const { return *v ? "true" : "false"; }
    std::string operator()(int64_t* v) const { return std::to_string(*v); }
    std::string operator()(uint64_t* v) const { return std::to_string(*v); }
    std::string operator()(double* v) const { return format_double(*v); }
    std::string operator()(std::string* v) const { return *v; }
    std::string operator()(std::vector<std::string>* v) const {
      std::string s = "[";
      for (size_t i = 0; i < v->size(); ++i) s += (i ? ", " : "") + (*v)[i];
      return s + "]";
    }
  };
  return std::visit(V{}, p);
}

namespace {

std::string yaml_quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(ch));
        else out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

std::string yaml_value(const FieldPtr& p) {
  if (auto* s = std::get_if<std::string*>(&p)) return yaml_quote(**s);
  if (auto* l = std::get_if<std::vector<std::string>*>(&p)) {
    std::string s = "[";
    for (size_t i = 0; i < (*l)->size(); ++i) s += (i ? ", " : "") + yaml_quote((**l)[i]);
    return s + "]";
  }
  return value_string(p);
}

namespace {


// A string or list value as text (an override, or a plain YAML scalar) reads as the same text would in the config
// file, except that '#' starts no comment: "..." and '...' are YAML's quotes (decoded, escapes and all), and what
// YAML would read as another type (null, a list, a map) is refused with what to write, not taken as text.

bool is_null_word(const std::string& s) { return s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// The closing quote of the quoted scalar that opens at s[from] (' or "), or npos: '' is a quote inside '...',
// a backslash escapes the next character inside "...".
size_t closing_quote(const std::string& s, size_t from) {
  const char q = s[from];
  for (size_t i = from + 1; i < s.size(); ++i) {
    if (q == '"' && s[i] == '\\') {
      ++i;
    } else if (s[i] == q) {
      if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') ++i;
      else return i;
    }
  }
  return std::string::npos;
}

// The text of the quoted scalar s[from..end] (end: its closing quote), decoded as YAML does.
std::string decode_quoted(const std::string& key, const std::string& s, size_t from, size_t end) {
  const std::string quoted = s.substr(from, end - from + 1);
  try {
    return YAML::Load(quoted).Scalar();
  } catch (const YAML::Exception& e) {
    CG_FAIL("config key '{}': {} is not a valid YAML quoted string ({}); inside \"...\" a backslash starts an escape "
            "(\\\\ for a backslash), or use '...', where only '' is special", key, shown(quoted, false), e.msg);
  }
}

// A value that opens a quote must be that quoted string, whole.
[[noreturn]] void fail_open_quote(const std::string& key, const std::string& raw, size_t at, bool closed) {
  const char q = raw[at];
  CG_FAIL("config key '{}': in {}, the {} at {} {}: a value (or list item) that starts with a quote is a YAML "
          "quoted string, whole ('' for a ' inside '...', \\\" for a \" inside \"...\"); quote all of it, or, for "
          "text that starts with a quote character, put it inside the other quotes (e.g. {}: these are the quotes the "
          "tool receives, inside the shell's own)", key, shown(raw, false),
          q == '"' ? "double quote" : "single quote", at == 0 ? "the start" : "position " + std::to_string(at + 1),
          closed ? "closes before the value's end" : "never closes",
          q == '"' ? "'\"a b'" : "\"'a b\"");
}

// The quoted string that is all of raw (raw[0] a quote), decoded.
std::string whole_quoted(const std::string& key, const std::string& raw) {
  const size_t end = closing_quote(raw, 0);
  if (end != raw.size() - 1) fail_open_quote(key, raw, 0, end != std::string::npos);
  return decode_quoted(key, raw, 0, end);
}

// How to write TEXT quoted, as the tool must receive it and from a shell (whose own quotes it removes).
std::string quote_hint(const std::string& key, const std::string& text) {
  return fmt::format("\"{}\" (from a shell: {}='\"{}\"')", text, key, text);
}

// YAML's null, a list or a map where text is expected: the file would not give text either, so say what to write.
void refuse_other_type(const std::string& key, const std::string& raw, bool list) {
  if (is_null_word(raw))
    CG_FAIL("config key '{}': {} is YAML's null; write {}= (nothing after '=') for {}, or quote it for the text: {}",
            key, shown(raw), key, list ? "an empty list" : "an empty value", quote_hint(key, raw));
  if (!list && (raw[0] == '[' || raw[0] == '{'))
    CG_FAIL("config key '{}' is a string, and {} reads as a YAML {}; quote it for the text: {}", key, shown(raw, false),
            raw[0] == '[' ? "list" : "map", quote_hint(key, raw));
  if (list && raw[0] == '{')
    CG_FAIL("config key '{}': expected a list, got the map {}; write [a, b] or a,b", key, shown(raw, false));
}

}  // namespace

std::string string_value(const std::string& key, const std::string& raw) {
  if (raw.empty()) return raw;
  if (raw[0] == '"' || raw[0] == '\'') return whole_quoted(key, raw);
  refuse_other_type(key, raw, false);
  return raw;
}

// [a, b], a,b or a quoted string of either; items plain or quoted. A trailing comma ends the list ([a,] is [a]).
std::vector<std::string> list_value(const std::string& key, const std::string& raw_in) {
  std::string s = raw_in;
  if (!s.empty() && (s[0] == '"' || s[0] == '\'')) s = trim(whole_quoted(key, s));  // as a quoted scalar in the file
  std::vector<std::string> out;
  if (s.empty()) return out;
  refuse_other_type(key, s, true);
  if (s[0] == '[') {
    CG_CHECK(s.back() == ']', "config key '{}': {} opens '[' but does not end with ']'; write [a, b]", key,
             shown(raw_in, false));
    s = trim(s.substr(1, s.size() - 2));
    if (s.empty()) return out;
  }
  for (size_t i = 0; i <= s.size();) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::string item;
    if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
      const size_t end = closing_quote(s, i);
      size_t next = end == std::string::npos ? end : s.find_first_not_of(" \t", end + 1);
      if (end == std::string::npos || (next != std::string::npos && s[next] != ','))
        fail_open_quote(key, s, i, end != std::string::npos);
      item = decode_quoted(key, s, i, end);
      i = next == std::string::npos ? s.size() : next;
    } else {
      const size_t comma = std::min(s.find(',', i), s.size());
      item = trim(s.substr(i, comma - i));
      CG_CHECK(item.find_first_of("[]{}") == std::string::npos && !is_null_word(item),
               "config key '{}': list item {} in {} is not a plain value (nested lists, maps and null are not "
               "items); quote the item for the text: [\"{}\"]", key, shown(item), shown(raw_in, false), item);
      i = comma;
    }
    if (i >= s.size()) {  // the last item; after a trailing comma there is none
      if (!item.empty() || out.empty() || s.back() != ',') out.push_back(item);
      break;
    }
    out.push_back(item);
    ++i;  // past the comma
  }
  return out;
}

std::optional<DecimalParts> decimal_parts(const std::string& s) {
  DecimalParts p;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) p.negative = s[i++] == '-';
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return s.substr(from, i - from);
  };
  p.int_digits = digits();
  if (i < s.size() && s[i] == '.') ++i, p.frac_digits = digits();
  if (p.int_digits.empty() && p.frac_digits.empty()) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    const bool neg = i < s.size() && s[i] == '-';
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::string e = digits();
    if (e.empty()) return std::nullopt;
    p.exponent = e.size() > 6 ? 100000 : std::min<int64_t>(std::stoll(e), 100000);
    if (neg) p.exponent = -p.exponent;
  }
  if (i != s.size()) return std::nullopt;
  return p;
}

// Why `s` (trimmed, unquoted) is not a decimal number, with what to write ("" when nothing more can be said, as for
// "ten"); nullopt when it is one.
std::optional<std::string> number_problem(const std::string& s) {
  const size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-');
  std::string lower = s.substr(sign);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  const std::string minus = sign && s[0] == '-' ? "-" : "";
  if (lower.size() > 2 && lower[0] == '0' && (lower[1] == 'x' || lower[1] == 'o')) {
    // Hexadecimal integers and floats (0x1p-10) as strtod reads them; octal as YAML 1.2 writes it.
    const bool hex = lower[1] == 'x';
    const std::string body = lower.substr(2);
    std::string decimal;
    if (body.find_first_not_of(hex ? "0123456789abcdef" : "01234567") == std::string::npos &&
        body.size() <= (hex ? 16u : 21u)) {  // fits 64 bits: the exact integer
      decimal = minus + std::to_string(std::stoull(body, nullptr, hex ? 16 : 8));
    } else if (hex) {
      char* end = nullptr;
      const double x = std::strtod(s.c_str(), &end);
      if (*end == '\0' && std::isfinite(x)) decimal = format_double(x);
    }
    return fmt::format("{} is not a decimal number; write {}", hex ? "hexadecimal" : "octal",
                       decimal.empty() ? "the value in decimal" : decimal);
  }
  if (lower == "inf" || lower == "infinity" || lower == "nan" || lower == ".inf" || lower == ".nan")
    return "give a finite decimal number";
  const auto p = decimal_parts(s);
  if (!p) {
    std::string plain = s;
    plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());
    if (plain != s && decimal_parts(plain) && plain.find_first_of("0123456789") != std::string::npos)
      return fmt::format("write {} (no '_' between digits: only YAML 1.1 reads them)", plain);
    return "";
  }
  // 010 is 8 to YAML 1.1 readers (PyYAML) and 10 to YAML 1.2 ones: which one was meant cannot be told.
  if (p->int_digits.size() > 1 && p->int_digits[0] == '0' && s.find_first_of(".eE") == std::string::npos) {
    const std::string ten = minus + p->int_digits.substr(std::min(p->int_digits.find_first_not_of('0'),
                                                                    p->int_digits.size() - 1));
    const std::string octal = p->int_digits.find_first_of("89") == std::string::npos && p->int_digits.size() <= 19
                                  ? fmt::format(" (or {}{} if octal was meant)", minus,
                                                std::stoull(p->int_digits, nullptr, 8))
                                  : "";
    return fmt::format("a leading zero reads as octal to YAML 1.1 readers (PyYAML), not to YAML 1.2 ones; write {}{}",
                       ten, octal);
  }
  return std::nullopt;
}

// A decimal number that is whole, exactly: 100000 for 1e5 and 1.0e5, nullopt for 1.5 or 1e-3. *overflow when it is
// whole but beyond 64 bits.
std::optional<std::string> whole_digits(const DecimalParts& p, bool* overflow) {
  std::string digits = p.int_digits + p.frac_digits;  // value = digits x 10^scale
  int64_t scale = p.exponent - static_cast<int64_t>(p.frac_digits.size());
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return std::string("0");
  while (scale < 0 && digits.back() == '0') digits.pop_back(), ++scale;
  if (scale < 0) return std::nullopt;
  *overflow = static_cast<int64_t>(digits.size()) + scale > 20;
  if (*overflow) return std::nullopt;
  return digits + std::string(scale, '0');
}

// An override's or a YAML scalar's text for a bool or number key: trimmed, and YAML's quotes decoded when the
// override has them (`quoted`: the file's scalar was quoted, and YAML has decoded it). "16" reads as 16 and "true" as
// true in the file and on the command line alike: the key's type says what the text is, and quotes cannot change it.
std::string scalar_text(const std::string& key, const std::string& raw_in, bool quoted) {
  const std::string raw = trim(raw_in);
  if (!quoted && !raw.empty() && (raw[0] == '"' || raw[0] == '\'')) return trim(whole_quoted(key, raw));
  return raw;
}

std::string describe_rule(const Rule& r) {
  std::string s;
  if (!r.choices.empty()) {
    for (size_t i = 0; i < r.choices.size(); ++i) s += (i ? " | " : "") + r.choices[i];
  }
  if (r.min || r.max) {
    if (r.min && r.max) {
      s = fmt::format("{}{}, {}{}", r.min_open ? "(" : "[", *r.min, *r.max, r.max_open ? ")" : "]");
    } else if (r.min) {
      s = fmt::format("{} {}", r.min_open ? ">" : ">=", *r.min);
    } else {
      s = fmt::format("{} {}", r.max_open ? "<" : "<=", *r.max);
    }
  }
  if (r.nonempty) s = s.empty() ? "non-empty" : s + " (non-empty)";
  if (r.numeric_or_empty) s = "a number or empty";
  return s;
}

void check_rule(const Field& f) {
  const Rule& r = f.rule;
  auto check_number = [&](double x) {
    bool ok = (!r.min || (r.min_open ? x > *r.min : x >= *r.min)) && (!r.max || (r.max_open ? x < *r.max : x <= *r.max));
    CG_CHECK(ok, "config key '{}': {} is out of range; allowed: {}{}", f.key, value_string(f.ptr), describe_rule(r),
             r.space_group ? " (the number of a space group, 1..230, or 0 for none), or the space group's "
                             "Hermann-Mauguin symbol (Fm-3m)" : "");
  };
  auto check_choice = [&](const std::string& v) {
    if (r.choices.empty()) return;
    CG_CHECK(std::find(r.choices.begin(), r.choices.end(), v) != r.choices.end(),
             "config key '{}': {} is not allowed; allowed: {}", f.key, shown(v), describe_rule(r));
  };
  if (auto* p = std::get_if<int64_t*>(&f.ptr)) check_number(static_cast<double>(**p));
  if (auto* p = std::get_if<uint64_t*>(&f.ptr)) check_number(static_cast<double>(**p));
  if (auto* p = std::get_if<double*>(&f.ptr)) {
    // The values are used as 32-bit floats (learning rate, epsilon, alpha, ...): 1e300 would overflow, 1e-300 be 0.
    const double x = **p, a = std::fabs(x);
    CG_CHECK(x == 0 || (a >= std::numeric_limits<float>::min() && a <= std::numeric_limits<float>::max()),
             "config key '{}': {} does not fit a 32-bit float, as which it is used (magnitudes from 1.2e-38 to "
             "3.4e38, or 0)", f.key, value_string(f.ptr));
    check_number(x);
  }
  if (auto* p = std::get_if<std::string*>(&f.ptr)) {
    CG_CHECK(!r.nonempty || !(*p)->empty(), "config key '{}' must not be empty", f.key);
    if (!(*p)->empty() || !r.choices.empty()) check_choice(**p);
    if (r.numeric_or_empty && !(*p)->empty()) {
      const auto why = number_problem(**p);
      CG_CHECK(decimal_number(**p), "config key '{}': {} is not a finite decimal number{}; give one (e.g. 1.25) or "
               "leave it empty", f.key, shown(**p), why && !why->empty() ? " (" + *why + ")" : "");
    }
  }
  if (auto* p = std::get_if<std::vector<std::string>*>(&f.ptr)) {
    CG_CHECK(!r.nonempty || !(*p)->empty(), "config key '{}' must list at least one value; allowed: {}", f.key,
             describe_rule(r));
    for (const auto& v : **p) check_choice(v);
  }
}

}  // namespace cg::config_detail
