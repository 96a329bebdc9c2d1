// Conditional generation checks: spglib space groups on hand-built cells and against MP-20's own column, formulas
// (pymatgen's pretty formulas with groups), prompts read back into their conditions, and cgeval's tally.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "sampler/conditions.h"
#include "sampler/cif_writer.h"
#include "sampler/eval_report.h"
#include "sampler/sample_jobs.h"
#include "sampler/sample_record.h"
#include "sampler/symmetry.h"
#include "sampler/untrained_conditions.h"
#include "tests/sampler/crystals.h"
#include "tests/test_util.h"

namespace cg {
namespace {

const std::string kTest = std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz";

using test::cubic;

// Rock salt's conventional cell: Na on the fcc lattice, Cl shifted by (1/2, 0, 0).
Crystal rock_salt() {
  return cubic(5.64, {"Na", "Na", "Na", "Na", "Cl", "Cl", "Cl", "Cl"},
               {{0, 0, 0}, {0, .5, .5}, {.5, 0, .5}, {.5, .5, 0}, {.5, 0, 0}, {0, .5, 0}, {0, 0, .5}, {.5, .5, .5}});
}

Crystal cscl_type(const std::string& a, const std::string& b, double z = 0.5) {
  return cubic(4.12, {a, b}, {{0, 0, 0}, {0.5, 0.5, z}});
}

// A CSV field holding `text` (a CIF): in double quotes, each of its own doubled.
std::string csv_quoted(const std::string& text) {
  std::string q = "\"";
  for (char ch : text) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

TEST(SpaceGroup, HandBuiltCells) {
  if (!have_spglib()) GTEST_SKIP() << "built without spglib";
  auto number = [](const Crystal& c, double symprec = 0.1) {
    const auto sg = space_group(c, symprec);
    return sg ? sg->number : 0;
  };
  const auto nacl = space_group(rock_salt(), 0.1);
  ASSERT_TRUE(nacl);
  EXPECT_EQ(nacl->number, 225);
  EXPECT_EQ(nacl->symbol, "Fm-3m");
  // The same structure in its 2-atom primitive cell (a/sqrt2, 60 degree angles).
  Crystal prim;
  const double ap = 5.64 / std::sqrt(2.0);
  prim.lattice = {ap, ap, ap, 60, 60, 60};
  prim.species = {"Na", "Cl"};
  prim.frac = {{0, 0, 0}, {0.5, 0.5, 0.5}};
  EXPECT_EQ(number(prim), 225);
  EXPECT_EQ(number(cscl_type("Cs", "Cl")), 221);  // Pm-3m
  // Diamond: fcc + (1/4, 1/4, 1/4) -> Fd-3m.
  Crystal diamond = cubic(3.57, {}, {});
  for (const Vec3& f : std::vector<Vec3>{{0, 0, 0}, {0, .5, .5}, {.5, 0, .5}, {.5, .5, 0}})
    for (double s : {0.0, 0.25}) {
      diamond.species.push_back("C");
      diamond.frac.push_back({f[0] + s, f[1] + s, f[2] + s});
    }
  EXPECT_EQ(number(diamond), 227);
  // Cl moved 0.05 c = 0.206 Å along c, so the mirror z -> -z puts its image 0.41 Å away: at symprec 0.1 Å the
  // cubic axes are gone (P4mm, 99), at 0.5 Å they are back.
  EXPECT_EQ(number(cscl_type("Cs", "Cl", 0.55), 0.1), 99);
  EXPECT_EQ(number(cscl_type("Cs", "Cl", 0.55), 0.3), 99);
  EXPECT_EQ(number(cscl_type("Cs", "Cl", 0.55), 0.5), 221);
  // Three atoms at general positions of a triclinic cell: P1.
  Crystal p1;
  p1.lattice = {4.1, 5.3, 6.7, 81, 97, 104};
  p1.species = {"Li", "Fe", "O"};
  p1.frac = {{0.11, 0.23, 0.37}, {0.61, 0.17, 0.82}, {0.35, 0.71, 0.05}};
  EXPECT_EQ(number(p1), 1);
}

TEST(SpaceGroup, AgreesWithMaterialsProjectsColumnOnMp20) {
  if (!have_spglib()) GTEST_SKIP() << "built without spglib";
  // MP computed spacegroup.number with spglib at symprec 0.1 on its own relaxed structures; the CIFs in the CSV
  // are those structures (8 decimals). 99.6% of the first 2,000 test rows agree (pymatgen's SpacegroupAnalyzer too).
  const auto crystals = read_mp20(kTest, 1000).crystals;
  int64_t with = 0, agree = 0;
  for (const auto& c : crystals) {
    if (!c.spacegroup) continue;
    ++with;
    const auto sg = space_group(c, 0.1);
    agree += sg && sg->number == *c.spacegroup;
  }
  ASSERT_GT(with, 900);
  EXPECT_GE(double(agree) / with, 0.99) << agree << " of " << with;
}

TEST(SpaceGroup, HistogramAgainstTheReferenceColumn) {
  std::vector<Crystal> ref(4);
  ref[0].spacegroup = 225;
  ref[1].spacegroup = 1;
  ref[2].spacegroup = 1;  // ref[3]: no number and no atoms (spglib finds none): left out
  const std::vector<int> ref_numbers = {225, 1, 1, 0};
  const SpaceGroupReport g = space_group_report({225, 225, 1, 0}, &ref_numbers, 0.1);
  EXPECT_EQ(g.crystals, 4);
  EXPECT_EQ(g.found, 3);
  EXPECT_EQ(g.counts, (std::map<int, int64_t>{{1, 1}, {225, 2}}));
  EXPECT_DOUBLE_EQ(g.share(1), 1.0 / 3);
  EXPECT_EQ(g.ref_crystals, 3);
  EXPECT_DOUBLE_EQ(g.ref_share(1), 2.0 / 3);
  EXPECT_NEAR(g.tv, 0.5 * (std::fabs(2.0 / 3 - 1.0 / 3) + std::fabs(1.0 / 3 - 2.0 / 3)), 1e-15);  // 1/3
  EXPECT_EQ(space_group_report({225}, nullptr, 0.1).tv, -1);
  EXPECT_EQ(space_group_report({0, 0}, &ref_numbers, 0.1).tv, -1);  // none found: no histogram to compare
  // The last group, 230, counts too: half the crystals in it, none of the reference's -> TV 1/2.
  const std::vector<int> all_p1 = {1, 1};
  EXPECT_DOUBLE_EQ(space_group_report({230, 1}, &all_p1, 0.1).tv, 0.5);
  if (!have_spglib()) return;
  // Through cgeval: rock salt twice and CsCl-type NaCl, against a reference of two rock salts and a P1 crystal.
  EvalInput in;
  in.crystals = {rock_salt(), rock_salt(), cscl_type("Na", "Cl")};
  in.total = 3;
  const EvalReport r = evaluate(in, nullptr, &ref, {});
  ASSERT_TRUE(r.symmetry);
  EXPECT_EQ(r.symmetry->counts, (std::map<int, int64_t>{{221, 1}, {225, 2}}));
  EXPECT_NEAR(r.symmetry->tv, 0.5 * (1.0 / 3 + std::fabs(2.0 / 3 - 1.0 / 3) + 2.0 / 3), 1e-12);  // 221, 225, 1
  EXPECT_NE(report_json(r).find("\"p1_share\""), std::string::npos);
  EXPECT_NE(report_markdown(r).find("| space groups of valid crystals (spglib, 0.1 Å): distinct / P1 share | 2 / "
                                    "0.00% (reference 66.67%) |"),
            std::string::npos)
      << report_markdown(r);
  // A reference without space group numbers (a CIF folder): spglib finds them (rock salt 225, CsCl 221).
  const std::vector<Crystal> bare = {rock_salt(), cscl_type("Cs", "Cl")};
  const EvalReport rb = evaluate(in, nullptr, &bare, {});
  ASSERT_TRUE(rb.symmetry);
  EXPECT_EQ(rb.symmetry->ref_counts, (std::map<int, int64_t>{{221, 1}, {225, 1}}));
  EXPECT_NEAR(rb.symmetry->tv, 0.5 * (std::fabs(1.0 / 3 - 0.5) + std::fabs(2.0 / 3 - 0.5)), 1e-12);
  // ... and the report says whose groups they are.
  EXPECT_NE(report_markdown(rb).find("| space group TV (ours; vs spglib's groups of the reference at 0.1 Å) |"),
            std::string::npos) << report_markdown(rb);
  EXPECT_NE(report_json(rb).find("\"ref_groups\": \"spglib\""), std::string::npos) << report_json(rb);
  const std::vector<Crystal> numbered(ref.begin(), ref.begin() + 3);  // every one with its number
  const EvalReport rn = evaluate(in, nullptr, &numbered, {});
  EXPECT_NE(report_markdown(rn).find("| space group TV (ours; vs the reference's spacegroup.number) |"),
            std::string::npos) << report_markdown(rn);
  EXPECT_NE(report_json(rn).find("\"ref_groups\": \"spacegroup.number\""), std::string::npos);
  // A reference with some cells empty: those crystals' groups are spglib's, and the report says so.
  std::vector<Crystal> mixed = {rock_salt(), cscl_type("Cs", "Cl")};
  mixed[0].spacegroup = 225;
  const EvalReport rm = evaluate(in, nullptr, &mixed, {});
  ASSERT_TRUE(rm.symmetry);
  EXPECT_EQ(rm.symmetry->ref_counts, (std::map<int, int64_t>{{221, 1}, {225, 1}}));
  EXPECT_NE(report_markdown(rm).find("| space group TV (ours; vs the reference's spacegroup.number, spglib's at 0.1 Å "
                                     "for its 1 without) |"), std::string::npos) << report_markdown(rm);
  EXPECT_NE(report_json(rm).find("\"ref_groups\": \"spacegroup.number, spglib where empty\""), std::string::npos);
  EvalOptions off;
  off.spacegroups = false;
  EXPECT_FALSE(evaluate(in, nullptr, &ref, off).symmetry);
}

TEST(Formula, PymatgenReducedFormulaIsThePrettyFormula) {
  // Independent of the code: what pymatgen 2022.11.7's Composition(f).reduced_formula gives.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Fe4O6", "Fe2O3"},       {"O3Fe2", "Fe2O3"}, {"ClNa", "NaCl"},     {"Na1Cl1", "NaCl"},
      {"MgIn2Se4", "Mg(InSe2)2"}, {"BaLi2MgP2O8", "BaLi2Mg(PO4)2"},     {"O", "O2"},
      {"LiO", "Li2O2"},         {"Si2", "Si"},      {"Li10GeP2S12", "Li10Ge(PS6)2"}};
  for (const auto& [f, want] : cases) EXPECT_EQ(pymatgen_reduced_formula_of(f), want) << f;
  EXPECT_EQ(pymatgen_reduced_formula_of("Xx"), "");
  // Every pretty_formula of the MP-20 test split (what the prompts state) is its own reduced formula.
  int64_t n = 0;
  for (const Crystal& c : read_mp20(kTest).crystals) {
    if (c.formula.empty()) continue;
    ++n;
    EXPECT_EQ(pymatgen_reduced_formula_of(c.formula), c.formula);
  }
  EXPECT_GT(n, 9000);
}

TEST(Formula, PrettyFormulasReduceToTheCompositionOfTheirCrystals) {
  auto formula = [](const std::string& f) {
    const auto c = composition_of_formula(f);
    return c ? c->formula() : std::string("(none)");
  };
  EXPECT_EQ(formula("Fe2O3"), "O3Fe2");  // Composition::formula orders by atomic number
  EXPECT_EQ(formula("O3Fe2"), "O3Fe2");
  EXPECT_EQ(formula("Fe4O6"), "O3Fe2");  // reduced
  EXPECT_EQ(formula("NaCl"), "NaCl");
  EXPECT_EQ(formula("BaLi2Mg(PO4)2"), "Li2O8MgP2Ba");
  EXPECT_EQ(formula("Mg(InSe2)2"), "MgSe4In2");
  EXPECT_EQ(formula("Ca3(Al(OH)4)2"), "H8O8Al2Ca3");
  for (const char* bad : {"", "Fe2.5O", "Xx2", "fe2O3", "Fe(O", "Fe)O", "Fe0", "Fe2O3 ", "Fe()", "Fe1000001",
                          "((((Fe999999)999999)999999)999999)", "(Fe500000)2Fe"})
    EXPECT_EQ(formula(bad), "(none)") << bad;
  EXPECT_EQ(formula("(Fe500000)2"), "Fe");  // a million Fe: the largest count stated
  // ... which a formula may also write out, as the reduced formula does (the fuzzer found a formula whose reduced
  // formula, "Mg1000000F", was refused by the 6-digit limit then in place).
  EXPECT_EQ(formula("Mg1000000F"), "FMg1000000");
  EXPECT_EQ(pymatgen_reduced_formula_of("FMg999999Mg"), "Mg1000000F");
  EXPECT_EQ(formula("Fe10000000"), "(none)");
  // Every MP-20 test row's pretty_formula is its CIF's composition (pymatgen agrees on all of them).
  for (const auto& c : read_mp20(kTest, 1000).crystals) {
    const auto want = composition_of_formula(c.formula);
    ASSERT_TRUE(want) << c.id << " " << c.formula;
    EXPECT_EQ(want->formula(), reduce_composition(c.species).formula()) << c.id << " " << c.formula;
  }
}

TEST(Prompt, ConditionsReadBackFromEveryGenerationPrompt) {
  const std::vector<Property> orders[2] = {
      {Property::kFormationEnergy, Property::kBandGap, Property::kEAboveHull, Property::kSpacegroup},
      {Property::kSpacegroup, Property::kEAboveHull, Property::kFormationEnergy, Property::kBandGap}};
  for (int mask = 0; mask < 32; ++mask)
    for (const auto& order : orders) {
      GenerationConditions c;
      if (mask & 1) c.formula = "BaLi2Mg(PO4)2";
      if (mask & 2) c.formation_energy_per_atom = -2.3013;
      if (mask & 4) c.band_gap = 0.0;
      if (mask & 8) c.e_above_hull = 0.0125;
      if (mask & 16) c.spacegroup = 194;
      const GenerationConditions back = conditions_of_prompt(generation_prompt(c, order));
      EXPECT_EQ(back.formula, c.formula) << mask;
      EXPECT_EQ(back.formation_energy_per_atom, c.formation_energy_per_atom) << mask;
      EXPECT_EQ(back.band_gap, c.band_gap) << mask;
      EXPECT_EQ(back.e_above_hull, c.e_above_hull) << mask;
      EXPECT_EQ(back.spacegroup, c.spacegroup) << mask;
    }
  for (const char* odd : {"1e300", "nan", "-3", "0", "231", "12.5", "inf"})  // not a space group number: not stated
    EXPECT_FALSE(conditions_of_prompt(std::string("Below is a description of a bulk material. The spacegroup number "
                                                  "is ") + odd + ". Generate").spacegroup) << odd;
  const GenerationConditions infill = conditions_of_prompt(infill_prompt("4.2 4.2 4.2\n90 90 90\nNa\n0.00 0.00 0.00", "Na"));
  EXPECT_FALSE(infill.formula || infill.spacegroup || infill.band_gap);
}

TEST(Conditions, TallyCountsUnparsedAsMisses) {
  const std::vector<Crystal> crystals = {rock_salt(), cscl_type("Na", "Cl")};
  GenerationConditions nacl_225;
  nacl_225.formula = "NaCl";
  nacl_225.spacegroup = 225;
  GenerationConditions kcl;
  kcl.formula = "KCl";
  GenerationConditions gap, hull, energy;
  gap.band_gap = 1.5;
  hull.e_above_hull = 0.0;
  energy.formation_energy_per_atom = -1.0;
  const std::vector<ConditionedItem> items = {
      {nacl_225, 0},   // rock salt: formula and space group
      {nacl_225, 1},   // CsCl-type NaCl: formula only (221)
      {kcl, 0},        // wrong formula
      {nacl_225, -1},  // unparsed: misses both
      {gap, 1},        // a property: counted, not checked
      {hull, 1},       // each of the three
      {energy, -1}};
  SpaceGroupCache groups(crystals, 0.1);
  const ConditionReport r = check_conditions(items, groups);
  EXPECT_EQ(r.formula, 4);
  EXPECT_EQ(r.formula_match, 2);
  EXPECT_EQ(r.spacegroup, 3);
  EXPECT_EQ(r.spacegroup_match, have_spglib() ? 1 : 0);
  EXPECT_EQ(r.property, 3);
}

TEST(Conditions, CgevalReadsThemFromSamplePrompts) {
  const test::TempDir tmp("cg_test_conditions");
  const std::filesystem::path& dir = tmp.path;
  GenerationConditions want;
  want.formula = "NaCl";
  want.spacegroup = 225;
  {
    std::ofstream out(dir / "samples.jsonl");
    const Crystal answers[3] = {rock_salt(), cscl_type("Na", "Cl"), cscl_type("K", "Cl")};
    for (int i = 0; i < 3; ++i) {
      SampleRecord r;
      r.id = "s" + std::to_string(i);
      r.prompt = generation_prompt(want);
      r.parsed = true;
      r.crystal = answers[i];
      out << to_json_line(r) << "\n";
    }
    SampleRecord plain;  // unconditional: not a conditioned item
    plain.id = "s3";
    plain.prompt = generation_prompt({});
    plain.parsed = true;
    plain.crystal = rock_salt();
    out << to_json_line(plain) << "\n";
  }
  const EvalInput in = load_eval_input(dir.string());
  ASSERT_EQ(in.conditioned.size(), 3u);
  EXPECT_EQ(in.conditioned[2].crystal, 2);
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  ASSERT_TRUE(r.conditions);
  EXPECT_EQ(r.conditions->formula_match, 2);
  const std::string md = report_markdown(r);
  EXPECT_NE(md.find("| formula as asked (3 items) | 66.67% |"), std::string::npos) << md;
  if (have_spglib()) {
    EXPECT_NE(md.find("| space group as asked (3 items, symprec 0.1 Å) | 33.33% |"), std::string::npos) << md;
    EXPECT_NE(report_json(r).find("\"spacegroup_accuracy\""), std::string::npos);
  }
}

// sample.conditions_from a folder of CIFs: their formula and space group derived as cgprep derives them for training
// (spglib's rock salt is Fm-3m, 225; CsCl Pm-3m, 221), one row's conditions per sample.
TEST(Conditions, ConditionsFromACifFolderAreDerived) {
  const test::TempDir dir("cg_test_conditions_cifs");
  save_cif(dir / "nacl.cif", rock_salt());
  save_cif(dir / "cscl.cif", cscl_type("Cs", "Cl"));
  Config c;
  c.sample.conditions_from = dir.path.string();
  c.sample.condition_on = {"formula", "spacegroup"};
  c.sample.num_samples = 4;
  const std::vector<SampleJob> jobs = make_sample_jobs(c);
  ASSERT_EQ(jobs.size(), 4u);
  std::map<std::string, int> seen;  // "formula sg" -> prompts
  for (const auto& j : jobs) {
    const GenerationConditions k = conditions_of_prompt(j.prompt);
    ASSERT_TRUE(k.formula) << j.prompt;
    if (!have_spglib()) continue;
    ASSERT_TRUE(k.spacegroup) << j.prompt;
    ++seen[*k.formula + " " + std::to_string(*k.spacegroup)];
  }
  if (!have_spglib()) return;
  EXPECT_EQ(seen, (std::map<std::string, int>{{"CsCl 221", 2}, {"NaCl 225", 2}}));
}

// Rows of sample.conditions_from that cannot give the conditions are counted by reason, and the first of them (by row)
// is named with its reason, so it can be looked at.
TEST(Conditions, LeftOutRowsNameTheFirstWithItsReason) {
  const test::TempDir dir("cg_test_conditions_left_out");
  {
    std::ofstream out(dir / "rows.csv");
    out << "material_id,pretty_formula,band_gap,cif\n";
    out << "m0,NaCl,," << csv_quoted(to_cif(rock_salt())) << "\n";              // no band gap
    out << "m1,CsCl,0.5," << csv_quoted("data_x\n_cell_length_a 3\n") << "\n";  // does not read
    out << "m2,CsCl,1.5," << csv_quoted(to_cif(cscl_type("Cs", "Cl"))) << "\n";
  }
  Config c;
  c.sample.conditions_from = dir / "rows.csv";
  c.sample.condition_on = {"formula", "band_gap"};
  c.sample.num_samples = 2;
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  const std::vector<SampleJob> jobs = make_sample_jobs(c);
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(conditions_of_prompt(jobs[0].prompt).band_gap.value_or(0), 1.5);
  EXPECT_NE(log.str().find("2 of 3 rows left out (1 with a crystal that does not read, 1 with no band_gap; the "
                           "first: row 0: m0: no band_gap)"), std::string::npos) << log.str();
}

// sample.formula, sample.spacegroup and the three properties, each stated as given in every prompt (P1 included).
TEST(Conditions, FixedConditionsAreStatedInEveryPrompt) {
  Config c;
  c.sample.formula = "NaCl";
  c.sample.spacegroup = 1;
  c.sample.formation_energy = "-1.5";
  c.sample.band_gap = "2.25";
  c.sample.e_above_hull = "0.0125";
  c.sample.num_samples = 3;
  const std::vector<SampleJob> jobs = make_sample_jobs(c);
  ASSERT_EQ(jobs.size(), 3u);
  for (const SampleJob& j : jobs) {
    const GenerationConditions k = conditions_of_prompt(j.prompt);
    EXPECT_EQ(k.formula, std::optional<std::string>("NaCl")) << j.prompt;
    EXPECT_EQ(k.spacegroup, std::optional<int>(1)) << j.prompt;
    EXPECT_EQ(k.formation_energy_per_atom, std::optional<double>(-1.5)) << j.prompt;
    EXPECT_EQ(k.band_gap, std::optional<double>(2.25)) << j.prompt;
    EXPECT_EQ(k.e_above_hull, std::optional<double>(0.0125)) << j.prompt;
    EXPECT_EQ(j.truth, "");
  }
}

// Infill masks the element of a seeded uniform site of each crystal: over 16 rock salts both Na and Cl are masked,
// each prompt has that element's lines masked and the other's kept, and the seed decides which.
TEST(Conditions, InfillMasksASeededSiteOfEachCrystal) {
  const test::TempDir dir("cg_test_conditions_infill");
  {
    std::ofstream out(dir / "test.csv");
    out << "material_id,cif\n";
    for (int i = 0; i < 16; ++i) out << "m" << i << "," << csv_quoted(to_cif(rock_salt())) << "\n";
  }
  Config c;
  c.sample.task = "infill";
  c.data.test_csv = dir / "test.csv";
  c.sample.num_samples = 16;
  auto masked = [&](uint64_t seed) {
    c.sample.seed = seed;
    std::string truths;
    for (const SampleJob& j : make_sample_jobs(c)) {
      EXPECT_TRUE(j.truth == "Na" || j.truth == "Cl") << j.truth;
      const std::string other = j.truth == "Na" ? "Cl" : "Na";
      EXPECT_NE(j.prompt.find("\n[MASK]\n"), std::string::npos) << j.prompt;
      EXPECT_EQ(j.prompt.find("\n" + j.truth + "\n"), std::string::npos) << j.prompt;
      EXPECT_NE(j.prompt.find("\n" + other + "\n"), std::string::npos) << j.prompt;
      truths += j.truth + " ";
    }
    return truths;
  };
  const std::string a = masked(0);
  EXPECT_NE(a.find("Na"), std::string::npos) << a;
  EXPECT_NE(a.find("Cl"), std::string::npos) << a;
  EXPECT_EQ(masked(0), a);
  EXPECT_NE(masked(1), a);
}

// sample.conditions_from's rows are asked in a seeded random order: the same seed gives the same order, and some
// other seed another one; every row is asked once when there are as many samples as rows.
TEST(Conditions, ConditionRowsComeInASeededOrder) {
  const test::TempDir dir("cg_test_conditions_order");
  {
    std::ofstream out(dir / "rows.csv");
    out << "material_id,band_gap,cif\n";
    for (int i = 1; i <= 6; ++i) out << "m" << i << "," << i << "," << csv_quoted(to_cif(rock_salt())) << "\n";
  }
  Config c;
  c.sample.conditions_from = dir / "rows.csv";
  c.sample.condition_on = {"band_gap"};  // no formula: nothing derived from the structures, which takes longer
  c.sample.num_samples = 6;
  auto gaps = [&](uint64_t seed) {
    c.sample.seed = seed;
    std::vector<double> g;
    for (const SampleJob& j : make_sample_jobs(c)) g.push_back(conditions_of_prompt(j.prompt).band_gap.value_or(0));
    return g;
  };
  const std::vector<double> first = gaps(0);
  std::vector<double> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(gaps(0), first);
  bool other_order = false;
  for (uint64_t seed = 1; seed <= 3; ++seed) other_order |= gaps(seed) != first;
  EXPECT_TRUE(other_order);
}

// A relative data.test_csv (infill) or sample.conditions_from that is not there from the working folder: the key is
// named, and the folder relative paths are read from.
TEST(Conditions, MissingInputsNameTheKeyAndTheWorkingFolder) {
  Config c;
  c.sample.task = "infill";
  c.data.test_csv = "no/such/test.csv.gz";
  const std::string cwd = std::filesystem::current_path().string();
  auto refusal = [&] {
    try {
      make_sample_jobs(c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  std::string why = refusal();
  EXPECT_NE(why.find("data.test_csv (the crystals sample.task=infill masks): no/such/test.csv.gz does not exist in " +
                     cwd + " (relative paths are read from the folder cgsample runs in); set data.test_csv"),
            std::string::npos) << why;
  c.sample.task = "generate";
  c.sample.conditions_from = "data.test_csv";
  why = refusal();
  EXPECT_NE(why.find("data.test_csv (sample.conditions_from): no/such/test.csv.gz does not exist in " + cwd),
            std::string::npos) << why;
}

// A sample.adapter that is not there is said as itself (it was said as the shards' missing tokenizer.model, which
// cgsample reads in its place), with the folder a relative one was looked for in.
TEST(Conditions, MissingAdapterIsNamed) {
  Config c;
  EXPECT_NO_THROW(check_sample_adapter_exists(c));  // none: the base model
  c.sample.adapter = "runs/no-such/adapter";
  const std::string why = test::error_of([&] { check_sample_adapter_exists(c); });
  EXPECT_NE(why.find("sample.adapter runs/no-such/adapter does not exist in " +
                     std::filesystem::current_path().string() + " (relative paths are read from the folder the "
                     "command runs in); give cgexport's --out folder, a cgtrain run_dir"), std::string::npos) << why;
  c.sample.adapter = ::testing::TempDir();
  EXPECT_NO_THROW(check_sample_adapter_exists(c));
}

// A sample.formula that is no formula is refused before any model loads, saying what is wrong with it: the symbol
// that is no element, a fractional count, a symbol in lower case.
TEST(Conditions, BadFormulaNamesWhatIsWrong) {
  Config c;
  c.sample.num_samples = 1;
  auto refusal = [&](const std::string& f) {
    c.sample.formula = f;
    try {
      make_sample_jobs(c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::pair<const char*, const char*> cases[] = {
      {"Xx2O", "sample.formula=Xx2O is not a formula such as Fe2O3"},
      {"Xx2O", "integer counts from 1 to 1000000 each): 'Xx' is no element symbol"},
      {"LiFeQO4", "'Q' is no element symbol"},
      {"Nacl", "'Nacl' is no element symbol"},
      {"nacl", "element symbols begin with a capital letter"},
      {"Fe2.5O", "counts are whole numbers"},
  };
  for (const auto& [f, want] : cases) {
    const std::string why = refusal(f);
    EXPECT_NE(why.find(want), std::string::npos) << f << ": " << why;
  }
}

// The conditions no training prompt stated, by the train split's property counts (what cgsample and cgsweep warn of):
// a property no crystal carried, a formula carried without any other property (a prompt states it only beside one).
TEST(Conditions, UntrainedConditionsByPropertyCounts) {
  GenerationConditions k;
  k.formula = "NaCl";
  k.band_gap = 1.5;
  EXPECT_EQ(conditions_stated({{generation_prompt(k), ""}, {generation_prompt({}), ""}}),
            (std::set<std::string>{"band_gap", "formula"}));
  GenerationConditions rest;
  rest.spacegroup = 225;
  rest.formation_energy_per_atom = -1.0;
  rest.e_above_hull = 0.0;
  EXPECT_EQ(conditions_stated({{generation_prompt(rest), ""}}),
            (std::set<std::string>{"e_above_hull", "formation_energy", "spacegroup"}));
  const std::string seven = R"({"crystals": 7, "formula": 7, "spacegroup": 0, "formation_energy": 7, "band_gap": 0, )"
                            R"("e_above_hull": 0})";
  auto u = untrained_conditions({"band_gap", "formula", "spacegroup"}, seven, "/gone/data.csv");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->never, (std::vector<std::string>{"band_gap", "spacegroup"}));
  EXPECT_EQ(u->counts, "(/gone/data.csv, 7 crystals: band_gap 0, spacegroup 0)");
  u = untrained_conditions({"formula", "formation_energy"}, seven, "");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->never.empty());
  u = untrained_conditions({"band_gap", "formula"}, R"({"crystals": 3, "formula": 3, "spacegroup": 0, )"
                           R"("formation_energy": 0, "band_gap": 0, "e_above_hull": 0})", "");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->never, (std::vector<std::string>{"band_gap", "formula"}));
  EXPECT_EQ(u->counts, "(its train split, 3 crystals: band_gap 0, formula 3; a formula is stated only beside another "
            "property)");
  // A formula stated beside any one of the four others was seen in training.
  for (const char* with : {"spacegroup", "formation_energy", "band_gap", "e_above_hull"}) {
    nlohmann::json one = {{"crystals", 3}, {"formula", 3}, {"spacegroup", 0}, {"formation_energy", 0},
                          {"band_gap", 0}, {"e_above_hull", 0}};
    one[with] = 2;
    u = untrained_conditions({"formula"}, one.dump(), "");
    ASSERT_TRUE(u) << with;
    EXPECT_TRUE(u->never.empty()) << with;
  }
  u = untrained_conditions({"band_gap"}, R"({"crystals": 3, "band_gap": "x"})", "");  // no count: not said
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->never.empty());
  EXPECT_FALSE(untrained_conditions({"band_gap"}, "", ""));  // shards of an older cgprep: nothing known
  EXPECT_FALSE(untrained_conditions({"band_gap"}, "null", ""));
}

}  // namespace
}  // namespace cg
