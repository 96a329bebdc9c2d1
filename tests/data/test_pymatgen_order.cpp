// Python's sort (data/python_sort.h) and pymatgen's CifParser site order (data/pymatgen_order.h), and the formula
// and space group cgprep derives from a crystal's sites in that order, against CPython 3.11 and pymatgen 2022.11.7
// (Debian's python3-pymatgen); bench/python/derive_agreement.py measures the same on random and MP-20 CIFs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <map>
#include <string>
#include <vector>

#include "data/cif.h"
#include "data/crystal_text.h"
#include "data/mp20.h"
#include "data/pymatgen_order.h"
#include "data/python_sort.h"
#include "data/space_groups.h"
#include "tests/test_util.h"

namespace {

// A CIF laid out as pymatgen's CifWriter writes a P1 one, sites in the order given, on a 5.1 x 5.6 x 6.3 Å box; with
// other `ops` too (the name stays 'P 1': pymatgen and data/cif.h go by the operations listed).
std::string p1_cif(const std::vector<std::pair<std::string, std::string>>& sites,
                   const std::vector<std::string>& ops = {"x, y, z"}) {
  std::string s = "data_x\n_symmetry_space_group_name_H-M   'P 1'\n_cell_length_a   5.1\n_cell_length_b   5.6\n"
                  "_cell_length_c   6.3\n_cell_angle_alpha   90\n_cell_angle_beta   90\n_cell_angle_gamma   90\n"
                  "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n";
  for (size_t i = 0; i < ops.size(); ++i) s += "  " + std::to_string(i + 1) + "  '" + ops[i] + "'\n";
  s += "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n _atom_site_fract_y\n"
       " _atom_site_fract_z\n _atom_site_occupancy\n";
  for (size_t i = 0; i < sites.size(); ++i)
    s += "  " + sites[i].first + "  " + sites[i].first + std::to_string(i) + "  " + sites[i].second + "  1\n";
  return s;
}

// The crystal `cif` reads as, with derive_properties' formula and space group.
cg::Crystal derived(const std::string& cif) {
  std::vector<cg::Crystal> one{cg::parse_cif(cif, "x")};
  cg::derive_properties(&one, 1);
  return one[0];
}

}  // namespace

