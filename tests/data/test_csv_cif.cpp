// CSV (multi-line quoted cells, empty cells), CIF reading and MP-20 rows: good rows, unknown properties, rejections.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "common/error.h"
#include "data/cif.h"
#include "data/csv.h"
#include "data/mp20.h"

namespace {

std::string cif_with(const std::string& atoms, const std::string& extra_head = "", bool occupancy = true) {
  std::string s =
      "# generated using pymatgen\ndata_X\n_symmetry_space_group_name_H-M   'P 1'\n"
      "_cell_length_a   4.00000000\n_cell_length_b   5.00000000\n_cell_length_c   6.00000000\n"
      "_cell_angle_alpha   90.00000000\n_cell_angle_beta   90.00000000\n_cell_angle_gamma   120.00000000\n" +
      extra_head +
      "_symmetry_Int_Tables_number   1\n_chemical_formula_sum   'Na1 Cl1'\nloop_\n _symmetry_equiv_pos_site_id\n"
      " _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\nloop_\n _atom_site_type_symbol\n _atom_site_label\n"
      " _atom_site_symmetry_multiplicity\n _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n";
  if (occupancy) s += " _atom_site_occupancy\n";
  return s + atoms;
}

const std::string kGoodAtoms = "  Na  Na0  1  0.00000000  0.00000000  0.00000000  1\n  Cl  Cl1  1  0.50000000  0.25000000  0.75000000  1\n";

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

TEST(Csv, QuotedMultilineAndEmptyCells) {
  const std::string text = "a,b,c\n1,\"x\ny, \"\"q\"\"\",\n,,3\r\n\"\",\"\",\"z\"";
  cg::CsvTable t = cg::parse_csv(text);
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"1", "x\ny, \"q\"", ""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"", "", "3"}));
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"", "", "z"}));
  EXPECT_EQ(t.row_lines[0], 2);
  EXPECT_EQ(t.row_lines[1], 4);  // the quoted cell spans lines 2-3
  EXPECT_EQ(t.column("c"), 2u);
  EXPECT_THROW(t.column("d"), cg::Error);
  EXPECT_THROW(cg::parse_csv("a,b\n1,\"open\n"), cg::Error);
}

TEST(Csv, TruncatedGzipIsAnErrorWhereverItIsCut) {
  // The shipped val split, cut at several points, including inside the 8-byte trailer (CRC and length): zlib's
  // gzread then just returns 0, so without a check the rows read so far would pass for the whole file.
  const std::string src = std::string(CG_SOURCE_DIR) + "/data/mp20/val.csv.gz";
  std::ifstream in(src, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u);
  EXPECT_NO_THROW(cg::read_maybe_gz(src));
  const std::string path = testing::TempDir() + "/truncated.csv.gz";
  for (size_t keep : {bytes.size() / 10, bytes.size() / 2, bytes.size() - 9, bytes.size() - 4, bytes.size() - 1}) {
    std::ofstream(path, std::ios::binary) << bytes.substr(0, keep);
    try {
      cg::read_maybe_gz(path);
      ADD_FAILURE() << "a copy cut to " << keep << " of " << bytes.size() << " bytes was read without an error";
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find("truncated or damaged"), std::string::npos) << e.what();
    }
  }
}

TEST(Cif, ReadsPymatgenP1) {
  cg::Crystal c = cg::parse_cif(cif_with(kGoodAtoms), "mp-1");
  EXPECT_EQ(c.id, "mp-1");
  EXPECT_DOUBLE_EQ(c.lattice.a, 4.0);
  EXPECT_DOUBLE_EQ(c.lattice.c, 6.0);
  EXPECT_DOUBLE_EQ(c.lattice.gamma, 120.0);
  ASSERT_EQ(c.num_sites(), 2u);
  EXPECT_EQ(c.species[1], "Cl");
  EXPECT_DOUBLE_EQ(c.frac[1][1], 0.25);
  // Occupancy column absent: accepted (occupancy 1 implied).
  EXPECT_EQ(cg::parse_cif(cif_with("  Na  Na0  1  0.1  0.2  0.3\n", "", false), "x").num_sites(), 1u);
  // What we write we read back.
  cg::Crystal back = cg::parse_cif(cg::write_cif(c), "mp-1");
  EXPECT_EQ(back.species, c.species);
  EXPECT_NEAR(back.frac[1][2], 0.75, 1e-12);
  EXPECT_NEAR(back.lattice.gamma, 120.0, 1e-8);
}

