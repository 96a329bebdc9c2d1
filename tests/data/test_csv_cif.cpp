// CSV (multi-line quoted cells, empty cells), CIF reading and MP-20 rows: good rows, unknown properties, rejections.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>

#include "common/error.h"
#include "data/cif.h"
#include "data/csv.h"
#include "data/elements.h"
#include "data/formula.h"
#include "data/mp20.h"
#include "data/space_groups.h"
#include "tests/test_util.h"
#include "trainer/config.h"

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

// Why parse_cif refuses `cif` (read as crystal `id`); the reason must start with the id.
std::string rejection(const std::string& cif, const std::string& id) {
  cg::Crystal c;
  std::string r;
  EXPECT_FALSE(cg::parse_cif(cif, id, &c, &r));
  EXPECT_EQ(r.rfind(id + ": ", 0), 0u) << r;
  return r;
}

// The CIF without its symmetry operation loop.
std::string without_ops(std::string cif) {
  const std::string loop = "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n";
  cif.erase(cif.find(loop), loop.size());
  return cif;
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
  // A byte order mark is not part of the first column's name.
  const cg::CsvTable bom = cg::parse_csv("\xEF\xBB\xBFmaterial_id,cif\nx,y\n");
  EXPECT_EQ(bom.column("material_id"), 0u);
  EXPECT_EQ(bom.rows[0][0], "x");
}

TEST(Csv, LineEndsBlankLinesAndQuotesInsideACell) {
  // As pandas reads them: CRLF is one line end (rows on lines 2 and 4, the blank line 3 is no row), and a quote that
  // does not open a cell is a character of it.
  const cg::CsvTable t = cg::parse_csv("a,b\r\n1,x\"y\r\n\r\n3,\"4\"\r\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"1", "x\"y"}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(t.row_lines, (std::vector<int64_t>{2, 4}));
  // The header alone, as data.columns' checks read it from a file: without the byte order mark, a quoted name whole.
  const std::string path = testing::TempDir() + "/header.csv";
  std::ofstream(path, std::ios::binary) << "\xEF\xBB\xBFmaterial_id,\"heat, ref\",cif\nmp-1,1,x\n";
  EXPECT_EQ(cg::read_csv_header(path), (std::vector<std::string>{"material_id", "heat, ref", "cif"}));
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
  // Within a relative 1e-4 of 1/3 or 2/3 a coordinate is that fraction, in P1 too, as pymatgen reads MP-20's CIFs
  // (mp-1176453's y = 0.666723: after a random shift its 2-decimal text differed from the reference's).
  const cg::Crystal thirds =
      cg::parse_cif(cif_with("  Na  Na0  1  0.33330000  0.66672300  0.66600000  1\n"), "mp-3");
  EXPECT_EQ(thirds.frac[0][0], 1.0 / 3.0);
  EXPECT_EQ(thirds.frac[0][1], 2.0 / 3.0);
  EXPECT_EQ(thirds.frac[0][2], 0.666);  // 1e-3 off: kept
  // Relative, not absolute: 0.33337 and 0.66675 are 3.7e-5 and 8.3e-5 off but 1.1e-4 and 1.25e-4 relative: kept.
  const cg::Crystal near = cg::parse_cif(cif_with("  Na  Na0  1  0.33337  0.66675  0.0  1\n"), "mp-3");
  EXPECT_EQ(near.frac[0][0], 0.33337);
  EXPECT_EQ(near.frac[0][1], 0.66675);
  // Occupancy column absent: accepted (occupancy 1 implied).
  EXPECT_EQ(cg::parse_cif(cif_with("  Na  Na0  1  0.1  0.2  0.3\n", "", false), "x").num_sites(), 1u);
  // What cgsample writes is read back: tests/sampler/test_cif_writer.cpp.
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
  auto reason = [](const std::string& cif) { return rejection(cif, "mp-77"); };
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0.0  0.0  0.0  0.5\n")).find("partial occupancy 0.5"), std::string::npos);
  EXPECT_NE(reason(cif_with("  Xx  Xx0  1  0.0  0.0  0.0  1\n")).find("unknown element 'Xx'"), std::string::npos);
  // Each says what to do: order the structure, or write 1 where ICSD rounded a full site; D as H; OH's sites.
  const std::string half = reason(cif_with("  Na  Na0  1  0.0  0.0  0.0  0.5\n"));
  EXPECT_NE(half.find("partial occupancy 0.5 at site 0 (Na); only ordered structures are read: order it first (e.g. "
                      "pymatgen's OrderDisorderedStructureTransformation) or leave the file out"), std::string::npos);
  EXPECT_EQ(half.find("set the occupancy to 1"), std::string::npos) << half;
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0.0  0.0  0.0  0.9999\n"))
                .find("partial occupancy 0.9999 at site 0 (Na); only ordered structures are read: order it first (e.g. "
                      "pymatgen's OrderDisorderedStructureTransformation) or leave the file out; if the site is full "
                      "and the value only rounded (ICSD writes 0.9999 or 0.999), set the occupancy to 1"),
            std::string::npos);
  // Full within 1e-6 (a float32 writer's 1.0000005), partial beyond (0.999995).
  EXPECT_EQ(cg::parse_cif(cif_with("  Na  Na0  1  0.0  0.0  0.0  1.0000005\n"), "x").num_sites(), 1u);
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0.0  0.0  0.0  0.999995\n")).find("partial occupancy 0.999995 at site 0"),
            std::string::npos);
  EXPECT_NE(reason(cif_with("  D  D1  1  0.0  0.0  0.0  1\n"))
                .find("unknown element 'D' at site 0 (_atom_site_type_symbol): deuterium (neutron structures list it): "
                      "write D as H"), std::string::npos);
  for (const char* d : {"D1", "D+"})
    EXPECT_NE(reason(cif_with(fmt::format("  {}  D1  1  0.0  0.0  0.0  1\n", d))).find("): deuterium"),
              std::string::npos) << d;
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0.0  0.0  0.0  1\n  OH  OH1  1  0.5  0.5  0.5  1\n"))
                .find("unknown element 'OH' at site 1 (_atom_site_type_symbol): a group with implicit hydrogens "
                      "(pymatgen drops such sites): list the O and H sites explicitly"), std::string::npos);
  EXPECT_NE(reason(cif_with("  Xx  Xx0  1  0.0  0.0  0.0  1\n"))
                .find("unknown element 'Xx' at site 0 (_atom_site_type_symbol): write an element symbol"),
            std::string::npos);
  // Far outside the cell: refused, not wrapped (1e30's fraction is below a double's precision). -2.5 and 999 wrap.
  EXPECT_NE(reason(cif_with("  Na  Na0  1  1e30  0.0  0.0  1\n")).find("coordinate '1e30' at site 0 (Na) is no "
                                                                       "fractional coordinate (|x| > 1000"),
            std::string::npos);
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0.0  0.0  -1000.5  1\n")).find("'-1000.5'"), std::string::npos);
  EXPECT_EQ(cg::parse_cif(cif_with("  Na  Na0  1  -2.5  999.25  0.0  1\n"), "x").num_sites(), 1u);
  EXPECT_NE(reason(cif_with("  Na  Na0  1  0x1p4  0.0  0.0  1\n")).find("coordinate '0x1p4' at site 0 (Na) is not a "
                                                                        "number"), std::string::npos);
  for (const char* v : {"nan", "inf", "(5)"})  // strtod reads the first two, no CIF means them; an uncertainty alone
    EXPECT_NE(reason(cif_with(fmt::format("  Na  Na0  1  0.0  {}  0.0  1\n", v)))
                  .find(fmt::format("coordinate '{}' at site 0 (Na) is not a number", v)), std::string::npos);
  std::string no_loop = cif_with("");
  no_loop = no_loop.substr(0, no_loop.find("loop_\n _atom_site"));
  EXPECT_NE(reason(no_loop).find("no _atom_site_fract"), std::string::npos);
  std::string no_c = cif_with(kGoodAtoms);
  no_c.erase(no_c.find("_cell_length_c"), std::string("_cell_length_c   6.00000000\n").size());
  EXPECT_NE(reason(no_c).find("missing _cell_length_c"), std::string::npos);
  // P1 named and no operations: the sites as listed.
  EXPECT_EQ(cg::parse_cif(without_ops(cif_with(kGoodAtoms)), "x").num_sites(), 2u);
  EXPECT_NE(reason(cif_with(kGoodAtoms) + "data_second\n_cell_length_a 4\n").find("more than one structure"), std::string::npos);
  EXPECT_THROW(cg::parse_cif(cif_with("  Na  Na0  1  0.0  0.0  0.0  0.5\n"), "mp-9"), cg::Error);
}

// A CIF with the given symmetry operations (one per row) and atom rows "El x y z".
std::string cif_ops(const std::vector<std::string>& ops, const std::string& atoms) {
  std::string s = "data_S\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n_cell_angle_alpha 90\n"
                  "_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n_symmetry_equiv_pos_as_xyz\n";
  for (const auto& op : ops) s += "'" + op + "'\n";
  return s + "loop_\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n" + atoms;
}

// Sites as "El x y z" strings rounded to 1e-6 and sorted, for order-free comparison with hand-computed sets.
std::vector<std::string> site_set(const cg::Crystal& c) {
  std::vector<std::string> out;
  for (size_t i = 0; i < c.num_sites(); ++i)
    out.push_back(fmt::format("{} {:.6f} {:.6f} {:.6f}", c.species[i], c.frac[i][0], c.frac[i][1], c.frac[i][2]));
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Cif, ExpandsSymmetryOperationsToTheFullCell) {
  // Rock salt from its face-centring translations: Na at the origin and Cl at the body centre, four images each.
  const std::vector<std::string> fcc = {"x, y, z", "x, y+1/2, z+1/2", "1/2+x, y, 1/2+z", "x+0.5, y+0.5, z"};
  cg::Crystal nacl = cg::parse_cif(cif_ops(fcc, "Na 0 0 0\nCl 0.5 0.5 0.5\n"), "nacl");
  EXPECT_EQ(site_set(nacl), (std::vector<std::string>{
                                "Cl 0.000000 0.000000 0.500000", "Cl 0.000000 0.500000 0.000000",
                                "Cl 0.500000 0.000000 0.000000", "Cl 0.500000 0.500000 0.500000",
                                "Na 0.000000 0.000000 0.000000", "Na 0.000000 0.500000 0.500000",
                                "Na 0.500000 0.000000 0.500000", "Na 0.500000 0.500000 0.000000"}));
  // Inversion: a general position has two images (wrapped into [0, 1)), the origin one.
  cg::Crystal pm1 = cg::parse_cif(cif_ops({"x,y,z", "-x,-y,-z"}, "Na 0 0 0\nCl 0.5 0.25 0.75\n"), "p-1");
  EXPECT_EQ(site_set(pm1), (std::vector<std::string>{"Cl 0.500000 0.250000 0.750000",
                                                     "Cl 0.500000 0.750000 0.250000", "Na 0.000000 0.000000 0.000000"}));
  // A three-fold axis (P3's operations): (0.1, 0.2, 0.3) -> (-y, x-y, z) = (0.8, 0.9, 0.3), (-x+y, -x, z) =
  // (0.1, 0.9, 0.3); (1/3, 2/3, z) written as 0.3333 0.6667 is on the axis (pymatgen's 1/3, 2/3 rounding): one site.
  const std::vector<std::string> p3 = {"x, y, z", "-y, x-y, z", "-x+y, -x, z"};
  cg::Crystal c3 = cg::parse_cif(cif_ops(p3, "Ga 0.1 0.2 0.3\nTe 0.3333 0.6667 0.1\n"), "p3");
  EXPECT_EQ(site_set(c3), (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.900000 0.300000",
                                                    "Ga 0.800000 0.900000 0.300000", "Te 0.333333 0.666667 0.100000"}));
  EXPECT_DOUBLE_EQ(c3.frac[3][0], 1.0 / 3.0);
  // Listing order: sites in file order, each followed by its images in operation order.
  EXPECT_EQ(pm1.species, (std::vector<std::string>{"Na", "Cl", "Cl"}));
  EXPECT_NEAR(pm1.frac[2][1], 0.75, 1e-12);
  // DDL2 operation tag, and a single operation written as an item rather than a loop.
  std::string ddl2 = cif_ops({"x,y,z", "-x,-y,-z"}, "Cl 0.5 0.25 0.75\n");
  ddl2.replace(ddl2.find("_symmetry_equiv_pos_as_xyz"), 26, "_space_group_symop_operation_xyz");
  EXPECT_EQ(cg::parse_cif(ddl2, "x").num_sites(), 2u);
  std::string item = cif_ops({}, "Cl 0.5 0.25 0.75\n");
  item.replace(item.find("loop_\n_symmetry_equiv_pos_as_xyz\n"), 33, "_symmetry_equiv_pos_as_xyz '-x, -y, -z'\n");
  cg::Crystal inverted = cg::parse_cif(item, "x");
  ASSERT_EQ(inverted.num_sites(), 1u);
  EXPECT_NEAR(inverted.frac[0][1], 0.75, 1e-12);
}