// 200 items under Site.__lt__'s comparison, two of its six kinds (He, Ar) with a NaN key: CPython 3.11's sorted()
// gives this order (its list.sort, run by /usr/bin/python3 on the same items). Above 64 items CPython sorts runs of
// 50 by binary insertion and merges them, galloping; binary insertion over the whole list (the sort formulas used
// before, which never see 64 items) puts all 40 He together after the first F, so this fails for anything but the
// merge.
TEST(PythonSort, IsCPythonsSortWhereNaNKeysMakeNoOrder) {
  const std::map<char, std::pair<double, std::string>> key = {
      {'h', {std::numeric_limits<double>::quiet_NaN(), "He"}}, {'a', {std::numeric_limits<double>::quiet_NaN(), "Ar"}},
      {'L', {0.98, "Li"}}, {'F', {3.98, "F"}}, {'N', {0.93, "Na"}}, {'C', {3.16, "Cl"}}};
  const std::string codes = "haLFNC";
  std::string items;
  for (int i = 0; i < 200; ++i) items += codes[size_t((i * i + 3 * i + i / 7) % 6)];
  std::vector<char> v(items.begin(), items.end());
  cg::python_sort(v, [&](char a, char b) {
    const auto &ka = key.at(a), &kb = key.at(b);
    if (ka.first < kb.first) return true;
    if (ka.first > kb.first) return false;
    return ka.second < kb.second;
  });
  EXPECT_EQ(std::string(v.begin(), v.end()),
            std::string(30, 'a') + "F" + std::string(18, 'h') + std::string(29, 'N') + std::string(31, 'L') +
                std::string(33, 'C') + std::string(34, 'F') + std::string(22, 'h') + "LL");
  // Without NaN it is a stable sort: equal keys keep their order.
  std::vector<std::pair<int, int>> p;
  for (int i = 0; i < 150; ++i) p.push_back({(i * 37) % 5, i});
  cg::python_sort(p, [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < p.size(); ++i)
    EXPECT_TRUE(p[i - 1].first < p[i].first || (p[i - 1].first == p[i].first && p[i - 1].second < p[i].second));
}

// The same comparison at other lengths and arrangements: the order CPython 3.11.2's sorted() gave (as run lengths),
// which with NaN keys depends on how the runs are cut and merged.
TEST(PythonSort, IsCPythonsSortAtOtherLengthsAndArrangements) {
  const std::map<char, std::pair<double, std::string>> key = {
      {'h', {std::numeric_limits<double>::quiet_NaN(), "He"}}, {'a', {std::numeric_limits<double>::quiet_NaN(), "Ar"}},
      {'L', {0.98, "Li"}}, {'F', {3.98, "F"}}, {'N', {0.93, "Na"}}, {'C', {3.16, "Cl"}}};
  const auto sorted_runs = [&](int n, const std::function<int(int)>& code) {
    std::vector<char> v;
    for (int i = 0; i < n; ++i) v.push_back("haLFNC"[code(i)]);
    cg::python_sort(v, [&](char a, char b) {
      const auto &ka = key.at(a), &kb = key.at(b);
      if (ka.first < kb.first) return true;
      if (ka.first > kb.first) return false;
      return ka.second < kb.second;
    });
    std::string runs;
    for (size_t i = 0, j; i < v.size(); i = j) {
      for (j = i; j < v.size() && v[j] == v[i];) ++j;
      runs += (runs.empty() ? "" : " ") + std::to_string(j - i) + v[i];
    }
    return runs;
  };
  // 64 items: min_run 32, so two runs merged (binary insertion over all 64 gives another order).
  EXPECT_EQ(sorted_runs(64, [](int i) { return (i * i + 3 * i + i / 7) % 6; }), "8a 1F 8h 10N 9L 12C 8F 8h");
  // Blocks of 7 and of 13 equal items: merges where one run wins 7 times in a row and the rest is galloped.
  EXPECT_EQ(sorted_runs(700, [](int i) { return (i / 7 * 5) % 6; }),
            "112a 7N 42C 36F 82h 82N 83L 43C 21F 37h 30N 29L 34C 62F");
  EXPECT_EQ(sorted_runs(900, [](int i) { return ((i / 13) * 5 + (i / 100)) % 6; }),
            "149a 60C 13F 92h 150N 142L 90C 135F 62h 7L");
}

// The site orders pymatgen's CifParser(...).get_structures(primitive=False)[0] gave for these species lists.
TEST(PymatgenOrder, SitesAsCifParserSortsThem) {
  using V = std::vector<size_t>;
  // No noble gas: by electronegativity, equal elements in their order.
  EXPECT_EQ(cg::cif_parser_site_order({"O", "Li", "Fe", "O", "P"}), (V{1, 2, 4, 0, 3}));  // Li Fe P O O
  // Na Cl Ar: grouped Ar, Cl, Na (Element order reversed), then sorted(): Cl stays after Ar (NaN, so by symbol),
  // Na is inserted before Cl and after Ar ("Ar" < "Na"): Ar Na Cl.
  EXPECT_EQ(cg::cif_parser_site_order({"Na", "Cl", "Ar"}), (V{2, 0, 1}));
  EXPECT_EQ(cg::cif_parser_site_order({"K", "He", "Ar", "Cl"}), (V{2, 0, 3, 1}));  // Ar K Cl He
  // 70 sites of 8 elements, (i^2 + 2i + i/5) mod 8 over He Na Cl Ar F Li O Ne: sorted() merges two runs of 35.
  // pymatgen's order for a P1 CIF listing them so (its formula Ar8Na7Li7Cl11O7F12He12Ne6, the file's order gives
  // He12Ar8Ne6Na7Li7Cl11O7F12).
  const std::vector<std::string> els = {"He", "Na", "Cl", "Ar", "F", "Li", "O", "Ne"};
  std::vector<std::string> species;
  for (int i = 0; i < 70; ++i) species.push_back(els[size_t((i * i + 2 * i + i / 5) % 8)]);
  std::string got;
  for (size_t k : cg::cif_parser_site_order(species)) got += species[k] + " ";
  std::string want;
  for (const auto& [el, n] : std::vector<std::pair<std::string, int>>{
           {"Ar", 8}, {"Na", 7}, {"Li", 7}, {"Cl", 11}, {"O", 7}, {"F", 12}, {"He", 12}, {"Ne", 6}})
    for (int i = 0; i < n; ++i) want += el + " ";
  EXPECT_EQ(got, want);
}

// Sites of one element with oxidation states, among them 0 and 0.5 (Species("Fe", 0) is "Fe0+"): the order pymatgen's
// CifParser gave for a P1 CIF of them, whose sites of equal electronegativity are sorted by str(Species), "Fe+" first.
TEST(PymatgenOrder, SitesWithOxidationStatesAsCifParserSortsThem) {
  EXPECT_EQ(cg::cif_parser_site_order({"Fe", "Fe", "Fe", "Fe", "O", "Fe"}, {2, 0, 1, 0.5, -2, 0}),
            (std::vector<size_t>{2, 1, 5, 3, 0, 4}));  // Fe+ Fe0+ Fe0+ Fe0.5+ Fe2+ O2-
}

// Formulas with He, Ne or Ar are spelled as pymatgen spells them from the CIF (its sites sorted first); those sites
// in the file's order gave the spelling in the comment, which is what cgprep derived before. The crystal keeps the
// file's order: its text, shards and prompts list the sites as written.
TEST(PymatgenOrder, DerivedFormulaIsPymatgensFromTheCif) {
  const struct {
    std::vector<std::pair<std::string, std::string>> sites;
    const char* pymatgen;  // CifParser(cif).get_structures()[0].composition.reduced_formula
  } cases[] = {
      {{{"Na", "0 0 0"}, {"Cl", "0.5 0.5 0.5"}, {"Ar", "0.25 0.25 0.25"}}, "ArNaCl"},  // file order: NaClAr
      {{{"Ar", "0.25 0.25 0.25"}, {"Na", "0 0 0"}, {"Cl", "0.5 0.5 0.5"}}, "ArNaCl"},  // file order: the same
      {{{"He", "0.1 0.2 0.3"}, {"Li", "0 0 0"}, {"F", "0.5 0.5 0.5"}}, "LiFHe"},       // file order: HeLiF
      {{{"Ne", "0.1 0.2 0.3"}, {"He", "0.6 0.2 0.3"}, {"O", "0 0 0"}, {"O", "0.5 0.5 0.5"}}, "HeNeO2"},  // NeHeO2
      {{{"K", "0 0 0"}, {"He", "0.1 0.2 0.3"}, {"Ar", "0.6 0.2 0.3"}, {"Cl", "0.5 0.5 0.5"}}, "ArKClHe"},  // KHeArCl
  };
  for (const auto& c : cases) {
    const cg::Crystal x = derived(p1_cif(c.sites));
    EXPECT_EQ(x.formula, c.pymatgen);
    ASSERT_EQ(x.species.size(), c.sites.size());
    for (size_t i = 0; i < c.sites.size(); ++i) EXPECT_EQ(x.species[i], c.sites[i].first) << c.pymatgen;
    if (cg::have_spglib()) EXPECT_EQ(x.spacegroup, 1) << c.pymatgen;
  }
  // Symmetry operations: each listed site's images follow it (Na Na Cl Cl Ar Ar); CifParser groups them by element
  // first, and sorts them as above: ArNaCl, where the file's order gives NaClAr. P-1 as pymatgen finds it.
  const cg::Crystal p1bar = derived(p1_cif({{"Na", "0.1 0.2 0.3"}, {"Cl", "0.3 0.1 0.2"}, {"Ar", "0.2 0.35 0.1"}},
                                           {"x, y, z", "-x, -y, -z"}));
  EXPECT_EQ(p1bar.species, (std::vector<std::string>{"Na", "Na", "Cl", "Cl", "Ar", "Ar"}));
  EXPECT_EQ(p1bar.formula, "ArNaCl");
  if (cg::have_spglib()) EXPECT_EQ(p1bar.spacegroup, 2);
}

// The sorted copy moves each site's coordinates with its species, and spglib finds the group pymatgen finds.
TEST(PymatgenOrder, SortedCopyKeepsSitesWhole) {
  const cg::Crystal c = cg::parse_cif(p1_cif({{"Cl", "0.5 0.5 0.5"}, {"Na", "0 0 0"}}), "x");
  const cg::Crystal sorted = cg::in_cif_parser_order(c);
  EXPECT_EQ(sorted.species, (std::vector<std::string>{"Na", "Cl"}));
  EXPECT_EQ(sorted.frac, (std::vector<cg::Vec3>{{0, 0, 0}, {0.5, 0.5, 0.5}}));
  EXPECT_EQ(c.species, (std::vector<std::string>{"Cl", "Na"}));  // the original as it was
  EXPECT_EQ(derived(p1_cif({{"Cl", "0.5 0.5 0.5"}, {"Na", "0 0 0"}})).formula, "NaCl");
  if (cg::have_spglib()) EXPECT_EQ(cg::space_group(sorted, 0.1)->number, 47);  // Pmmm, as SpacegroupAnalyzer says
}

// ---- The readers' site order (data.site_order): the crystal text as the reference code writes it ----------------

namespace {

// A scratch folder of its own per test, emptied first.
std::string scratch(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("cg_site_order_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The one crystal read_mp20 reads from `cif` written as <dir>/<stem>.cif, in `order`.
cg::Crystal read_one(const std::string& cif, const std::string& dir, const std::string& stem, cg::SiteOrder order) {
  const std::string path = dir + "/" + stem + ".cif";
  std::ofstream(path) << cif;
  const cg::Mp20Split s = cg::read_mp20(path, 0, false, {}, order);
  EXPECT_TRUE(s.skipped.empty()) << (s.skipped.empty() ? "" : s.skipped[0].reason);
  return s.crystals.at(0);
}

// The sites of a crystal's text, one "El x y z" each, joined by " | " (the lattice lines left out).
std::string sites_of(const cg::Crystal& c) {
  std::string text = cg::crystal_to_text(c), out;
  std::istringstream in(text);
  std::string line, el;
  for (int i = 0; std::getline(in, line); ++i) {
    if (i < 2) continue;
    if (i % 2 == 0) {
      el = line;
      continue;
    }
    out += (out.empty() ? "" : " | ") + el + " " + line;
  }
  return out;
}

// x.cif of the task that asked for this order: P1, listing Cl, Na, Cl, Na.
const char* kMixedP1 =
    "data_x\n_symmetry_space_group_name_H-M   'P 1'\n_cell_length_a   5.64\n_cell_length_b   5.64\n"
    "_cell_length_c   5.64\n_cell_angle_alpha   90\n_cell_angle_beta   90\n_cell_angle_gamma   90\n"
    "_symmetry_Int_Tables_number   1\nloop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n"
    "  1  'x, y, z'\nloop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n _atom_site_fract_y\n"
    " _atom_site_fract_z\n _atom_site_occupancy\n  Cl  Cl0  0.5 0.5 0.5  1\n  Na  Na0  0.0 0.0 0.0  1\n"
    "  Cl  Cl1  0.0 0.0 0.5  1\n  Na  Na1  0.5 0.5 0.0  1\n";

// MP-20's mp-10152 (LaSi2Ir2, test split) as pymatgen's CifWriter(s, symprec=0.1) writes it (P4/nmm, five Wyckoff
// sites), its atom rows then reversed: Ir, Ir, Si, Si, La.
const char* kSymmetrized =
    "data_La(SiIr)2\n_symmetry_space_group_name_H-M   P4/nmm\n_cell_length_a   4.21280300\n"
    "_cell_length_b   4.21280300\n_cell_length_c   10.06170200\n_cell_angle_alpha   90.00000000\n"
    "_cell_angle_beta   90.00000000\n_cell_angle_gamma   90.00000000\n_symmetry_Int_Tables_number   129\n"
    "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n  2  '-y+1/2, x+1/2, z'\n"
    "  3  '-x, -y, z'\n  4  'y+1/2, -x+1/2, z'\n  5  'x+1/2, -y+1/2, -z'\n  6  '-y, -x, -z'\n"
    "  7  '-x+1/2, y+1/2, -z'\n  8  'y, x, -z'\n  9  '-x+1/2, -y+1/2, -z'\n  10  'y, -x, -z'\n"
    "  11  'x+1/2, y+1/2, -z'\n  12  '-y, x, -z'\n  13  '-x, y, z'\n  14  'y+1/2, x+1/2, z'\n  15  'x, -y, z'\n"
    "  16  '-y+1/2, -x+1/2, z'\nloop_\n _atom_site_type_symbol\n _atom_site_label\n"
    " _atom_site_symmetry_multiplicity\n _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n"
    " _atom_site_occupancy\n  Ir  Ir4  2  0.00000000  0.50000000  0.37299500  1.0\n"
    "  Ir  Ir3  2  0.00000000  0.00000000  0.00000000  1.0\n  Si  Si2  2  0.00000000  0.50000000  0.12778100  1.0\n"
    "  Si  Si1  2  0.00000000  0.00000000  0.50000000  1.0\n  La  La0  2  0.00000000  0.50000000  0.74284400  1.0\n";

}  // namespace

// The reference code's text lists x.cif's sites as Structure.from_str orders them (/usr/bin/python3, pymatgen
// 2022.11.7: [(str(sp), list(c)) for sp, c in zip(s.species, s.frac_coords)] gave Na 0 0 0, Na .5 .5 0, Cl .5 .5 .5,
// Cl 0 0 .5); data.site_order=file keeps the CIF's.
TEST(SiteOrder, ReadersGiveCifParsersOrder) {
  const std::string dir = scratch("p1");
  const cg::Crystal c = read_one(kMixedP1, dir, "x", cg::SiteOrder::kPymatgen);
  EXPECT_EQ(sites_of(c), "Na 0.00 0.00 0.00 | Na 0.50 0.50 0.00 | Cl 0.50 0.50 0.50 | Cl 0.00 0.00 0.50");
  EXPECT_EQ(sites_of(read_one(kMixedP1, dir, "x", cg::SiteOrder::kFile)),
            "Cl 0.50 0.50 0.50 | Na 0.00 0.00 0.00 | Cl 0.00 0.00 0.50 | Na 0.50 0.50 0.00");
  // The CSV reader the same (cgprep's MP-20 path), pymatgen's order by default.
  std::string quoted = "\"";
  for (char ch : std::string(kMixedP1)) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  const std::string csv = "material_id,cif\nx," + quoted + "\"\n";
  EXPECT_EQ(sites_of(cg::parse_mp20_csv(csv).crystals.at(0)),
            "Na 0.00 0.00 0.00 | Na 0.50 0.50 0.00 | Cl 0.50 0.50 0.50 | Cl 0.00 0.00 0.50");
  EXPECT_EQ(sites_of(cg::parse_mp20_csv(csv, 0, false, {}, cg::SiteOrder::kFile).crystals.at(0)),
            "Cl 0.50 0.50 0.50 | Na 0.00 0.00 0.00 | Cl 0.00 0.00 0.50 | Na 0.50 0.50 0.00");
  EXPECT_EQ(cg::parse_site_order("pymatgen"), cg::SiteOrder::kPymatgen);
  EXPECT_EQ(cg::parse_site_order("file"), cg::SiteOrder::kFile);
  EXPECT_TRUE(cg::test::contains(cg::test::error_of([] { cg::parse_site_order("cif"); }),
                                "data.site_order 'cif' is not one of: pymatgen, file"));
}

// A symmetrized CIF: its sites grouped by element (La, Si, Ir), each listed site followed by its images in the
// operations' order, as Structure.from_str(kSymmetrized, fmt="cif") gave them (pymatgen 2022.11.7, frac_coords
// printed "{:.2f}"); the file's order lists Ir first. A CIF that names its space group without listing operations
// (y.cif of the task: Fm-3m NaCl) is grouped the same way, its images in pymatgen's order too (the operations of
// SpaceGroup("Fm-3m") in CPython's set order: data/space_groups.h): pymatgen gave Na 0 0 0, .5 .5 0, .5 0 .5,
// 0 .5 .5, then Cl .5 .5 .5, 0 0 .5, 0 .5 0, .5 0 0 (spglib's sorted tables, which we followed before, put the face
// centrings the other way round).
TEST(SiteOrder, SymmetryImagesInPymatgensOrder) {
  const std::string dir = scratch("sym");
  EXPECT_EQ(sites_of(read_one(kSymmetrized, dir, "sym", cg::SiteOrder::kPymatgen)),
            "La 0.00 0.50 0.74 | La 0.50 0.00 0.26 | Si 0.00 0.50 0.13 | Si 0.50 0.00 0.87 | Si 0.00 0.00 0.50 | "
            "Si 0.50 0.50 0.50 | Ir 0.00 0.50 0.37 | Ir 0.50 0.00 0.63 | Ir 0.00 0.00 0.00 | Ir 0.50 0.50 0.00");
  EXPECT_EQ(sites_of(read_one(kSymmetrized, dir, "sym", cg::SiteOrder::kFile)),
            "Ir 0.00 0.50 0.37 | Ir 0.50 0.00 0.63 | Ir 0.00 0.00 0.00 | Ir 0.50 0.50 0.00 | Si 0.00 0.50 0.13 | "
            "Si 0.50 0.00 0.87 | Si 0.00 0.00 0.50 | Si 0.50 0.50 0.50 | La 0.00 0.50 0.74 | La 0.50 0.00 0.26");
  std::string named = kMixedP1;
  named.replace(named.find("'P 1'"), 5, "'F m -3 m'");
  named.replace(named.find("_symmetry_Int_Tables_number   1\n"), 32, "_symmetry_Int_Tables_number   225\n");
  const size_t ops = named.find("loop_\n _symmetry_equiv");
  named.erase(ops, named.find("loop_\n _atom_site") - ops);
  named.erase(named.find("  Cl  Cl1"));  // y.cif: Cl .5 .5 .5 and Na 0 0 0 only
  EXPECT_EQ(sites_of(read_one(named, dir, "y", cg::SiteOrder::kPymatgen)),
            "Na 0.00 0.00 0.00 | Na 0.50 0.50 0.00 | Na 0.50 0.00 0.50 | Na 0.00 0.50 0.50 | Cl 0.50 0.50 0.50 | "
            "Cl 0.00 0.00 0.50 | Cl 0.00 0.50 0.00 | Cl 0.50 0.00 0.00");
}

// MP-20's CIFs were written from pymatgen's structures, so reading them sorts nothing: the first rows of each split
// have the same text in both orders (text_order_agreement.py --changes counts every row).
TEST(SiteOrder, Mp20TextsUnchanged) {
  for (const char* split : {"train", "val", "test"}) {
    const std::string path = std::string(CG_SOURCE_DIR) + "/data/mp20/" + split + ".csv.gz";
    const cg::Mp20Split now = cg::read_mp20(path, 300);
    const cg::Mp20Split before = cg::read_mp20(path, 300, false, {}, cg::SiteOrder::kFile);
    ASSERT_EQ(now.crystals.size(), before.crystals.size());
    ASSERT_GT(now.crystals.size(), 290u);
    for (size_t i = 0; i < now.crystals.size(); ++i)
      EXPECT_EQ(cg::crystal_to_text(now.crystals[i]), cg::crystal_to_text(before.crystals[i]))
          << split << " " << now.crystals[i].id;
  }
}

// Read in either order, the derived formula is pymatgen's: derive_properties sorts the sites, and sorting sites
// already in CifParser's order keeps them, He, Ne and Ar included (where Site.__lt__ is no order). The 70 sites of
// SitesAsCifParserSortsThem, in its order and in a shuffled one, sorted once and twice.
TEST(SiteOrder, DerivationUsesTheOrderRead) {
  const std::string dir = scratch("derive");
  const std::string cif = p1_cif({{"Na", "0 0 0"}, {"Cl", "0.5 0.5 0.5"}, {"Ar", "0.25 0.25 0.25"}});
  for (cg::SiteOrder order : {cg::SiteOrder::kPymatgen, cg::SiteOrder::kFile}) {
    std::vector<cg::Crystal> one{read_one(cif, dir, "nacl_ar", order)};
    EXPECT_EQ(one[0].species, order == cg::SiteOrder::kPymatgen ? (std::vector<std::string>{"Ar", "Na", "Cl"})
                                                               : (std::vector<std::string>{"Na", "Cl", "Ar"}));
    cg::derive_properties(&one, 1);
    EXPECT_EQ(one[0].formula, "ArNaCl");  // pymatgen's, as DerivedFormulaIsPymatgensFromTheCif
  }
  const std::vector<std::string> els = {"He", "Na", "Cl", "Ar", "F", "Li", "O", "Ne"};
  cg::Crystal c;
  for (int i = 0; i < 70; ++i) {
    c.species.push_back(els[size_t((i * i + 2 * i + i / 5) % 8)]);
    c.frac.push_back({i / 70.0, 0, 0});  // tells the sites apart
  }
  for (int pass = 0; pass < 2; ++pass) {
    const cg::Crystal once = cg::in_cif_parser_order(c), twice = cg::in_cif_parser_order(once);
    EXPECT_EQ(twice.species, once.species);
    EXPECT_EQ(twice.frac, once.frac);
    std::reverse(c.species.begin(), c.species.end());  // the second pass: another order of the same sites
    std::reverse(c.frac.begin(), c.frac.end());
  }
}

// ---- Named space groups: the images in the order pymatgen's CifParser makes them --------------------------------

// CPython 3.11's iteration order of a set of keys that all hash to 7 (pymatgen's SymmOp), by hand for 4 and 5 keys
// (8 slots, mask 7: slot 7, then jumps 7 -> 4 -> 5 -> 2 -> 3 as i = 5 i + 1; the fifth key regrows the table to 32
// slots, keys re-placed in slot order 2 3 4 5 7 into slots 7..11 by linear probing), and as /usr/bin/python3 printed
// [k.i for k in {*keys}] for 12 and 48 keys of a class whose __hash__ returns 7.
TEST(PymatgenOrder, CPythonSetOrderOfEqualHashes) {
  using V = std::vector<size_t>;
  EXPECT_EQ(cg::cpython_set_order(1), (V{0}));
  EXPECT_EQ(cg::cpython_set_order(4), (V{3, 1, 2, 0}));
  EXPECT_EQ(cg::cpython_set_order(5), (V{3, 4, 1, 2, 0}));
  EXPECT_EQ(cg::cpython_set_order(12), (V{10, 11, 3, 4, 1, 2, 0, 5, 6, 7, 8, 9}));
  EXPECT_EQ(cg::cpython_set_order(48),
            (V{35, 36, 37, 38, 39, 40, 41, 10, 11, 12, 3, 4, 1, 2, 0, 5, 6, 30, 31, 32, 47, 42, 43, 44, 45, 46, 7, 8,
               9, 13, 14, 15, 16, 17, 18, 19, 33, 34, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29}));
  for (size_t n : {96, 192}) {  // the largest groups: still every key once
    V order = cg::cpython_set_order(n);
    std::sort(order.begin(), order.end());
    for (size_t k = 0; k < n; ++k) ASSERT_EQ(order[k], k) << n;
  }
}

namespace {

// A fixture of CIFs naming their space group without operations, with pymatgen's sites for each in its order
// ('case', 'tag TAG VALUE' lines, 'cell', 'site's, 'expect'): ours, read and put in CifParser's order as the readers
// of CSV and CIF folders do, must be the same sites in the same order. Returns how many sites were compared.
size_t expect_fixture_sites(const std::string& fixture, size_t cases_expected) {
  std::ifstream in(std::string(CG_SOURCE_DIR) + "/tests/data/fixtures/" + fixture);
  EXPECT_TRUE(in.good()) << fixture;
  struct Case {
    std::string what, tags, cell, sites, expect;
  };
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    const size_t space = line.find(' ');
    const std::string kind = line.substr(0, space), rest = space == std::string::npos ? "" : line.substr(space + 1);
    if (kind == "case") cases.push_back({rest, "", "", "", ""});
    if (cases.empty()) continue;
    Case& c = cases.back();
    if (kind == "tag") {
      const size_t gap = rest.find(' ');
      c.tags += rest.substr(0, gap) + "   '" + rest.substr(gap + 1) + "'\n";
    } else if (kind == "cell") {
      c.cell = rest;
    } else if (kind == "site") {
      c.sites += "  " + rest.substr(0, rest.find(' ')) + "  " + rest + "\n";  // type symbol, then label = symbol
    } else if (kind == "expect") {
      c.expect = rest;
    }
  }
  EXPECT_EQ(cases.size(), cases_expected) << fixture;
  size_t images = 0;
  for (const Case& c : cases) {
    std::istringstream cell(c.cell);
    std::string cif = "data_x\n" + c.tags;
    for (const char* tag : {"length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"}) {
      std::string v;
      cell >> v;
      cif += std::string("_cell_") + tag + "   " + v + "\n";
    }
    cif += "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n _atom_site_fract_y\n"
           " _atom_site_fract_z\n" + c.sites;
    const cg::Crystal x = cg::in_cif_parser_order(cg::parse_cif(cif, c.what));
    std::istringstream want(c.expect);
    std::string el;
    cg::Vec3 p{};
    size_t k = 0;
    for (; want >> el >> p[0] >> p[1] >> p[2]; ++k) {
      if (k >= x.num_sites()) {
        ADD_FAILURE() << c.what << ": fewer sites than pymatgen's";
        break;
      }
      EXPECT_EQ(x.species[k], el) << c.what << " site " << k;
      for (size_t d = 0; d < 3; ++d) {
        const double diff = x.frac[k][d] - p[d];
        EXPECT_NEAR(diff - std::round(diff), 0, 1e-5) << c.what << " site " << k << " (" << el << ")";
      }
    }
    EXPECT_EQ(k, x.num_sites()) << c.what;
    images += k;
  }
  return images;
}

}  // namespace

// tests/data/fixtures/pymatgen_named_space_group_orders.txt: CIFs naming their space group without operations (by
// pymatgen's symbol, a symbol only COD's table has, a number, symbol and number, a qualified symbol or a Hall symbol
// pymatgen cannot read) and pymatgen's sites for them, in its order (space_group_order_reference.py wrote it; run
// without --fixture it compares all 817 names with pymatgen itself).
TEST(PymatgenOrder, NamedSpaceGroupImagesInPymatgensOrder) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib: no space-group tables";
  EXPECT_GT(expect_fixture_sites("pymatgen_named_space_group_orders.txt", 64), 3000u);  // all sites compared
}

// tests/data/fixtures/pymatgen_space_group_tags.txt: CIFs naming their space group by two tags that disagree (another
// setting or group; a symbol CifParser cannot read; its tags in another order than ours were, or in lower case) and
// pymatgen's sites for them (space_group_tags_reference.py wrote it; run without --fixture it compares 8,020 such
// CIFs with pymatgen itself). Read from the tag CifParser reads, in its order: the first reader took the first H-M
// tag of its own order (_H-M_alt before _H_M), a Hall symbol over any H-M one, and refused a number of another group.
TEST(PymatgenOrder, DisagreeingSpaceGroupTagsReadAsCifParserReadsThem) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib: no space-group tables";
  EXPECT_GT(expect_fixture_sites("pymatgen_space_group_tags.txt", 16), 900u);  // all sites compared
}

