// The space group a CIF names (data/cif_space_group.h): its tags read as pymatgen's CifParser reads them.
#include "data/cif_space_group.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

namespace cg::cif {
namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace cg::cif