// Images of one site are one site where each coordinate is within pymatgen's site tolerance, 1e-4, of an earlier
// image's, modulo 1 (pymatgen 2022.11.7's CifParser read these alike): under inversion (0.50003, 0, 1/2) and its
// image (0.49997, 0, 1/2) are one site, as are (0.99996, 0, 0) and (0.00004, 0, 0) across the cell's edge; 8e-4
// and 1.2e-4 apart, (0.5004, 0, 1/2) and (0.5, 0.50006, 0) keep both images. The first image, the site as listed,
// is kept.
TEST(Cif, ImagesWithinTheSiteToleranceAreOneSite) {
  const std::vector<std::string> inversion = {"x,y,z", "-x,-y,-z"};
  auto sites = [&](const std::string& atoms) { return site_set(cg::parse_cif(cif_ops(inversion, atoms), "x")); };
  EXPECT_EQ(sites("Na 0.50003 0 0.5\n"), (std::vector<std::string>{"Na 0.500030 0.000000 0.500000"}));
  EXPECT_EQ(sites("Na 0.99996 0 0\n"), (std::vector<std::string>{"Na 0.999960 0.000000 0.000000"}));
  EXPECT_EQ(sites("Na 0.5004 0 0.5\n"),
            (std::vector<std::string>{"Na 0.499600 0.000000 0.500000", "Na 0.500400 0.000000 0.500000"}));
  EXPECT_EQ(sites("Na 0.5 0.50006 0\n"),
            (std::vector<std::string>{"Na 0.500000 0.499940 0.000000", "Na 0.500000 0.500060 0.000000"}));
  // Listed in P1 (x,y,z alone), the sites are kept as written, overlaps too: the structure checks judge them (an
  // overlap makes a generated crystal invalid, not unreadable).
  EXPECT_EQ(cg::parse_cif(cif_ops({"x, y, z"}, "Na 0.1 0.2 0.3\nCl 0.1 0.2 0.3\n"), "x").num_sites(), 2u);
  // One operation that is no identity moves every site, a translation too (pymatgen: (0.1, 0.2, 0.3) -> 0.6).
  EXPECT_EQ(site_set(cg::parse_cif(cif_ops({"x+1/2, y, z"}, "Na 0.1 0.2 0.3\n"), "x")),
            (std::vector<std::string>{"Na 0.600000 0.200000 0.300000"}));
}

// A CIF with no operations that names its space group by the given items, a cell and atom rows "El x y z".
std::string cif_named(const std::string& group_items, const std::string& cell, const std::string& atoms) {
  std::string s = "data_N\n" + group_items;
  const char* tags[6] = {"length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"};
  std::istringstream in(cell);
  for (const char* t : tags) {
    std::string v;
    in >> v;
    s += fmt::format("_cell_{} {}\n", t, v);
  }
  return s + "loop_\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n" + atoms;
}

