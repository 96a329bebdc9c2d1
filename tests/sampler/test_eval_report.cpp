// cgeval's pipeline: the three input kinds, the report's counts, and the real-data sanity floor.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/durable_file.h"
#include "common/error.h"

#include "data/crystal_text.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "sampler/cif_writer.h"
#include "sampler/eval_input.h"
#include "sampler/eval_report.h"
#include "sampler/sample_record.h"
#include "tests/test_util.h"

namespace cg {
namespace {

namespace fs = std::filesystem;
const std::string kTest = std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz";

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_test_eval_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(EvalReport, RealMp20IsStructurallyValid) {
  const EvalInput in = load_eval_input(kTest, 500);
  ASSERT_EQ(in.total, 500);
  const EvalReport r = evaluate(in, nullptr, &in.crystals, {});
  EXPECT_GE(r.rate(r.struct_valid), 0.99);  // sanity floor: real crystals have no overlapping atoms
  EXPECT_GE(r.rate(r.comp_valid), 0.80);
  EXPECT_LE(r.valid, r.comp_valid);
  EXPECT_GE(r.unique, r.valid * 9 / 10);
  ASSERT_TRUE(r.dist.has_value());
  // Valid crystals against all 500: real densities lie between ~1 and ~20 g/cm^3 and the two sets barely differ.
  EXPECT_GT(r.dist->ref_mean_density, 1.0);
  EXPECT_LT(r.dist->ref_mean_density, 20.0);
  EXPECT_LT(r.dist->wdist_density, 0.5);
  const std::string json = report_json(r), md = report_markdown(r);
  for (const char* key : {"\"wdist_density\"", "\"wdist_num_elements\"", "\"wdist_num_atoms\"", "\"mean_density\""})
    EXPECT_NE(json.find(key), std::string::npos) << key;
  EXPECT_NE(md.find("| W1 density, g/cm³ (CDVAE; vs 500 reference) |"), std::string::npos);
  EXPECT_NE(md.find("| W1 #elements (CDVAE) |"), std::string::npos);
  EXPECT_NE(md.find("| W1 #atoms (ours) |"), std::string::npos);
}

TEST(EvalReport, JitteredCopiesAreNotUnique) {
  // Rock salt, four copies with each site moved to a corner of the +-0.02 box, the lattice scaled by 8%, and a
  // CsCl-type NaCl. pymatgen 2022.11 (StructureMatcher defaults, group_structures) finds 3 structures: rock salt with
  // its scaled copy (primitive cells of 2 sites), the four jittered copies together (their primitive cells keep 4
  // sites at the 0.25 A tolerance, so they match each other but not the 2-site rock salt), and CsCl.
  Crystal base;
  base.lattice = {5.64, 5.64, 5.64, 90, 90, 90};
  base.species = {"Na", "Na", "Na", "Na", "Cl", "Cl", "Cl", "Cl"};
  base.frac = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5},
               {0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0.5}, {0.5, 0.5, 0.5}};
  EvalInput in;
  in.crystals.push_back(base);
  const double shifts[4][3] = {{0.02, -0.02, 0.02}, {-0.02, 0.02, 0.02}, {0.02, 0.02, -0.02}, {-0.02, -0.02, -0.02}};
  for (int k = 0; k < 4; ++k) {
    Crystal c = base;
    for (size_t i = 0; i < c.frac.size(); ++i)  // a different corner of the jitter box per site
      for (int a = 0; a < 3; ++a) c.frac[i][a] = wrap01(c.frac[i][a] + shifts[(i + k) % 4][a]);
    in.crystals.push_back(c);
  }
  Crystal big = base;
  big.lattice = {5.64 * 1.08, 5.64 * 1.08, 5.64 * 1.08, 90, 90, 90};
  in.crystals.push_back(big);
  Crystal cscl;
  const double a = 5.64 / std::cbrt(4.0);
  cscl.lattice = {a, a, a, 90, 90, 90};
  cscl.species = {"Na", "Cl"};
  cscl.frac = {{0, 0, 0}, {0.5, 0.5, 0.5}};
  in.crystals.push_back(cscl);
  in.total = static_cast<int64_t>(in.crystals.size());
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  EXPECT_EQ(r.valid, 7);
  EXPECT_EQ(r.unique, 3);
}

// A duplicate is as novel as the crystal it repeats; the property distributions are those of the valid crystals
// (CDVAE's), an invalid one left out.
TEST(EvalReport, DuplicatesShareNoveltyAndDistributionsCountValidCrystalsOnly) {
  Crystal rock;  // rock salt, 8 sites
  rock.id = "r0";
  rock.lattice = {5.64, 5.64, 5.64, 90, 90, 90};
  rock.species = {"Na", "Na", "Na", "Na", "Cl", "Cl", "Cl", "Cl"};
  rock.frac = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5},
               {0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0.5}, {0.5, 0.5, 0.5}};
  Crystal copy = rock;
  copy.id = "r1";
  Crystal cscl;  // CsCl-type NaCl, 2 sites: another structure
  cscl.id = "c2";
  const double a = 5.64 / std::cbrt(4.0);
  cscl.lattice = {a, a, a, 90, 90, 90};
  cscl.species = {"Na", "Cl"};
  cscl.frac = {{0, 0, 0}, {0.5, 0.5, 0.5}};
  Crystal overlap;  // two atoms 0.04 Å apart: not valid
  overlap.id = "x3";
  overlap.lattice = {4, 4, 4, 90, 90, 90};
  overlap.species = {"Na", "Cl"};
  overlap.frac = {{0, 0, 0}, {0.01, 0, 0}};
  EvalInput in;
  in.crystals = {rock, copy, cscl, overlap};
  in.total = 4;
  const std::vector<Crystal> train = {cscl}, reference = {rock};
  const EvalReport r = evaluate(in, &train, &reference, {});
  EXPECT_EQ(r.valid, 3);
  EXPECT_EQ(r.unique, 2);
  EXPECT_EQ(r.novel, 1);  // rock salt; CsCl is in train
  ASSERT_EQ(r.items.size(), 4u);
  EXPECT_EQ(r.items[1].duplicate_of, "r0");
  EXPECT_EQ(r.items[0].novel, 1);
  EXPECT_EQ(r.items[1].novel, 1);
  EXPECT_EQ(r.items[2].novel, 0);
  EXPECT_EQ(r.items[3].novel, -1);  // not valid: not looked at
  // Valid atoms per crystal {8, 8, 2} against {8}: mean 6; W1 = 1/3 of the mass moved 6 atoms = 2. With the invalid
  // crystal's 2 atoms it would be a mean of 5 and W1 3.
  ASSERT_TRUE(r.dist);
  EXPECT_DOUBLE_EQ(r.dist->mean_num_atoms, 6.0);
  EXPECT_DOUBLE_EQ(r.dist->wdist_num_atoms, 2.0);
  EXPECT_DOUBLE_EQ(r.dist->ref_mean_num_atoms, 8.0);
}

