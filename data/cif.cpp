// CIF reader: CIF 1.1 syntax, symmetry expanded to the full cell.
#include "data/cif.h"
#include "data/space_groups.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "common/error.h"
#include "data/elements.h"

namespace cg {
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

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Tags are case-insensitive and compared in lower case; DDLm's "_atom_site.fract_x" is CIF 1.1's "_atom_site_fract_x".
std::string tag_key(const std::string& tag) {
  std::string k = lower(tag);
  std::replace(k.begin(), k.end(), '.', '_');
  return k;
}

bool is_tag(const Token& t) { return !t.quoted && !t.text.empty() && t.text[0] == '_'; }
bool is_keyword(const Token& t) {
  if (t.quoted) return false;
  const std::string k = lower(t.text);
  return k == "loop_" || starts_with(k, "data_") || starts_with(k, "save_") || starts_with(k, "global_") ||
         k == "stop_";
}

struct Loop {
  std::vector<std::string> names;  // tag keys
  std::vector<std::vector<std::string>> rows;
  int find(const std::string& name) const {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return int(i);
    return -1;
  }
};

struct CifBlock {
  std::map<std::string, std::string> items;    // tag key -> value
  // tag key -> the tags as written, in file order (pymatgen tells case apart): one item may be given in two
  // spellings with one value (a writer giving both "_space_group.IT_number" and "_space_group_IT_number")
  std::map<std::string, std::vector<std::string>> spelled;
  std::vector<Loop> loops;
};

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

// The loop that holds `tag`; else, when `tag` is a plain item (CIF allows a one-row loop written as items), *scratch
// filled with every item starting with `category` as one row; else null.
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

// ---- Values --------------------------------------------------------------------------------------------------------

// CIF number: "0.123", "1.0", "0.1234(5)" (standard uncertainty dropped). False when not a number.
bool cif_number(const std::string& s, double* v) {
  std::string t = s.substr(0, s.find('('));
  // Decimal only: strtod also reads hex floats (0x1p4 = 16), which no CIF writes.
  if (t.empty() || t.find_first_of("xX") != std::string::npos) return false;
  char* end = nullptr;
  *v = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && std::isfinite(*v);
}

// What to write instead of a symbol element_of does not read: deuterium ("D", "D1", "D+") as H, a hydroxide with
// implicit hydrogens ("OH", "OH2") as its O and H sites.
std::string unknown_element_advice(const std::string& s) {
  if (starts_with(s, "OH"))
    return "a group with implicit hydrogens (pymatgen drops such sites): list the O and H sites explicitly";
  if (!s.empty() && (s[0] == 'D' || s[0] == 'd') && (s.size() == 1 || !std::isalpha(static_cast<unsigned char>(s[1]))))
    return "deuterium (neutron structures list it): write D as H, the crystal text has no isotopes";
  return "write an element symbol (Fe, Fe2+ or a label such as Fe1) in _atom_site_type_symbol";
}

// The element a type symbol or label names, as pymatgen's CifParser._parse_symbol reads it: water labels (Hw, Ow,
// Wat) first, then the first two letters as a symbol in any case ("Fe2+", "Fe1", "CA3" -> Fe, Fe, Ca), then the
// first letter ("O2-", "HA1", "OW1" -> O, H, O). Empty when none is an element, and for "OH"/"OH2" (pymatgen drops
// such sites: implicit hydrogens).
std::string element_of(const std::string& s) {
  if (starts_with(s, "OH")) return "";
  for (const auto& [label, el] : {std::pair<const char*, const char*>{"Hw", "H"}, {"Ow", "O"}, {"Wat", "O"},
                                  {"wat", "O"}, {"NO3", "N"}})
    if (starts_with(s, label)) return el;
  auto title = [&](size_t n) {
    std::string sym = s.substr(0, n);
    sym[0] = char(std::toupper(static_cast<unsigned char>(sym[0])));
    if (n == 2) sym[1] = char(std::tolower(static_cast<unsigned char>(sym[1])));
    return sym;
  };
  if (s.size() >= 2 && is_element(title(2))) return title(2);
  if (!s.empty() && is_element(title(1))) return title(1);
  return "";
}

// ---- Symmetry ------------------------------------------------------------------------------------------------------

bool is_identity(const SymmetryOp& op) {
  for (int r = 0; r < 3; ++r) {
    if (op.trans[r] != 0) return false;
    for (int c = 0; c < 3; ++c)
      if (op.rot[r][c] != (r == c ? 1 : 0)) return false;
  }
  return true;
}

// True when fractional positions a and b are the same site (each component within tol, modulo lattice vectors).
bool same_position(const Vec3& a, const Vec3& b, double tol) {
  for (int k = 0; k < 3; ++k) {
    const double d = a[size_t(k)] - b[size_t(k)];
    if (std::fabs(d - std::round(d)) > tol) return false;
  }
  return true;
}

// pymatgen's CifParser defaults: positions closer than this (fractional, per component) are one site, and
// coordinates within a relative 1e-4 of 1/3 or 2/3 are those fractions (0.3333 written for 1/3).
constexpr double kSiteTolerance = 1e-4;
// A fractional coordinate beyond this is refused rather than wrapped into the cell: no CIF writes one, and a double
// that large has no fraction left to wrap.
constexpr double kMaxFraction = 1000;
double ideal_fraction(double x) {
  for (double f : {1.0 / 3.0, 2.0 / 3.0})
    if (std::fabs(1 - x / f) < 1e-4) return f;
  return x;
}

// pymatgen's CifParser.parse_oxi_states: the oxidation number of each _atom_type_symbol ("Fe2+" -> 2), then of that
// symbol without a trailing digit and sign ("Fe" -> the last Fe type's); empty when the CIF gives none or a value is
// no number ('?'), where pymatgen reads elements only. '.' is 0, as pymatgen's str2float reads it.
std::map<std::string, double> oxidation_numbers(const CifBlock& b) {
  Loop scratch;
  const Loop* l = find_table(b, "_atom_type_oxidation_number", "_atom_type_", &scratch);
  const int isym = l ? l->find("_atom_type_symbol") : -1;
  if (isym < 0) return {};
  const int iox = l->find("_atom_type_oxidation_number");
  std::map<std::string, double> out;
  for (const auto& row : l->rows) {
    double v = 0;
    if (row[size_t(iox)] != "." && !cif_number(row[size_t(iox)], &v)) return {};
    out[row[size_t(isym)]] = v;
  }
  for (const auto& row : l->rows) {
    std::string bare = row[size_t(isym)];  // re.sub(r"\d?[\+,\-]?$", "", symbol)
    if (!bare.empty() && std::strchr("+,-", bare.back())) bare.pop_back();
    if (!bare.empty() && std::isdigit(static_cast<unsigned char>(bare.back()))) bare.pop_back();
    out[bare] = out.at(row[size_t(isym)]);
  }
  return out;
}

// Sets *reason to "<id>: <why>" and returns false.
bool failed(const std::string& id, const std::string& why, std::string* reason) {
  *reason = (id.empty() ? std::string("crystal") : id) + ": " + why;
  return false;
}

// The tags a space group is named by, each list in the order this reader prefers them.
const std::vector<const char*> kHmTags{"_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt",
                                       "_symmetry_space_group_name_h_m", "_space_group_name_h-m"};
const std::vector<const char*> kNumberTags{"_space_group_it_number", "_symmetry_int_tables_number"};

// The value of the first of `keys` the block gives ('?' and '.' give nothing), with the key; empty if none.
std::pair<std::string, std::string> item_of(const CifBlock& b, const std::vector<const char*>& keys) {
  for (const char* key : keys) {
    auto it = b.items.find(key);
    if (it != b.items.end() && it->second != "?" && it->second != ".") return {it->second, key};
  }
  return {};
}

// A CIF that lists its operations and names a space group they are not (a number out of 1..230, or another group's
// number or symbol): "<id>: ..." saying which was used, or "" where the names agree or say nothing (or the operations
// make no space group spglib identifies). pymatgen's CifParser uses the listed operations and ignores the names
// silently; so do we, but say so.
std::string listed_ops_vs_name(const CifBlock& b, const std::string& id, const std::vector<SymmetryOp>& ops) {
  const auto [number, number_tag] = item_of(b, kNumberTags);
  const auto [hm, hm_tag] = item_of(b, kHmTags);
  if (number.empty() && hm.empty()) return "";
  const int listed = space_group_number_of(ops);
  const std::string used = fmt::format("the {} listed symmetry operations{} were used, as pymatgen uses them: "
                                       "correct the name or the operations", ops.size(),
                                       listed ? fmt::format(" (space group {})", listed) : "");
  double v = 0;
  if (!number.empty() && !(cif_number(number, &v) && v == std::floor(v) && v >= 1 && v <= 230))
    return fmt::format("{}: {} '{}' is no space group number (1..230); {}", id, number_tag, number, used);
  if (listed == 0) return "";
  if (!number.empty() && int(v) != listed)
    return fmt::format("{}: {} {} is not the space group of the listed symmetry operations; {}", id, number_tag,
                       number, used);
  if (const int named = hm.empty() ? 0 : space_group_number_of_hm(hm); named && named != listed)
    return fmt::format("{}: {} '{}' (space group {}) is not the space group of the listed symmetry operations; {}",
                       id, hm_tag, hm, named, used);
  return "";
}

// ---- Space group by name (no operations listed) -------------------------------------------------------------------
// A CIF may name its group by several tags, and they may disagree (another setting, another group). pymatgen's
// CifParser (get_symops) tries its symbol tags in turn, then its number tags, and takes the first value it reads;
// this reader takes the same tag wherever pymatgen reads one, and says when the others disagree.

// The tags a space group is named by: first pymatgen 2022.11.7's, in the order CifParser tries them and spelled as it
// spells them (it compares tags case-sensitively, so the lower-case "_symmetry_space_group_name_h-m" is a tag of its
// own, tried last, and reads no other spelling: not "_Symmetry_space_group_name_H-M", not DDLm's
// "_space_group.name_H-M_alt"); then one only this reader reads. This reader takes each in any case, '.' for '_'.
struct GroupTag {
  const char* name;
  char kind;  // 'm' Hermann-Mauguin symbol, 'h' Hall symbol, 'n' International Tables number
};
constexpr GroupTag kGroupTags[] = {
    {"_symmetry_space_group_name_H-M", 'm'}, {"_symmetry_space_group_name_H_M", 'm'},
    {"_symmetry_space_group_name_H-M_", 'm'}, {"_symmetry_space_group_name_H_M_", 'm'},
    {"_space_group_name_Hall", 'h'},         {"_space_group_name_Hall_", 'h'},
    {"_space_group_name_H-M_alt", 'm'},      {"_space_group_name_H-M_alt_", 'm'},
    {"_symmetry_space_group_name_hall", 'h'}, {"_symmetry_space_group_name_hall_", 'h'},
    {"_symmetry_space_group_name_h-m", 'm'}, {"_symmetry_space_group_name_h-m_", 'm'},
    {"_space_group_IT_number", 'n'},         {"_space_group_IT_number_", 'n'},
    {"_symmetry_Int_Tables_number", 'n'},    {"_symmetry_Int_Tables_number_", 'n'},
    {"_space_group_name_H-M", 'm'}};
constexpr size_t kPymatgenTags = 16;  // the first 16 of kGroupTags

// One space-group tag a block gives ('?', '.' and '' give nothing: pymatgen reads none of them either).
struct GroupTagValue {
  std::string tag;    // as written
  std::string value;
  char kind = 0;
  int pymatgen = -1;  // its place in CifParser's order; -1: a spelling CifParser does not read
};

// The block's space-group tags, in this reader's order (kGroupTags' by tag key).
std::vector<GroupTagValue> group_tags(const CifBlock& b) {
  std::vector<GroupTagValue> out;
  std::vector<std::string> seen;
  for (const GroupTag& g : kGroupTags) {
    const std::string key = tag_key(g.name);
    auto it = b.items.find(key);
    if (it == b.items.end() || std::count(seen.begin(), seen.end(), key)) continue;
    seen.push_back(key);
    if (it->second.empty() || it->second == "?" || it->second == ".") continue;
    GroupTagValue t{b.spelled.at(key).front(), it->second, g.kind, -1};
    for (const std::string& spelling : b.spelled.at(key))  // the one CifParser tries first, of those given
      for (size_t k = 0; k < kPymatgenTags; ++k)
        if (spelling == kGroupTags[k].name && (t.pymatgen < 0 || int(k) < t.pymatgen)) {
          t.tag = spelling;
          t.pymatgen = int(k);
        }
    out.push_back(std::move(t));
  }
  return out;
}

// A number tag's value as a space group number; false unless an integer in 1..230.
bool group_number(const std::string& value, int* number) {
  double v = 0;
  if (!cif_number(value, &v) || v != std::floor(v) || v < 1 || v > 230) return false;
  *number = int(v);
  return true;
}

// The setting one tag names by itself on `lattice` (space_group_setting); false with *why.
bool setting_of(const GroupTagValue& t, const Lattice& lattice, SpaceGroupSetting* out, std::string* why) {
  SpaceGroupName name;
  if (t.kind == 'm') name.hm = t.value;
  if (t.kind == 'h') name.hall = t.value;
  if (t.kind == 'n' && !group_number(t.value, &name.number)) {
    *why = fmt::format("space group number '{}' ({}) is not one of 1..230", t.value, t.tag);
    return false;
  }
  return space_group_setting(name, lattice, out, why);
}

// The tag to read the space group from (index into `tags`; -1: none, P1), and *because what to say of it:
//  - the first symbol (H-M or Hall tag) pymatgen's CifParser reads, in its order: the one it reads;
//  - where it reads none, the first symbol this reader reads (a setting only it reads: "Fd-3m:2", "R -3 m :H", a Hall
//    symbol; a tag spelling only it reads) of the group of the number CifParser falls back on, if it reads one;
//  - else that number (or, where CifParser reads none, the first number this reader reads);
// false with *why where a symbol is given but none reads and no symbol reads as pymatgen's: a number alone may pick
// another setting than the symbol means (P 21/c for P 21/n), so it is not taken instead.
bool choose_group_tag(const std::vector<GroupTagValue>& tags, const Lattice& lattice, int* used,
                      std::string* because, std::string* why) {
  *used = -1;
  auto first = [&](auto&& pick) {  // the pymatgen-first tag `pick` accepts, by its place in CifParser's order
    int best = -1;
    for (size_t i = 0; i < tags.size(); ++i)
      if (tags[i].pymatgen >= 0 && pick(tags[i]) && (best < 0 || tags[i].pymatgen < tags[size_t(best)].pymatgen))
        best = int(i);
    return best;
  };
  *used = first([](const GroupTagValue& t) { return t.kind != 'n' && pymatgen_reads_symbol(t.value); });
  if (*used >= 0) {
    *because = "the tag pymatgen's CifParser reads";
    return true;
  }
  int pymatgen_number = 0;
  const int number_tag = first([&](const GroupTagValue& t) {
    return t.kind == 'n' && group_number(t.value, &pymatgen_number);
  });
  std::string first_why;
  bool any_read = false;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (tags[i].kind == 'n') continue;
    SpaceGroupSetting s;
    std::string w;
    if (!setting_of(tags[i], lattice, &s, &w)) {
      if (first_why.empty()) first_why = w;
      continue;
    }
    any_read = true;
    if (number_tag < 0 || s.number == pymatgen_number || s.number == 0) {  // 0: a Hall symbol, no tables to check
      *used = int(i);
      *because = "pymatgen's CifParser reads none of the symbols; the first this reader reads";
      return true;
    }
  }
  if (!any_read && !first_why.empty()) {
    *why = first_why;
    return false;
  }
  *used = number_tag;
  *because = "the number pymatgen's CifParser reads, as it reads none of the symbols";
  for (size_t i = 0; i < tags.size() && *used < 0; ++i) {
    int n = 0;
    if (tags[i].kind != 'n') continue;
    if (!group_number(tags[i].value, &n)) {
      *why = fmt::format("space group number '{}' ({}) is not one of 1..230", tags[i].value, tags[i].tag);
      return false;
    }
    *used = int(i);
    *because = "pymatgen's CifParser reads none of these tags";
  }
  return true;
}