TEST(Cif, NamedSpaceGroupWithoutOperationsUsesTheTables) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib (libsymspg-dev)";
  const std::string cubic = "5.64 5.64 5.64 90 90 90";
  const std::vector<std::string> rock_salt = {
      "Cl 0.000000 0.000000 0.500000", "Cl 0.000000 0.500000 0.000000", "Cl 0.500000 0.000000 0.000000",
      "Cl 0.500000 0.500000 0.500000", "Na 0.000000 0.000000 0.000000", "Na 0.000000 0.500000 0.500000",
      "Na 0.500000 0.000000 0.500000", "Na 0.500000 0.500000 0.000000"};
  // Fm-3m by any of its names, in either dictionary's tags and any tag case: rock salt from Na and Cl's 4a / 4b.
  for (const std::string& items :
       {std::string("_symmetry_space_group_name_H-M 'F m -3 m'\n"), std::string("_space_group_name_H-M_alt Fm-3m\n"),
        std::string("_Symmetry_Space_Group_Name_H-M 'F 4/m -3 2/m'\n"), std::string("_space_group_IT_number 225\n"),
        std::string("_symmetry_Int_Tables_number 225\n_symmetry_space_group_name_H-M Fm-3m\n"),
        std::string("_space_group_name_Hall '-F 4 2 3'\n")})
    EXPECT_EQ(site_set(cg::parse_cif(cif_named(items, cubic, "Na 0 0 0\nCl 0.5 0.5 0.5\n"), "x")), rock_salt)
        << items;

  auto why = [&](const std::string& items, const std::string& cell) {
    return rejection(cif_named(items, cell, "Ga 0.1 0.2 0.3\n"), "x");
  };

  // P 21/c: (x,y,z) (-x,y+1/2,-z+1/2) (-x,-y,-z) (x,-y+1/2,z+1/2) with unique axis b (beta != 90)...
  const std::string gp = "Ga 0.1 0.2 0.3\n";
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M 'P 1 21/c 1'\n", "5 6 7 90 100 90", gp),
                                   "x")),
            (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.300000 0.800000",
                                      "Ga 0.900000 0.700000 0.200000", "Ga 0.900000 0.800000 0.700000"}));
  // ... and number 14 on a cell with unique axis c (gamma != 90) reads as P 1 1 21/a: (x,y,z) (-x+1/2,-y,z+1/2)
  // (-x,-y,-z) (x+1/2,y,-z+1/2), the first setting whose rotations keep the cell.
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_space_group_IT_number 14\n", "5 6 7 90 90 100", gp), "x")),
            (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.400000 0.800000 0.800000",
                                      "Ga 0.600000 0.200000 0.200000", "Ga 0.900000 0.800000 0.700000"}));

  // R-3m (166), Bi at (x,x,x) (Wyckoff 2c / 6c): on rhombohedral axes two sites; on hexagonal axes six, the R
  // centring (2/3,1/3,1/3) and (1/3,2/3,2/3) on (0,0,z) and (0,0,-z).
  const std::string bi = "Bi 0.1 0.1 0.1\n";
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_space_group_IT_number 166\n", "4.7 4.7 4.7 57 57 57", bi), "x")),
            (std::vector<std::string>{"Bi 0.100000 0.100000 0.100000", "Bi 0.900000 0.900000 0.900000"}));
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M R-3m\n", "4.5 4.5 11.8 90 90 120",
                                             "Bi 0 0 0.1\n"), "x")),
            (std::vector<std::string>{"Bi 0.000000 0.000000 0.100000", "Bi 0.000000 0.000000 0.900000",
                                      "Bi 0.333333 0.666667 0.566667", "Bi 0.333333 0.666667 0.766667",
                                      "Bi 0.666667 0.333333 0.233333", "Bi 0.666667 0.333333 0.433333"}));
  // Qualifiers: pymatgen's "R-3mH" and the CIF ":R" name the axes; a named setting that does not fit is an error.
  EXPECT_EQ(cg::parse_cif(cif_named("_space_group_name_H-M_alt R-3mH\n", "4.5 4.5 11.8 90 90 120", "Bi 0 0 0.1\n"),
                          "x").num_sites(), 6u);
  EXPECT_EQ(cg::parse_cif(cif_named("_space_group_name_H-M_alt 'R -3 m :R'\n", "4.7 4.7 4.7 57 57 57", bi), "x")
                .num_sites(), 2u);
  EXPECT_NE(rejection(cif_named("_space_group_name_H-M_alt 'R -3 m :R'\n", "4.5 4.5 11.8 90 90 120", bi), "x")
                .find("does not fit the cell"), std::string::npos);

  // Fd-3m's two origins: Si at the origin is Wyckoff 8a (8 sites) in origin choice 1, the unqualified default (as
  // pymatgen reads the symbol and the number), and 16c in origin choice 2 (":2", or ICSD's trailing Z).
  const std::string si = "Si 0 0 0\n";
  for (const auto& [items, sites] : std::vector<std::pair<std::string, size_t>>{
           {"_symmetry_space_group_name_H-M Fd-3m\n", 8}, {"_space_group_IT_number 227\n", 8},
           {"_space_group_name_H-M_alt 'F d -3 m :1'\n", 8}, {"_space_group_name_H-M_alt 'F d -3 m :2'\n", 16},
           {"_space_group_name_H-M_alt 'F d -3 m Z'\n", 16}, {"_space_group_name_H-M_alt 'F d -3 m S'\n", 8},
           {"_space_group_name_Hall '-F 4vw 2vw 3'\n", 16}})
    EXPECT_EQ(cg::parse_cif(cif_named(items, cubic, si), "x").num_sites(), sites) << items;

  // A Hall symbol is read by its own rules, in any spelling of the setting and with an origin shift of its own:
  // '-P 2ybc' is P 1 21/c 1 (orbit above); shifted by v = (0, 0, 1/4), (R | t + v - R v) turns the inversion into
  // (-x, -y, -z+1/2) and the screw axis into (-x, y+1/2, -z); the glide (x, -y+1/2, z+1/2) stays.
  const std::string mono = "5 6 7 90 100 90";
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_space_group_name_Hall '-P 2ybc'\n", mono, gp), "x")),
            (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.300000 0.800000",
                                      "Ga 0.900000 0.700000 0.200000", "Ga 0.900000 0.800000 0.700000"}));
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_space_group_name_Hall '-P 2ybc (0 0 3)'\n", mono, gp), "x")),
            (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.300000 0.800000",
                                      "Ga 0.900000 0.700000 0.700000", "Ga 0.900000 0.800000 0.200000"}));
  for (const auto& [hall, what] : std::vector<std::pair<std::string, std::string>>{
           {"-Q 2ybc", "'Q' is not a lattice symbol"}, {"P 5", "does not start with 1, 2, 3, 4 or 6"},
           {"P 22", "'22': a screw part must be below the order 2"}, {"P 2xy", "'2xy' names two axes"},
           {"P 2yq", "not an axis or translation symbol"}, {"P 2 3", "needs its axis written"},
           {"P 2y (0 0)", "three integers"}, {"P 2y (0 0 1", "in parentheses"},
           {"P 2y (x,y,z+1/5)", "not in 24ths"}, {"P 2y (x,y,0)", "singular"},
           {"P 4 (2*x,y,z)", "rotations integral"}, {"P 1 (2*x,y,z)", "finer"}, {"P 2y (x,y)", "not of the form"}})
    EXPECT_NE(rejection(cif_named("_space_group_name_Hall '" + hall + "'\n", mono, gp), "x").find(what),
              std::string::npos) << hall;

  // A change of basis V = (M | m) (x' = V x) moves every operation and every old lattice translation n to
  // V (R | t + n) V^-1. 'P 2yb (1/2*x,y,-1/2*x+z)': M = [[1/2,0,0],[0,1,0],[-1/2,0,1]] (|det| 1/2: a cell twice
  // the size), so M R M^-1 = R for the screw axis (-x, y+1/2, -z), and n = (1,0,0) becomes the centring
  // (1/2, 0, -1/2) = (1/2, 0, 1/2): B 1 21 1, four operations. From (0.1, 0.2, 0.3): (0.9, 0.7, 0.7), (0.6, 0.2, 0.8),
  // (0.4, 0.7, 0.2). 'P 1 (1/2*x+1/2*y,1/2*x-1/2*y,-z)' is C 1: n = (1,0,0) becomes (1/2, 1/2, 0).
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_space_group_name_Hall 'P 2yb (1/2*x,y,-1/2*x+z)'\n", mono, gp), "x")),
            (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.400000 0.700000 0.200000",
                                      "Ga 0.600000 0.200000 0.800000", "Ga 0.900000 0.700000 0.700000"}));
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_space_group_name_Hall 'P 1 (1/2*x+1/2*y,1/2*x-1/2*y,-z)'\n"
                                             "_space_group_IT_number 1\n", "5 6 7 80 85 95", gp), "x")),
            (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.600000 0.700000 0.300000"}));

  // Other spellings of the same: '_' between components, any case, the shift written as an operation.
  for (const std::string& hall : {"-p_2YBC (0 0 3)", "-P 2ybc (x,y,z+1/4)", "-P 2ybc (x, y, z+3/12)"})
    EXPECT_EQ(site_set(cg::parse_cif(cif_named("_space_group_name_Hall '" + hall + "'\n", mono, gp), "x")),
              site_set(cg::parse_cif(cif_named("_space_group_name_Hall '-P 2ybc (0 0 3)'\n", mono, gp), "x")))
        << hall;

  // A symbol names its setting, and the number does not override it: P 21/n (14, cell choice 2) is (x,y,z)
  // (-x+1/2,y+1/2,-z+1/2) (-x,-y,-z) (x+1/2,-y+1/2,z+1/2), with the number or without; spelled in any case, with
  // SHELX's 2(1), or as the full symbol.
  const std::vector<std::string> p21n = {"Ga 0.100000 0.200000 0.300000", "Ga 0.400000 0.700000 0.200000",
                                         "Ga 0.600000 0.300000 0.800000", "Ga 0.900000 0.800000 0.700000"};
  for (const std::string& items :
       {std::string("_symmetry_space_group_name_H-M 'P 21/n'\n_symmetry_Int_Tables_number 14\n"),
        std::string("_symmetry_space_group_name_H-M 'p 21/N'\n"), std::string("_space_group_name_H-M_alt P2(1)/n\n"),
        std::string("_space_group_name_H-M_alt 'P 1 21/n 1'\n")})
    EXPECT_EQ(site_set(cg::parse_cif(cif_named(items, mono, gp), "x")), p21n) << items;
  // An unknown symbol is refused even with a number (the number alone would give another setting); a symbol whose
  // setting does not fit the cell too (C 2/m has unique axis b: a cell with gamma != 90 is not its).
  EXPECT_NE(why("_symmetry_space_group_name_H-M 'P 21/q'\n_symmetry_Int_Tables_number 14\n", mono)
                .find("is not in the tables"), std::string::npos);
  EXPECT_NE(why("_symmetry_space_group_name_H-M 'C 2/m'\n", "5 6 7 90 90 100").find("does not fit the cell"),
            std::string::npos);
  // The cell must keep its metric under the rotations to ~0.05% in length and ~0.06 degrees in angle, whatever
  // the cell's shape: a 2.5% difference of a and b next to a long c is no tetragonal cell.
  EXPECT_NE(why("_symmetry_space_group_name_H-M 'P 4/m m m'\n", "3.9 4.0 30 90 90 90").find("does not fit"),
            std::string::npos);
  EXPECT_EQ(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M 'P 4/m m m'\n", "3.9051 3.9052 30 90 90 90", gp),
                          "x").num_sites(), 16u);
  // The bound is 1e-3 of G's entries (G = M M^T): a and b 0.02% apart (a^2 = 16, b^2 = 16.0064) fit, 0.2% apart
  // (b^2 = 16.064) do not.
  EXPECT_EQ(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M 'P 4/m m m'\n", "4 4.0008 30 90 90 90", gp), "x")
                .num_sites(), 16u);
  EXPECT_NE(why("_symmetry_space_group_name_H-M 'P 4/m m m'\n", "4 4.008 30 90 90 90").find("does not fit"),
            std::string::npos);
  // Cubic symbols from before 1983, without the bar, whatever comes before the 3 (m, n, a or d): a general position
  // has the orbit of today's symbol, as many sites as its group has operations (Pn-3 and Pa-3 24, Fd-3m 192; Ga at
  // (0.1, 0.2, 0.3) lies on Fd-3m's mirror y + z = 1/2).
  const std::string general = "Ga 0.1234 0.2345 0.3456\n";
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M Fm3m\n", cubic, "Na 0 0 0\nCl 0.5 0.5 0.5\n"),
                                   "x")), rock_salt);
  for (const auto& [before, today, sites] : std::vector<std::tuple<std::string, std::string, size_t>>{
           {"Pn3", "P n -3", 24}, {"Pa3", "P a -3", 24}, {"Fd3m", "F d -3 m", 192}}) {
    const cg::Crystal read =
        cg::parse_cif(cif_named("_symmetry_space_group_name_H-M " + before + "\n", cubic, general), "x");
    EXPECT_EQ(read.num_sites(), sites) << before;
    EXPECT_EQ(site_set(read),
              site_set(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M '" + today + "'\n", cubic, general),
                                     "x")));
  }

  // Symbols from before the e-glides read as today's: Cmca is Cmce (64), Ccca is Ccce (68).
  const std::string ortho = "5 6 7 90 90 90", atoms = "Cu 0.11 0.22 0.33\n";
  EXPECT_EQ(site_set(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M 'C m c a'\n", ortho, atoms), "x")),
            site_set(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M 'C m c e'\n", ortho, atoms), "x")));
  EXPECT_EQ(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M 'C c c a'\n", ortho, atoms), "x").num_sites(),
            16u);

  // What is refused, with what to change.
  EXPECT_NE(why("_symmetry_space_group_name_H-M 'P 9'\n", cubic).find("is not in the tables"), std::string::npos);
  EXPECT_NE(why("_space_group_IT_number 231\n", cubic).find("not one of 1..230"), std::string::npos);
  EXPECT_NE(why("_space_group_IT_number 2x\n", cubic).find("not one of 1..230"), std::string::npos);
  for (const char* number : {"0", "221.5"})  // 0 is no name for P1
    EXPECT_NE(why(fmt::format("_space_group_IT_number {}\n", number), cubic).find("not one of 1..230"),
              std::string::npos) << number;
  EXPECT_NE(why("_symmetry_space_group_name_H-M 'F m -3 m'\n", "4 5 6 90 90 120").find("does not fit the cell"),
            std::string::npos);
  EXPECT_NE(why("_symmetry_space_group_name_H-M 'P 63/m m c'\n", cubic).find("does not fit the cell"),
            std::string::npos);
  // P1 by any name, or no name: the sites as written.
  for (const std::string& items : {std::string(""), std::string("_symmetry_space_group_name_H-M 'P 1'\n"),
                                   std::string("_space_group_IT_number 1\n_space_group_name_Hall 'P 1'\n")})
    EXPECT_EQ(cg::parse_cif(cif_named(items, "5 6 7 80 85 95", gp), "x").num_sites(), 1u) << items;
}

TEST(Cif, ReadsOtherCif11Layouts) {
  // Values on the line after their tag, a ';' text field, loop rows wrapped across lines and two rows on one line,
  // a quote inside a quoted value, DDLm tags, elements from labels, '?' and '.' occupancy (CIF's default, 1), a
  // comment after a text field.
  const std::string cif =
      "data_layouts\n"
      "_cell_length_a\n   4.0\n_cell_length_b 5.0 _cell_length_c\n6.0(2)\n"
      "_cell_angle_alpha 90 _cell_angle_beta 90 _cell_angle_gamma 120\n"
      "_publ_section_title\n;\nA title; with 'quotes' and # no comment\n  data_ not a block\n; # closed\n"
      "_chemical_name_common 'O'Brien's salt'\n"
      "_symmetry_space_group_name_H-M\n;\nP 1\n;\n"
      "loop_\n_atom_site.label _atom_site.fract_x\n_atom_site.fract_y _atom_site.fract_z _atom_site.occupancy\n"
      "Fe1 0.1\n 0.2 0.3 1.0   O2a 0.5 0.25\n0.75 ?\nCA3 0 0 0.5 1\nHA1 0.5 0.5 0.5 1\nOW1 0.1 0.5 0.5 1\n"
      "Wat 0.2 0.5 0.5 1\nwat 0.3 0.5 0.5 1\nNO3 0.4 0.5 0.5 .\n";
  cg::Crystal c;
  std::string r;
  ASSERT_TRUE(cg::parse_cif(cif, "x", &c, &r)) << r;
  EXPECT_DOUBLE_EQ(c.lattice.c, 6.0);
  EXPECT_DOUBLE_EQ(c.lattice.gamma, 120.0);
  // Labels read as pymatgen's _parse_symbol does: two letters as a symbol, else one, water labels as O (not W), NO3
  // as N (not No); pymatgen 2022.11.7 read wat and NO3 so.
  EXPECT_EQ(c.species, (std::vector<std::string>{"Fe", "O", "Ca", "H", "O", "O", "O", "N"}));
  EXPECT_DOUBLE_EQ(c.frac[1][2], 0.75);
  EXPECT_DOUBLE_EQ(c.frac[2][2], 0.5);
  // One site written as items instead of a one-row loop.
  const std::string items = "data_one\n_cell_length_a 3 _cell_length_b 3 _cell_length_c 3\n_cell_angle_alpha 90\n"
                            "_cell_angle_beta 90\n_cell_angle_gamma 90\n_atom_site_type_symbol Po\n"
                            "_atom_site_fract_x 0.5\n_atom_site_fract_y 0.5\n_atom_site_fract_z 0.5\n";
  cg::Crystal po = cg::parse_cif(items, "po");
  EXPECT_EQ(site_set(po), (std::vector<std::string>{"Po 0.500000 0.500000 0.500000"}));
}

// Layouts pymatgen 2022.11.7's CifParser reads as these orbits: tabs between values and CRLF line ends; a text field
// whose value starts on the ';' line ('P 1 21/n 1' there: P 21/n) and one around a number (trimmed: 14, P 21/c on
// this cell); quoted values and text fields that start with "data_" (values, not block headers). From Ga at
// (0.1, 0.2, 0.3), P 21/n's (-x+1/2, y+1/2, -z+1/2), (-x, -y, -z), (x+1/2, -y+1/2, z+1/2) and P 21/c's (-x, y+1/2,
// -z+1/2), (-x, -y, -z), (x, -y+1/2, z+1/2).
TEST(Cif, TabsCrlfTextFieldsAndQuotedDataWords) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib (libsymspg-dev)";
  const std::vector<std::string> p21n = {"Ga 0.100000 0.200000 0.300000", "Ga 0.400000 0.700000 0.200000",
                                         "Ga 0.600000 0.300000 0.800000", "Ga 0.900000 0.800000 0.700000"};
  const std::vector<std::string> p21c = {"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.300000 0.800000",
                                         "Ga 0.900000 0.700000 0.200000", "Ga 0.900000 0.800000 0.700000"};
  const std::string cell = "_cell_length_a\t5 _cell_length_b 6\t_cell_length_c 7\r\n_cell_angle_alpha 90\r\n"
                           "_cell_angle_beta\t100\t\r\n_cell_angle_gamma 90\r\n";
  const std::string atoms = "loop_\r\n_atom_site_type_symbol\t_atom_site_fract_x _atom_site_fract_y\r\n"
                            "_atom_site_fract_z\r\nGa\t0.1\t0.2\t0.3\r\n";
  const std::string symbol = "_chemical_name_common 'data_2'\t_journal_name_full\r\n;data_3 is no block\r\n;\r\n"
                             "_symmetry_space_group_name_H-M\r\n;P 1 21/n 1\r\n;\r\n";
  cg::Crystal c;
  std::string reason, warning = "stale";
  ASSERT_TRUE(cg::parse_cif("data_t\r\n" + cell + symbol + atoms, "x", &c, &reason, &warning)) << reason;
  EXPECT_EQ(site_set(c), p21n);
  EXPECT_EQ(warning, "");
  ASSERT_TRUE(cg::parse_cif("data_t\n" + cell + "_space_group_IT_number\n;\n  14\n;\n" + atoms, "x", &c, &reason))
      << reason;
  EXPECT_EQ(site_set(c), p21c);
}

// CIF 1.1's reserved words in any case: DATA_ opens a block and LOOP_ a loop, so the inversion below gives Ga its
// second image (pymatgen 2022.11.7 reads no structure from DATA_ and skips a LOOP_: one site).
TEST(Cif, DataAndLoopInAnyCase) {
  std::string cif = cif_ops({"x,y,z", "-x,-y,-z"}, "Ga 0.1 0.2 0.3\n");
  cif.replace(cif.find("data_"), 5, "DATA_");
  cif.replace(cif.find("loop_"), 5, "LOOP_");
  cif.replace(cif.find("loop_"), 5, "Loop_");
  EXPECT_EQ(site_set(cg::parse_cif(cif, "x")),
            (std::vector<std::string>{"Ga 0.100000 0.200000 0.300000", "Ga 0.900000 0.800000 0.700000"}));
}

TEST(Cif, RejectsMalformedSyntaxAndSymmetryWithWhatToChange) {
  auto reason = [](const std::string& cif) { return rejection(cif, "c-1"); };
  auto has = [](const std::string& r, const std::string& what) {
    EXPECT_NE(r.find(what), std::string::npos) << r << "\n  lacks: " << what;
  };
  const std::string good = cif_ops({"x,y,z"}, "Na 0 0 0\n");
  has(reason("data_x\n_cell_length_a 'unclosed\n"), "line 2: quoted value 'unclosed has no closing '");
  has(reason("data_x\n_publ_section_title\n;\nnever closed\n"), "line 3: text field opened with ';' is never closed");
  has(reason(good + "Cl 0.5 0.5\n"), "line 11: loop_ of 4 columns (_atom_site_type_symbol, ...) holds 7 values");
  has(reason("data_x\n_cell_length_a\n_cell_length_b 4\n"), "line 2: CIF item _cell_length_a has no value");
  has(reason("data_x\n_cell_length_a\nloop_\n_a\n1\n"), "line 2: CIF item _cell_length_a has no value");
  has(reason("data_x\n_cell_length_a 4\n_cell_length_a 5\n"), "line 3: CIF item _cell_length_a is given twice");
  has(reason("data_x\n_cell_length_a 4 5\n"), "line 2: value '5' belongs to no item or loop");
  has(reason("data_x\nsave_frame\n"), "line 2: 'save_frame' (save frames, global blocks) is not read");
  has(reason("data_x\nglobal_\n"), "line 2: 'global_' (save frames, global blocks) is not read");
  has(reason("data_x\nloop_\n_a\n"), "line 2: loop_ without values");
  has(reason(cif_ops({"x, y"}, "Na 0 0 0\n")), "symmetry operation 'x, y' is not of the form");
  has(reason(cif_ops({"x, y, z*2"}, "Na 0 0 0\n")), "symmetry operation 'x, y, z*2' is not of the form");
  // Two terms need a sign between them, a fraction a non-zero denominator, and three components are all.
  for (const char* op : {"x y, y, z", "x+1/0, y, z", "x, y, z, x"})
    has(reason(cif_ops({op}, "Na 0 0 0\n")), fmt::format("symmetry operation '{}' is not of the form", op));
  has(reason(cif_ops({"x, x, z"}, "Na 0 0 0\n")), "'x, x, z' is not a symmetry operation (determinant 0)");
  // Two listed sites that are images of each other: the cell would hold two atoms on one position.
  has(reason(cif_ops({"x,y,z", "-x,-y,-z"}, "Cl 0.1 0.2 0.3\nCl 0.9 0.8 0.7\n")),
      "site 1 (Cl) and an image of an earlier site (Cl) fall on the same position (0.9000 0.8000 0.7000)");
  has(reason(cif_ops({"x,y,z", "-x,-y,-z"}, "Na 0 0 0\nCl 0 0 0\n")),  // the very first site is an earlier one too
      "site 1 (Cl) and an image of an earlier site (Na) fall on the same position (0.0000 0.0000 0.0000)");
  std::string cart = good;
  cart.replace(cart.find("_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z"), 56,
               "_atom_site_Cartn_x\n_atom_site_Cartn_y\n_atom_site_Cartn_z");
  has(reason(cart), "Cartesian coordinates (_atom_site_Cartn_x); only fractional");
  std::string flat = good;
  flat.erase(flat.find("_atom_site_fract_z\n"), 19);
  flat.replace(flat.find("Na 0 0 0"), 8, "Na 0 0");
  has(reason(flat), "atom loop lacks _atom_site_fract_y or _atom_site_fract_z");
  std::string unnamed = good;
  unnamed.replace(unnamed.find("_atom_site_type_symbol"), 22, "_atom_site_occupancy");
  unnamed.replace(unnamed.find("Na 0 0 0"), 8, "1 0 0 0");
  has(reason(unnamed), "atom loop has neither _atom_site_type_symbol nor _atom_site_label");
  std::string water = good;
  water.replace(water.find("_atom_site_type_symbol"), 22, "_atom_site_label");
  water.replace(water.find("Na 0 0 0"), 8, "Xq1 0 0 0");
  has(reason(water), "unknown element 'Xq1' at site 0 (_atom_site_label)");
}

TEST(Cif, EveryBlockOfAMultiBlockFile) {
  const std::string one = cif_ops({"x,y,z"}, "Na 0 0 0\n");
  const std::string two = "data_second\n" + one.substr(one.find('\n') + 1);  // same crystal, block "second"
  const std::string broken = "data_broken\n_cell_length_a 4\n";
  const auto blocks = cg::parse_cif_blocks(one + broken + two, "f");
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0].id, "f/S");
  EXPECT_TRUE(blocks[0].ok) << blocks[0].reason;
  EXPECT_FALSE(blocks[1].ok);
  EXPECT_EQ(blocks[1].reason, "f/broken: missing _cell_length_b");
  EXPECT_TRUE(blocks[2].ok) << blocks[2].reason;
  EXPECT_EQ(blocks[2].id, "f/second");
  EXPECT_EQ(blocks[2].crystal.num_sites(), 1u);
  // A block that breaks CIF's syntax is a failed item too, though it describes no structure.
  const auto bad = cg::parse_cif_blocks(one + "data_bad\n_title a b\n" + two, "f");
  ASSERT_EQ(bad.size(), 3u);
  EXPECT_EQ(bad[1].reason, "f/bad: line 18: value 'b' belongs to no item or loop");
  // One block: the file's id, as parse_cif; a syntax error that stops the file: one failed result.
  const auto single = cg::parse_cif_blocks(one, "g");
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].id, "g");
  const auto unlexable = cg::parse_cif_blocks(one + "_title 'open\n" + two, "h");
  ASSERT_EQ(unlexable.size(), 1u);
  EXPECT_NE(unlexable[0].reason.find("h: line 17: quoted value 'open has no closing '"), std::string::npos)
      << unlexable[0].reason;
  EXPECT_EQ(cg::parse_cif_blocks("# nothing here\n", "e")[0].reason, "e: the CIF is empty");
  // parse_cif itself still wants one structure per text.
  EXPECT_NE(rejection(one + two, "m").find("line 17: the CIF holds more than one structure"), std::string::npos);
  // Publication blocks (IUCr's and COD's data_global) are not structures: left out, by parse_cif too.
  const std::string global = "data_global\n_journal_name_full 'Acta Cryst.'\n_publ_section_title\n;\nA title\n;\n";
  const auto with_global = cg::parse_cif_blocks(global + one, "p");
  ASSERT_EQ(with_global.size(), 1u);
  EXPECT_TRUE(with_global[0].ok) << with_global[0].reason;
  EXPECT_EQ(with_global[0].id, "p");
  EXPECT_EQ(cg::parse_cif(global + one, "p").num_sites(), 1u);
  EXPECT_EQ(cg::parse_cif_blocks(global, "q")[0].reason, "q: missing _cell_length_a");  // a lone block is read
  EXPECT_EQ(cg::parse_cif_blocks(global + global, "q")[0].reason,
            "q: no data_ block describes a structure (no _cell_ or _atom_site_ items)");
  // Anything before the first data_ header is an error at its line, not a block.
  EXPECT_EQ(cg::parse_cif_blocks("stray\n" + one, "r")[0].reason, "r: line 1: 'stray' comes before the first data_ block");
  // Unnamed or repeated block names: ids by block number.
  const auto twice = cg::parse_cif_blocks(one + one + "data_\n" + one.substr(one.find('\n') + 1), "t");
  ASSERT_EQ(twice.size(), 3u);
  EXPECT_EQ(twice[0].id, "t/1");
  EXPECT_EQ(twice[1].id, "t/2");
  EXPECT_EQ(twice[2].id, "t/3");
  // A block named like a number: every block numbered, so "data_2" and the second block cannot share an id.
  const auto numeric = cg::parse_cif_blocks("data_2\n" + one.substr(one.find('\n') + 1) + one, "n");
  ASSERT_EQ(numeric.size(), 2u);
  EXPECT_EQ(numeric[0].id, "n/1");
  EXPECT_EQ(numeric[1].id, "n/2");
  // A UTF-8 byte-order mark before the first line is not content.
  EXPECT_EQ(cg::parse_cif("\xEF\xBB\xBF" + one, "bom").num_sites(), 1u);
}

