// CIF 1.1 syntax (data/cif_syntax.h): tokens, then data blocks of items and loops.
#include "data/cif_syntax.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace cg::cif {
namespace {

// ---- Lexer: CIF 1.1 tokens -------------------------------------------------------------------------------------
// Whitespace separates tokens and line breaks mean nothing, except that a line starting with ';' opens a text field
// that runs to the next line starting with ';'. A quoted value ('...' or "...") ends at its quote followed by
// whitespace or the line's end (so 'O'Brien' is one value); an unquoted '#' starts a comment.

struct Token {
  std::string text;
  bool quoted = false;  // quoted or a text field: always a value, never a tag or keyword
  int line = 0;
};

bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Appends the tokens of one line (from column `i`) to *out; false with *why on an unterminated quote.
bool lex_line(std::string_view line, size_t i, int line_no, std::vector<Token>* out, std::string* why) {
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size() || line[i] == '#') break;
    const char q = line[i];
    if (q == '\'' || q == '"') {
      size_t end = i + 1;
      while (end < line.size() && !(line[end] == q && (end + 1 == line.size() || is_space(line[end + 1])))) ++end;
      if (end >= line.size()) {
        *why = fmt::format("line {}: quoted value {} has no closing {} (a quote closes only before a space or the "
                           "line's end)", line_no, std::string(line.substr(i)), q);
        return false;
      }
      out->push_back({std::string(line.substr(i + 1, end - i - 1)), true, line_no});
      i = end + 1;
    } else {
      const size_t start = i;
      while (i < line.size() && !is_space(line[i])) ++i;
      out->push_back({std::string(line.substr(start, i - start)), false, line_no});
    }
  }
  return true;
}

bool lex_cif(std::string_view cif, std::vector<Token>* out, std::string* why) {
  if (cif.substr(0, 3) == "\xEF\xBB\xBF") cif.remove_prefix(3);  // a UTF-8 byte-order mark
  int line_no = 0;
  bool in_text = false;
  int text_line = 0;
  std::string text;
  size_t pos = 0;
  while (pos < cif.size()) {
    size_t nl = cif.find('\n', pos);
    if (nl == std::string_view::npos) nl = cif.size();
    std::string_view line = cif.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (in_text) {
      if (line.empty() || line[0] != ';') {
        text += line;
        text += '\n';
        continue;
      }
      out->push_back({trim(text), true, text_line});
      in_text = false;
      if (!lex_line(line, 1, line_no, out, why)) return false;
      continue;
    }
    if (!line.empty() && line[0] == ';') {
      in_text = true;
      text_line = line_no;
      text = std::string(line.substr(1)) + "\n";
      continue;
    }
    if (!lex_line(line, 0, line_no, out, why)) return false;
  }
  if (in_text) {
    *why = fmt::format("line {}: text field opened with ';' is never closed (a line starting with ';' closes it)",
                       text_line);
    return false;
  }
  return true;
}

// ---- Parser: data items and loops -------------------------------------------------------------------------------