// Whether two settings have the same operations (in any order).
bool same_operations(const std::vector<SymmetryOp>& a, const std::vector<SymmetryOp>& b) {
  auto has = [](const std::vector<SymmetryOp>& ops, const SymmetryOp& x) {
    return std::any_of(ops.begin(), ops.end(), [&](const SymmetryOp& o) {
      for (int r = 0; r < 3; ++r) {
        const double d = o.trans[r] - x.trans[r];
        if (std::fabs(d - std::round(d)) > 1e-9) return false;
        for (int c = 0; c < 3; ++c)
          if (o.rot[r][c] != x.rot[r][c]) return false;
      }
      return true;
    });
  };
  return a.size() == b.size() && std::all_of(a.begin(), a.end(), [&](const SymmetryOp& x) { return has(b, x); });
}

// What tag `t` names that `used` (the setting read) is not: "" where it agrees (a number: the same group; a symbol:
// the same operations), else "space group 15", "another setting of space group 14" or "not read".
std::string disagreement(const GroupTagValue& t, const SpaceGroupSetting& used, const Lattice& lattice) {
  if (used.number == 0) return "";  // a Hall symbol in a build without tables: nothing to compare with
  if (t.kind == 'n') {
    int n = 0;
    if (!group_number(t.value, &n)) return "no space group number";
    return n == used.number ? "" : fmt::format("space group {}", n);
  }
  SpaceGroupSetting s;
  std::string why;
  if (!setting_of(t, lattice, &s, &why)) return "not read here";
  if (s.number != used.number) return fmt::format("space group {}", s.number);
  return same_operations(s.ops, used.ops) ? "" : fmt::format("another setting of space group {}", s.number);
}

