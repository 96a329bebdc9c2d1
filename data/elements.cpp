#include "data/elements.h"

#include <unordered_map>

#include "common/error.h"

namespace cg {

const std::vector<std::string>& all_elements() {
  static const std::vector<std::string> kSymbols = {
      "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl", "Ar",
      "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr",
      "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe",
      "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf",
      "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
      "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs",
      "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
  return kSymbols;
}

int atomic_number(std::string_view symbol) {
  static const std::unordered_map<std::string_view, int> kIndex = [] {
    std::unordered_map<std::string_view, int> m;
    const auto& s = all_elements();
    for (size_t i = 0; i < s.size(); ++i) m.emplace(s[i], static_cast<int>(i) + 1);
    return m;
  }();
  auto it = kIndex.find(symbol);
  return it == kIndex.end() ? 0 : it->second;
}

const std::string& element_symbol(int z) {
  CG_CHECK(z >= 1 && z <= 118, "atomic number {} is outside 1..118", z);
  return all_elements()[z - 1];
}

}  // namespace cg
