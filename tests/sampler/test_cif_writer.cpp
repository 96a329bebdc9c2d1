// CIF writer: round trip through data/cif.h's parser, and the same tags in the same order as pymatgen's CifWriter
// output stored in the MP-20 CSV (an independent sample of the layout we mimic).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "data/cif.h"
#include "data/csv.h"
#include "data/mp20.h"
#include "sampler/cif_writer.h"

namespace cg {
namespace {

// The lines that start with '_' or are "loop_", with values dropped: the CIF's layout.
std::vector<std::string> layout(const std::string& cif) {
  std::vector<std::string> out;
  std::istringstream in(cif);
  std::string line;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    if (line[b] == '_' || line.compare(b, 5, "loop_") == 0) out.push_back(line.substr(b, line.find(' ', b) - b));
  }
  return out;
}

TEST(CifWriter, HandWrittenCrystal) {
  Crystal c;
  c.id = "nacl";
  c.lattice = {5.6, 5.6, 5.6, 90, 90, 90};
  c.species = {"Na", "Cl", "Na", "Cl"};
  c.frac = {{0, 0, 0}, {0.5, 0, 0}, {0.5, 0.5, 0}, {0, 0.5, 0}};
  const std::string cif = to_cif(c);
  EXPECT_NE(cif.find("data_NaCl\n"), std::string::npos);
  EXPECT_NE(cif.find("_symmetry_space_group_name_H-M   'P 1'\n"), std::string::npos);
  EXPECT_NE(cif.find("_cell_length_a   5.60000000\n"), std::string::npos);
  EXPECT_NE(cif.find("_cell_volume   175.61600000\n"), std::string::npos);
  EXPECT_NE(cif.find("_chemical_formula_sum   'Na2 Cl2'\n"), std::string::npos);
  EXPECT_NE(cif.find("_cell_formula_units_Z   2\n"), std::string::npos);
  EXPECT_NE(cif.find("  1  'x, y, z'\n"), std::string::npos);
  EXPECT_NE(cif.find("  Cl  Cl3  1  0.00000000  0.50000000  0.00000000  1\n"), std::string::npos);

  const Crystal back = parse_cif(cif, "nacl");
  EXPECT_EQ(back.species, c.species);
  ASSERT_EQ(back.frac.size(), c.frac.size());
  for (size_t i = 0; i < c.frac.size(); ++i)
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(back.frac[i][k], c.frac[i][k], 1e-8);
  EXPECT_NEAR(back.lattice.a, 5.6, 1e-8);
  EXPECT_NEAR(back.lattice.gamma, 90, 1e-8);
}

// Values as pymatgen's CifBlock writes them (expected strings printed by its _format_field and textwrap.fill):
// quoted with a space, on a line of their own past 70 characters with the key, ";" text fields wrapped at 70.
TEST(CifWriter, ItemsLaidOutAsPymatgenDoes) {
  EXPECT_EQ(cif_item("_k", "A"), "_k   A\n");
  EXPECT_EQ(cif_item("_k", "It's x"), "_k   \"It's x\"\n");
  EXPECT_EQ(cif_item("_k", ""), "_k   \"\"\n");
  EXPECT_EQ(cif_item("_k", "_x"), "_k   '_x'\n");  // a leading underscore would read as a key: quoted
  // Key, three spaces and value on one line while shorter than 70 characters (2 + 3 + 64), else on two (2 + 3 + 65).
  const std::string v64(64, 'v');
  EXPECT_EQ(cif_item("_k", v64), "_k   " + v64 + "\n");
  EXPECT_EQ(cif_item("_k", v64 + "v"), "_k\n" + v64 + "v\n");
  std::string x15;
  for (int i = 0; i < 15; ++i) x15 += "X1 ";
  EXPECT_EQ(cif_item("_chemical_formula_sum", x15 + "Y2"), "_chemical_formula_sum\n'" + x15 + "Y2'\n");
  std::string ab;
  for (int i = 0; i < 30; ++i) ab += "ab ";
  EXPECT_EQ(cif_item("_k", ab), "_k\n;\nab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab\n"
                                "ab ab ab ab ab ab ab\n;\n");
  const std::string a69(69, 'A'), b75(75, 'B'), c140(140, 'C');
  EXPECT_EQ(cif_item("_k", a69 + " " + b75), "_k\n;\n" + a69 + " \n" + std::string(70, 'B') + "\nBBBBB\n;\n");
  EXPECT_EQ(cif_item("_k", c140 + "D"), "_k\n;\n" + std::string(70, 'C') + "\n" + std::string(70, 'C') + "\nD\n;\n");
}

// A crystal of n elements, the odd ones 12 times: its formula lines as pymatgen 2023's CifWriter wrote them.
TEST(CifWriter, LongFormulasWrappedAsPymatgenDoes) {
  const std::vector<std::string> els = {"Li", "Be", "Na", "Mg", "Al", "Si", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn",
                                        "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo"};
  auto crystal = [&](size_t n) {
    Crystal c;
    c.id = "many";
    c.lattice = {20, 20, 20, 90, 90, 90};
    for (size_t i = 0; i < n; ++i)
      for (int r = 0; r < (i % 2 == 0 ? 1 : 12); ++r) {
        c.species.push_back(els[i]);
        c.frac.push_back({std::fmod(0.037 * double(i) + 0.011 * r, 1.0), std::fmod(0.05 * double(i), 1.0), 0.07 * r});
      }
    return c;
  };
  auto formula_lines = [](const std::string& cif) {
    const size_t a = cif.find("_chemical_formula_structural"), b = cif.find("_cell_volume");
    return cif.substr(a, b - a);
  };
  EXPECT_EQ(formula_lines(to_cif(crystal(9))),
            "_chemical_formula_structural   KNaLiCa12Mg12ScBe12AlSi12\n"
            "_chemical_formula_sum   'K1 Na1 Li1 Ca12 Mg12 Sc1 Be12 Al1 Si12'\n");
  const Crystal c26 = crystal(26);
  const std::string cif = to_cif(c26);
  EXPECT_EQ(formula_lines(cif),
            "_chemical_formula_structural\n;\n"
            "KRbNaSr12LiCa12YMg12Zr12ScTi12MnBe12NbAlVZn12Cr12GaFe12CoCuSi12Ni12(Ge\nMo)12\n;\n"
            "_chemical_formula_sum\n;\n"
            "K1 Rb1 Na1 Sr12 Li1 Ca12 Y1 Mg12 Zr12 Sc1 Ti12 Mn1 Be12 Nb1 Al1 V1\n"
            "Zn12 Cr12 Ga1 Fe12 Co1 Si12 Cu1 Ni12 Ge12 Mo12\n;\n");
  const Crystal back = parse_cif(cif, "many");  // the text fields do not disturb our reader
  EXPECT_EQ(back.species, c26.species);
}

// The line of `cif` that starts with `tag`, or "".
std::string line_of(const std::string& cif, const std::string& tag) {
  std::istringstream in(cif);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(tag, 0) == 0) return line;
  return "";
}

