// The periodic table by symbol: which strings are real elements (H..Og), and their atomic numbers.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace cg {

// Atomic number of `symbol` (case-sensitive, "Fe"), or 0 when it is not an element.
int atomic_number(std::string_view symbol);
// Symbol of atomic number z in 1..118; throws otherwise.
const std::string& element_symbol(int z);
inline bool is_element(std::string_view symbol) { return atomic_number(symbol) != 0; }
// All 118 symbols in order of atomic number.
const std::vector<std::string>& all_elements();

}  // namespace cg