// Every field of a samples.jsonl record reads back as cgsample wrote it (a lattice with three different angles, so
// that no two can trade places unnoticed).
TEST(EvalReport, ASampleRecordReadsBackAsWritten) {
  SampleRecord w;
  w.id = "s000007";
  w.task = "infill";
  w.prompt = "the prompt";
  w.text = " Fe\n";
  w.parsed = true;
  w.reason = "a reason";
  Crystal c;
  c.lattice = {3.5, 4.25, 5.125, 80, 95, 110};
  c.species = {"Fe", "O"};
  c.frac = {{0.125, 0.25, 0.5}, {0.75, 0.875, 0.0625}};
  w.crystal = c;
  w.element = "Fe";
  w.truth = "Co";
  w.num_tokens = 42;
  w.constrained = true;
  const SampleRecord r = sample_from_json_line(to_json_line(w), "t.jsonl:1");
  EXPECT_EQ(r.id, w.id);
  EXPECT_EQ(r.task, w.task);
  EXPECT_EQ(r.prompt, w.prompt);
  EXPECT_EQ(r.text, w.text);
  EXPECT_TRUE(r.parsed);
  EXPECT_EQ(r.reason, w.reason);
  EXPECT_EQ(r.element, "Fe");
  EXPECT_EQ(r.truth, "Co");
  EXPECT_EQ(r.num_tokens, 42);
  EXPECT_TRUE(r.constrained);
  ASSERT_TRUE(r.crystal);
  const Lattice& l = r.crystal->lattice;
  EXPECT_EQ(std::vector<double>({l.a, l.b, l.c, l.alpha, l.beta, l.gamma}),
            std::vector<double>({3.5, 4.25, 5.125, 80, 95, 110}));
  EXPECT_EQ(r.crystal->species, c.species);
  EXPECT_EQ(r.crystal->frac, c.frac);
  w.constrained = w.parsed = false;
  w.crystal.reset();
  const SampleRecord off = sample_from_json_line(to_json_line(w), "t.jsonl:2");
  EXPECT_FALSE(off.constrained);
  EXPECT_FALSE(off.parsed);
  EXPECT_FALSE(off.crystal);
}

