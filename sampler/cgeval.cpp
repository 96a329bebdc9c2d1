// cgeval: validity, uniqueness, novelty and distribution metrics of generated (or real) crystals.
//   cgeval CONFIG.yaml eval.input=runs/tiny/samples       (a cgsample folder, a CDVAE-layout CSV, or CIFs)
// Writes <eval.out>/report.json and report.md (eval.out empty: <eval.input>/eval, or <csv name>.eval/ for a CSV).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/log.h"
#include "data/mp20.h"
#include "sampler/eval_report.h"
#include "trainer/config.h"

namespace {

namespace fs = std::filesystem;

std::string resolve_csv(const std::string& value, const cg::Config& cfg) {
  if (value == "data.train_csv") return cfg.data.train_csv;
  if (value == "data.test_csv") return cfg.data.test_csv;
  if (value == "data.val_csv") return cfg.data.val_csv;
  return value;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  CG_CHECK(out.good(), "cannot write '{}': check eval.out", path.string());
  out << text;
}

int run(int argc, char** argv) {
  auto cfg = cg::parse_cli(argc, argv, "cgeval",
                           "Evaluate crystals: structural/compositional validity, uniqueness, novelty, distributions.");
  if (!cfg) return 0;
  cg::init_logging(0, 1, cfg->log.level);
  const cg::EvalConfig& e = cfg->eval;

  const cg::EvalInput input = cg::load_eval_input(e.input, e.max_rows);
  std::vector<cg::Crystal> train, ref;
  const std::string train_csv = resolve_csv(e.train_csv, *cfg), ref_csv = resolve_csv(e.ref_csv, *cfg);
  if (!train_csv.empty()) {
    train = cg::read_mp20(train_csv).crystals;
    spdlog::info("cgeval: novelty reference {}: {} crystals", train_csv, train.size());
  }
  if (!ref_csv.empty()) {
    ref = cg::read_mp20(ref_csv).crystals;
    spdlog::info("cgeval: distribution reference {}: {} crystals", ref_csv, ref.size());
  }
  cg::EvalOptions opts;
  opts.min_distance = e.min_distance;
  opts.min_volume = e.min_volume;
  opts.match.ltol = e.match_ltol;
  opts.match.stol = e.match_stol;
  const cg::EvalReport r =
      cg::evaluate(input, train_csv.empty() ? nullptr : &train, ref_csv.empty() ? nullptr : &ref, opts);

  fs::path out = e.out;
  if (out.empty()) out = fs::is_directory(e.input) ? fs::path(e.input) / "eval" : fs::path(e.input + ".eval");
  fs::create_directories(out);
  write_text(out / "report.json", cg::report_json(r));
  const std::string md = cg::report_markdown(r);
  write_text(out / "report.md", md);
  spdlog::info("cgeval: wrote {}", (out / "report.json").string());
  std::fputs(md.c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& ex) {
    spdlog::error("cgeval: {}", ex.what());
    return 1;
  }
}