// The setting a block without listed operations names (P1 where it names none); *warning (when given) a line saying
// which tag was read and which disagreeing ones were not, else "".
bool named_setting(const CifBlock& b, const std::string& id, const Lattice& lattice, SpaceGroupSetting* out,
                   std::string* reason, std::string* warning) {
  const std::vector<GroupTagValue> tags = group_tags(b);
  int used = -1;
  std::string because, why;
  if (!choose_group_tag(tags, lattice, &used, &because, &why)) return failed(id, why, reason);
  SpaceGroupName name;
  if (used >= 0) {
    const GroupTagValue& t = tags[size_t(used)];
    if (t.kind == 'm') name.hm = t.value;
    if (t.kind == 'h') name.hall = t.value;
    if (t.kind == 'n') group_number(t.value, &name.number);
  }
  // The order of the operations follows what CifParser reads: its symbols in its order (a Hall symbol too, which it
  // looks up as a Hermann-Mauguin one), else its number.
  std::vector<const GroupTagValue*> by_pymatgen;
  for (const auto& t : tags)
    if (t.pymatgen >= 0) by_pymatgen.push_back(&t);
  std::sort(by_pymatgen.begin(), by_pymatgen.end(),
            [](const GroupTagValue* x, const GroupTagValue* y) { return x->pymatgen < y->pymatgen; });
  for (const GroupTagValue* t : by_pymatgen)
    if (t->kind != 'n') name.pymatgen_symbols.push_back(t->value);
  for (const GroupTagValue* t : by_pymatgen)
    if (t->kind == 'n' && name.pymatgen_number == 0) group_number(t->value, &name.pymatgen_number);
  if (!space_group_setting(name, lattice, out, &why)) return failed(id, why, reason);
  if (!warning || used < 0) return true;
  // A Hall symbol whose letters spell the H-M symbol of another group (`P 4 2`: Hall for P422, H-M for P4_2):
  // CifParser looks it up as an H-M symbol, so pymatgen reads another group from the same file.
  const GroupTagValue& u = tags[size_t(used)];
  if (u.kind == 'h' && u.pymatgen >= 0 && out->number != 0 && pymatgen_reads_symbol(u.value)) {
    GroupTagValue as_hm = u;
    as_hm.kind = 'm';
    SpaceGroupSetting s;
    std::string w;
    if (setting_of(as_hm, lattice, &s, &w) && s.number != out->number)
      *warning = fmt::format("{}: {} '{}' was read as a Hall symbol, setting {} (space group {}), but pymatgen's "
                             "CifParser reads it as the Hermann-Mauguin symbol {} (space group {}); to be read "
                             "alike, write '{}' in _symmetry_space_group_name_H-M, the tag both read first",
                             id, u.tag, u.value, out->symbol, out->number, s.symbol, s.number, out->symbol);
  }
  std::string ignored;
  for (size_t i = 0; i < tags.size(); ++i) {
    const std::string d = i == size_t(used) ? "" : disagreement(tags[i], *out, lattice);
    if (!d.empty())
      ignored += fmt::format("{}{} '{}' ({})", ignored.empty() ? "" : ", ", tags[i].tag, tags[i].value, d);
  }
  if (!ignored.empty())
    *warning += fmt::format("{}{}: the space group was read from {} '{}' ({}; setting {}), not from {}; correct or "
                            "remove the tag that is wrong", warning->empty() ? "" : "; ", id, tags[size_t(used)].tag,
                            tags[size_t(used)].value, because, out->symbol, ignored);
  return true;
}

