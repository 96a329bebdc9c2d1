// Prints what cg::parse_cif reads, for cif_reference.py to compare with pymatgen's CifParser, and what cgprep derives
// from it, for derive_reference.py to compare with pymatgen's reduced formula and SpacegroupAnalyzer.
//   cif_dump FILE.cif ...        one line per file: "ok a b c alpha beta gamma El x y z El x y z ..." or "error <reason>"
//   cif_dump --csv SPLIT.csv.gz  the same line per crystal of an MP-20 split (CIF column), skipped rows as "error"
//   cif_dump --derive FILE.cif ...  one line per file: "ok <formula> <space group number, 0: none>"
//                                   (derive_properties), or "error <reason>"
//   cif_dump --derive --csv SPLIT.csv.gz  the same per crystal of the split, its own formula and group cleared first
//   cif_dump --text [--file-order] FILE.cif ... | --csv SPLIT.csv.gz
//                   one line per crystal as cgprep reads it (read_mp20, data.site_order=pymatgen or, with
//                   --file-order, file): "ok <id> <text>" with the text's line breaks written as ';', in the reference
//                   code's own formatting (angles by int(), no folding of 1.00), or "error <reason>"; for
//                   text_order_agreement.py
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "data/cif.h"
#include "data/crystal_text.h"
#include "data/csv.h"
#include "data/mp20.h"

namespace {
void print(const cg::Crystal& c) {
  const cg::Lattice& l = c.lattice;
  std::printf("ok %.17g %.17g %.17g %.17g %.17g %.17g", l.a, l.b, l.c, l.alpha, l.beta, l.gamma);
  for (size_t i = 0; i < c.num_sites(); ++i)
    std::printf(" %s %.17g %.17g %.17g", c.species[i].c_str(), c.frac[i][0], c.frac[i][1], c.frac[i][2]);
  std::printf("\n");
}

void print_text(const cg::Crystal& c) {
  cg::TextOptions opt;  // the reference's f"{x:.2f}" and int(angle)
  opt.angles = cg::AngleMode::kTruncate;
  opt.fold_one = false;
  std::string t = cg::crystal_to_text(c, opt);
  for (char& ch : t)
    if (ch == '\n') ch = ';';
  std::printf("ok %s %s\n", c.id.c_str(), t.c_str());
}

// --text: every crystal of each path as read_mp20 reads it, in `order`.
int dump_text(int first, int argc, char** argv, cg::SiteOrder order) {
  const bool csv = argc == first + 2 && std::strcmp(argv[first], "--csv") == 0;
  for (int i = csv ? first + 1 : first; i < argc; ++i) {
    const cg::Mp20Split split = cg::read_mp20(argv[i], 0, false, {}, order);
    for (const auto& c : split.crystals) print_text(c);
    for (const auto& s : split.skipped) std::printf("error %s\n", s.reason.c_str());
  }
  return 0;
}

void print_derived(cg::Crystal c) {
  c.formula.clear();
  c.spacegroup.reset();
  std::vector<cg::Crystal> one{std::move(c)};
  cg::derive_properties(&one, 1);
  std::printf("ok %s %d\n", one[0].formula.c_str(), one[0].spacegroup.value_or(0));
}
}  // namespace

int main(int argc, char** argv) {
  int first = 1;
  if (argc > 1 && std::strcmp(argv[1], "--text") == 0) {
    const bool file_order = argc > 2 && std::strcmp(argv[2], "--file-order") == 0;
    return dump_text(file_order ? 3 : 2, argc, argv, file_order ? cg::SiteOrder::kFile : cg::SiteOrder::kPymatgen);
  }
  const bool derive = argc > 1 && std::strcmp(argv[1], "--derive") == 0;
  if (derive) ++first;
  if (argc == first + 2 && std::strcmp(argv[first], "--csv") == 0) {
    const cg::Mp20Split split = cg::read_mp20(argv[first + 1]);
    for (const auto& c : split.crystals) derive ? print_derived(c) : print(c);
    for (const auto& s : split.skipped) std::printf("error %s\n", s.reason.c_str());
    return 0;
  }
  for (int i = first; i < argc; ++i) {
    cg::Crystal c;
    std::string reason;
    if (cg::parse_cif(cg::read_maybe_gz(argv[i]), argv[i], &c, &reason))
      derive ? print_derived(c) : print(c);
    else
      std::printf("error %s\n", reason.c_str());
  }
  return 0;
}