// ---- Oxidation states: pymatgen's Species ----------------------------------------------------------------------

// Rock salt FeO with its four Fe typed Fe3+, Fe2+, Fe2+, Fe3+ (layers of each along c). With the _atom_type loop of
// oxidation numbers pymatgen's CifParser reads Species, and /usr/bin/python3 (pymatgen 2022.11.7) gave: sites Fe2+
// .5 .5 0, Fe2+ .5 0 .5, Fe3+ 0 0 0, Fe3+ 0 .5 .5, then O2- as listed; reduced formula FeO;
// SpacegroupAnalyzer(s, symprec=0.1) 123 (P4/mmm: the charges order the cations in layers). Without the loop it
// reads elements: the sites as listed, Fm-3m (225). The text carries elements either way.
TEST(PymatgenOrder, OxidationStatesAreSpeciesForSpaceGroupAndOrder) {
  std::string cif =
      "data_x\n_cell_length_a 4.3\n_cell_length_b 4.3\n_cell_length_c 4.3\n_cell_angle_alpha 90\n"
      "_cell_angle_beta 90\n_cell_angle_gamma 90\nTYPES"
      "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n _atom_site_fract_y\n"
      " _atom_site_fract_z\n  O2-  O0  0.5 0.5 0.5\n  O2-  O1  0 0 0.5\n  O2-  O2  0 0.5 0\n  O2-  O3  0.5 0 0\n"
      "  Fe3+  Fe4  0 0 0\n  Fe2+  Fe5  0.5 0.5 0\n  Fe2+  Fe6  0.5 0 0.5\n  Fe3+  Fe7  0 0.5 0.5\n";
  const std::string types = "loop_\n _atom_type_symbol\n _atom_type_oxidation_number\n  Fe2+  2\n  Fe3+  3\n"
                            "  O2-  -2\n";
  const std::string dir = scratch("oxidation");
  const std::string with = std::string(cif).replace(cif.find("TYPES"), 5, types);
  const std::string without = std::string(cif).replace(cif.find("TYPES"), 5, "");
  std::vector<cg::Crystal> read{read_one(with, dir, "ions", cg::SiteOrder::kPymatgen),
                                read_one(without, dir, "atoms", cg::SiteOrder::kPymatgen)};
  cg::derive_properties(&read, 1);
  const cg::Crystal& ions = read[0];
  const cg::Crystal& atoms = read[1];
  EXPECT_EQ(sites_of(ions), "Fe 0.50 0.50 0.00 | Fe 0.50 0.00 0.50 | Fe 0.00 0.00 0.00 | Fe 0.00 0.50 0.50 | "
                            "O 0.50 0.50 0.50 | O 0.00 0.00 0.50 | O 0.00 0.50 0.00 | O 0.50 0.00 0.00");
  EXPECT_EQ(ions.oxidation, (std::vector<double>{2, 2, 3, 3, -2, -2, -2, -2}));
  EXPECT_EQ(ions.formula, "FeO");
  EXPECT_EQ(sites_of(atoms), "Fe 0.00 0.00 0.00 | Fe 0.50 0.50 0.00 | Fe 0.50 0.00 0.50 | Fe 0.00 0.50 0.50 | "
                             "O 0.50 0.50 0.50 | O 0.00 0.00 0.50 | O 0.00 0.50 0.00 | O 0.50 0.00 0.00");
  EXPECT_TRUE(atoms.oxidation.empty());
  if (cg::have_spglib()) {
    EXPECT_EQ(ions.spacegroup, 123);
    EXPECT_EQ(atoms.spacegroup, 225);
  }
  // A type symbol the loop lacks takes its element's oxidation number (pymatgen strips "2+" from each type symbol:
  // the last Fe type's, 3); one value that is no number ('?') makes pymatgen read elements only.
  const std::string partial = std::string(with).replace(with.find("  Fe2+  2\n"), 10, "");
  EXPECT_EQ(cg::parse_cif(partial, "x").oxidation, (std::vector<double>{-2, -2, -2, -2, 3, 3, 3, 3}));
  const std::string unknown = std::string(with).replace(with.find("  Fe3+  3\n"), 10, "  Fe3+  ?\n");
  EXPECT_TRUE(cg::parse_cif(unknown, "x").oxidation.empty());
  // With operations, each image keeps its site's: rock salt from Na+ and Cl- by the face-centring translations.
  const std::string fcc = "data_y\n_cell_length_a 5.6\n_cell_length_b 5.6\n_cell_length_c 5.6\n_cell_angle_alpha 90\n"
                          "_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n _symmetry_equiv_pos_as_xyz\n  'x, y, z'\n"
                          "  'x, y+1/2, z+1/2'\n  'x+1/2, y, z+1/2'\n  'x+1/2, y+1/2, z'\nloop_\n _atom_type_symbol\n"
                          " _atom_type_oxidation_number\n  Na+  1\n  Cl-  -1\nloop_\n _atom_site_type_symbol\n"
                          " _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n"
                          "  Na+  0 0 0\n  Cl-  0.5 0.5 0.5\n";
  EXPECT_EQ(cg::parse_cif(fcc, "x").oxidation, (std::vector<double>{1, 1, 1, 1, -1, -1, -1, -1}));
  // '.' is 0, as pymatgen's str2float reads it (its parse_oxi_states gave O2- 0 and O 0).
  const std::string dot = std::string(with).replace(with.find("  O2-  -2\n"), 10, "  O2-  .\n");
  EXPECT_EQ(cg::parse_cif(dot, "x").oxidation, (std::vector<double>{0, 0, 0, 0, 3, 2, 2, 3}));
}