// A parsed block -> the crystal it describes (sites expanded by its symmetry operations); *warning (when given) a
// line for what was read despite a contradiction (listed_ops_vs_name), else "".
bool crystal_from_block(const CifBlock& b, const std::string& id, Crystal* out, std::string* reason,
                        std::string* warning) {
  auto fail = [&](const std::string& why) { return failed(id, why, reason); };
  const auto& items = b.items;
  if (warning) warning->clear();

  Crystal c;
  c.id = id;
  const char* keys[6] = {"_cell_length_a", "_cell_length_b", "_cell_length_c",
                         "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma"};
  double* dst[6] = {&c.lattice.a, &c.lattice.b, &c.lattice.c, &c.lattice.alpha, &c.lattice.beta, &c.lattice.gamma};
  for (int i = 0; i < 6; ++i) {
    auto it = items.find(keys[i]);
    if (it == items.end()) return fail(fmt::format("missing {}", keys[i]));
    if (!cif_number(it->second, dst[i])) return fail(fmt::format("{} '{}' is not a number", keys[i], it->second));
  }
  if (!(c.lattice.a > 0 && c.lattice.b > 0 && c.lattice.c > 0))
    return fail(fmt::format("non-positive cell length ({} {} {})", c.lattice.a, c.lattice.b, c.lattice.c));
  for (double ang : {c.lattice.alpha, c.lattice.beta, c.lattice.gamma})
    if (!(ang > 0 && ang < 180)) return fail(fmt::format("cell angle {} outside (0, 180)", ang));
  if (!forms_cell(c.lattice)) return fail("lattice lengths and angles form no cell (zero volume)");

  // Symmetry: the listed operations, applied to every site. Without them, the operations of the space group the
  // CIF names (Hermann-Mauguin symbol, Hall symbol or number, in pymatgen's DDL1 _symmetry_* tags or the DDL2
  // _space_group_* that VESTA, COD and ICSD write) from the tables (data/space_groups.h); naming none is P1.
  std::vector<SymmetryOp> ops;
  for (const char* key : {"_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz"}) {
    Loop scratch;
    const Loop* l = ops.empty() ? find_table(b, key, key, &scratch) : nullptr;
    if (l == nullptr) continue;
    const int col = l->find(key);
    for (const auto& row : l->rows) {
      SymmetryOp op;
      if (!parse_xyz(row[size_t(col)], &op))
        return fail(fmt::format("symmetry operation '{}' is not of the form 'x, y, z' / '-x+1/2, y-x, z'",
                                row[size_t(col)]));
      const double d = determinant(op);
      if (std::fabs(std::fabs(d) - 1) > 1e-6)
        return fail(fmt::format("symmetry operation '{}' is not a symmetry operation (determinant {})",
                                row[size_t(col)], d));
      ops.push_back(op);
    }
  }
  if (!ops.empty() && warning) *warning = listed_ops_vs_name(b, id, ops);
  if (ops.empty()) {
    SpaceGroupSetting setting;
    if (!named_setting(b, id, c.lattice, &setting, reason, warning)) return false;
    ops = std::move(setting.ops);
  }
  const bool p1 = ops.size() == 1 && is_identity(ops[0]);

  Loop scratch;
  const Loop* found = find_table(b, "_atom_site_fract_x", "_atom_site_", &scratch);
  if (found == nullptr) {
    if (find_table(b, "_atom_site_cartn_x", "_atom_site_", &scratch))
      return fail("the sites are given in Cartesian coordinates (_atom_site_Cartn_x); only fractional coordinates "
                  "(_atom_site_fract_x/y/z) are read");
    return fail("no _atom_site_fract_x/y/z loop");
  }
  const Loop& atoms = *found;
  int isym = atoms.find("_atom_site_type_symbol");
  const char* sym_tag = "_atom_site_type_symbol";
  if (isym < 0) {
    isym = atoms.find("_atom_site_label");
    sym_tag = "_atom_site_label";
  }
  const int ix = atoms.find("_atom_site_fract_x"), iy = atoms.find("_atom_site_fract_y"),
            iz = atoms.find("_atom_site_fract_z"), iocc = atoms.find("_atom_site_occupancy");
  if (isym < 0) return fail("atom loop has neither _atom_site_type_symbol nor _atom_site_label");
  if (iy < 0 || iz < 0) return fail("atom loop lacks _atom_site_fract_y or _atom_site_fract_z");
  const std::map<std::string, double> oxidation = oxidation_numbers(b);
  for (size_t s = 0; s < atoms.rows.size(); ++s) {
    const auto& row = atoms.rows[s];
    const std::string sym = element_of(row[size_t(isym)]);
    if (sym.empty())
      return fail(fmt::format("unknown element '{}' at site {} ({}): {}", row[size_t(isym)], s, sym_tag,
                              unknown_element_advice(row[size_t(isym)])));
    Vec3 f;
    const int idx[3] = {ix, iy, iz};
    for (int k = 0; k < 3; ++k)
      if (!cif_number(row[size_t(idx[k])], &f[size_t(k)]))
        return fail(fmt::format("coordinate '{}' at site {} ({}) is not a number", row[size_t(idx[k])], s, sym));
    for (int k = 0; k < 3; ++k)  // wrapped into [0, 1), 1e30 would land anywhere (its fraction is below precision)
      if (std::fabs(f[size_t(k)]) > kMaxFraction)
        return fail(fmt::format("coordinate '{}' at site {} ({}) is no fractional coordinate (|x| > {}; the cell "
                                "holds 0..1): a unit or column mix-up?", row[size_t(idx[k])], s, sym, kMaxFraction));
    if (iocc >= 0 && row[size_t(iocc)] != "?" && row[size_t(iocc)] != ".") {
      double occ = 0;
      if (!cif_number(row[size_t(iocc)], &occ))
        return fail(fmt::format("occupancy '{}' at site {} ({}) is not a number", row[size_t(iocc)], s, sym));
      // As pymatgen, whose Structure is ordered only where each site's occupancy is 1: 0.9999 is a partial one.
      if (std::fabs(occ - 1.0) > 1e-6)
        return fail(fmt::format("partial occupancy {} at site {} ({}); only ordered structures are read: order it "
                                "first (e.g. pymatgen's OrderDisorderedStructureTransformation) or leave the file "
                                "out{}",
                                occ, s, sym, std::fabs(occ - 1.0) < 1e-2 ? "; if the site is full and the value only "
                                "rounded (ICSD writes 0.9999 or 0.999), set the occupancy to 1" : ""));
    }
    for (double& x : f) x = ideal_fraction(x);  // pymatgen snaps these in every CIF, P1 too
    // As CifParser gives a site its Species: the element's oxidation number, or its type symbol's ("Fe2+").
    double oxi = oxidation.count(sym) ? oxidation.at(sym) : 0;
    if (isym == atoms.find("_atom_site_type_symbol") && oxidation.count(row[size_t(isym)]))
      oxi = oxidation.at(row[size_t(isym)]);
    if (p1) {  // the sites as written (overlaps included: structure checks judge them)
      c.species.push_back(sym);
      c.frac.push_back(f);
      if (!oxidation.empty()) c.oxidation.push_back(oxi);
      continue;
    }
    const size_t first = c.frac.size();
    for (const SymmetryOp& op : ops) {
      Vec3 g;
      for (int r = 0; r < 3; ++r)
        g[size_t(r)] = wrap01(op.rot[r][0] * f[0] + op.rot[r][1] * f[1] + op.rot[r][2] * f[2] + op.trans[r]);
      bool seen = false;
      for (size_t j = first; j < c.frac.size() && !seen; ++j) seen = same_position(c.frac[j], g, kSiteTolerance);
      if (seen) continue;
      for (size_t j = 0; j < first; ++j)
        if (same_position(c.frac[j], g, kSiteTolerance))
          return fail(fmt::format("site {} ({}) and an image of an earlier site ({}) fall on the same position "
                                  "({:.4f} {:.4f} {:.4f}) after the symmetry operations; a site is listed twice",
                                  s, sym, c.species[j], g[0], g[1], g[2]));
      c.species.push_back(sym);
      c.frac.push_back(g);
    }
    if (!oxidation.empty()) c.oxidation.resize(c.frac.size(), oxi);  // the site's images: its Species
  }
  if (c.species.empty()) return fail("atom loop has no sites");
  *out = std::move(c);
  return true;
}