// The MP-20 test split's crystals and, for each, the CIF pymatgen's CifWriter wrote for it.
struct Mp20Cifs {
  CsvTable table;
  size_t cif_col = 0;
  Mp20Split split;
  const std::string& pymatgen_cif(size_t k) const { return table.rows[split.source_rows[k]][cif_col]; }
};
Mp20Cifs mp20_test_cifs(int64_t max_rows) {
  const std::string text = read_maybe_gz(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz");
  Mp20Cifs m;
  m.table = parse_csv(text);
  m.cif_col = m.table.column("cif");
  m.split = parse_mp20_csv(text, max_rows);
  return m;
}

// The formula lines (and Z) are pymatgen's: reduced formula with its polyanion groups and special formulas, the sum
// by Element.X, as the CIFs pymatgen wrote for the whole MP-20 test split have them.
TEST(CifWriter, FormulaNamesAsPymatgenWroteThemForMp20) {
  const Mp20Cifs m = mp20_test_cifs(0);
  ASSERT_GT(m.split.crystals.size(), 9000u);
  int64_t differ = 0;
  for (size_t k = 0; k < m.split.crystals.size(); ++k) {
    const std::string ours = to_cif(m.split.crystals[k]);
    for (const char* tag :
         {"data_", "_chemical_formula_structural", "_chemical_formula_sum", "_cell_formula_units_Z"}) {
      const std::string a = line_of(ours, tag), b = line_of(m.pymatgen_cif(k), tag);
      if (a != b && ++differ <= 5)
        ADD_FAILURE() << m.split.crystals[k].id << ": ours '" << a << "', pymatgen's '" << b << "'";
    }
  }
  EXPECT_EQ(differ, 0);
}

TEST(CifWriter, Mp20RoundTripAndPymatgenLayout) {
  const Mp20Cifs m = mp20_test_cifs(40);
  ASSERT_GE(m.split.crystals.size(), 30u);
  for (size_t k = 0; k < m.split.crystals.size(); ++k) {
    const Crystal& c = m.split.crystals[k];
    const std::string ours = to_cif(c);
    // Same tags, loops and order as the pymatgen CIF this crystal was read from.
    EXPECT_EQ(layout(ours), layout(m.pymatgen_cif(k))) << c.id;
    const Crystal back = parse_cif(ours, c.id);
    ASSERT_EQ(back.species, c.species) << c.id;
    EXPECT_NEAR(back.lattice.a, c.lattice.a, 1e-7);
    EXPECT_NEAR(back.lattice.beta, c.lattice.beta, 1e-7);
    for (size_t i = 0; i < c.frac.size(); ++i)
      for (int d = 0; d < 3; ++d) EXPECT_NEAR(back.frac[i][d], c.frac[i][d], 1e-7) << c.id;
  }
}

}  // namespace
}  // namespace cg