std::string lower(std::string s) {
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool is_tag(const Token& t) { return !t.quoted && !t.text.empty() && t.text[0] == '_'; }
bool is_keyword(const Token& t) {
  if (t.quoted) return false;
  const std::string k = lower(t.text);
  return k == "loop_" || starts_with(k, "data_") || starts_with(k, "save_") || starts_with(k, "global_") ||
         k == "stop_";
}

// One block's tokens [i, end) (data_ headers excluded) -> items and loops.
bool parse_block(const std::vector<Token>& tok, size_t i, size_t end, CifBlock* b, std::string* why) {
  while (i < end) {
    const Token& t = tok[i];
    const std::string k = t.quoted ? std::string() : lower(t.text);
    if (k == "loop_") {
      Loop l;
      for (++i; i < end && is_tag(tok[i]); ++i) l.names.push_back(tag_key(tok[i].text));
      std::vector<std::string> values;
      for (; i < end && !is_tag(tok[i]) && !is_keyword(tok[i]); ++i) values.push_back(tok[i].text);
      if (l.names.empty() || values.empty()) {
        *why = fmt::format("line {}: loop_ without {}", t.line, l.names.empty() ? "tags" : "values");
        return false;
      }
      if (values.size() % l.names.size() != 0) {
        *why = fmt::format("line {}: loop_ of {} columns ({}, ...) holds {} values, not a whole number of rows",
                           t.line, l.names.size(), l.names[0], values.size());
        return false;
      }
      for (size_t r = 0; r < values.size(); r += l.names.size())
        l.rows.emplace_back(values.begin() + long(r), values.begin() + long(r + l.names.size()));
      b->loops.push_back(std::move(l));
    } else if (is_keyword(t)) {
      *why = fmt::format("line {}: '{}' (save frames, global blocks) is not read; give data_ blocks only", t.line,
                         t.text);
      return false;
    } else if (is_tag(t)) {
      if (i + 1 >= end || is_tag(tok[i + 1]) || is_keyword(tok[i + 1])) {
        *why = fmt::format("line {}: CIF item {} has no value", t.line, t.text);
        return false;
      }
      const std::string key = tag_key(t.text);
      auto [it, added] = b->items.emplace(key, tok[i + 1].text);
      if (!added && it->second != tok[i + 1].text) {
        *why = fmt::format("line {}: CIF item {} is given twice, with another value than {} '{}' (tags are read in any "
                           "case, '.' as '_'); keep one of them", t.line, t.text, b->spelled[key].front(), it->second);
        return false;
      }
      b->spelled[key].push_back(t.text);  // the same value again: one item, read once
      i += 2;
    } else {
      *why = fmt::format("line {}: value '{}' belongs to no item or loop", t.line, t.text);
      return false;
    }
  }
  return true;
}

// The data blocks of a token stream: name and token range, headers excluded. Tokens before the first data_ header
// are a block only when there is no header at all (a bare CIF fragment); otherwise *why names the first of them.
struct BlockRange {
  std::string name;
  size_t begin = 0, end = 0;
  int line = 0;  // of the data_ header
};
bool split_blocks(const std::vector<Token>& tok, std::vector<BlockRange>* out, std::string* why) {
  for (size_t i = 0; i < tok.size(); ++i) {
    if (tok[i].quoted || !starts_with(lower(tok[i].text), "data_")) continue;
    if (out->empty() && i > 0) {
      *why = fmt::format("line {}: '{}' comes before the first data_ block", tok[0].line, tok[0].text);
      return false;
    }
    if (!out->empty()) out->back().end = i;
    out->push_back({tok[i].text.substr(5), i + 1, tok.size(), tok[i].line});
  }
  if (out->empty() && !tok.empty()) out->push_back({"", 0, tok.size(), tok[0].line});
  return true;
}

// Whether a block describes a structure (has cell or atom-site items), unlike the publication blocks
// (data_global) that IUCr and COD files start with.
bool describes_structure(const CifBlock& b) {
  for (const auto& [k, v] : b.items)
    if (starts_with(k, "_cell_") || starts_with(k, "_atom_site_")) return true;
  for (const auto& l : b.loops)
    for (const auto& n : l.names)
      if (starts_with(n, "_atom_site_")) return true;
  return false;
}

}  // namespace

bool parse_blocks(std::string_view cif, std::vector<ParsedBlock>* out, std::string* why) {
  std::vector<Token> tokens;
  std::vector<BlockRange> ranges;
  if (!lex_cif(cif, &tokens, why) || !split_blocks(tokens, &ranges, why)) return false;
  for (const BlockRange& r : ranges) {
    ParsedBlock p{r.name, r.line};
    p.ok = parse_block(tokens, r.begin, r.end, &p.block, &p.why);
    if (!p.ok || describes_structure(p.block) || ranges.size() == 1) out->push_back(std::move(p));
  }
  if (out->empty()) {
    *why = ranges.empty() ? "the CIF is empty"
                          : "no data_ block describes a structure (no _cell_ or _atom_site_ items)";
    return false;
  }
  return true;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string tag_key(const std::string& tag) {
  std::string k = lower(tag);
  std::replace(k.begin(), k.end(), '.', '_');
  return k;
}

const Loop* find_table(const CifBlock& b, const std::string& tag, const std::string& category, Loop* scratch) {
  for (const auto& l : b.loops)
    if (l.find(tag) >= 0) return &l;
  if (b.items.count(tag) == 0) return nullptr;
  scratch->rows.emplace_back();
  for (const auto& [k, v] : b.items)
    if (starts_with(k, category.c_str())) {
      scratch->names.push_back(k);
      scratch->rows.back().push_back(v);
    }
  return scratch;
}

bool cif_number(const std::string& s, double* v) {
  std::string t = s.substr(0, s.find('('));
  // Decimal only: strtod also reads hex floats (0x1p4 = 16), which no CIF writes.
  if (t.empty() || t.find_first_of("xX") != std::string::npos) return false;
  char* end = nullptr;
  *v = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && std::isfinite(*v);
}

bool failed(const std::string& id, const std::string& why, std::string* reason) {
  *reason = (id.empty() ? std::string("crystal") : id) + ": " + why;
  return false;
}

}  // namespace cg::cif