TEST(Mp20, RowsPropertiesAndSkips) {
  const std::string header =
      ",material_id,formation_energy_per_atom,band_gap,pretty_formula,e_above_hull,elements,cif,spacegroup.number\n";
  std::string text = header;
  text += "0,mp-1,-1.5,0.25,NaCl,0.0,\"['Na', 'Cl']\"," + csv_quote(cif_with(kGoodAtoms)) + ",225\n";
  text += ",mp-2,,,NaCl,,\"['Na', 'Cl']\"," + csv_quote(cif_with(kGoodAtoms)) + ",\n";
  text += "2,mp-3,-1.0,0.1,NaCl,0.0,\"['Na']\"," + csv_quote(cif_with("  Na  Na0  1  0  0  0  0.5\n")) + ",225\n";
  text += "3,mp-4,oops,inf,NaCl,0.0,\"['Na']\"," + csv_quote(cif_with(kGoodAtoms)) + ",Fm-3m\n";
  cg::Mp20Split s = cg::parse_mp20_csv(text);
  EXPECT_EQ(s.rows_read, 4);
  ASSERT_EQ(s.crystals.size(), 3u);
  EXPECT_EQ(s.source_rows, (std::vector<int64_t>{0, 1, 3}));
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
  ASSERT_EQ(s.skipped.size(), 1u);
  EXPECT_EQ(s.skipped[0].row, 2);
  EXPECT_EQ(s.skipped[0].reason.rfind("mp-3: partial occupancy", 0), 0u) << s.skipped[0].reason;
  // Property cells that are no numbers: the crystal is kept, those properties unknown (as empty cells), each said.
  const cg::Crystal& d = s.crystals[2];
  EXPECT_FALSE(d.formation_energy_per_atom || d.band_gap || d.spacegroup);
  EXPECT_DOUBLE_EQ(*d.e_above_hull, 0.0);
  ASSERT_EQ(s.bad_properties.size(), 3u);
  EXPECT_EQ(s.bad_properties[0].reason, "mp-4: formation_energy_per_atom 'oops' is not a number");
  EXPECT_EQ(s.bad_properties[1].reason, "mp-4: band_gap 'inf' is not a number");
  EXPECT_EQ(s.bad_properties[2].reason, "mp-4: spacegroup.number 'Fm-3m' is not an integer in 1..230");
  EXPECT_EQ(s.bad_properties[2].row, 3);
  EXPECT_TRUE(s.unread_numeric_columns.empty());  // the index column is not a property; elements is no number
  EXPECT_EQ(cg::parse_mp20_csv(text, 1).crystals.size(), 1u);  // max_rows
  std::string tsv = "material_id\tcif\n";
  tsv += "mp-1\t" + csv_quote(cif_with(kGoodAtoms)) + "\n";
  try {
    cg::parse_mp20_csv(tsv);
    ADD_FAILURE() << "a tab-separated file was read";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("the file is tab-separated"), std::string::npos) << e.what();
  }
  // Semicolons (pandas' sep=";", a European spreadsheet): said, not reported as a quote never closed.
  std::string semi = ";material_id;cif\n0;mp-1;" + csv_quote(cif_with(kGoodAtoms)) + "\n";
  EXPECT_NE(cg::test::error_of([&] { cg::parse_mp20_csv(semi); })
                .find("the file is semicolon-separated (its header line has ';' and no comma); CDVAE's layout is "
                      "comma-separated: save it as CSV with commas"), std::string::npos);
  // A comma-separated header with a ';' in a column name is CSV as usual.
  EXPECT_EQ(cg::parse_mp20_csv("material_id,cif,note;x\nmp-1," + csv_quote(cif_with(kGoodAtoms)) + ",a\n")
                .crystals.size(), 1u);
  try {
    cg::parse_mp20_csv(text, 0, /*strict=*/true);
    FAIL() << "strict mode must throw";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mp-3"), std::string::npos) << e.what();
  }
  const std::string no_occupancy_row = header + text.substr(text.find("3,mp-4"));
  try {
    cg::parse_mp20_csv(no_occupancy_row, 0, /*strict=*/true);
    FAIL() << "strict mode must throw on a property cell too";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mp-4: formation_energy_per_atom 'oops' is not a number"), std::string::npos)
        << e.what();
  }
}

TEST(Mp20, NanCellsAreUnknownAndSpaceGroupsSpan1To230) {
  // pandas writes a missing float as "nan" (or "NaN"): unknown, as an empty cell, and not reported as a bad cell.
  // Space groups are 1..230, both ends included.
  std::string text =
      ",material_id,formation_energy_per_atom,band_gap,pretty_formula,e_above_hull,elements,cif,spacegroup.number\n";
  const std::string cif = csv_quote(cif_with(kGoodAtoms));
  text += "0,mp-5,nan,NaN,NaCl,nan,\"['Na', 'Cl']\"," + cif + ",230\n";
  text += "1,mp-6,-1.0,nan,NaCl,0.5,\"['Na', 'Cl']\"," + cif + ",1\n";
  text += "2,mp-7,-1.0,1.0,NaCl,0.5,\"['Na', 'Cl']\"," + cif + ",231\n";
  text += "3,mp-8,-1.0,1.0,NaCl,0.5,\"['Na', 'Cl']\"," + cif + ",0\n";
  const cg::Mp20Split s = cg::parse_mp20_csv(text);
  ASSERT_EQ(s.crystals.size(), 4u);
  const cg::Crystal& a = s.crystals[0];
  EXPECT_FALSE(a.formation_energy_per_atom || a.band_gap || a.e_above_hull);
  EXPECT_EQ(a.spacegroup, 230);
  EXPECT_DOUBLE_EQ(s.crystals[1].formation_energy_per_atom.value_or(0), -1.0);
  EXPECT_FALSE(s.crystals[1].band_gap);
  EXPECT_EQ(s.crystals[1].spacegroup, 1);
  EXPECT_FALSE(s.crystals[2].spacegroup || s.crystals[3].spacegroup);
  ASSERT_EQ(s.bad_properties.size(), 2u);
  EXPECT_EQ(s.bad_properties[0].reason, "mp-7: spacegroup.number '231' is not an integer in 1..230");
  EXPECT_EQ(s.bad_properties[1].reason, "mp-8: spacegroup.number '0' is not an integer in 1..230");
  // pandas writes an integer column holding NaN as floats: 225.0 is 225; 12.5 is no space group.
  std::string floats = text.substr(0, text.find('\n') + 1);
  floats += "0,mp-9,-1.0,1.0,NaCl,0.5,\"['Na', 'Cl']\"," + cif + ",225.0\n";
  floats += "1,mp-10,-1.0,1.0,NaCl,0.5,\"['Na', 'Cl']\"," + cif + ",12.5\n";
  const cg::Mp20Split f = cg::parse_mp20_csv(floats);
  ASSERT_EQ(f.crystals.size(), 2u);
  EXPECT_EQ(f.crystals[0].spacegroup, 225);
  EXPECT_FALSE(f.crystals[1].spacegroup);
  ASSERT_EQ(f.bad_properties.size(), 1u);
  EXPECT_EQ(f.bad_properties[0].reason, "mp-10: spacegroup.number '12.5' is not an integer in 1..230");
}

TEST(Mp20, RowsOfAnotherCellCountAreSkippedAndOnlyNumberColumnsAreUnread) {
  // A row with a cell too many or too few is skipped (its cells cannot be told apart). Of the columns nothing reads,
  // only those with numbers are another dataset's properties: not pandas' index column "Unnamed: 0", not a column
  // whose cells are all empty, not one of words.
  const std::string cif = csv_quote(cif_with(kGoodAtoms));
  std::string text = "Unnamed: 0,material_id,cif,energy,note,blank\n";
  text += "0,mp-1," + cif + ",-1.5,a,\n";
  text += "1,mp-2," + cif + ",-1.5,a,,extra\n";
  text += "2,mp-3," + cif + ",-1.5,a\n";
  text += "3,mp-4," + cif + ",,b,\n";
  const cg::Mp20Split s = cg::parse_mp20_csv(text);
  EXPECT_EQ(s.source_rows, (std::vector<int64_t>{0, 3}));
  ASSERT_EQ(s.skipped.size(), 2u);
  EXPECT_EQ(s.skipped[0].reason, "mp-2: 7 cells, header has 6");
  EXPECT_EQ(s.skipped[1].reason, "mp-3: 5 cells, header has 6");
  EXPECT_EQ(s.unread_numeric_columns, std::vector<std::string>{"energy"});
}