TEST(EvalReport, SamplesJsonlCountsUnparsedAsInvalidAndFindsDuplicates) {
  const std::vector<Crystal> real = read_mp20(kTest, 3).crystals;
  ASSERT_EQ(real.size(), 3u);
  const fs::path dir = fresh_dir("jsonl");
  {
    std::ofstream out(dir / "samples.jsonl");
    for (int i = 0; i < 4; ++i) {  // crystals 0, 1, 2 and a duplicate of 0
      SampleRecord r;
      r.id = "s" + std::to_string(i);
      r.text = "(text)";
      r.parsed = true;
      r.crystal = real[i % 3];
      out << to_json_line(r) << "\n";
    }
    SampleRecord bad;
    bad.id = "s4";
    bad.text = "4.2 4.2";
    bad.reason = "line 1: expected 3 numbers (got '4.2 4.2')";
    out << to_json_line(bad) << "\n";
    SampleRecord overlap;  // two atoms at the same place
    overlap.id = "s5";
    overlap.parsed = true;
    Crystal c;
    c.lattice = {4, 4, 4, 90, 90, 90};
    c.species = {"Na", "Cl"};
    c.frac = {{0, 0, 0}, {0.01, 0, 0}};
    overlap.crystal = c;
    out << to_json_line(overlap) << "\n";
  }
  const EvalInput in = load_eval_input(dir.string());
  EXPECT_EQ(in.kind, "samples");
  EXPECT_EQ(in.total, 6);
  EXPECT_EQ(in.crystals.size(), 5u);
  EXPECT_EQ(in.unparsed_reasons.at("expected 3 numbers"), 1);  // by kind: the line number and detail dropped
  EXPECT_EQ(reason_key("line 3: not an element symbol (got 'Xy')"), "not an element symbol");
  EXPECT_EQ(reason_key("line 11: not an element symbol (got 'Q')"), "not an element symbol");
  EXPECT_EQ(reason_key("mp-1: line 48: CIF item _x is given twice"), "CIF item _x is given twice");
  EXPECT_EQ(reason_key("row 7: empty material_id"), reason_key("row 12: empty material_id"));  // one count
  EXPECT_EQ(reason_key("row 7: empty material_id"), "empty material_id");
  // A long reason is cut at a word and marked; one without spaces at a whole UTF-8 character.
  std::string words;
  while (words.size() < 300) words += "word" + std::to_string(words.size()) + " ";
  const std::string cut_words = reason_key(words);
  EXPECT_LE(cut_words.size(), 240u + 4);
  EXPECT_EQ(cut_words.substr(cut_words.size() - 4), " \u2026");
  EXPECT_EQ(words.compare(0, cut_words.size() - 4, cut_words, 0, cut_words.size() - 4), 0);
  EXPECT_EQ(words[cut_words.size() - 4], ' ');  // the cut is at a space: no word is broken
  std::string greek;
  while (greek.size() < 300) greek += "\u03b1";  // two bytes each: 240 falls on a character's start
  greek = "x" + greek;                          // now it falls inside one
  const std::string cut_greek = reason_key(greek);
  EXPECT_EQ(cut_greek.size(), 239u + 4);
  EXPECT_EQ(cut_greek.compare(0, 239, greek, 0, 239), 0);
  EXPECT_EQ(reason_key(std::string(240, 'a')), std::string(240, 'a'));  // at the bound: kept whole
  EXPECT_EQ(reason_key("s000012.cif: lattice lengths and angles form no cell (zero volume)"),
            reason_key("line 2: lattice lengths and angles form no cell (zero volume) (got '138 138 90')"));
  const std::vector<Crystal> train = {real[1]};
  const EvalReport r = evaluate(in, &train, nullptr, {});
  EXPECT_EQ(r.total, 6);
  EXPECT_EQ(r.struct_valid, 4);  // the overlap fails
  EXPECT_NEAR(r.rate(r.struct_valid), 4.0 / 6, 1e-12);
  // The three real crystals' validity is whatever SMACT says; the duplicate adds nothing unique.
  int64_t real_valid = 0;
  for (int i = 0; i < 3; ++i) {
    EvalInput one;
    one.total = 1;
    one.crystals = {real[i]};
    real_valid += evaluate(one, nullptr, nullptr, {}).valid;
  }
  const int64_t dup_valid = evaluate([&] { EvalInput e; e.total = 1; e.crystals = {real[0]}; return e; }(), nullptr,
                                     nullptr, {}).valid;
  EXPECT_EQ(r.valid, real_valid + dup_valid);
  EXPECT_EQ(r.unique, real_valid);
  EXPECT_EQ(r.invalid_reasons.at("structure: atoms too close"), 1);
  // Per parsed crystal (items.jsonl): s4 did not parse; s3 repeats s0; s1 is the training crystal; s5 overlaps.
  ASSERT_EQ(r.items.size(), 5u);
  EXPECT_EQ(r.items[4].id, "s5");
  EXPECT_FALSE(r.items[4].struct_valid);
  EXPECT_EQ(r.items[4].struct_reason, "atoms too close");
  EXPECT_EQ(r.items[4].formula, "NaCl");
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.items[size_t(i)].struct_valid) << i;
  const bool valid0 = r.items[0].comp_valid, valid1 = r.items[1].comp_valid;
  EXPECT_EQ(r.items[3].comp_valid, valid0);
  if (valid0) {
    EXPECT_EQ(r.items[0].duplicate_of, "");
    EXPECT_EQ(r.items[3].duplicate_of, "s0");
    EXPECT_EQ(r.items[0].novel, 1);
    EXPECT_EQ(r.items[3].novel, 1);
  }
  if (valid1) EXPECT_EQ(r.items[1].novel, 0);  // it is in train
  std::vector<nlohmann::json> lines;
  std::istringstream items(items_jsonl(r));
  for (std::string l; std::getline(items, l);) lines.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[4]["valid"], false);
  EXPECT_EQ(lines[4]["structural_reason"], "atoms too close");
  EXPECT_FALSE(lines[4].contains("unique"));
  if (valid0) {
    EXPECT_EQ(lines[3]["unique"], false);
    EXPECT_EQ(lines[3]["duplicate_of"], "s0");
    EXPECT_EQ(lines[0]["novel"], true);
  }
  int64_t valid_lines = 0;
  for (const auto& l : lines) valid_lines += l["valid"].get<bool>();
  EXPECT_EQ(valid_lines, r.valid);
  const std::string json = report_json(r);
  EXPECT_NE(json.find("\"structural_validity\""), std::string::npos);
  EXPECT_NE(report_markdown(r).find("| structural validity | 66.67% |"), std::string::npos);
  fs::remove_all(dir);
}

// A record whose crystal no parser would have produced (edited or written by another tool) is an unparsed item with
// the reason, not the end of the report; a folder with no generated items reports n/a, not 0%.
// A samples.jsonl with fewer records than its summary.json says cgsample wrote (a cut file), or with ids repeated
// (two runs put together), is evaluated with a warning for each.
TEST(EvalReport, CutOrConcatenatedSamplesAreSaid) {
  const fs::path dir = fresh_dir("cut");
  {
    std::ofstream out(dir / "samples.jsonl");
    for (const char* id : {"s000000", "s000001", "s000000"}) {
      SampleRecord r;
      r.id = id;
      r.reason = "no EOS within sample.max_new_tokens";
      out << to_json_line(r) << "\n";
    }
  }
  std::ofstream(dir / "summary.json") << R"({"num_samples": 8})";
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  const EvalInput in = load_eval_input(dir.string());
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(in.total, 3);
  EXPECT_NE(log.str().find("repeats 1 sample id(s) (the first: s000000)"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("holds 3 records, but its summary.json says cgsample wrote 8"), std::string::npos)
      << log.str();
  std::ofstream(dir / "summary.json") << R"({"num_samples": 3})";  // as written: no word of it
  std::ostringstream quiet;
  spdlog::default_logger()->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(quiet));
  load_eval_input(dir.string());
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(quiet.str().find("summary.json says"), std::string::npos) << quiet.str();
  EXPECT_EQ(quiet.str().find("journal"), std::string::npos) << quiet.str();
  // A live cgsample journal beside them (a run into the folder stopped): said; one set aside (another run's) is not.
  std::ofstream(dir / ".cgsample.journal.aside-abc.jsonl") << "{\"key\": \"abc\"}\n";
  std::ostringstream aside;
  spdlog::default_logger()->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(aside));
  load_eval_input(dir.string());
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(aside.str().find("journal"), std::string::npos) << aside.str();
  std::ofstream(dir / ".cgsample.journal.dp1.jsonl") << "{\"key\": \"k\"}\n";
  std::ostringstream stopped;
  spdlog::default_logger()->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(stopped));
  EXPECT_EQ(load_eval_input(dir.string()).total, 3);
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_NE(stopped.str().find("cgeval: " + dir.string() + " holds " + (dir / ".cgsample.journal.dp1.jsonl").string() +
                               ", the journal of a cgsample run into it that stopped before it finished: these "
                               "samples are an earlier run's, or partly that run's; rerun that cgsample command"),
            std::string::npos) << stopped.str();
  fs::remove_all(dir);
}