TEST(Cif, ReadsCommentsQuotedHashLabelsOxidationStatesAndP1InOtherTags) {
  const std::string atoms =
      "  Fe2+  '#1'  1  0.00000000  0.00000000  0.00000000  1   # a trailing comment\n"
      "# a comment line between rows\n"
      "  O2-  O1  1  0.50000000  0.25000000  0.75000000  1\n";
  std::string cif = cif_with(atoms, "_space_group_name_H-M_alt   'P 1'\n_space_group_IT_number   1\n");
  cg::Crystal c;
  std::string r;
  ASSERT_TRUE(cg::parse_cif(cif, "x", &c, &r)) << r;
  EXPECT_EQ(c.species, (std::vector<std::string>{"Fe", "O"}));
  EXPECT_NEAR(c.frac[1][1], 0.25, 1e-12);
}

TEST(Cif, RejectsWithMaterialId) {
  auto reason = [](const std::string& cif) {
    cg::Crystal c;
    std::string r;
    EXPECT_FALSE(cg::parse_cif(cif, "mp-77", &c, &r));
    EXPECT_EQ(r.rfind("mp-77: ", 0), 0u) << r;
    return r;
  };
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0.0  0.0  0.0  0.5\n")).find("partial occupancy 0.5"), std::string::npos);
  EXPECT_NE(reason(cif_with("  Xx  Xx0  1  0.0  0.0  0.0  1\n")).find("unknown element 'Xx'"), std::string::npos);
  std::string no_loop = cif_with("");
  no_loop = no_loop.substr(0, no_loop.find("loop_\n _atom_site"));
  EXPECT_NE(reason(no_loop).find("no _atom_site_fract"), std::string::npos);
  std::string no_c = cif_with(kGoodAtoms);
  no_c.erase(no_c.find("_cell_length_c"), std::string("_cell_length_c   6.00000000\n").size());
  EXPECT_NE(reason(no_c).find("missing _cell_length_c"), std::string::npos);
  std::string fm3m = cif_with(kGoodAtoms);
  fm3m.replace(fm3m.find("'P 1'"), 5, "'F m -3 m'");
  EXPECT_NE(reason(fm3m).find("not P1"), std::string::npos);
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0.0  abc  0.0  1\n")).find("'abc'"), std::string::npos);
  // Symmetry other than P1 in any of the dictionaries' tags, in any case: an asymmetric unit is not a cell.
  std::string ddl2 = cif_with(kGoodAtoms, "_space_group_name_H-M_alt   'F m -3 m'\n");
  EXPECT_NE(reason(ddl2).find("'F m -3 m' is not P1"), std::string::npos);
  std::string upper = cif_with(kGoodAtoms);
  upper.replace(upper.find("_symmetry_space_group_name_H-M   'P 1'"), 38, "_Symmetry_Space_Group_Name_H-M 'F m -3 m'");
  EXPECT_NE(reason(upper).find("is not P1"), std::string::npos);
  std::string it225 = cif_with(kGoodAtoms);
  it225.replace(it225.find("_symmetry_Int_Tables_number   1"), 31, "_symmetry_Int_Tables_number   225");
  EXPECT_NE(reason(it225).find("number 225 is not 1"), std::string::npos);
  std::string ops = cif_with(kGoodAtoms);
  ops.replace(ops.find(" _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n"), 72,
              " _space_group_symop_id\n _space_group_symop_operation_xyz\n  1  'x, y, z'\n  2  '-x, -y, -z'\n");
  EXPECT_NE(reason(ops).find("2 symmetry operation(s)"), std::string::npos);
  std::string not_identity = cif_with(kGoodAtoms);
  not_identity.replace(not_identity.find("'x, y, z'"), 9, "'-x, y, z'");
  EXPECT_NE(reason(not_identity).find("only P1"), std::string::npos);
  EXPECT_NE(reason(cif_with(kGoodAtoms) + "data_second\n").find("more than one data_ block"), std::string::npos);
  EXPECT_THROW(cg::parse_cif(cif_with("  Na  Na0  1  0.0  0.0  0.0  0.5\n"), "mp-9"), cg::Error);
}