TEST(Mp20, PropertyColumnsAreOptionalMaterialIdAndCifAreNot) {
  // Another dataset's CSV (carbon_24-like: its own property, a symmetrized CIF): properties unknown, CIF expanded.
  const std::string fcc = "data_C\n_cell_length_a 3.57\n_cell_length_b 3.57\n_cell_length_c 3.57\n"
                          "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n"
                          "_symmetry_equiv_pos_as_xyz\n'x, y, z'\n'x, y+1/2, z+1/2'\n'x+1/2, y, z+1/2'\n"
                          "'x+1/2, y+1/2, z'\nloop_\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
                          "_atom_site_fract_z\nC 0 0 0\nC 0.25 0.25 0.25\n";
  cg::Mp20Split s = cg::parse_mp20_csv("material_id,energy_per_atom,cif\nc-1,-9.1," + csv_quote(fcc) + "\n");
  ASSERT_EQ(s.crystals.size(), 1u) << (s.skipped.empty() ? "" : s.skipped[0].reason);
  const cg::Crystal& c = s.crystals[0];
  EXPECT_EQ(c.num_sites(), 8u);  // diamond's conventional cell
  EXPECT_TRUE(c.formula.empty());
  EXPECT_FALSE(c.formation_energy_per_atom || c.band_gap || c.e_above_hull || c.spacegroup);
  EXPECT_EQ(s.missing_columns, (std::vector<std::string>{"formation_energy_per_atom", "band_gap", "pretty_formula",
                                                          "e_above_hull", "spacegroup.number"}));
  EXPECT_EQ(s.unread_numeric_columns, std::vector<std::string>{"energy_per_atom"});
  // Mapped with data.columns, the column is read as that property, and a bad cell is named by the file's column.
  const cg::CsvColumns cols = cg::parse_columns({"formation_energy_per_atom=energy_per_atom", "material_id=name"});
  const cg::Mp20Split m = cg::parse_mp20_csv("name,energy_per_atom,cif\nc-1,-9.1," + csv_quote(fcc) + "\nc-2,x," +
                                             csv_quote(fcc) + "\n", 0, false, cols);
  ASSERT_EQ(m.crystals.size(), 2u);
  EXPECT_EQ(m.crystals[0].id, "c-1");
  EXPECT_DOUBLE_EQ(*m.crystals[0].formation_energy_per_atom, -9.1);
  EXPECT_TRUE(m.unread_numeric_columns.empty());
  EXPECT_EQ(m.missing_columns, (std::vector<std::string>{"band_gap", "pretty_formula", "e_above_hull",
                                                          "spacegroup.number"}));
  ASSERT_EQ(m.bad_properties.size(), 1u);
  EXPECT_EQ(m.bad_properties[0].reason, "c-2: energy_per_atom 'x' is not a number");
  EXPECT_EQ(cols.describe(), "material_id=name, formation_energy_per_atom=energy_per_atom");
  // An identity entry is as none: the same mapping, described alike; still checked, and one name given twice refused.
  const cg::CsvColumns with_identity = cg::parse_columns({"cif=cif", "formation_energy_per_atom=energy_per_atom",
                                                          "material_id=name", "band_gap=band_gap"});
  EXPECT_EQ(with_identity.renamed, cols.renamed);
  EXPECT_EQ(with_identity.describe(), cols.describe());
  EXPECT_EQ(cg::parse_columns({"material_id=material_id"}).describe(), "");
  EXPECT_EQ(cg::effective_columns({"cif=cif", "material_id=name", "band_gap=band_gap"}),
            std::vector<std::string>{"material_id=name"});
  EXPECT_EQ(cg::columns_setting({"cif=cif", "material_id=name"}), "data.columns=[material_id=name]");
  EXPECT_EQ(cg::columns_setting({"cif=cif"}), "data.columns=[]");
  EXPECT_NE(cg::test::error_of([] { cg::parse_columns({"material_id=material_id", "material_id=name"}); })
                .find("data.columns maps material_id twice (material_id=material_id and material_id=name)"),
            std::string::npos);
  EXPECT_NE(cg::test::error_of([] { cg::parse_columns({"heat=heat"}); }).find("'heat' is no column cgtrain reads"),
            std::string::npos);
  EXPECT_EQ(cols.of("band_gap"), "band_gap");
  for (const char* header : {"id,cif\n", "material_id,structure\n"}) {
    try {
      cg::parse_mp20_csv(std::string(header) + "a,b\n");
      ADD_FAILURE() << header;
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find("CSV has no column '"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("its columns are"), std::string::npos) << e.what();
      // What to write: the missing one named through data.columns.
      const std::string want = header[0] == 'i' ? "data.columns=[material_id=<that column>]"
                                                : "data.columns=[cif=<that column>]";
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

TEST(Mp20, AFolderOfCifsIsASplit) {
  const cg::test::TempDir dir("cg_test_cif_folder");
  const std::string one = cif_ops({"x,y,z", "-x,-y,-z"}, "Cl 0.5 0.25 0.75\n");  // 2 sites
  std::ofstream(dir / "a.cif") << one;
  {  // two blocks, gzip'd
    const std::string two = one + "data_second\n" + one.substr(one.find('\n') + 1);
    gzFile gz = gzopen((dir / "b.cif.gz").c_str(), "wb");
    ASSERT_NE(gz, nullptr);
    ASSERT_EQ(gzwrite(gz, two.data(), unsigned(two.size())), int(two.size()));
    gzclose(gz);
  }
  std::ofstream(dir / "c.txt") << "not a CIF";  // ignored
  std::ofstream(dir / "._a.cif") << "\x05\x16\x07";  // a macOS resource fork: ignored
  std::ofstream(dir / "d.cif") << "data_d\n_cell_length_a 4\n";
  {  // a truncated .cif.gz and a dangling symlink: skipped rows with their reason, not an abort
    std::string gz_bytes;
    {
      std::ifstream in(dir / "b.cif.gz", std::ios::binary);
      gz_bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::ofstream(dir / "e.cif.gz", std::ios::binary) << gz_bytes.substr(0, gz_bytes.size() / 2);
    std::filesystem::create_symlink(dir / "nowhere.cif", dir / "f.cif");
  }
  cg::Mp20Split s = cg::read_mp20(dir.path.string());  // a folder goes to read_cif_folder
  EXPECT_EQ(s.rows_read, 6);
  ASSERT_EQ(s.crystals.size(), 3u);
  EXPECT_EQ(s.crystals[0].id, "a");
  EXPECT_EQ(s.crystals[1].id, "b/S");
  EXPECT_EQ(s.crystals[2].id, "b/second");
  EXPECT_EQ(s.crystals[2].num_sites(), 2u);
  EXPECT_EQ(s.source_rows, (std::vector<int64_t>{0, 1, 2}));
  ASSERT_EQ(s.skipped.size(), 3u);
  EXPECT_EQ(s.skipped[0].row, 3);
  EXPECT_EQ(s.skipped[0].reason, "d: missing _cell_length_b");
  EXPECT_EQ(s.skipped[1].reason.rfind("e: ", 0), 0u) << s.skipped[1].reason;
  EXPECT_NE(s.skipped[1].reason.find("truncated"), std::string::npos) << s.skipped[1].reason;
  EXPECT_EQ(s.skipped[2].reason, "f: " + (dir / "f.cif") + " is a link to " + (dir / "nowhere.cif") +
                                     ", which does not exist");
  EXPECT_EQ(s.missing_columns.size(), 5u);
  EXPECT_FALSE(s.crystals[0].formation_energy_per_atom || s.crystals[0].spacegroup || !s.crystals[0].formula.empty());
  EXPECT_EQ(cg::read_cif_folder(dir.path.string(), 2).rows_read, 2);
  EXPECT_THROW(cg::read_cif_folder(dir.path.string(), 0, /*strict=*/true), cg::Error);
  // x.cif next to x.cif.gz: ids by file name, never one id twice.
  const cg::test::TempDir twin("cg_test_cif_twins");
  std::ofstream(twin / "x.cif") << one;
  std::filesystem::copy_file(dir / "b.cif.gz", twin.path / "x.cif.gz");
  const cg::Mp20Split t = cg::read_cif_folder(twin.path.string());
  ASSERT_EQ(t.crystals.size(), 3u);
  EXPECT_EQ(t.crystals[0].id, "x.cif");
  EXPECT_EQ(t.crystals[1].id, "x.cif.gz/S");
  // The source hash follows the CIFs' contents, not the other files.
  const std::string h = cg::source_sha256(dir.path.string());
  std::ofstream(dir / "c.txt") << "changed";
  EXPECT_EQ(cg::source_sha256(dir.path.string()), h);
  std::ofstream(dir / "a.cif") << one << "# changed\n";
  EXPECT_NE(cg::source_sha256(dir.path.string()), h);
  // The extension in capitals (Windows tools write X.CIF), and one CIF file given as the split.
  const cg::test::TempDir caps("cg_test_cif_caps");
  std::ofstream(caps / "Y.CIF") << one;
  const cg::Mp20Split u = cg::read_mp20(caps.path.string());
  ASSERT_EQ(u.crystals.size(), 1u);
  EXPECT_EQ(u.crystals[0].id, "Y");
  EXPECT_TRUE(cg::is_cif_file(caps / "Y.CIF"));
  EXPECT_FALSE(cg::is_cif_file(dir / "c.txt"));
  const cg::Mp20Split single = cg::read_mp20(dir / "b.cif.gz");  // its two blocks
  ASSERT_EQ(single.crystals.size(), 2u);
  EXPECT_EQ(single.crystals[1].id, "b/second");
  const cg::test::TempDir empty("cg_test_cif_folder_empty");
  EXPECT_FALSE(cg::is_cif_folder(empty.path.string()));
  try {
    cg::read_cif_folder(empty.path.string());
    ADD_FAILURE() << "an empty folder must be refused";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds no .cif or .cif.gz file"), std::string::npos) << e.what();
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

// derive_properties against Materials Project's own columns: MP-20 rows with their formula and space group cleared
// get back pretty_formula exactly, and spacegroup.number (MP's spglib at 0.1 Å) for all but a few near-threshold ones.
TEST(Mp20, DerivedPropertiesAreMaterialsProjects) {
  const cg::Mp20Split mp = cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/train.csv.gz", 400);
  ASSERT_GT(mp.crystals.size(), 390u);
  std::vector<cg::Crystal> bare = mp.crystals;
  for (auto& c : bare) {
    c.formula.clear();
    c.spacegroup.reset();
  }
  std::vector<cg::Crystal> serial = bare;
  const cg::DerivedProperties d = cg::derive_properties(&bare, 4);
  EXPECT_EQ(d.formulas, int64_t(bare.size()));
  size_t same_sg = 0;
  for (size_t i = 0; i < bare.size(); ++i) {
    EXPECT_EQ(bare[i].formula, mp.crystals[i].formula) << bare[i].id;
    if (cg::have_spglib()) {
      ASSERT_TRUE(bare[i].spacegroup) << bare[i].id;
      same_sg += *bare[i].spacegroup == *mp.crystals[i].spacegroup;
    }
  }
  if (cg::have_spglib()) {
    EXPECT_EQ(d.spacegroups, int64_t(bare.size()));
    EXPECT_EQ(d.no_spacegroup, 0);
    EXPECT_GE(double(same_sg), 0.98 * double(bare.size())) << same_sg << " of " << bare.size();
    EXPECT_EQ(d.what, "formula (pymatgen's reduced formula); spacegroup (spglib, symprec 0.1 A, 5 degrees)");
  } else {
    EXPECT_EQ(d.no_spacegroup, int64_t(bare.size()));
    EXPECT_EQ(d.what, "formula (pymatgen's reduced formula); no spacegroup (built without spglib)");
  }
  // The thread count changes nothing.
  cg::derive_properties(&serial, 1);
  for (size_t i = 0; i < bare.size(); ++i) {
    EXPECT_EQ(serial[i].formula, bare[i].formula);
    EXPECT_EQ(serial[i].spacegroup, bare[i].spacegroup);
  }
  // A stop asked before it starts (cgprep's signal flag): nothing is derived.
  std::vector<cg::Crystal> stopped = mp.crystals;
  for (auto& c : stopped) c.formula.clear(), c.spacegroup.reset();
  const std::atomic<int> stop{15};
  const cg::DerivedProperties none_done = cg::derive_properties(&stopped, 2, &stop);
  EXPECT_EQ(none_done.formulas + none_done.spacegroups + none_done.no_spacegroup, 0);
  EXPECT_TRUE(stopped[0].formula.empty());
  // MP-20's own rows come back unchanged, nothing derived; a space group the source gives is kept as it is, but a
  // formula cell that is no formula is replaced by the structure's (counted, the first named).
  std::vector<cg::Crystal> as_read = mp.crystals;
  const cg::DerivedProperties unchanged = cg::derive_properties(&as_read, 2);
  for (size_t i = 0; i < as_read.size(); ++i) EXPECT_EQ(as_read[i].formula, mp.crystals[i].formula);
  EXPECT_EQ(unchanged.formulas + unchanged.spacegroups + unchanged.formulas_replaced + unchanged.formulas_respelled, 0);
  EXPECT_EQ(unchanged.what, "");
  std::vector<cg::Crystal> given = mp.crystals;
  given[0].formula = "Xx9";
  given[0].spacegroup = 2;  // not what the structure says, but what the source says
  const cg::DerivedProperties one = cg::derive_properties(&given, 2);
  EXPECT_EQ(one.formulas + one.spacegroups + one.no_spacegroup + one.formulas_respelled, 0);
  EXPECT_EQ(one.formulas_replaced, 1);
  EXPECT_EQ(one.first_replaced, mp.crystals[0].id + ": 'Xx9' is not a formula such as Fe2O3; " +
                                    mp.crystals[0].formula + " stated instead");
  EXPECT_EQ(one.what, "formula (pymatgen's reduced formula)");
  EXPECT_EQ(given[0].spacegroup, 2);
  for (size_t i = 0; i < given.size(); ++i) EXPECT_EQ(given[i].formula, mp.crystals[i].formula);
}

TEST(Mp20, ACifFolderGetsFormulaAndSpaceGroup) {
  const cg::test::TempDir dir("cg_test_cif_derive");
  // Rock salt as a P1 CIF (conventional cell, 8 sites; Fm-3m, 225), and two atoms on one spot (no group found).
  std::string nacl = "data_NaCl\n_symmetry_space_group_name_H-M 'P 1'\n_cell_length_a 5.64\n_cell_length_b 5.64\n"
                     "_cell_length_c 5.64\n_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n"
                     "_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n";
  for (const char* p : {"0 0 0", "0 0.5 0.5", "0.5 0 0.5", "0.5 0.5 0"}) nacl += std::string("Na ") + p + "\n";
  for (const char* p : {"0.5 0.5 0.5", "0.5 0 0", "0 0.5 0", "0 0 0.5"}) nacl += std::string("Cl ") + p + "\n";
  std::ofstream(dir / "nacl.cif") << nacl;
  std::ofstream(dir / "overlap.cif") << "data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n"
                                        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n"
                                        "_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
                                        "_atom_site_fract_z\nO 0 0 0\nO 0.001 0 0\nLi 0.5 0.5 0.5\n";
  cg::Mp20Split s = cg::read_mp20(dir.path.string());
  ASSERT_EQ(s.crystals.size(), 2u) << (s.skipped.empty() ? "" : s.skipped[0].reason);
  const cg::DerivedProperties d = cg::derive_properties(&s.crystals, 2);
  EXPECT_EQ(s.crystals[0].formula, "NaCl");
  EXPECT_EQ(s.crystals[1].formula, "LiO2");
  EXPECT_EQ(d.formulas, 2);
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib";
  EXPECT_EQ(s.crystals[0].spacegroup, 225);
  EXPECT_FALSE(s.crystals[1].spacegroup);
  EXPECT_EQ(d.spacegroups, 1);
  EXPECT_EQ(d.no_spacegroup, 1);
}

// data.columns applies to the config's own data.*_csv files (cgsample's conditions, cgeval's references), however
// the path is spelled, and to no other file: an MP-20 reference beside a perov-5 config keeps MP-20's names.
TEST(Mp20, DataColumnsApplyToTheConfigsOwnSplits) {
  const cg::test::TempDir dir("cg_test_data_columns");
  std::ofstream(dir / "test.csv") << "id,cif\n";
  cg::DataConfig d;
  d.train_csv = "";
  d.test_csv = dir / "test.csv";
  d.columns = {"material_id=id"};
  EXPECT_EQ(cg::data_csv_columns(d.test_csv, d).describe(), "material_id=id");
  EXPECT_EQ(cg::data_csv_columns(dir.path.string() + "/./test.csv", d).describe(), "material_id=id");
  EXPECT_EQ(cg::data_csv_columns(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz", d).describe(), "");
  EXPECT_EQ(cg::data_csv_columns("", d).describe(), "");
  d.columns = {"id=material_id"};  // the sides swapped: said when the mapping is used
  const std::string e = cg::test::error_of([&] { cg::data_csv_columns(d.test_csv, d); });
  EXPECT_NE(e.find("data.columns entry 'id=material_id': 'id' is no column cgtrain reads"), std::string::npos) << e;
}

// What `f` logs through spdlog's default logger.
std::string logged(const std::function<void()>& f) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  f();
  spdlog::default_logger()->sinks().pop_back();
  return log.str();
}

// Another CSV (sample.conditions_from, eval.ref_csv): data.columns applies where it is laid out like the mapped
// dataset, not where it has MP-20's names; said either way, and warned of where it has neither.
TEST(Mp20, DataColumnsOnAnotherCsvFollowItsLayout) {
  const cg::test::TempDir dir("cg_test_data_columns_other");
  std::ofstream(dir / "test.csv") << "id,heat_ref,cif\n";
  std::ofstream(dir / "perov_like.csv") << "\"id\",heat_ref,cif,dir_gap\n";
  std::ofstream(dir / "mp20_like.csv") << ",material_id,formation_energy_per_atom,cif\n";
  std::ofstream(dir / "neither.csv") << "name,cif\n";
  cg::DataConfig d;
  d.train_csv = d.val_csv = "";
  d.test_csv = dir / "test.csv";
  d.shards_dir = dir / "no_shards";
  d.columns = {"material_id=id", "cif=cif", "formation_energy_per_atom=heat_ref"};
  const std::string setting = "data.columns=[material_id=id, formation_energy_per_atom=heat_ref]";
  std::string described;
  std::string log = logged([&] { described = cg::data_csv_columns(dir / "perov_like.csv", d).describe(); });
  EXPECT_EQ(described, "material_id=id, formation_energy_per_atom=heat_ref");
  EXPECT_NE(log.find("[info] " + (dir / "perov_like.csv") + " is none of data.*_csv but laid out like them "
                     "(it has the columns " + setting + " maps, not formation_energy_per_atom, material_id): read "
                     "with that mapping"), std::string::npos) << log;
  log = logged([&] { described = cg::data_csv_columns(dir / "mp20_like.csv", d).describe(); });
  EXPECT_EQ(described, "");
  EXPECT_NE(log.find("[info] " + (dir / "mp20_like.csv") + " has MP-20's column names (formation_energy_per_atom, "
                     "material_id) itself"), std::string::npos)
      << log;
  EXPECT_NE(log.find("read as it is, without " + setting), std::string::npos) << log;
  log = logged([&] { described = cg::data_csv_columns(dir / "neither.csv", d).describe(); });
  EXPECT_EQ(described, "");
  EXPECT_NE(log.find("[warning] " + (dir / "neither.csv") + " is laid out neither like data.*_csv (" +
                     setting + " maps columns it lacks: heat_ref, id) nor with MP-20's names (it lacks "
                     "formation_energy_per_atom, material_id): read by MP-20's names"), std::string::npos) << log;
  // The config's own split: its mapping, without a word; no mapping: nothing to say of any file.
  log = logged([&] { described = cg::data_csv_columns(d.test_csv, d).describe(); });
  EXPECT_EQ(described, "material_id=id, formation_energy_per_atom=heat_ref");
  EXPECT_EQ(log, "");
  d.columns = {"cif=cif"};  // identity only: no mapping
  log = logged([&] { described = cg::data_csv_columns(dir / "neither.csv", d).describe(); });
  EXPECT_EQ(described, "");
  EXPECT_EQ(log, "");
}

// Both columns of a swap in another CSV: laid out like the mapped dataset where its columns are those of one of
// data.*_csv (in any order), and read with the mapping; otherwise its layout cannot tell, and one warning says it is
// read by MP-20's names and how to choose.
TEST(Mp20, DataColumnsOnAnotherCsvWithBothColumnsOfASwap) {
  const cg::test::TempDir dir("cg_test_data_columns_swap");
  const std::string cif = csv_quote(cif_with(kGoodAtoms));
  std::ofstream(dir / "train.csv") << "material_id,cif,band_gap,formation_energy_per_atom,pretty_formula\n";
  std::ofstream(dir / "same.csv") << "pretty_formula,formation_energy_per_atom,material_id,cif,band_gap\nX,-2.0,m-1,"
                                  << cif << ",1.5\n";
  std::ofstream(dir / "both.csv") << "material_id,cif,band_gap,formation_energy_per_atom\nm-1," << cif << ",1.5,-2.0\n";
  cg::DataConfig d;
  d.train_csv = dir / "train.csv";
  d.val_csv = dir / "no_val.csv";  // missing: passed over
  d.test_csv = "";
  d.shards_dir = dir / "no_shards";
  d.columns = {"band_gap=formation_energy_per_atom", "formation_energy_per_atom=band_gap"};
  const auto read = [&](const std::string& path) {
    return cg::read_mp20(path, 0, false, cg::data_csv_columns(path, d)).crystals.at(0);
  };
  cg::Crystal c;
  std::string log = logged([&] { c = read(dir / "same.csv"); });
  EXPECT_DOUBLE_EQ(*c.band_gap, -2.0);  // the file's formation_energy_per_atom, read as the band gap
  EXPECT_DOUBLE_EQ(*c.formation_energy_per_atom, 1.5);
  EXPECT_NE(log.find("[info] " + (dir / "same.csv") + " is none of data.*_csv but has the columns of " +
                     (dir / "train.csv") + ": read with data.columns=[band_gap=formation_energy_per_atom, "
                     "formation_energy_per_atom=band_gap], as that file is"), std::string::npos) << log;
  EXPECT_EQ(log.find("[warning]"), std::string::npos) << log;
  log = logged([&] { c = read(dir / "both.csv"); });
  EXPECT_DOUBLE_EQ(*c.band_gap, 1.5);  // by MP-20's names
  EXPECT_DOUBLE_EQ(*c.formation_energy_per_atom, -2.0);
  EXPECT_NE(log.find("[warning] " + (dir / "both.csv") + " has both the columns data.columns=[band_gap="
                     "formation_energy_per_atom, formation_energy_per_atom=band_gap] maps (band_gap, "
                     "formation_energy_per_atom) and MP-20's names they are read as (band_gap, "
                     "formation_energy_per_atom), and its columns are not those of any of data.*_csv, so its layout "
                     "does not say which it is: read by MP-20's names, without the mapping. To read it with the "
                     "mapping, name it as one of the config's splits (data.test_csv=" + (dir / "both.csv") +
                     " and sample.conditions_from=data.test_csv or eval.ref_csv=data.test_csv), or give it the "
                     "columns of data.train_csv; to read it by MP-20's names without this warning, give this run "
                     "data.columns=[]"), std::string::npos) << log;
  EXPECT_EQ(log.find("[warning]", log.find("[warning]") + 1), std::string::npos) << log;  // one warning
  // Named as the config's split: its mapping, without a word.
  d.test_csv = dir / "both.csv";
  log = logged([&] { c = read(dir / "both.csv"); });
  EXPECT_DOUBLE_EQ(*c.band_gap, -2.0);
  EXPECT_EQ(log.find("[warning]"), std::string::npos) << log;
}

// A mapped name the file also has as a column of its own: the mapped column is read, and the file's own is warned
// of once, naming both.
TEST(Mp20, AMappedNameShadowingTheFilesOwnColumnIsWarnedOf) {
  const cg::test::TempDir dir("cg_test_shadowed");
  const std::string cif = csv_quote(cif_with(kGoodAtoms));
  std::ofstream(dir / "x.csv") << "material_id,band_gap,gap,cif\nm-1,1.5,2.5," << cif << "\nm-2,1.0,3.0," << cif
                               << "\n";
  cg::Mp20Split s;
  const std::string log = logged([&] { s = cg::read_mp20(dir / "x.csv", 0, false,
                                                         cg::parse_columns({"band_gap=gap"})); });
  ASSERT_EQ(s.crystals.size(), 2u);
  EXPECT_DOUBLE_EQ(*s.crystals[0].band_gap, 2.5);
  EXPECT_NE(log.find((dir / "x.csv") + ": data.columns maps names the file also has as columns of its own: "
                     "band_gap is read from column 'gap', not from its own 'band_gap' column. Drop the entry to read "
                     "the file's own column"), std::string::npos) << log;
  EXPECT_EQ(log.find("maps names", log.find("maps names") + 1), std::string::npos) << log;  // once, not per row
  EXPECT_TRUE(s.unread_numeric_columns.empty());  // its band_gap is no other dataset's property to map
  const std::string plain = logged([&] { cg::read_mp20(dir / "x.csv"); });
  EXPECT_EQ(plain.find("maps names"), std::string::npos) << plain;
}

// data.columns renames, as pandas' rename: a column mapped to another name is read under that name only, and the name
// it stood for is read from no column (said in one info line), so one measured value is never two properties.
TEST(Mp20, AMappedColumnIsReadUnderItsNewNameOnly) {
  const cg::test::TempDir dir("cg_test_renamed");
  const std::string cif = csv_quote(cif_with(kGoodAtoms));
  std::ofstream(dir / "x.csv") << "material_id,formation_energy_per_atom,band_gap,cif\nm-1,-1.25,0.5," << cif
                               << "\nm-2,-2.5,0," << cif << "\n";
  const std::string path = (dir / "x.csv");
  cg::Mp20Split s;
  std::string log = logged([&] { s = cg::read_mp20(path, 0, false,
                                                   cg::parse_columns({"band_gap=formation_energy_per_atom"})); });
  ASSERT_EQ(s.crystals.size(), 2u);
  EXPECT_DOUBLE_EQ(*s.crystals[0].band_gap, -1.25);
  EXPECT_DOUBLE_EQ(*s.crystals[1].band_gap, -2.5);
  EXPECT_FALSE(s.crystals[0].formation_energy_per_atom || s.crystals[1].formation_energy_per_atom);
  EXPECT_EQ(cg::property_counts_json(s.crystals), R"({"crystals": 2, "formula": 0, "spacegroup": 0, )"
                                                  R"("formation_energy": 0, "band_gap": 2, "e_above_hull": 0})");
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(s.vacated_columns, (Pairs{{"formation_energy_per_atom", "band_gap"}}));
  // The file has the column: not among those it lacks, nor another dataset's property to map.
  EXPECT_EQ(s.missing_columns, (std::vector<std::string>{"pretty_formula", "e_above_hull", "spacegroup.number"}));
  EXPECT_TRUE(s.unread_numeric_columns.empty());
  const std::string said = path + ": formation_energy_per_atom is read as band_gap (data.columns), so no column "
                                  "gives formation_energy_per_atom";
  EXPECT_NE(log.find(said), std::string::npos) << log;
  EXPECT_EQ(log.find(said, log.find(said) + 1), std::string::npos) << log;  // once, not per row
  // Its own band_gap column is read by nothing: warned of, as any shadowed column.
  EXPECT_NE(log.find("band_gap is read from column 'formation_energy_per_atom', not from its own 'band_gap' column"),
            std::string::npos) << log;
  // A swap reads each column under the other's name: nothing vacated, nothing shadowed, nothing said.
  log = logged([&] { s = cg::read_mp20(path, 0, false, cg::parse_columns({"band_gap=formation_energy_per_atom",
                                                                          "formation_energy_per_atom=band_gap"})); });
  ASSERT_EQ(s.crystals.size(), 2u);
  EXPECT_DOUBLE_EQ(*s.crystals[0].band_gap, -1.25);
  EXPECT_DOUBLE_EQ(*s.crystals[0].formation_energy_per_atom, 0.5);
  EXPECT_DOUBLE_EQ(*s.crystals[1].band_gap, -2.5);
  EXPECT_DOUBLE_EQ(*s.crystals[1].formation_energy_per_atom, 0.0);
  EXPECT_TRUE(s.vacated_columns.empty());
  EXPECT_TRUE(s.shadowed_columns.empty());
  EXPECT_EQ(log.find("data.columns"), std::string::npos) << log;
  // An identity entry reads its column too: beside a rename of that column it is one column read as two names.
  EXPECT_NE(cg::test::error_of([] { cg::parse_columns({"formation_energy_per_atom=formation_energy_per_atom",
                                                       "band_gap=formation_energy_per_atom"}); })
                .find("data.columns maps both formation_energy_per_atom and band_gap to column "
                      "'formation_energy_per_atom'"), std::string::npos);
  // A required name renamed away is refused, saying what to map.
  const std::string error = cg::test::error_of([&] { cg::read_mp20(path, 0, false,
                                                                    cg::parse_columns({"cif=material_id"})); });
  EXPECT_NE(error.find("reads column 'material_id' as cif, so no column gives material_id, which every row needs"),
            std::string::npos) << error;
}

TEST(Elements, SymbolsAndAtomicNumbersAreThePeriodicTables) {
  // ase.data.chemical_symbols[1:] (pymatgen's Element.from_Z(1..118) gives the same), written out here: a symbol out
  // of place gives its element another's atomic number (the composition order, Og's bound), which the tables keyed
  // by symbol (SMACT's, the masses) never notice.
  std::istringstream want(
      "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr Nb "
      "Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au "
      "Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn "
      "Nh Fl Mc Lv Ts Og");
  int z = 0;
  for (std::string symbol; want >> symbol;) {
    ++z;
    EXPECT_EQ(cg::atomic_number(symbol), z) << symbol;
    EXPECT_EQ(cg::element_symbol(z), symbol);
  }
  EXPECT_EQ(z, 118);
  EXPECT_EQ(cg::all_elements().size(), 118u);
  EXPECT_EQ(cg::atomic_number("fe"), 0);  // symbols are case-sensitive
  EXPECT_EQ(cg::atomic_number("X"), 0);
  EXPECT_NE(cg::test::error_of([] { cg::element_symbol(119); }).find("atomic number 119 is outside 1..118"),
            std::string::npos);
  EXPECT_NE(cg::test::error_of([] { cg::element_symbol(0); }).find("outside 1..118"), std::string::npos);
}

TEST(Formula, CountsOfAFormulaAndSameComposition) {
  using Counts = std::map<std::string, int64_t>;
  EXPECT_EQ(cg::formula_counts("Fe2O3"), (Counts{{"Fe", 2}, {"O", 3}}));
  EXPECT_EQ(cg::formula_counts("Mg(InSe2)2"), (Counts{{"Mg", 1}, {"In", 2}, {"Se", 4}}));
  EXPECT_EQ(cg::formula_counts("OHO"), (Counts{{"O", 2}, {"H", 1}}));
  // Parts separated by spaces, as pymatgen's Composition.formula writes them (and its Composition reads them).
  EXPECT_EQ(cg::formula_counts("Si1 Os1"), (Counts{{"Si", 1}, {"Os", 1}}));
  EXPECT_EQ(cg::formula_counts("Li2 O1"), (Counts{{"Li", 2}, {"O", 1}}));
  EXPECT_EQ(cg::formula_counts("Fe2 (S O4)3"), (Counts{{"Fe", 2}, {"S", 3}, {"O", 12}}));
  for (const char* bad : {"xyz", "fe2o3", "Xx2", "Fe0", "", "Fe()2", "Fe10000000", " Si1", "Si1 ", "Si1  Os1",
                          "Si 1", "(Si )2", "( Si)2", " "})
    EXPECT_FALSE(cg::formula_counts(bad).has_value()) << bad;
  EXPECT_TRUE(cg::same_reduced_composition(*cg::formula_counts("Sr2Ti2O6"), *cg::formula_counts("SrTiO3")));
  EXPECT_TRUE(cg::same_reduced_composition(*cg::formula_counts("O2"), {{"O", 8}}));
  EXPECT_FALSE(cg::same_reduced_composition(*cg::formula_counts("SrTiO3"), *cg::formula_counts("SrTiO2")));
  EXPECT_FALSE(cg::same_reduced_composition(*cg::formula_counts("NaCl"), *cg::formula_counts("NaClO")));
}

// A folder whose CIFs all lie in subfolders (ICSD and COD downloads): the error says subfolders are not read and
// names the one that holds them.
TEST(Mp20, AFolderWithCifsOnlyInSubfoldersSaysSo) {
  const cg::test::TempDir dir("cg_test_nested_cifs");
  std::filesystem::create_directories(dir.path / "icsd" / "a");
  std::filesystem::create_directories(dir.path / "icsd" / "b");
  for (const char* f : {"icsd/a/1.cif", "icsd/a/2.cif", "icsd/b/3.CIF"}) std::ofstream(dir / f) << "data_x\n";
  std::ofstream(dir / "readme.txt") << "no CIF here";
  const std::string e = cg::test::error_of([&] { cg::read_cif_folder(dir.path.string()); });
  EXPECT_NE(e.find(dir.path.string() + " holds no .cif or .cif.gz file; subfolders are not read, and " +
                   (dir.path / "icsd" / "a").string() + " holds 2 CIF file(s) (in all, 3 in 2 subfolders): give "
                   "that folder, or move the files up into " + dir.path.string()), std::string::npos) << e;
  const cg::test::TempDir empty("cg_test_no_cifs");
  const std::string none = cg::test::error_of([&] { cg::read_cif_folder(empty.path.string()); });
  EXPECT_EQ(none.find("subfolders"), std::string::npos) << none;
  // CIFs of its own beside those in subfolders: its own are read, and the ones below are warned of, not dropped
  // silently.
  std::ofstream(dir / "top.cif") << "data_x\n";
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  const cg::Mp20Split s = cg::read_cif_folder(dir.path.string());
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(s.rows_read, 1);
  EXPECT_NE(log.str().find(dir.path.string() + " holds 1 CIF file(s) of its own, which are read; subfolders are "
                           "not read, and " + (dir.path / "icsd" / "a").string() + " holds 2 CIF file(s)"),
            std::string::npos) << log.str();
}

// A CIF without operations that names its group by several tags that disagree: pymatgen's CifParser (2022.11.7)
// tries its symbol tags in its own order (_symmetry_space_group_name_H-M, _H_M, _space_group_name_Hall,
// _space_group_name_H-M_alt, ..., the lower-case _symmetry_space_group_name_h-m last; tags compared
// case-sensitively), takes the first value its tables know, else its number tag. The sites below are what
// CifParser(cif).get_structures(primitive=False)[0] gave for each (tests/data/space_group_tags_reference.py compares
// a spread of such CIFs); we read the same tag and say which tags we did not read.
TEST(Cif, DisagreeingSpaceGroupTagsAreReadAsPymatgenReadsThemWithAWarning) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib (libsymspg-dev)";
  const std::string mono = "5 6 7 90 100 90", cubic = "5.64 5.64 5.64 90 90 90";
  const std::string gp = "Ga 0.1 0.2 0.3\n", si = "Si 0 0 0\n";
  // P 1 21/c 1 from Ga at (0.1, 0.2, 0.3); P 1 21/n 1 would give (0.4, 0.7, 0.2) and (0.6, 0.3, 0.8) instead.
  const std::vector<std::string> p21c = {"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.300000 0.800000",
                                         "Ga 0.900000 0.700000 0.200000", "Ga 0.900000 0.800000 0.700000"};
  // Fd-3m origin choice 1 (pymatgen's "Fd-3m"): Si at the origin is 8a, eight sites (16c, sixteen, in choice 2).
  const std::vector<std::string> fd3m_1 = {"Si 0.000000 0.000000 0.000000", "Si 0.000000 0.500000 0.500000",
                                           "Si 0.250000 0.250000 0.250000", "Si 0.250000 0.750000 0.750000",
                                           "Si 0.500000 0.000000 0.500000", "Si 0.500000 0.500000 0.000000",
                                           "Si 0.750000 0.250000 0.750000", "Si 0.750000 0.750000 0.250000"};
  // C 2/c (15), which CifParser reads from the number when it reads none of the symbols.
  const std::vector<std::string> c2c = {"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.800000 0.800000",
                                        "Ga 0.400000 0.300000 0.700000", "Ga 0.400000 0.700000 0.200000",
                                        "Ga 0.600000 0.300000 0.800000", "Ga 0.600000 0.700000 0.300000",
                                        "Ga 0.900000 0.200000 0.200000", "Ga 0.900000 0.800000 0.700000"};
  const struct {
    std::string items, cell, atoms;
    std::vector<std::string> sites;  // pymatgen's
    std::string used, ignored;       // in the warning
  } cases[] = {
      // _H_M before _H-M_alt (the old reader took _H-M_alt first).
      {"_space_group_name_H-M_alt 'P 1 21/n 1'\n_symmetry_space_group_name_H_M 'P 1 21/c 1'\n", mono, gp, p21c,
       "_symmetry_space_group_name_H_M 'P 1 21/c 1' (the tag pymatgen's CifParser reads; setting P 1 2_1/c 1 :b1)",
       "_space_group_name_H-M_alt 'P 1 21/n 1' (another setting of space group 14)"},
      // A Hall symbol CifParser cannot read does not win over the H-M symbol it reads.
      {"_space_group_name_Hall '-P 2yn'\n_symmetry_space_group_name_H-M 'P 1 21/c 1'\n", mono, gp, p21c,
       "_symmetry_space_group_name_H-M 'P 1 21/c 1'",
       "_space_group_name_Hall '-P 2yn' (another setting of space group 14)"},
      // Nor does a qualified symbol it cannot read ('F d -3 m :2') over one it reads in another tag.
      {"_symmetry_space_group_name_H-M 'F d -3 m :2'\n_space_group_name_H-M_alt 'Fd-3m'\n", cubic, si, fd3m_1,
       "_space_group_name_H-M_alt 'Fd-3m'",
       "_symmetry_space_group_name_H-M 'F d -3 m :2' (another setting of space group 227)"},
      // It compares tags case-sensitively: the lower-case _symmetry_space_group_name_h-m is its last.
      {"_symmetry_space_group_name_h-m 'P 1 21/n 1'\n_space_group_name_H-M_alt 'P 1 21/c 1'\n", mono, gp, p21c,
       "_space_group_name_H-M_alt 'P 1 21/c 1'", "_symmetry_space_group_name_h-m 'P 1 21/n 1' (another setting"},
      // A number of another group than the symbol's is not read (it was refused before).
      {"_symmetry_space_group_name_H-M 'P 1 21/c 1'\n_space_group_IT_number 15\n", mono, gp, p21c,
       "_symmetry_space_group_name_H-M 'P 1 21/c 1'", "_space_group_IT_number '15' (space group 15)"},
      // Where CifParser reads none of the symbols, the number it falls back on wins over a symbol of another group.
      {"_space_group_name_Hall '-P 2ybc'\n_space_group_IT_number 15\n", mono, gp, c2c,
       "_space_group_IT_number '15' (the number pymatgen's CifParser reads, as it reads none of the symbols; "
       "setting C 1 2/c 1 :b1)",
       "_space_group_name_Hall '-P 2ybc' (space group 14)"},
      // Nor is _space_group_name_H-M, a tag CifParser does not read (pymatgen 2022.11.7: C 2/c's eight sites).
      {"_space_group_name_H-M 'P 1 21/n 1'\n_space_group_IT_number 15\n", mono, gp, c2c,
       "_space_group_IT_number '15' (the number pymatgen's CifParser reads, as it reads none of the symbols; "
       "setting C 1 2/c 1 :b1)",
       "_space_group_name_H-M 'P 1 21/n 1' (space group 14)"},
      // A symbol no table knows does not stop that number being read where another symbol reads (pymatgen: C 2/c).
      {"_symmetry_space_group_name_H-M 'P 21/q'\n_space_group_name_Hall '-P 2ybc'\n_space_group_IT_number 15\n", mono,
       gp, c2c, "_space_group_IT_number '15'",
       "_symmetry_space_group_name_H-M 'P 21/q' (not read here), _space_group_name_Hall '-P 2ybc' (space group 14)"},
      // A Hall symbol with an origin shift of its own names its group (14) too: the number CifParser reads wins.
      {"_space_group_name_Hall '-P 2ybc (0 0 3)'\n_space_group_IT_number 15\n", mono, gp, c2c,
       "_space_group_IT_number '15'", "_space_group_name_Hall '-P 2ybc (0 0 3)' (space group 14)"},
  };
  for (const auto& c : cases) {
    cg::Crystal x;
    std::string reason, warning;
    ASSERT_TRUE(cg::parse_cif(cif_named(c.items, c.cell, c.atoms), "x", &x, &reason, &warning)) << reason;
    EXPECT_EQ(site_set(x), c.sites) << c.items;
    EXPECT_TRUE(cg::test::contains(warning, "x: the space group was read from " + c.used)) << warning;
    EXPECT_TRUE(cg::test::contains(warning, "not from " + c.ignored)) << warning;
    EXPECT_EQ(warning.find(c.ignored), warning.rfind(c.ignored)) << "named twice: " << warning;
    EXPECT_TRUE(cg::test::contains(warning, "correct or remove the tag that is wrong")) << warning;
  }
  // Tags that agree say nothing: the same setting by symbol, Hall symbol and number.
  for (const std::string& items : {"_symmetry_space_group_name_H-M 'P 1 21/c 1'\n_space_group_name_Hall '-P 2ybc'\n"
                                   "_space_group_IT_number 14\n_space_group_name_H-M_alt P21/c\n",
                                   "_space_group_IT_number 14\n_symmetry_Int_Tables_number ?\n"}) {
    cg::Crystal x;
    std::string reason, warning = "stale";
    ASSERT_TRUE(cg::parse_cif(cif_named(items, mono, gp), "x", &x, &reason, &warning)) << reason;
    EXPECT_EQ(site_set(x), p21c) << items;
    EXPECT_EQ(warning, "") << items;
  }
  // A setting only we read, of the group of the number CifParser reads instead (CifParser: Fd-3m origin choice 1,
  // eight sites), is kept, and agrees with the number: nothing said (docs/formats.md#cif).
  cg::Crystal x;
  std::string reason, warning = "stale";
  ASSERT_TRUE(cg::parse_cif(cif_named("_symmetry_space_group_name_H-M 'F d -3 m :2'\n_space_group_IT_number 227\n",
                                      cubic, si), "x", &x, &reason, &warning)) << reason;
  EXPECT_EQ(x.num_sites(), 16u);
  EXPECT_EQ(warning, "");
  // cgprep's readers count such CIFs and say the first (as for listed operations that disagree with the name).
  const cg::test::TempDir dir("cg_test_cif_tags_disagree");
  std::ofstream(dir / "a.cif") << cif_named(cases[0].items, mono, gp);
  std::ofstream(dir / "b.cif") << cif_named("_space_group_IT_number 14\n", mono, gp);
  cg::Mp20Split split;
  const std::string log = logged([&] { split = cg::read_mp20(dir.path.string()); });
  EXPECT_TRUE(cg::test::contains(log, "1 CIF(s) name their space group in ways that disagree")) << log;
  EXPECT_TRUE(cg::test::contains(log, "(the first: a: the space group was read from _symmetry_space_group_name_H_M"))
      << log;
  ASSERT_EQ(split.cif_warnings.size(), 1u);
}

// Hall symbols whose letters spell the H-M symbol of another group: pymatgen 2022.11.7's CifParser reads
// `P 4 2` (Hall for P422, 89) as P4_2 (77), `P 3 2` (P312, 149) as P3_2 (145), `P 6 2` (P622, 177) as P6_2 (171):
// 4 sites from a general position (P4_2's, checked with pymatgen) where we read 8, 3 for our 6, 6 for our 12. cgprep
// reads the Hall symbol and says so, with what to write; `P 4` (P4 both ways) and a file that also gives the H-M
// symbol in _symmetry_space_group_name_H-M (which CifParser reads first) say nothing.
TEST(Cif, HallSymbolPymatgenReadsAsAnotherGroupIsWarnedOf) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib (libsymspg-dev)";
  const std::string tetragonal = "5 5 7 90 90 90", hexagonal = "5 5 7 90 90 120", gp = "Ga 0.1 0.2 0.3\n";
  const struct {
    std::string tag, hall, cell;
    size_t sites;
    std::string ours, theirs;
  } cases[] = {
      {"_symmetry_space_group_name_hall", "P 4 2", tetragonal, 8, "P 4 2 2 (space group 89)",
       "P 4_2 (space group 77)"},
      {"_space_group_name_Hall", "P 4 2", tetragonal, 8, "P 4 2 2 (space group 89)", "P 4_2 (space group 77)"},
      {"_symmetry_space_group_name_hall", "P 3 2", hexagonal, 6, "P 3 1 2 (space group 149)",
       "P 3_2 (space group 145)"},
      {"_symmetry_space_group_name_hall", "P 6 2", hexagonal, 12, "P 6 2 2 (space group 177)",
       "P 6_2 (space group 171)"},
  };
  for (const auto& c : cases) {
    const std::string items = c.tag + " '" + c.hall + "'\n";
    cg::Crystal x;
    std::string reason, warning;
    ASSERT_TRUE(cg::parse_cif(cif_named(items, c.cell, gp), "x", &x, &reason, &warning)) << reason;
    EXPECT_EQ(x.num_sites(), c.sites) << items;
    EXPECT_EQ(warning, "x: " + c.tag + " '" + c.hall + "' was read as a Hall symbol, setting " + c.ours +
                           ", but pymatgen's CifParser reads it as the Hermann-Mauguin symbol " + c.theirs +
                           "; to be read alike, write '" + c.ours.substr(0, c.ours.find(" (")) +
                           "' in _symmetry_space_group_name_H-M, the tag both read first")
        << items;
    // Done as the warning says: both read the H-M tag, the same group, and nothing is said.
    warning = "stale";
    const std::string fixed = "_symmetry_space_group_name_H-M '" + c.ours.substr(0, c.ours.find(" (")) + "'\n" + items;
    ASSERT_TRUE(cg::parse_cif(cif_named(fixed, c.cell, gp), "x", &x, &reason, &warning)) << reason;
    EXPECT_EQ(x.num_sites(), c.sites) << fixed;
    EXPECT_EQ(warning, "") << fixed;
  }
  // A Hall symbol that spells the H-M symbol of its own setting: nothing to say.
  cg::Crystal x;
  std::string reason, warning = "stale";
  ASSERT_TRUE(cg::parse_cif(cif_named("_symmetry_space_group_name_hall 'P 4'\n", tetragonal, gp), "x", &x, &reason,
                            &warning)) << reason;
  EXPECT_EQ(x.num_sites(), 4u);
  EXPECT_EQ(warning, "");
  // With a number that disagrees too, both are said, one after the other.
  std::string both;
  ASSERT_TRUE(cg::parse_cif(cif_named("_space_group_name_Hall 'P 4 2'\n_space_group_IT_number 77\n", tetragonal, gp),
                            "x", &x, &reason, &both)) << reason;
  EXPECT_TRUE(cg::test::contains(both, "the tag both read first; x: the space group was read from "
                                       "_space_group_name_Hall 'P 4 2'")) << both;
  EXPECT_TRUE(cg::test::contains(both, "not from _space_group_IT_number '77' (space group 77)")) << both;
  // cgprep's readers count it with the other disagreements and say the first.
  const cg::test::TempDir dir("cg_test_cif_hall_misread");
  std::ofstream(dir / "a.cif") << cif_named("_space_group_name_Hall 'P 4 2'\n", tetragonal, gp);
  cg::Mp20Split split;
  const std::string log = logged([&] { split = cg::read_mp20(dir.path.string()); });
  EXPECT_TRUE(cg::test::contains(log, "but for a Hall symbol it reads as another group's H-M symbol (the first: a: "
                                      "_space_group_name_Hall 'P 4 2' was read as a Hall symbol, setting P 4 2 2"))
      << log;
  ASSERT_EQ(split.cif_warnings.size(), 1u);
}

// One item in two spellings (two cases, or DDLm's '.' and CIF 1.1's '_', as some writers give both) with one value is
// read once; pymatgen's CifParser reads the spelling it knows (checked with pymatgen 2022.11.7: P 1 21/c 1 from
// _symmetry_space_group_name_H-M, which it tries before _space_group_name_H-M_alt; the lower-case _h-m last).
TEST(Cif, OneItemInTwoSpellingsWithOneValueIsReadOnce) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib (libsymspg-dev)";
  const std::string groups = "_symmetry_space_group_name_h-m 'P 1 21/c 1'\n"
                             "_symmetry_space_group_name_H-M 'P 1 21/c 1'\n"
                             "_space_group_name_H-M_alt 'P 1 21/n 1'\n_cell.length_a 5\n";
  const std::vector<std::string> p21c = {"Ga 0.100000 0.200000 0.300000", "Ga 0.100000 0.300000 0.800000",
                                         "Ga 0.900000 0.700000 0.200000", "Ga 0.900000 0.800000 0.700000"};
  EXPECT_EQ(site_set(cg::parse_cif(cif_named(groups, "5 6 7 90 100 90", "Ga 0.1 0.2 0.3\n"), "x")), p21c);
  // The same with _H-M before _h-m: CifParser still reads _H-M first, not _H-M_alt's P 1 21/n 1.
  std::string swapped = groups;
  swapped.replace(0, swapped.find("_space_group_name_H-M_alt"),
                  "_symmetry_space_group_name_H-M 'P 1 21/c 1'\n_symmetry_space_group_name_h-m 'P 1 21/c 1'\n");
  EXPECT_EQ(site_set(cg::parse_cif(cif_named(swapped, "5 6 7 90 100 90", "Ga 0.1 0.2 0.3\n"), "x")), p21c);
  // Two values for one item: which one is meant is not known, so the file is refused with both named.
  const std::string r = rejection(cif_named("_space_group.IT_number 14\n_space_group_IT_number 15\n",
                                            "5 6 7 90 100 90", "Ga 0.1 0.2 0.3\n"), "x");
  EXPECT_NE(r.find("line 3: CIF item _space_group_IT_number is given twice, with another value than "
                   "_space_group.IT_number '14' (tags are read in any case, '.' as '_'); keep one of them"),
            std::string::npos) << r;
}

// Listed operations and a space group name that disagree: pymatgen's CifParser (2022.11.7) uses the operations and
// says nothing (a symmetrized NaCl CIF with its number changed to 12, 999 or 'abc', or its symbol to 'P 21/c', read
// as the same 8 sites, no warning). We read them so too, and say which was used. Inversion alone is P-1 (No. 2).
// space_group_setting takes a symbol, a Hall symbol and a number together (a CIF gives it the one tag it reads): they
// must name one group.
TEST(Cif, SpaceGroupNamesThatDisagreeAreRefused) {
  if (!cg::have_spglib()) GTEST_SKIP() << "built without spglib (libsymspg-dev)";
  const cg::Lattice mono{5, 6, 7, 90, 100, 90};
  cg::SpaceGroupName name;
  name.hm = "P 21/c";
  name.hall = "-P 2ybc";
  name.number = 14;
  cg::SpaceGroupSetting s;
  std::string why;
  ASSERT_TRUE(cg::space_group_setting(name, mono, &s, &why)) << why;
  EXPECT_EQ(s.number, 14);
  name.number = 15;
  EXPECT_FALSE(cg::space_group_setting(name, mono, &s, &why));
  EXPECT_EQ(why, "the space group's name and number disagree (H-M 'P 21/c' Hall '-P 2ybc' number 15); correct one "
                 "of them");
  name.number = 0;
  name.hall = "-C 2yc";  // C 1 2/c 1, 15
  EXPECT_FALSE(cg::space_group_setting(name, mono, &s, &why));
  EXPECT_TRUE(cg::test::contains(why, "name and number disagree")) << why;
}

TEST(Cif, ListedOperationsWinOverAnotherSpaceGroupNameWithAWarning) {
  const std::string p1bar = cif_ops({"x,y,z", "-x,-y,-z"}, "Cl 0.5 0.25 0.75\n");
  auto with = [&](const std::string& items) { return std::string(p1bar).insert(p1bar.find("loop_"), items); };
  auto read = [](const std::string& cif, std::string* warning) {
    cg::Crystal c;
    std::string reason;
    EXPECT_TRUE(cg::parse_cif(cif, "x", &c, &reason, warning)) << reason;
    return c;
  };
  std::string warning = "stale";
  for (const char* agrees : {"", "_symmetry_Int_Tables_number 2\n", "_space_group_IT_number 2\n"
                             "_symmetry_space_group_name_H-M 'P -1'\n", "_symmetry_Int_Tables_number ?\n",
                             "_symmetry_Int_Tables_number .\n"}) {
    EXPECT_EQ(read(with(agrees), &warning).num_sites(), 2u);
    EXPECT_EQ(warning, "") << agrees;
  }
  if (cg::have_spglib()) {  // which group the operations make needs spglib
    EXPECT_EQ(read(with("_symmetry_Int_Tables_number 14\n"), &warning).num_sites(), 2u);
    EXPECT_EQ(warning, "x: _symmetry_int_tables_number 14 is not the space group of the listed symmetry operations; "
                       "the 2 listed symmetry operations (space group 2) were used, as pymatgen uses them: correct "
                       "the name or the operations");
    read(with("_symmetry_space_group_name_H-M 'P 21/c'\n"), &warning);
    EXPECT_TRUE(cg::test::contains(warning, "_symmetry_space_group_name_h-m 'P 21/c' (space group 14) is not the "
                                            "space group of the listed symmetry operations; the 2 listed")) << warning;
    // x,y,z alone (a structure written out in P1) under its old symbol: the sites as listed, and said.
    std::string p1 = cif_ops({"x, y, z"}, "Cl 0.5 0.25 0.75\n");
    read(p1.insert(p1.find("loop_"), "_space_group_IT_number 225\n"), &warning);
    EXPECT_TRUE(cg::test::contains(warning, "_space_group_it_number 225 is not the space group")) << warning;
    EXPECT_TRUE(cg::test::contains(warning, "the 1 listed symmetry operations (space group 1) were used")) << warning;
  }
  // A number that is no space group's is said without spglib too (it was not looked at before).
  EXPECT_EQ(read(with("_symmetry_Int_Tables_number 999\n"), &warning).num_sites(), 2u);
  EXPECT_TRUE(cg::test::contains(warning, "x: _symmetry_int_tables_number '999' is no space group number (1..230); "
                                          "the 2 listed symmetry operations")) << warning;
  EXPECT_TRUE(cg::test::contains(warning, "were used, as pymatgen uses them")) << warning;
  for (const char* number : {"0", "2.5"}) {  // nor 2.5, though its whole part is the operations' group
    read(with(fmt::format("_symmetry_Int_Tables_number {}\n", number)), &warning);
    EXPECT_TRUE(cg::test::contains(warning, fmt::format("x: _symmetry_int_tables_number '{}' is no space group number "
                                                        "(1..230); the 2 listed", number))) << warning;
  }
  // The readers of CSVs and CIF folders keep the crystal and count it (read_mp20 warns once, with the first).
  const cg::test::TempDir dir("cg_test_cif_ops_vs_name");
  std::ofstream(dir / "a.cif") << with("_symmetry_Int_Tables_number 999\n");
  std::ofstream(dir / "b.cif") << with("_symmetry_Int_Tables_number 2\n");
  cg::Mp20Split split;
  const std::string log = logged([&] { split = cg::read_mp20(dir.path.string()); });
  EXPECT_TRUE(cg::test::contains(log, "1 CIF(s) name their space group in ways that disagree (listed symmetry "
                                      "operations and a name, or several space-group tags); each was read as "
                                      "pymatgen's CifParser reads it, but for a Hall symbol it reads as another "
                                      "group's H-M symbol (the first: a: _symmetry_int_tables_number "
                                      "'999' is no space group number")) << log;
  EXPECT_EQ(split.crystals.size(), 2u);
  ASSERT_EQ(split.cif_warnings.size(), 1u);
  EXPECT_EQ(split.cif_warnings[0].row, 0);
  EXPECT_TRUE(cg::test::contains(split.cif_warnings[0].reason, "a: _symmetry_int_tables_number '999'"));
}