TEST(EvalReport, RecordsWithImpossibleCrystalsAreUnparsedAndEmptyReportsSayNa) {
  const std::string head = R"({"id":"x","parsed":true,"crystal":{"lattice":{"a":)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(-4,"b":4,"c":4,"alpha":90,"beta":90,"gamma":90},"species":["Na"],"frac":[[0,0,0]]}})",
       "lattice length -4 is not a positive number"},
      {R"(4,"b":4,"c":4,"alpha":90,"beta":90,"gamma":90},"species":["Xx"],"frac":[[0,0,0]]}})",
       "'Xx' is not an element symbol"},
      {R"(4,"b":4,"c":4,"alpha":90,"beta":90,"gamma":90},"species":[],"frac":[]}})", "no sites"},
      {R"(4,"b":4,"c":4,"alpha":190,"beta":90,"gamma":90},"species":["Na"],"frac":[[0,0,0]]}})",
       "lattice angle 190 outside (0, 180)"},
      {R"(4,"b":4,"c":4,"alpha":138,"beta":138,"gamma":90},"species":["Na"],"frac":[[0,0,0]]}})",
       "lattice lengths and angles form no cell (zero volume)"},  // as the text and CIF readers say
      {R"(5,"b":5,"c":5,"alpha":120,"beta":120,"gamma":120},"species":["Na"],"frac":[[0,0,0]]}})",
       "form no cell"},  // a volume of ~1e-6 A^3: rounding
  };
  for (const auto& [tail, why] : cases) {
    const SampleRecord r = sample_from_json_line(head + tail, "t.jsonl:1");
    EXPECT_FALSE(r.parsed) << tail;
    EXPECT_FALSE(r.crystal.has_value()) << tail;
    EXPECT_NE(r.reason.find(why), std::string::npos) << tail << " -> " << r.reason;
  }
  // Malformed fields end reading with the line and the field (fuzzing found a float num_tokens beyond int64, which
  // nlohmann's conversion to int64 made undefined behaviour).
  const std::vector<std::pair<std::string, std::string>> malformed = {
      {R"({"id":"x","num_tokens":4.0e67})", "num_tokens 4e+67 is not a whole number >= 0"},
      {R"({"id":"x","num_tokens":-3})", "num_tokens -3 is not a whole number >= 0"},
      {R"({"id":"x","num_tokens":18446744073709551615})", "num_tokens 18446744073709551615 is not"},
      {head + R"(4,"b":4,"c":4,"alpha":90,"beta":90,"gamma":90},"species":["Na"],"frac":[[0,0,0,1]]}})",
       "a coordinate [0,0,0,1] is not [x, y, z]"},
  };
  for (const auto& [line, why] : malformed) {
    try {
      sample_from_json_line(line, "t.jsonl:7");
      ADD_FAILURE() << "read: " << line;
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find("t.jsonl:7: malformed sample record: " + why), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(sample_from_json_line(R"({"id":"x","num_tokens":12})", "t.jsonl:1").num_tokens, 12);
  // A line cut short (a copy interrupted) says what to do, not only nlohmann's parse error.
  try {
    sample_from_json_line(R"({"id":"x","num_tokens":1)", "t.jsonl:9");
    ADD_FAILURE() << "read a line cut short";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl:9: malformed sample record, not one JSON object (a line cut short "
                                         "or edited: [json.exception.parse_error"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mend or delete that line, or sample again"), std::string::npos) << e.what();
  }

  const fs::path dir = fresh_dir("empty");
  std::ofstream(dir / "samples.jsonl") << "";
  const EvalReport empty = evaluate(load_eval_input(dir.string()), nullptr, nullptr, {});
  EXPECT_NE(report_markdown(empty).find("| structural validity | n/a |"), std::string::npos) << report_markdown(empty);
  EXPECT_NE(report_json(empty).find("\"validity\": null"), std::string::npos) << report_json(empty);
  try {
    load_eval_input((dir / "nofile.jsonl").string());
    ADD_FAILURE() << "a missing input was read";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nofile.jsonl' does not exist"), std::string::npos) << e.what();
  }
  if (empty.symmetry) {  // spglib present: a P1 share over no crystal is n/a too
    EXPECT_NE(report_json(empty).find("\"p1_share\": null"), std::string::npos) << report_json(empty);
    EXPECT_NE(report_markdown(empty).find("distinct / P1 share | 0 / n/a |"), std::string::npos)
        << report_markdown(empty);
  }
  fs::remove_all(dir);
}

TEST(EvalReport, CifFolder) {
  const std::vector<Crystal> real = read_mp20(kTest, 5).crystals;
  const fs::path dir = fresh_dir("cifs");
  for (const auto& c : real) save_cif((dir / (c.id + ".cif")).string(), c);
  std::ofstream(dir / "broken.cif") << "data_x\n_cell_length_a 3\n";
  // One file, three data blocks (as ASE writes several structures): two crystals and a broken block, three items.
  std::ofstream(dir / "multi.cif") << to_cif(real[0]) << to_cif(real[1]) << "data_bad\n_cell_length_a 3\n";
  const EvalInput in = load_eval_input(dir.string());
  EXPECT_EQ(in.kind, "cifs");
  EXPECT_EQ(in.total, 9);
  EXPECT_EQ(in.crystals.size(), 7u);
  EXPECT_EQ(in.unparsed(), 2);
  EXPECT_EQ(in.crystals[5].id.rfind("multi/", 0), 0u) << in.crystals[5].id;  // files in name order, ids per block
  EXPECT_EQ(load_eval_input(dir.string(), 7).total, 7);       // eval.max_rows counts blocks
  fs::remove_all(dir);
}

// eval.input's default, <train.run_dir>/samples (runs/tiny/samples), is relative: from another folder than the
// repository's, its error names the folder it was looked in.
TEST(EvalReport, MissingInputNamesTheFolderARelativePathIsReadFrom) {
  const std::string e = cg::test::error_of([] { load_eval_input("runs/no-such/samples"); });
  EXPECT_NE(e.find("eval.input 'runs/no-such/samples' does not exist in " + fs::current_path().string() +
                   " (relative paths are read from the folder cgeval runs in); point it at a cgsample folder"),
            std::string::npos) << e;
  const std::string abs = cg::test::error_of([] { load_eval_input("/no-such/samples"); });
  EXPECT_NE(abs.find("eval.input '/no-such/samples' does not exist; point it at"), std::string::npos) << abs;
}

TEST(EvalReport, ReasonsQuotingBytesThatAreNotUtf8StillMakeJson) {
  // A CIF in another encoding: its reason quotes raw bytes; report.json and a sample record still serialise.
  const fs::path dir = fresh_dir("latin1");
  std::ofstream(dir / "caf\xe9.cif") << "data_x\n_cell_length_a \xff\xfe\n";
  const EvalInput in = load_eval_input(dir.string());
  ASSERT_EQ(in.unparsed(), 1);
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  std::string json;
  ASSERT_NO_THROW(json = report_json(r));
  EXPECT_NE(json.find("\xEF\xBF\xBD"), std::string::npos) << json;  // U+FFFD for each bad byte
  SampleRecord rec;
  rec.id = "s0";
  rec.text = "Fe\xe2\x82";  // a sampled byte-fallback token cut mid-character
  EXPECT_NO_THROW(to_json_line(rec));
  fs::remove_all(dir);
}

// Rock-salt NaCl in its conventional cell's half (4 atoms).
Crystal rock_salt() {
  Crystal nacl;
  nacl.lattice = {5.64, 5.64, 5.64, 90, 90, 90};
  nacl.species = {"Na", "Cl", "Na", "Cl"};
  nacl.frac = {{0, 0, 0}, {0.5, 0, 0}, {0, 0.5, 0.5}, {0.5, 0.5, 0.5}};
  return nacl;
}

// An infill answer is the first line of the completion, as the reference's llama_sample.py reads it
// (gen_str.replace(prompt, "").split("\n")[0] of at most 10 new tokens): what follows the line is not the answer.
// cgsample took the whole completion up to EOS, so "Fe\n0.5 ..." was no element.
TEST(EvalReport, InfillAnswerIsTheFirstLine) {
  const auto read = [](const std::string& text, bool trim = false) {
    SampleRecord r;
    r.task = "infill";
    r.text = text;
    parse_record_text(&r, trim);
    return r;
  };
  for (const char* text : {"Fe", " Fe", "Fe\n", "Fe\n0.50 0.50 0.50\nO", " Fe\nFe\nFe"}) {
    const SampleRecord r = read(text);
    EXPECT_TRUE(r.parsed) << text;
    EXPECT_EQ(r.element, "Fe") << text;
  }
  for (const char* text : {"", "\nFe", "Xx\nFe", "Fe 0.5\n", "F e\n"}) {  // the first line is the answer, or none
    const SampleRecord r = read(text);
    EXPECT_FALSE(r.parsed) << text;
    EXPECT_EQ(r.reason, "not an element symbol") << text;
    EXPECT_EQ(r.element, "") << text;
  }
  // Another sampler's text: its first line too, taken before trimming ("\nFe" answers "" in the reference, so here);
  // white space and a Windows line end around the symbol on that line are forgiven.
  EXPECT_EQ(read(" Mg \r\nO", true).element, "Mg");
  EXPECT_EQ(read("\tMg\t", true).element, "Mg");
  for (const char* text : {"\nFe", "\r\n Mg \r\nO", " \n Fe"}) {
    const SampleRecord r = read(text, true);
    EXPECT_FALSE(r.parsed) << text;
    EXPECT_EQ(r.element, "") << text;
  }
  EXPECT_EQ(kInfillMaxNewTokens, 10);  // the reference's max_new_tokens
}

// An infill record without its masked element recorded counts as answered but not towards recovery.
TEST(EvalReport, InfillWithoutTheMaskedElementIsNotScoredForRecovery) {
  EvalInput in;
  const std::vector<std::string> masked = {"Na", "[MASK]"};
  in.infill = {{masked, "Cl", "Cl"}, {masked, "Cl", ""}, {masked, "", ""}};
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  ASSERT_TRUE(r.infill);
  EXPECT_EQ(r.infill->items, 3);
  EXPECT_EQ(r.infill->answered, 2);
  EXPECT_EQ(r.infill->with_truth, 1);
  EXPECT_EQ(r.infill->recovered, 1);
  EXPECT_EQ(r.infill->smact_valid, 2);  // NaCl twice
}

TEST(EvalReport, InfillRecordsAreScoredApart) {
  const Crystal nacl = rock_salt();
  // The prompt's crystal read back: species in order, [MASK] where the element was masked.
  EXPECT_EQ(masked_species_of_prompt(infill_prompt(nacl, "Cl")),
            (std::vector<std::string>{"Na", "[MASK]", "Na", "[MASK]"}));
  EXPECT_TRUE(masked_species_of_prompt(generation_prompt({})).empty());
  const fs::path dir = fresh_dir("infill");
  {
    std::ofstream out(dir / "samples.jsonl");
    auto infill = [&](const std::string& masked, const std::string& answer, bool parsed) {
      SampleRecord r;
      r.id = "i" + answer;
      r.task = "infill";
      r.prompt = infill_prompt(nacl, masked);
      r.truth = masked;
      r.parsed = parsed;
      r.element = parsed ? answer : "";
      r.reason = parsed ? "" : "not an element symbol";
      out << to_json_line(r) << "\n";
    };
    infill("Na", "Na", true);   // recovered; NaCl valid
    infill("Na", "K", true);    // KCl: valid, not the masked element
    infill("Cl", "He", true);   // NaHe: SMACT has no oxidation states for He
    infill("Cl", "Qq", false);  // no element
    SampleRecord gen;           // a generation record: counted in the usual metrics, not here
    gen.id = "g";
    gen.parsed = true;
    gen.crystal = nacl;
    out << to_json_line(gen) << "\n";
  }
  const EvalInput in = load_eval_input(dir.string());
  EXPECT_EQ(in.total, 1);
  ASSERT_EQ(in.infill.size(), 4u);
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  ASSERT_TRUE(r.infill);
  EXPECT_EQ(r.infill->items, 4);
  EXPECT_EQ(r.infill->answered, 3);
  EXPECT_EQ(r.infill->with_truth, 4);  // the unanswered record too: a miss, as in cgsample's infill_accuracy
  EXPECT_EQ(r.infill->recovered, 1);
  EXPECT_EQ(r.infill->smact_valid, 2);
  EXPECT_NE(report_markdown(r).find("25.00% recovered the masked element (of the 4 with it recorded; unanswered ones "
                                    "are misses); 50.00% of the records propose an element that makes a SMACT-valid "
                                    "composition"),
            std::string::npos)
      << report_markdown(r);
  EXPECT_NE(report_markdown(r).find("1 items, 1 parsed; 4 infill records, scored below."), std::string::npos)
      << report_markdown(r);
  // Infill records alone: the report says so instead of reading as empty.
  {
    std::ifstream in_all(dir / "samples.jsonl");
    std::string line, kept;
    for (int k = 0; k < 4 && std::getline(in_all, line); ++k) kept += line + "\n";
    std::ofstream(dir / "infill_only.jsonl") << kept;
  }
  const EvalReport only = evaluate(load_eval_input((dir / "infill_only.jsonl").string()), nullptr, nullptr, {});
  EXPECT_NE(report_markdown(only).find("0 items, 0 parsed; 4 infill records, scored below.\n\nNo generated "
                                       "crystals: only the infill records are scored (below)."),
            std::string::npos) << report_markdown(only);
  // eval.max_rows counts records, infill ones too: the first 2 of the 5.
  const EvalInput first2 = load_eval_input(dir.string(), 2);
  EXPECT_EQ(first2.infill.size(), 2u);
  EXPECT_EQ(first2.total, 0);
  // A blank line put before the instruction (a prompt edited by hand) is no part of the crystal.
  std::string blank = infill_prompt(nacl, "Cl");
  const size_t instruction = blank.rfind('\n', blank.size() - 2);  // the newline before "Generate ..."
  ASSERT_NE(instruction, std::string::npos);
  blank.insert(instruction, "\n");
  EXPECT_EQ(masked_species_of_prompt(blank), masked_species_of_prompt(infill_prompt(nacl, "Cl")));
  // A prompt whose masked crystal does not read (its last coordinate line cut) is said, not scored silently as an
  // invalid composition.
  {
    SampleRecord r;
    r.id = "edited";
    r.task = "infill";
    r.prompt = infill_prompt(nacl, "Cl");
    const size_t last_line = r.prompt.rfind('\n', instruction - 1);
    r.prompt.erase(last_line, instruction - last_line);
    r.truth = "Cl";
    r.parsed = true;
    r.element = "Cl";
    std::ofstream(dir / "edited.jsonl") << to_json_line(r) << "\n";
  }
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  const EvalInput edited = load_eval_input((dir / "edited.jsonl").string());
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_EQ(edited.infill.size(), 1u);
  EXPECT_TRUE(edited.infill[0].masked_species.empty());
  EXPECT_NE(log.str().find("1 of 1 infill records in " + (dir / "edited.jsonl").string() + " hold no masked crystal "
                           "cgeval can read"), std::string::npos) << log.str();
  fs::remove_all(dir);
}

// Lines of another sampler (HF + PEFT, say): {"prompt", "text"} without "parsed". Their text is read as cgsample
// reads its own, white space at the ends forgiven; a cgsample-style record (with "parsed") is taken as it says.
TEST(EvalReport, RecordsOfAnotherSamplerHaveTheirTextRead) {
  const Crystal nacl = rock_salt();
  const fs::path dir = fresh_dir("foreign");
  const fs::path file = dir / "hf_peft.jsonl";
  {
    std::ofstream out(file);
    out << nlohmann::json{{"id", "x1"}, {"prompt", generation_prompt({})},
                          {"text", " " + crystal_to_text(nacl) + "\n"}}.dump() << "\n";
    out << nlohmann::json{{"id", "x2"}, {"text", "4.2 4.2"}}.dump() << "\n";
    out << nlohmann::json{{"id", "x3"}, {"task", "infill"}, {"prompt", infill_prompt(nacl, "Cl")},
                          {"text", " Cl\n"}, {"truth", "Cl"}}.dump() << "\n";
    out << nlohmann::json{{"id", "x4"}, {"text", crystal_to_text(nacl)}, {"parsed", false}}.dump() << "\n";
    std::string crlf;  // the same crystal again, with Windows line ends and no id
    for (char ch : crystal_to_text(nacl)) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
    out << nlohmann::json{{"prompt", generation_prompt({})}, {"text", crlf}}.dump() << "\n";
    out << nlohmann::json{{"id", "x6"}, {"text", ""}}.dump() << "\n";
  }
  const EvalInput in = load_eval_input(file.string());
  EXPECT_EQ(in.total, 5);
  EXPECT_EQ(in.unparsed_reasons.count("no text in the record"), 1u);
  ASSERT_EQ(in.crystals.size(), 2u);
  EXPECT_EQ(in.crystals[1].id, "line5");  // named by its line
  EXPECT_EQ(in.crystals[0].species, nacl.species);
  EXPECT_NEAR(in.crystals[0].lattice.a, 5.64, 0.051);  // the text's precision
  EXPECT_EQ(in.unparsed_reasons.count("expected three lattice lengths 'a b c'"), 1u);
  EXPECT_EQ(in.unparsed_reasons.count("unparsed (no reason in the record)"), 1u);  // x4 says it did not parse
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  ASSERT_TRUE(r.infill);
  EXPECT_EQ(r.infill->answered, 1);
  EXPECT_EQ(r.infill->recovered, 1);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_TRUE(r.items[0].struct_valid && r.items[0].comp_valid);  // rock salt
  EXPECT_TRUE(r.items[0].unique);
  EXPECT_FALSE(r.items[1].unique);  // the first again
  EXPECT_EQ(r.items[1].duplicate_of, "x1");
  fs::remove_all(dir);
}

TEST(EvalReport, SymmetrizedAndP1CifsOfOneStructureAreOneUniqueCrystal) {
  // Rock salt twice: its conventional cell as face-centring operations + 2 sites, and its primitive cell in P1.
  const fs::path dir = fresh_dir("symcifs");
  std::ofstream(dir / "conventional.cif")
      << "data_NaCl\n_cell_length_a 5.64\n_cell_length_b 5.64\n_cell_length_c 5.64\n_cell_angle_alpha 90\n"
         "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'F m -3 m'\nloop_\n"
         "_symmetry_equiv_pos_as_xyz\n'x, y, z'\n'x, y+1/2, z+1/2'\n'x+1/2, y, z+1/2'\n'x+1/2, y+1/2, z'\nloop_\n"
         "_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nNa1 0 0 0\nCl1 0.5 0.5 0.5\n";
  const double a = 5.64 / std::sqrt(2.0);
  std::ofstream(dir / "primitive.cif")
      << fmt::format("data_NaCl\n_cell_length_a {0}\n_cell_length_b {0}\n_cell_length_c {0}\n_cell_angle_alpha 60\n"
                     "_cell_angle_beta 60\n_cell_angle_gamma 60\nloop_\n_atom_site_type_symbol\n"
                     "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nNa 0 0 0\nCl 0.5 0.5 0.5\n", a);
  const EvalInput in = load_eval_input(dir.string());
  ASSERT_EQ(in.crystals.size(), 2u);
  EXPECT_EQ(in.crystals[0].num_sites(), 8u);  // conventional.cif, expanded
  EXPECT_EQ(in.crystals[1].num_sites(), 2u);
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  EXPECT_EQ(r.valid, 2);
  EXPECT_EQ(r.unique, 1);
  fs::remove_all(dir);
}

// One CSV cell as pandas writes it: quoted when it holds a comma, quote or newline, quotes doubled.
std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

TEST(EvalReport, ReferenceSavedSamplesWithOnlyACifColumn) {
  // The reference repo's saved_samples: pandas' unnamed index column and the CIF; no material_id.
  const std::vector<Crystal> real = read_mp20(kTest, 3).crystals;
  const fs::path dir = fresh_dir("refcif");
  {
    std::ofstream out(dir / "saved.csv");
    out << ",cif\n";
    out << "10," << csv_cell(to_cif(real[0])) << "\n";
    out << "11," << csv_cell("data_bad\n_cell_length_a 3\n") << "\n";
    out << "12," << csv_cell(to_cif(real[2])) << "\n";
  }
  const EvalInput in = load_eval_input((dir / "saved.csv").string());
  EXPECT_EQ(in.kind, "cif_csv");
  EXPECT_EQ(in.total, 3);
  ASSERT_EQ(in.crystals.size(), 2u);
  EXPECT_EQ(in.crystals[0].id, "10");  // ids: the index column
  EXPECT_EQ(in.crystals[1].id, "12");
  EXPECT_EQ(in.crystals[1].species, real[2].species);
  EXPECT_EQ(in.unparsed(), 1);
  EXPECT_TRUE(in.conditioned.empty());  // no formula or space group columns: nothing to score conditions against
  EXPECT_EQ(load_eval_input((dir / "saved.csv").string(), 1).total, 1);  // eval.max_rows
  {
    std::ofstream out(dir / "noindex.csv");  // a cif column alone: ids are row numbers
    out << "cif\n" << csv_cell(to_cif(real[1])) << "\n";
  }
  const EvalInput bare = load_eval_input((dir / "noindex.csv").string());
  ASSERT_EQ(bare.crystals.size(), 1u);
  EXPECT_EQ(bare.crystals[0].id, "row0");
  EXPECT_EQ(bare.crystals[0].species, real[1].species);
  fs::remove_all(dir);
}

// Frames concatenated with their indexes (pd.concat without ignore_index): the index repeats, so it would give two
// items one id; said, and the items are named by row number.
TEST(EvalReport, ARepeatedIndexColumnIsNotTakenForIds) {
  const std::vector<Crystal> real = read_mp20(kTest, 3).crystals;
  const fs::path dir = fresh_dir("refcif_concat");
  {
    std::ofstream out(dir / "concat.csv");
    out << ",cif\n";
    out << "0," << csv_cell(to_cif(real[0])) << "\n";
    out << "1," << csv_cell(to_cif(real[1])) << "\n";
    out << "0," << csv_cell(to_cif(real[2])) << "\n";
  }
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  const EvalInput in = load_eval_input((dir / "concat.csv").string());
  const EvalInput first_two = load_eval_input((dir / "concat.csv").string(), 2);  // eval.max_rows: no repeat read
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_EQ(in.crystals.size(), 3u);
  EXPECT_EQ(in.crystals[0].id, "row0");
  EXPECT_EQ(in.crystals[1].id, "row1");
  EXPECT_EQ(in.crystals[2].id, "row2");
  EXPECT_EQ(in.crystals[2].species, real[2].species);
  ASSERT_EQ(first_two.crystals.size(), 2u);
  EXPECT_EQ(first_two.crystals[1].id, "1");
  EXPECT_NE(log.str().find("cgeval: the unnamed index column of " + (dir / "concat.csv").string() + " repeats values "
                           "(1 row(s) repeat an earlier row's; the first: '0' in rows 0 and 2), as concatenated "
                           "frames' indexes do: its items are named by row number instead"), std::string::npos)
      << log.str();
  EXPECT_EQ(log.str().find("repeats values", log.str().find("repeats values") + 1), std::string::npos) << log.str();
  fs::remove_all(dir);
}

// A CIF naming another space group than its listed operations make is read with the operations, as parse_cif reads
// it, and said once per input: for a `cif` CSV and a CIF folder too, which cgeval reads without read_mp20.
TEST(EvalReport, CifsNamingAnotherSpaceGroupThanTheirOperationsAreSaid) {
  const std::vector<Crystal> real = read_mp20(kTest, 2).crystals;
  std::string wrong = to_cif(real[0]);
  const std::string number = "_symmetry_Int_Tables_number   1\n";
  ASSERT_NE(wrong.find(number), std::string::npos) << wrong;
  wrong.replace(wrong.find(number), number.size(), "_symmetry_Int_Tables_number   999\n");
  const fs::path dir = fresh_dir("ops_vs_name");
  fs::create_directories(dir / "cifs");
  {
    std::ofstream out(dir / "saved.csv");
    out << ",cif\n" << "0," << csv_cell(wrong) << "\n" << "1," << csv_cell(to_cif(real[1])) << "\n";
    std::ofstream(dir / "cifs" / "a.cif") << wrong;
    std::ofstream(dir / "cifs" / "b.cif") << to_cif(real[1]);
  }
  for (const fs::path& input : {dir / "saved.csv", dir / "cifs"}) {
    std::ostringstream log;
    spdlog::default_logger()->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    const EvalInput in = load_eval_input(input.string());
    spdlog::default_logger()->sinks().pop_back();
    ASSERT_EQ(in.crystals.size(), 2u) << input;  // both read: the listed operations are used
    EXPECT_EQ(in.crystals[0].species, real[0].species) << input;
    EXPECT_NE(log.str().find(input.string() + ": 1 CIF(s) name their space group in ways that disagree (listed "
                             "symmetry operations and a name, or several space-group tags); each was read as "
                             "pymatgen's CifParser reads it, but for a Hall symbol it reads as another group's "
                             "H-M symbol (the first: "), std::string::npos)
        << log.str();
    EXPECT_NE(log.str().find("_symmetry_int_tables_number '999' is no space group number (1..230)"),
              std::string::npos) << log.str();
  }
  fs::remove_all(dir);
}

TEST(EvalReport, ReferenceSamplerCsvIsReadFromItsGenStr) {
  // llama_sample.py's output: gen_str = decoded prompt + generated text, cif = its parse, model_name.
  const Crystal nacl = rock_salt();
  GenerationConditions cond;
  cond.formula = "NaCl";
  cond.spacegroup = 225;
  const std::string text = crystal_to_text(nacl);
  std::string blank_line = text;  // a blank line after the angles: the reference's parse_fn drops it, cgeval does not
  blank_line.insert(blank_line.find("\nNa") + 1, "\n");
  const fs::path dir = fresh_dir("refgen");
  {
    std::ofstream out(dir / "llm_samples.csv");
    out << "gen_str,cif,model_name\n";
    // The cif cell is not a CIF: were it read, the first row would not parse.
    out << csv_cell(generation_prompt(cond) + text) << ",not a cif,7b\n";
    out << csv_cell(generation_prompt({}) + blank_line) << "," << csv_cell(to_cif(nacl)) << ",7b\n";
    out << csv_cell(generation_prompt({}) + text + "\n") << ",,7b\n";  // a trailing newline is forgiven
  }
  const EvalInput in = load_eval_input((dir / "llm_samples.csv").string());
  EXPECT_EQ(in.kind, "reference_samples");
  EXPECT_EQ(in.total, 3);
  ASSERT_EQ(in.crystals.size(), 2u);
  EXPECT_EQ(in.crystals[0].id, "row0");
  EXPECT_EQ(in.crystals[1].id, "row2");
  EXPECT_EQ(in.crystals[0].species, nacl.species);
  EXPECT_NEAR(in.crystals[0].lattice.a, 5.64, 0.051);
  EXPECT_EQ(in.unparsed(), 1);  // the reference counted it (its CSV holds only what parse_fn read); cgeval does not
  EXPECT_EQ(in.unparsed_reasons.size(), 1u);
  // The conditions the prompt states are scored, as for cgsample's records.
  ASSERT_EQ(in.conditioned.size(), 1u);
  EXPECT_EQ(in.conditioned[0].cond.formula.value_or(""), "NaCl");
  EXPECT_EQ(in.conditioned[0].cond.spacegroup.value_or(0), 225);
  EXPECT_EQ(in.conditioned[0].crystal, 0);
  const EvalReport r = evaluate(in, nullptr, nullptr, {});
  EXPECT_EQ(r.valid, 2);
  fs::remove_all(dir);
}

TEST(EvalReport, CsvOfNoKnownLayoutListsWhatIsRead) {
  const fs::path dir = fresh_dir("badcsv");
  std::ofstream(dir / "x.csv") << "id,structure\n1,foo\n";
  try {
    load_eval_input((dir / "x.csv").string());
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const char* part : {"eval.input", "material_id", "gen_str", "cif", "'id', 'structure'"})
      EXPECT_NE(m.find(part), std::string::npos) << part << " in: " << m;
  }
  fs::remove_all(dir);
}

// COD and ICSD downloads nest their CIFs in subfolders, which are not read: the refusal names the folder that holds
// them, as cgprep's and eval.train_csv's readers do, rather than calling the folder no folder of CIFs.
TEST(EvalReport, AFolderWhoseCifsAreInSubfoldersNamesThem) {
  const fs::path dir = fresh_dir("nested");
  fs::create_directories(dir / "cod" / "1");
  save_cif((dir / "cod" / "1" / "x.cif").string(), read_mp20(kTest, 1).crystals[0]);
  try {
    load_eval_input(dir.string());
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("subfolders are not read, and " + (dir / "cod" / "1").string() + " holds 1 CIF file(s)"),
              std::string::npos) << m;
  }
  fs::remove_all(dir);
}