TEST(Mp20, RowsPropertiesAndSkips) {
  const std::string header =
      ",material_id,formation_energy_per_atom,band_gap,pretty_formula,e_above_hull,elements,cif,spacegroup.number\n";
  std::string text = header;
  text += "0,mp-1,-1.5,0.25,NaCl,0.0,\"['Na', 'Cl']\"," + csv_quote(cif_with(kGoodAtoms)) + ",225\n";
  text += ",mp-2,,,NaCl,,\"['Na', 'Cl']\"," + csv_quote(cif_with(kGoodAtoms)) + ",\n";
  text += "2,mp-3,-1.0,0.1,NaCl,0.0,\"['Na']\"," + csv_quote(cif_with("  Na  Na0  1  0  0  0  0.5\n")) + ",225\n";
  text += "3,mp-4,oops,0.1,NaCl,0.0,\"['Na']\"," + csv_quote(cif_with(kGoodAtoms)) + ",225\n";
  cg::Mp20Split s = cg::parse_mp20_csv(text);
  EXPECT_EQ(s.rows_read, 4);
  ASSERT_EQ(s.crystals.size(), 2u);
  EXPECT_EQ(s.source_rows, (std::vector<int64_t>{0, 1}));
  const cg::Crystal& a = s.crystals[0];
  EXPECT_EQ(a.formula, "NaCl");
  EXPECT_DOUBLE_EQ(*a.formation_energy_per_atom, -1.5);
  EXPECT_DOUBLE_EQ(*a.band_gap, 0.25);
  EXPECT_DOUBLE_EQ(*a.e_above_hull, 0.0);  // a zero is a value...
  EXPECT_EQ(*a.spacegroup, 225);
  const cg::Crystal& b = s.crystals[1];       // ...an empty cell is not
  EXPECT_FALSE(b.formation_energy_per_atom.has_value());
  EXPECT_FALSE(b.band_gap.has_value());
  EXPECT_FALSE(b.e_above_hull.has_value());
  EXPECT_FALSE(b.spacegroup.has_value());
  ASSERT_EQ(s.skipped.size(), 2u);
  EXPECT_EQ(s.skipped[0].row, 2);
  EXPECT_EQ(s.skipped[0].reason.rfind("mp-3: partial occupancy", 0), 0u) << s.skipped[0].reason;
  EXPECT_EQ(s.skipped[1].reason.rfind("mp-4: formation_energy_per_atom 'oops'", 0), 0u) << s.skipped[1].reason;
  EXPECT_EQ(cg::parse_mp20_csv(text, 1).crystals.size(), 1u);  // max_rows
  try {
    cg::parse_mp20_csv(text, 0, /*strict=*/true);
    FAIL() << "strict mode must throw";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mp-3"), std::string::npos) << e.what();
  }
}

TEST(Mp20, ReadsTheShippedCopy) {
  // The shipped validation split: every row parses; property cells are present for some rows and empty for others.
  cg::Mp20Split s = cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/val.csv.gz", 2000);
  EXPECT_EQ(s.rows_read, 2000);
  EXPECT_TRUE(s.skipped.empty()) << s.skipped[0].reason;
  int with = 0, without = 0;
  for (const auto& c : s.crystals) (c.band_gap ? with : without)++;
  EXPECT_GT(with, 0);
  EXPECT_EQ(s.crystals[0].id, "mp-10015");
  EXPECT_EQ(s.crystals[0].formula, "SiOs");
  EXPECT_NEAR(*s.crystals[0].formation_energy_per_atom, -0.3013339024999979, 1e-15);
  EXPECT_EQ(*s.crystals[0].spacegroup, 221);
}
