// cgeval: validity, uniqueness, novelty and distribution metrics of generated (or real) crystals, and with
// eval.invariance=true the log-likelihood invariance check (sampler/invariance.h) of the model cgsample would load.
//   cgeval CONFIG.yaml eval.input=PATH  (a cgsample folder, a CDVAE-layout CSV, or CIFs)
//   cgeval CONFIG.yaml                  (eval.input empty: the folder cgsample writes with the same config)
//   mpirun -np 2 cgeval CONFIG.yaml eval.invariance=true parallel.tp=2
// Writes <eval.out>/report.json, report.md and items.jsonl (eval.out empty: <eval.input>/eval, or <csv name>.eval/
// for a CSV).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/file_set.h"
#include "common/input_error.h"
#include "common/log.h"
#include "common/path_note.h"
#include "data/mp20.h"
#include "sampler/eval_report.h"
#include "trainer/config.h"

#ifdef CG_EVAL_WITH_MODEL
#include <torch/torch.h>

#include "data/crystal_text.h"
#include "data/tokenizer.h"
#include "dist/parallel_dims.h"
#include "dist/cpu_threads.h"
#include "dist/runtime.h"
#include "sampler/invariance.h"
#include "sampler/sampling_model.h"
#include "sampler/trained_text.h"
#include "trainer/train_model.h"
#endif

