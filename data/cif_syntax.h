// CIF 1.1 syntax, for the CIF reader (data/cif.cpp): a CIF's text as data blocks of items and loops, tags compared
// as keys, CIF numbers. The reader's internals; what a CIF gives (a crystal): data/cif.h.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cg::cif {

// Whether s begins with prefix.
bool starts_with(const std::string& s, const char* prefix);

// Tags are case-insensitive and compared in lower case; DDLm's "_atom_site.fract_x" is CIF 1.1's "_atom_site_fract_x".
std::string tag_key(const std::string& tag);

// A loop_: its columns and rows.
struct Loop {
  std::vector<std::string> names;  // tag keys
  std::vector<std::vector<std::string>> rows;
  int find(const std::string& name) const {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return int(i);
    return -1;
  }
};

// A data block: its items and loops.
struct CifBlock {
  std::map<std::string, std::string> items;    // tag key -> value
  // tag key -> the tags as written, in file order (pymatgen tells case apart): one item may be given in two
  // spellings with one value (a writer giving both "_space_group.IT_number" and "_space_group_IT_number")
  std::map<std::string, std::vector<std::string>> spelled;
  std::vector<Loop> loops;
};

// Every block of `cif` parsed, publication blocks left out; *why on a syntax error that stops the file.
struct ParsedBlock {
  std::string name;
  int line = 0;
  bool ok = false;
  CifBlock block;
  std::string why;
};
bool parse_blocks(std::string_view cif, std::vector<ParsedBlock>* out, std::string* why);

// The loop that holds `tag`; else, when `tag` is a plain item (CIF allows a one-row loop written as items), *scratch
// filled with every item starting with `category` as one row; else null.
const Loop* find_table(const CifBlock& b, const std::string& tag, const std::string& category, Loop* scratch);

// CIF number: "0.123", "1.0", "0.1234(5)" (standard uncertainty dropped). False when not a number.
bool cif_number(const std::string& s, double* v);

// Sets *reason to "<id>: <why>" and returns false.
bool failed(const std::string& id, const std::string& why, std::string* reason);

}  // namespace cg::cif