TEST(EvalReport, UnknownInputNamesTheFix) {
  try {
    load_eval_input("/nonexistent/place");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eval.input"), std::string::npos);
  }
}

// A CIF that cannot be written says what failed with its OS reason and errno, and only a full disk (a small tmpfs,
// filled) says so: it said "(disk full?)" for any failure, before cgsample's own advice.
TEST(EvalReport, CifWriteFailureSaysItsReason) {
  const fs::path dir = fresh_dir("cif_fail");
  fs::create_directories(dir / "x.cif");
  auto io_error = [](const std::function<void()>& f) -> std::pair<int, std::string> {
    try {
      f();
    } catch (const IoError& e) {
      return {e.err, message_of(e)};
    }
    return {0, "<no IoError>"};
  };
  auto [err, msg] = io_error([&] { save_cif((dir / "x.cif").string(), rock_salt()); });
  EXPECT_EQ(err, EISDIR);
  EXPECT_EQ(msg, "cannot create " + (dir / "x.cif").string() + ": Is a directory (errno 21); a folder is where a "
            "file should be, or a file where a folder should be: move it or write elsewhere");
  test::TmpfsMount tmpfs((dir / "tmpfs").string(), 64 * 1024);
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  {
    std::ofstream fill(tmpfs.dir + "/fill", std::ios::binary);
    const std::string block(4096, 'f');
    for (int i = 0; i < 64 && fill; ++i) fill << block << std::flush;
  }
  std::tie(err, msg) = io_error([&] { save_cif(tmpfs.dir + "/nacl.cif", rock_salt()); });
  EXPECT_EQ(err, ENOSPC);
  EXPECT_EQ(msg, "cannot write " + tmpfs.dir + "/nacl.cif: No space left on device (errno 28); the disk is full: "
            "free disk space or write elsewhere");
}

}  // namespace
}  // namespace cg