namespace {

namespace fs = std::filesystem;

// report.json, report.md and items.jsonl describe one evaluation: replaced together, so a full disk leaves the
// earlier three as they were (not a new report.json beside the items of another input).
void write_report(const fs::path& out, const std::vector<std::pair<std::string, std::string>>& files) {
  try {
    cg::write_file_set(out.string(), files);
  } catch (const cg::IoError& e) {  // what failed and the advice its errno calls for, with the setting to change
    CG_FAIL("{}; {} (an earlier report in {} is kept as it was)", e.failure,
            cg::io_advice(e.err, "set eval.out to another folder"), out.string());
  } catch (const std::exception& e) {
    CG_FAIL("{}; check eval.out (an earlier report in {} is kept as it was)", e.what(), out.string());
  }
}

// eval.input, or where it is empty the folder cgsample writes with the same config and overrides (sample.out_dir, by
// default <train.run_dir>/samples). That folder missing is said as such: cgsample not run yet, or run with other
// overrides, rather than a path the user gave.
std::string input_of(const cg::Config& c) {
  const std::string in = cg::eval_input(c);
  CG_CHECK(!c.eval.input.empty() || fs::exists(in), "eval.input is empty, so cgeval reads the samples cgsample writes "
           "with this config, in {} ({}), which does not exist{}; run cgsample with the same config and overrides "
           "first, or set eval.input to the samples to evaluate", in,
           c.sample.out_dir.empty() ? "<train.run_dir>/samples" : "sample.out_dir",
           cg::relative_path_note(in, "cgeval"));
  return in;
}

#ifdef CG_EVAL_WITH_MODEL
// The invariance check over the first eval.invariance_crystals crystals of data.test_csv. Collective over the world
// (tp groups; dp > 1 is refused: the check is small). Returns the result on every rank.
cg::InvarianceResult invariance(const cg::Config& c) {
  const auto& rt = cg::dist::runtime();
  const at::Device device = cg::resolve_device(c.model.device, rt);
  cg::dist::set_cpu_threads(cg::dist::cpu_threads(c.train.threads, rt.local_size));  // before the groups (MpiComm)
  const auto dims = cg::sampling_dims(c, device, rt.world);
  CG_CHECK(dims.dp == 1, "the invariance check runs in one tp group: launch world = parallel.tp ranks (got {})",
           dims.describe());
  // The crystals before the model: a missing or empty test split must not cost a 70B load.
  CG_CHECK(!c.data.test_csv.empty(), "eval.invariance=true scores crystals of data.test_csv, which is empty: set "
           "data.test_csv to a CSV or CIF folder");
  // Its texts are written with data.site_order and data.angle_mode: in other settings than the model's training
  // text they are text it never saw, and their likelihoods say nothing of it. Refused as cgsample's infill is.
  cg::dist::rank0_text([&] {  // rank 0 reads the record; its error reaches every rank
    cg::check_text_settings_trained(c, cg::kInvarianceText);
    return std::string();
  });
  const auto crystals =
      cg::read_mp20(c.data.test_csv, c.eval.invariance_crystals, false, cg::data_csv_columns(c.data.test_csv, c.data),
                    cg::parse_site_order(c.data.site_order))
          .crystals;
  CG_CHECK(!crystals.empty(), "eval.invariance=true: data.test_csv {} holds no crystal that reads: give a test split "
           "with crystals", c.data.test_csv);
  const cg::Tokenizer tok = cg::load_sampling_tokenizer(c).tokenizer;
  std::string what;
  auto model = cg::load_sampling_model(c, dims, tok.vocab_size(), device, &what);
  spdlog::info("cgeval: invariance check of {} over {} crystals of {} ({})", what, crystals.size(), c.data.test_csv,
               dims.describe());
  cg::InvarianceOptions opt;
  opt.batch_size = c.sample.batch_size;
  opt.seed = c.sample.seed;
  opt.translations = c.eval.invariance_translations;
  opt.text.angles = cg::parse_angle_mode(c.data.angle_mode);  // as cgprep wrote the training text
  return cg::invariance_check(
      *model, crystals, [&](const std::string& s) { return tok.encode(s, /*add_bos=*/true); }, tok.eos_id(), dims,
      opt);
}
#endif

// Before MPI_Init (run_main): a wrong command line or config costs no MPI start. nullopt: it printed --help.
std::optional<cg::Config> parse(int argc, char** argv) {
  return cg::parse_cli(argc, argv, "cgeval",
                       "Evaluate crystals: structural/compositional validity, uniqueness, novelty, distributions; "
                       "eval.invariance=true: the model's log-likelihood invariance check.");
}

int run(cg::Config& cfg) {
#ifdef CG_EVAL_WITH_MODEL
  const auto& rt = cg::dist::runtime();
  const int rank = rt.rank, world = rt.world;
#else
  const int rank = 0, world = 1;
#endif
  cg::init_logging(rank, world, cfg.log.level);
#ifdef CG_EVAL_WITH_MODEL
  // Before eval.invariance decides which ranks take part in the model's collectives.
  cg::check_ranks_agree(cfg, "cgeval");
#endif
  const cg::EvalConfig& e = cfg.eval;

  std::string inv_json, inv_md;
  if (e.invariance) {
#ifdef CG_EVAL_WITH_MODEL
    const cg::InvarianceResult r = invariance(cfg);
    inv_json = cg::invariance_json(r);
    inv_md = cg::invariance_markdown(r);
    spdlog::info("cgeval: invariance: mean |dLL| {:.3f} nats when atoms are permuted ({} crystals), {} when two "
                 "elements are swapped", r.mean_abs_delta_permute, r.crystals,
                 r.swapped > 0 ? fmt::format("{:.3f} ({} crystals with two elements or more)", r.mean_abs_delta_swap, r.swapped)
                               : std::string("n/a (no crystal with two elements or more)"));
#else
    CG_FAIL("eval.invariance=true needs the model libraries, which this build of cgeval lacks; set "
            "eval.invariance=false");
#endif
  }
  if (rank != 0) return 0;
  cfg.eval.input = input_of(cfg);  // the folder read, named by the messages below (e is cfg.eval)
  // A cgsample folder: its lock, so a cgsample writing into it now is not read half-way, and one started while this
  // evaluates is refused (it would delete the report this writes). A folder cgeval cannot lock (read-only, or a
  // filesystem without flock) is read as it is.
  std::optional<cg::FileLock> samples_lock;
  if (const fs::path lock = fs::path(e.input) / ".cgsample.lock"; fs::is_regular_file(lock)) {
    try {
      samples_lock.emplace(lock.string());
    } catch (const cg::Error&) {
    }
    CG_CHECK(!samples_lock || !samples_lock->held_elsewhere(), "eval.input {} is being written by a cgsample right "
             "now ({} holds {}): evaluate it once that cgsample has finished", e.input, samples_lock->who_holds(),
             lock.string());
  }
  const cg::EvalInput input = cg::load_eval_input(e.input, e.max_rows);  // first: a bad input leaves no folder
  CG_CHECK(input.total > 0 || !input.infill.empty(), "eval.input {} holds nothing to evaluate (no sample records, "
           "CSV rows or CIFs); point eval.input at a cgsample output folder, a CSV in CDVAE layout or a folder of "
           "CIFs", e.input);
  // A cgsample run's cifs/ holds its parsed samples only: rates over it leave the unparsed ones out.
  if (const fs::path in = fs::path(e.input).lexically_normal(); fs::is_directory(in) &&
      (in.filename() == "cifs" || (in.filename().empty() && in.parent_path().filename() == "cifs"))) {
    const fs::path run = (in.filename().empty() ? in.parent_path() : in).parent_path() / "samples.jsonl";
    if (fs::exists(run))
      spdlog::warn("cgeval: {} is the cifs/ folder of a cgsample run, which holds its parsed samples only: the rates "
                   "leave out the samples that did not parse; give eval.input={} to count every sample ({}the next "
                   "cgsample into that folder replaces cifs/, this report with it)", e.input,
                   run.parent_path().string(), e.out.empty() ? "the report goes inside cifs/, and " : "");
  }
  fs::path out = e.out;
  if (out.empty()) out = fs::is_directory(e.input) ? fs::path(e.input) / "eval" : fs::path(e.input + ".eval");
  cg::make_output_dir(out.string(), !e.out.empty()                ? "eval.out"
                                    : fs::is_directory(e.input) ? "eval.out (default: <eval.input>/eval)"
                                                                : "eval.out (default: <eval.input>.eval)");

  if (input.total == 0)
    spdlog::info("cgeval: {} holds infill records only: the generation rates read n/a, and the references "
                 "(eval.train_csv, eval.ref_csv) are not read", e.input);
  std::vector<cg::Crystal> train, ref;
  const std::string train_csv = cg::resolve_csv(e.train_csv, cfg), ref_csv = cg::resolve_csv(e.ref_csv, cfg);
  // A reference that reads as nothing would make every crystal novel and every distance n/a: refused. Rows that do
  // not read are said (the reference is smaller than the file).
  const cg::SiteOrder order = cg::parse_site_order(cfg.data.site_order);
  const auto read_reference = [&](const std::string& path, const char* key, const char* what) {
    CG_CHECK(fs::exists(path), "{}: {} does not exist from {} (relative paths are read from the folder cgeval runs "
             "in); give the path of a CSV or CIF folder, or set {}= to skip the {}", key, path,
             fs::current_path().string(), key, what);
    cg::Mp20Split split = cg::read_mp20(path, 0, false, cg::data_csv_columns(path, cfg.data), order);
    CG_CHECK(!split.crystals.empty(), "{} {} holds no crystal that reads ({} rows skipped{}{}): give a CSV in CDVAE "
             "layout or a folder of CIFs, or set {}= to skip the {}", key, path, split.skipped.size(),
             split.skipped.empty() ? "" : "; the first: ",
             split.skipped.empty() ? "" : fmt::format("row {}: {}", split.skipped[0].row, split.skipped[0].reason),
             key, what);
    spdlog::info("cgeval: {} reference {}: {} crystals", what, path, split.crystals.size());
    if (!split.skipped.empty())
      spdlog::warn("cgeval: {} of {} rows of {} ({}) do not read and are left out (the first: row {}: {})",
                   split.skipped.size(), split.skipped.size() + split.crystals.size(), path, key,
                   split.skipped[0].row, split.skipped[0].reason);
    return std::move(split.crystals);
  };
  if (input.total > 0) {  // with infill records only there is nothing to compare with them
    if (!train_csv.empty()) train = read_reference(train_csv, "eval.train_csv", "novelty");
    if (!ref_csv.empty()) ref = read_reference(ref_csv, "eval.ref_csv", "distribution");
  }
  cg::EvalOptions opts;
  opts.min_distance = e.min_distance;
  opts.min_volume = e.min_volume;
  opts.match.ltol = e.match_ltol;
  opts.match.stol = e.match_stol;
  opts.match.angle_tol = e.match_angle_tol;
  opts.symprec = e.symprec;
  opts.spacegroups = e.spacegroups;
  const cg::EvalReport r =
      cg::evaluate(input, train_csv.empty() ? nullptr : &train, ref_csv.empty() ? nullptr : &ref, opts);

  nlohmann::json report = nlohmann::json::parse(cg::report_json(r));
  if (!inv_json.empty()) report["invariance"] = nlohmann::json::parse(inv_json);
  const std::string md = cg::report_markdown(r) + inv_md;
  write_report(out, {{"report.json", report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"},
                     {"report.md", md},
                     {"items.jsonl", cg::items_jsonl(r)}});  // items: per crystal, which to take further
  spdlog::info("cgeval: wrote {}", (out / "report.json").string());
  std::fputs(md.c_str(), stdout);
  return 0;
}

}  // namespace

#ifdef CG_EVAL_WITH_MODEL
int main(int argc, char** argv) { return cg::dist::run_main(argc, argv, parse, run); }
#else
int main(int argc, char** argv) {
  try {
    std::optional<cg::Config> cfg = parse(argc, argv);
    return cfg ? run(*cfg) : 0;
  } catch (const std::exception& ex) {
    spdlog::error("cgeval: {}", ex.what());
    return 1;
  }
}
#endif