// Every block of `cif` parsed, publication blocks left out; *why on a syntax error that stops the file.
struct ParsedBlock {
  std::string name;
  int line = 0;
  bool ok = false;
  CifBlock block;
  std::string why;
};
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

}  // namespace

bool parse_cif(std::string_view cif, const std::string& id, Crystal* out, std::string* reason,
               std::string* warning) {
  if (warning) warning->clear();
  std::vector<ParsedBlock> blocks;
  std::string why;
  if (!parse_blocks(cif, &blocks, &why)) return failed(id, why, reason);
  if (blocks.size() > 1)
    return failed(id, fmt::format("line {}: the CIF holds more than one structure (data_ blocks); give one per CIF",
                                  blocks[1].line), reason);
  if (!blocks[0].ok) return failed(id, blocks[0].why, reason);
  return crystal_from_block(blocks[0].block, id, out, reason, warning);
}

std::vector<CifBlockResult> parse_cif_blocks(std::string_view cif, const std::string& id) {
  std::vector<CifBlockResult> out;
  std::vector<ParsedBlock> blocks;
  std::string why;
  if (!parse_blocks(cif, &blocks, &why)) {
    out.push_back({id, false, {}, ""});
    failed(id, why, &out.back().reason);
    return out;
  }
  // Ids "<id>/<name>"; "<id>/<k>" (1-based) for every block when a name is empty, repeated or a number (which a
  // block number could collide with).
  std::map<std::string, int> uses;
  bool numbered = false;
  for (const auto& b : blocks) {
    numbered |= b.name.empty() || ++uses[b.name] > 1 ||
                b.name.find_first_not_of("0123456789") == std::string::npos;
  }
  for (size_t k = 0; k < blocks.size(); ++k) {
    const ParsedBlock& b = blocks[k];
    CifBlockResult res;
    res.id = blocks.size() == 1 ? id : id + "/" + (numbered ? std::to_string(k + 1) : b.name);
    res.ok = b.ok ? crystal_from_block(b.block, res.id, &res.crystal, &res.reason, &res.warning)
                  : failed(res.id, b.why, &res.reason);
    out.push_back(std::move(res));
  }
  return out;
}

Crystal parse_cif(std::string_view cif, const std::string& id) {
  Crystal c;
  std::string reason;
  if (!parse_cif(cif, id, &c, &reason)) throw Error(reason);
  return c;
}


}  // namespace cg
