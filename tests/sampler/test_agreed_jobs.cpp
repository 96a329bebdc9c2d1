// cgsample's prompts under mpirun (agreed_sample_jobs): rank 0 reads sample.conditions_from and derives what it lacks,
// every rank gets the very same jobs, and no other rank reads the source (each is given a path that does not exist);
// an error on rank 0 (a missing file, no row with the conditions) is thrown on every rank with rank 0's message.
#include <gtest/gtest.h>

#include <fstream>

#include "data/prompt.h"
#include "dist/runtime.h"
#include "sampler/agreed_jobs.h"
#include "sampler/cif_writer.h"
#include "tests/sampler/crystals.h"
#include "tests/test_util.h"

namespace cg {
namespace {

// Every rank's `text` is rank 0's (dist::check_same_as_rank0 throws on every rank otherwise).
void expect_same_on_every_rank(const std::string& text, const std::string& what) {
  EXPECT_NO_THROW(dist::check_same_as_rank0(text, what, [](const std::string& first, const std::string& mine) {
    return "rank 0's '" + first.substr(0, 200) + "', this rank's '" + mine.substr(0, 200) + "'";
  }));
}

TEST(AgreedJobs, TextRoundTripsAnyBytes) {
  const std::vector<SampleJob> jobs = {{"12:ab:", ""}, {"", "Fe"}, {std::string("a\0b\n", 4), "3:"}};
  const std::vector<SampleJob> back = jobs_from_text(jobs_text(jobs));
  ASSERT_EQ(back.size(), jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(back[i].prompt, jobs[i].prompt);
    EXPECT_EQ(back[i].truth, jobs[i].truth);
  }
  EXPECT_TRUE(jobs_from_text("").empty());
  EXPECT_TRUE(test::contains(test::error_of([] { jobs_from_text("5:ab"); }), "runs past its end"));
  EXPECT_TRUE(test::contains(test::error_of([] { jobs_from_text("2:ab"); }), "without its truth field"));
  EXPECT_TRUE(test::contains(test::error_of([] { jobs_from_text("x:ab"); }), "no length at byte 0"));
}

// A CIF folder (formula and space group derived, on rank 0 alone): the same jobs on every rank, although the other
// ranks' configs name a folder that is not there.
TEST(AgreedJobs, RankZerosJobsOnEveryRankReadByItAlone) {
  const int rank = dist::runtime().rank;
  const test::TempDir dir("cg_test_agreed_jobs");
  Config c;
  c.sample.condition_on = {"formula", "spacegroup"};
  c.sample.num_samples = 5;
  c.sample.conditions_from = dir / "not_there";
  if (rank == 0) {
    save_cif(dir / "nacl.cif", test::cubic(5.64, {"Na", "Na", "Na", "Na", "Cl", "Cl", "Cl", "Cl"},
                                           {{0, 0, 0}, {0, .5, .5}, {.5, 0, .5}, {.5, .5, 0}, {.5, 0, 0}, {0, .5, 0},
                                            {0, 0, .5}, {.5, .5, .5}}));
    save_cif(dir / "cscl.cif", test::cubic(4.12, {"Cs", "Cl"}, {{0, 0, 0}, {0.5, 0.5, 0.5}}));
    c.sample.conditions_from = dir.path.string();
  }
  std::vector<SampleJob> jobs;
  std::string error;
  try {
    jobs = agreed_sample_jobs(c);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_EQ(error, "") << "rank " << rank;
  ASSERT_EQ(jobs.size(), 5u) << "rank " << rank;
  for (const auto& j : jobs) EXPECT_TRUE(conditions_of_prompt(j.prompt).formula) << j.prompt;
  expect_same_on_every_rank(jobs_text(jobs), "sample jobs");
}

// Rank 0 fails (its file is missing; its CSV has no row with the conditions) while the others were given a source
// that reads: every rank throws rank 0's error, word for word, and none waits.
TEST(AgreedJobs, RankZerosErrorIsThrownOnEveryRank) {
  const int rank = dist::runtime().rank;
  const test::TempDir dir("cg_test_agreed_jobs_err");
  const std::string good = std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz";
  const std::string header_only = dir / "header_only.csv";
  std::ofstream(header_only) << "material_id,cif,pretty_formula,spacegroup.number\n";
  for (const auto& [mine, want] : {std::pair{dir / "missing.csv", std::string("missing.csv")},
                                   {header_only, std::string("header_only.csv (0 data rows) has all of "
                                                             "sample.condition_on [formula, spacegroup]")}}) {
    Config c;
    c.sample.num_samples = 2;
    c.sample.conditions_from = rank == 0 ? mine : good;
    const std::string error = test::error_of([&] { agreed_sample_jobs(c); });
    EXPECT_TRUE(test::contains(error, want)) << "rank " << rank << ": " << error;
    expect_same_on_every_rank(error, "error");
  }
}

}  // namespace
}  // namespace cg
