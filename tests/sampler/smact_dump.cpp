// Writes "El:count ... | verdict" lines for smact_reference.py to re-derive with CDVAE's Python algorithm:
// every composition of the MP-20 val split, and every pair of elements H..Rf at ratios 1:1, 1:2, 2:3 (both orders).
#include <cstdio>
#include <string>

#include "data/elements.h"
#include "data/mp20.h"
#include "sampler/smact.h"

namespace {
void emit(const cg::Composition& comp) {
  std::string line;
  for (size_t i = 0; i < comp.elements.size(); ++i)
    line += comp.elements[i] + ":" + std::to_string(comp.counts[i]) + " ";
  std::printf("%s| %d\n", line.c_str(), static_cast<int>(cg::smact_validity(comp).valid));
}
}  // namespace

int main() {
  for (const auto& c : cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/val.csv.gz").crystals)
    emit(cg::reduce_composition(c.species));
  const int ratios[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 3}, {3, 2}};
  for (int a = 1; a <= 104; ++a)
    for (int b = a + 1; b <= 104; ++b)
      for (const auto& r : ratios) {
        std::vector<std::string> sites(r[0], cg::element_symbol(a));
        sites.insert(sites.end(), r[1], cg::element_symbol(b));
        emit(cg::reduce_composition(sites));
      }
  return 0;
}
