// cgsample: generate crystals (or infill elements) from a LLaMA checkpoint (+ PEFT adapter or cgtrain run checkpoint)
// with a KV cache and grammar-constrained decoding; writes <sample.out_dir>/samples.jsonl, cifs/*.cif, summary.json
// (sample.out_dir empty: <train.run_dir>/samples).
//   cgsample CONFIG.yaml [sample.num_samples=64] [sample.task=generate|infill] [sample.formula=NaCl] ...
//   mpirun -np 2 cgsample CONFIG.yaml parallel.tp=2          (all tp ranks draw the same tokens)
//   mpirun -np 4 cgsample CONFIG.yaml parallel.tp=2          (dp 2: samples split over 2 tp groups, same output)
#include <signal.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/file_set.h"
#include "common/folder_kind.h"
#include "common/hold_stop_signals.h"
#include "common/input_error.h"
#include "common/kernel_profile.h"
#include "common/log.h"
#include "common/sha256.h"
#include "data/crystal_text.h"
#include "data/elements.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/pymatgen_order.h"
#include "data/shard.h"
#include "data/rng.h"
#include "data/tokenizer.h"
#include "dist/parallel_dims.h"
#include "dist/cpu_threads.h"
#include "dist/runtime.h"
#include "sampler/agreed_jobs.h"
#include "sampler/cif_writer.h"
#include "sampler/conditions.h"
#include "sampler/eval_input.h"
#include "sampler/generator.h"
#include "sampler/sample_journal.h"
#include "sampler/sample_jobs.h"
#include "sampler/sample_record.h"
#include "sampler/sampling_model.h"
#include "sampler/trained_text.h"
#include "sampler/untrained_conditions.h"
#include "trainer/config.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/train_export.h"
#include "trainer/train_model.h"

namespace {

// Inside a cgtrain run's checkpoints/ folder, checkpoint rotation deletes the samples with their step folder.
void check_out_dir_not_in_checkpoints(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(out), ec);
  const auto is_run = [&](const fs::path& dir) {  // what cgtrain writes beside its checkpoints/
    return fs::exists(dir / "config.yaml", ec) && (fs::exists(dir / "model_config.json", ec) ||
                                                   fs::exists(dir / ".cgtrain.lock", ec));
  };
  for (fs::path a = p; !ec && a.has_relative_path(); a = a.parent_path())
    CG_CHECK(a.filename() != "checkpoints" || !is_run(a.parent_path()), "sample.out_dir {} is "
             "inside {}, a cgtrain run's checkpoints folder, where checkpoint rotation deletes step folders with all "
             "they hold; choose another folder (e.g. {}/samples)", out, a.string(), a.parent_path().string());
}

// Conditions the model's training prompts never stated (its training data carried no such property) ask for
// something it never learned: said, from the training_data record of its checkpoint. Checkpoints of older builds have
// none: there a model trained on CIF files (data.train_csv a folder) is assumed to know formula and space group only.
void warn_conditions_never_trained(const cg::Config& c, const std::vector<cg::SampleJob>& jobs) {
  const std::set<std::string> asked = cg::conditions_stated(jobs);  // as sample.condition_on names them
  if (asked.empty()) return;
  const std::string what = !c.sample.adapter.empty() ? "sample.adapter " + c.sample.adapter
                                                      : "model.hf_dir " + c.model.hf_dir;
  const auto record = nlohmann::json::parse(cg::model_training_data(c), nullptr, false);
  const std::string source = record.is_object() && record.contains("source_path") && record["source_path"].is_string()
                                 ? record["source_path"].get<std::string>()
                                 : "";
  const std::string counts = record.is_object() && record.contains("property_counts")
                                 ? record["property_counts"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                 : "";
  if (const auto u = cg::untrained_conditions(asked, counts, source)) {
    const char* them = u->never.size() > 1 ? "them" : "it";
    if (!u->never.empty())
      spdlog::warn("cgsample: the prompts state {}, but the training prompts of {} never stated {} {}: the model never "
                   "learned to follow {}; condition on what its data carried, or train on data with those properties "
                   "(docs/formats.md)", fmt::join(u->never, ", "), what, them, u->counts, them);
    return;
  }
  // No counts (a checkpoint of an older build, or shards of an older cgprep): the source the record names, else the
  // run's data.train_csv where its config can be found; a CIF folder carries no energy or band gap.
  if (!asked.count("formation_energy") && !asked.count("band_gap") && !asked.count("e_above_hull")) return;
  std::string src = source, whose = "the source its record names";
  if (src.empty()) {
    const std::optional<cg::Config> trained = cg::adapter_training_config(
        !c.sample.adapter.empty() ? c.sample.adapter : (std::filesystem::path(c.model.hf_dir) / "adapter").string());
    if (!trained || trained->data.train_csv.empty()) return;
    src = trained->data.train_csv;
    whose = "data.train_csv of its run";
  }
  std::error_code ec;
  if (std::filesystem::is_directory(src, ec) || cg::is_cif_file(src))
    spdlog::warn("cgsample: the prompts state an energy or a band gap, but {} was trained on CIF files ({}: {}), "
                 "which carry no such property (cgprep derives only their formula and space group), so its training "
                 "prompts never stated one: the model never learned to follow them; condition on formula and space "
                 "group alone, or train on a CSV with the property columns (docs/formats.md)", what, src, whose);
}

// cgsample replaces <out>/cifs and <out>/eval with this run's: only where an earlier cgsample wrote them (its
// samples.jsonl beside them). A cifs/ folder of the user's own (a CIF folder's usual layout) is refused, not emptied.
// cgprep's shards folder and a cgtrain run's folder are refused as well: samples.jsonl, cifs/ and summary.json would
// sit among the files those tools own (a run's samples go to <run_dir>/samples, tiny.yaml's default).
void check_out_dir_owned(const std::string& out) {
  namespace fs = std::filesystem;
  std::string mark;
  const cg::OwnedBy owner = cg::owned_by_tool(out, &mark);
  CG_CHECK(owner == cg::OwnedBy::kNone, "sample.out_dir {} holds {}, so it is {}: give a folder of its own (e.g. "
           "{}/samples)", out, mark,
           owner == cg::OwnedBy::kCgtrain ? "a cgtrain run's folder" : "cgprep's shards folder", out);
  if (fs::exists(fs::path(out) / "samples.jsonl")) return;
  for (const char* sub : {"cifs", "eval"}) {
    std::error_code ec;
    const fs::path p = fs::path(out) / sub;
    CG_CHECK(!fs::exists(p, ec) || (fs::is_directory(p, ec) && fs::is_empty(p, ec)), "sample.out_dir {} holds {}/ "
             "but no samples.jsonl, so no earlier cgsample wrote it, and this run would replace it: give another "
             "sample.out_dir, or move {} away", out, sub, p.string());
  }
  // Loose CIFs (a folder of structures to evaluate): cgeval reads a folder with samples.jsonl as samples, so after
  // this run they would be ignored by every later cgeval of it.
  std::error_code ec;
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    std::string ext = it->path().extension().string();
    for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    CG_CHECK(ext != ".cif", "sample.out_dir {} holds CIF files ({} ...) but no samples.jsonl: a folder of structures, "
             "which cgeval would read as this run's samples from then on; give another sample.out_dir", out,
             it->path().filename().string());
  }
}

namespace fs = std::filesystem;
using cg::Config;

// A stop signal (SIGTERM, SIGINT, Slurm's SIGUSR1) while cgsample works: every sequence finished so far is in the
// journals (sampler/sample_journal.h), the ones in progress are lost. Rank 0 says so (async-signal-safe: write(2) of a
// message built in place), then the process dies of the signal as before, its exit status naming it.
std::atomic<int64_t> g_sequences_total{0}, g_sequences_kept{0};
int g_rank = 0, g_dp = 1;

void say_what_is_kept(int sig) {
  if (g_rank == 0) {
    char buf[700];
    size_t n = 0;
    const auto put = [&](const char* text) {
      while (*text && n < sizeof buf) buf[n++] = *text++;
    };
    const auto put_int = [&](int64_t v) {
      char digits[24];
      int k = 0;
      do digits[k++] = char('0' + v % 10), v /= 10;
      while (v > 0 && k < 24);
      while (k > 0 && n < sizeof buf) buf[n++] = digits[--k];
    };
    put("cgsample: stopped by signal ");
    put_int(sig);
    put("; ");
    put_int(g_sequences_kept.load(std::memory_order_relaxed));
    put(" of ");
    put_int(g_sequences_total.load(std::memory_order_relaxed));
    if (g_dp == 1)
      put(" sequences are kept in sample.out_dir's .cgsample.journal.jsonl");
    else
      put(" sequences (the resumed ones and dp group 0's) are kept in sample.out_dir's .cgsample.journal.jsonl, the "
          "other groups' finished ones in .cgsample.journal.dp<G>.jsonl");
    put(": run the same command again (at any dp; at the same tp for the very same samples) to go on from there "
        "(samples.jsonl, cifs/ and summary.json come when all are done; an earlier run's are as they were)\n");
    (void)!::write(STDERR_FILENO, buf, n);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void say_what_is_kept_on_stop(int rank, int dp, int64_t total) {
  g_rank = rank;
  g_dp = dp;
  g_sequences_total = total;
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) ::signal(sig, say_what_is_kept);
}

std::string journal_key(const std::string& tokenizer_sha, const std::string& model, const Config& c,
                        const std::string& device_type, const cg::GenerationParams& gp,
                        const std::vector<std::vector<int32_t>>& prompts) {
  std::string ids;
  for (const auto& p : prompts) {
    for (int32_t t : p) ids += std::to_string(t) + ",";
    ids += ";";
  }
  const nlohmann::json k = {{"tokenizer", tokenizer_sha}, {"model", model}, {"dtype", c.model.dtype},
                            {"device", device_type}, {"decode_kernels", c.sample.decode_kernels},
                            {"max_new", gp.max_new_tokens}, {"min_new", gp.min_new_tokens},
                            {"temperature", gp.sampling.temperature}, {"top_p", gp.sampling.top_p},
                            {"top_k", gp.sampling.top_k}, {"seed", gp.seed}, {"constrained", gp.constrained},
                            {"task", c.sample.task}, {"prompts", cg::sha256_hex(ids.data(), ids.size())}};
  const std::string text = k.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // paths need not be UTF-8
  return cg::sha256_hex(text.data(), text.size());
}

using cg::number_or_none;
using cg::SampleJob;

cg::SampleRecord to_record(const Config& c, size_t i, const SampleJob& job, const cg::Generation& g,
                           const cg::Tokenizer& tok) {
  cg::SampleRecord r;
  r.id = fmt::format("s{:06d}", i);
  r.task = c.sample.task;
  r.prompt = job.prompt;
  r.truth = job.truth;
  r.text = tok.decode(g.tokens);
  r.num_tokens = static_cast<int64_t>(g.tokens.size());
  r.constrained = c.sample.constrained;
  // A text cut off at max_new_tokens is unfinished (atoms or digits missing), even where its prefix would parse. An
  // infill answer is the first line, EOS or not, as the reference reads it (parse_record_text).
  if (!g.hit_eos && c.sample.task != "infill") {
    r.reason = "no EOS within sample.max_new_tokens";
    return r;
  }
  cg::parse_record_text(&r);
  return r;
}

// Before MPI_Init (run_main): a wrong command line or config costs no MPI start. nullopt: it printed --help.
std::optional<Config> parse(int argc, char** argv) {
  return cg::parse_cli(argc, argv, "cgsample", "Generate crystals (or infill elements) with a KV cache and grammar.");
}

int run(Config& c) {
  const auto& rt = cg::dist::runtime();
  cg::init_logging(rt.rank, rt.world, c.log.level, c.log.all_ranks);
  cg::check_ranks_agree(c, "cgsample");
  cg::check_sample_settings(c);  // a bad sample.formula costs no file read, no device, no model
  c.sample.out_dir = cg::sample_out_dir(c);  // empty: <train.run_dir>/samples; messages name the folder written
  const at::Device device = cg::resolve_device(c.model.device, rt);
  // Threads before the groups: MpiComm's wait follows the node's threads.
  cg::dist::set_cpu_threads(cg::dist::cpu_threads(c.train.threads, rt.local_size));
  const auto dims = cg::sampling_dims(c, device, rt.world);

  const cg::SamplingTokenizer loaded = cg::load_sampling_tokenizer(c);
  const std::string& tok_path = loaded.path;
  const cg::Tokenizer& tok = loaded.tokenizer;
  // Before the model: a bad CSV must not cost a 70B load. Made on rank 0 alone (a CIF folder's space groups take
  // spglib over every crystal), its error reported on every rank.
  // Infill prompts write the test crystals with data.site_order and data.angle_mode: refused where the model's training
  // text was written otherwise (text it never saw), as another tokenizer is, rather than sampled and scored.
  cg::dist::rank0_text([&] {  // rank 0 reads the record; its error reaches every rank
    if (c.sample.task == "infill") cg::check_text_settings_trained(c, cg::kInfillPrompts);
    return std::string();
  });
  const std::vector<SampleJob> jobs = cg::agreed_sample_jobs(c);
  say_what_is_kept_on_stop(rt.rank, int(dims.dp), int64_t(jobs.size()));
  if (rt.rank == 0) warn_conditions_never_trained(c, jobs);
  // Nor an unwritable folder, one of somebody else's files that the run would replace, or one another cgsample is
  // writing into (the last to finish would silently win).
  // A run that fails before it writes anything (a bad model.hf_dir) leaves no folder where there was none.
  std::optional<cg::MadeFolders> made_out;
  std::optional<cg::FileLock> out_lock;  // released before made_out looks (declared after it)
  if (rt.rank == 0) {
    check_out_dir_not_in_checkpoints(c.sample.out_dir);
    made_out.emplace(c.sample.out_dir, std::vector<std::string>{".cgsample.lock"});
    cg::make_output_dir(c.sample.out_dir, "sample.out_dir");
    check_out_dir_owned(c.sample.out_dir);
    out_lock.emplace(c.sample.out_dir + "/.cgsample.lock");
    // Where one that had made the folder gave up and removed it as this one opened the lock, the lock made it again.
    made_out->note_made(out_lock->made_folders());
    if (out_lock->held_elsewhere()) made_out->keep();  // that run's, even where this one made it a moment before
    CG_CHECK(!out_lock->held_elsewhere(), "sample.out_dir {} is being written by another cgsample, or evaluated by a "
             "cgeval ({} holds {}/.cgsample.lock): wait for it, or give another sample.out_dir", c.sample.out_dir,
             out_lock->who_holds(), c.sample.out_dir);
  }
  std::string what;
  std::string weights;  // what identifies the model's weights, whatever their paths (the journal's key)
  auto model = cg::load_sampling_model(c, dims, tok.vocab_size(), device, &what, &weights);
  spdlog::info("cgsample: model: {}; tokenizer {} ({} pieces)", what, tok_path, tok.vocab_size());
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& j : jobs) prompts.push_back(tok.encode(j.prompt, /*add_bos=*/true));

  cg::GenerationParams gp;
  // An infill answer is one line: the reference generates 10 new tokens for it.
  gp.max_new_tokens = c.sample.task == "infill" ? std::min(c.sample.max_new_tokens, cg::kInfillMaxNewTokens)
                                                : c.sample.max_new_tokens;
  gp.min_new_tokens = c.sample.min_new_tokens;
  gp.batch_size = c.sample.batch_size;
  gp.sampling = {c.sample.temperature, c.sample.top_p, c.sample.top_k};
  gp.seed = c.sample.seed;
  gp.constrained = c.sample.constrained;
  gp.share_prompt = c.sample.share_prompt;
  gp.cuda_graphs = c.sample.cuda_graphs;
  gp.mode = c.sample.task == "infill" ? cg::CrystalGrammar::Mode::kElement : cg::CrystalGrammar::Mode::kCrystal;
  spdlog::info("cgsample: {} {} prompts on {} ({}), grammar {}, temperature {}, top_p {}, top_k {}, seed {}",
               jobs.size(), c.sample.task, dims.describe(), device.str(), gp.constrained ? "on" : "off",
               gp.sampling.temperature, gp.sampling.top_p, gp.sampling.top_k, gp.seed);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> pieces;
  for (int v = 0; v < tok.vocab_size(); ++v) pieces.push_back(tok.piece(v));
  cg::Generator gen(*model, pieces, tok.eos_id(), dims.tp_comm);
  auto progress = [&](int64_t done, int64_t total, int64_t toks) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("cgsample: {}/{} sequences{}, {} tokens, {:.2f} seq/s, {:.1f} tok/s, ETA {}", done, total,
                 dims.dp > 1 ? " (dp group 0)" : "", toks, done / s, toks / s,
                 cg::human_duration(done > 0 ? s * double(total - done) / double(done) : 0));
  };
  // CG_KERNEL_PROFILE=1 (or =FILE.json, which also keeps the chrome trace): the GPU kernels of the whole generation
  // by time per decode step (common/kernel_profile.h; libtorch 2.x), for finding where a step's time goes.
  const char* kp = std::getenv("CG_KERNEL_PROFILE");
  std::unique_ptr<cg::KernelProfile> kprof;
  if (kp && *kp && std::string(kp) != "0") kprof = std::make_unique<cg::KernelProfile>();
  // Rank 0 reads the journals of an earlier, stopped run of these settings (sampler/sample_journal.h); every rank
  // learns which prompts are left.
  const std::string key = journal_key(cg::sha256_file_memo(tok_path), weights, c, device.is_cuda() ? "cuda" : "cpu", gp,
                                      prompts);
  std::vector<cg::Generation> results(jobs.size());
  at::Tensor left = at::ones({int64_t(jobs.size())}, at::kLong);  // 1: still to generate
  if (dims.rank == 0) {
    int64_t* mark = left.data_ptr<int64_t>();
    for (auto& [i, g] : cg::gather_journals(c.sample.out_dir, key, jobs.size(), tok.vocab_size())) {
      results[i] = std::move(g);
      mark[i] = 0;
    }
    if (const int64_t kept = int64_t(jobs.size()) - left.sum().item<int64_t>(); kept > 0) {
      spdlog::info("cgsample: resuming: {} of {} sequences from {}", kept, jobs.size(),
                   cg::journal_path(c.sample.out_dir, 0));
      g_sequences_kept = kept;
    }
  }
  if (!jobs.empty()) dims.host_world_comm->broadcast(left, 0);
  std::vector<size_t> todo;
  const int64_t* is_left = left.data_ptr<int64_t>();
  for (size_t i = 0; i < jobs.size(); ++i)
    if (is_left[i] == 1) todo.push_back(i);
  // Each dp group's tp rank 0 journals its sequences as they finish, where it sees sample.out_dir (rank 0 made it
  // and holds its lock file): with the folder on a filesystem only rank 0's node sees, the other groups' sequences
  // are kept only when all are done.
  std::unique_ptr<cg::JournalWriter> journal;
  at::Tensor blind = at::zeros({1}, at::kLong);  // dp groups whose journaling rank does not see sample.out_dir
  if (dims.tp_rank == 0 && !todo.empty()) {
    if (dims.rank == 0 || fs::exists(fs::path(c.sample.out_dir) / ".cgsample.lock"))
      journal = std::make_unique<cg::JournalWriter>(cg::journal_path(c.sample.out_dir, dims.dp_rank), key);
    else
      blind.fill_(1);
  }
  if (!todo.empty()) dims.host_world_comm->all_reduce(blind, cg::dist::ReduceOp::Sum);
  if (const int64_t b = blind.item<int64_t>(); b > 0)
    spdlog::warn("cgsample: {} of {} dp groups cannot see sample.out_dir {} (not on a filesystem every node "
                 "mounts?): their sequences are kept only when all are done, so a stop loses them; put "
                 "sample.out_dir on a shared filesystem to keep every finished sequence", b, dims.dp,
                 c.sample.out_dir);
  std::vector<std::vector<int32_t>> sub;
  std::vector<uint64_t> streams;
  for (size_t i : todo) sub.push_back(prompts[i]), streams.push_back(i);
  const auto on_done = [&](size_t k, const cg::Generation& g) {
    if (!journal) return;
    journal->add(todo[k], g);
    if (dims.rank == 0) ++g_sequences_kept;
  };
  const auto drawn = cg::generate_data_parallel(gen, sub, gp, dims, progress, streams, on_done);
  journal.reset();  // flushed to disk and closed on every rank before rank 0 removes the journals
  if (!todo.empty()) dims.host_world_comm->barrier();
  const cg::GenerationStats st = gen.stats();
  for (size_t k = 0; k < todo.size(); ++k) results[todo[k]] = drawn[k];
  if (kprof) {
    if (device.is_cuda()) torch::cuda::synchronize();
    const std::string k = kp;
    const bool json = k.size() > 5 && k.compare(k.size() - 5, 5, ".json") == 0;
    if (dims.rank == 0) kprof->report(static_cast<int>(std::max<int64_t>(1, st.decode_steps)), 40,
                                      json ? k : "");
    kprof.reset();
  }
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) ::signal(sig, SIG_DFL);  // from here files are written, not nothing
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("cgsample: {} decode steps{} with {:.1f} of {} rows busy on average, {} prefill passes, {} prompt tokens "
               "shared; attention read {:.2f}x the cached positions its rows attend to; {:.1f}% of the logits came "
               "to the host; time in model calls {:.2f} s, logits to host {:.2f} s, host work {:.2f} s",
               st.decode_steps, dims.dp > 1 ? " (dp group 0)" : "",
               st.decode_steps ? double(st.decode_rows) / st.decode_steps : 0.0, gp.batch_size, st.prefills,
               st.shared_prefix, st.cache_needed ? double(st.cache_read) / st.cache_needed : 0.0,
               st.logits_full ? 100.0 * st.logits_to_host / st.logits_full : 0.0, st.model_s, st.to_host_s,
               st.host_s);
  if (dims.rank != 0) return 0;
  made_out->keep();  // from here the folder holds the journals, then the outputs

  const fs::path out = c.sample.out_dir;
  // The folder holds this run's samples only: CIFs and a cgeval report of an earlier run into the same folder would
  // be read with these (a CIF of a sample that does not parse now, a report of other samples).
  // Everything new is written before anything old goes: CIFs into a staging folder, samples.jsonl and summary.json
  // together (both written before either is renamed), then the staging folder replaces cifs/. A failure (a full
  // disk) leaves the earlier run's files whole, and this run's sequences in the journal for the rerun.
  const fs::path staging = out / ".cifs.tmp";
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  CG_CHECK(!ec, "cannot create {}: {}; choose another sample.out_dir", staging.string(), ec.message());
  struct RemoveUnlessKept {  // the staging folder goes with any error before it becomes cifs/
    fs::path path;
    bool kept = false;
    ~RemoveUnlessKept() {
      std::error_code e;
      if (!kept) fs::remove_all(path, e);
    }
  } staged{staging};
  // What a failed write below leaves: the journal keeps every sequence until the outputs are in place, so the advice
  // keeps sample.out_dir (another folder would sample again). A full disk says so; other failures (a file size
  // limit, a read-only file system, a folder in a file's place) say their OS reason and what to fix.
  const auto failed_write = [&](const cg::Error& e) {
    const auto* io = dynamic_cast<const cg::IoError*>(&e);
    const std::string what =
        !io ? cg::message_of(e) + "; "
            : cg::disk_full(io->err) ? fmt::format("{}; the disk is full: free space in sample.out_dir = {}; ",
                                                   io->failure, c.sample.out_dir)
                                     : io->failure + "; " + cg::io_advice_clause(io->err);
    CG_FAIL("{}once that is put right, run the same command again: the {} sequences are kept in its journal and "
            "not sampled again (an earlier run's files there are as they were)", what, jobs.size());
  };
  std::string jl;
  // Rates are over what this run generated (a resumed run's journaled sequences took earlier runs' time).
  std::vector<char> fresh(jobs.size(), 0);
  for (size_t i : todo) fresh[i] = 1;
  int64_t parsed = 0, eos = 0, tokens = 0, correct = 0, parsed_here = 0, tokens_here = 0;
  std::map<std::string, int64_t> reasons;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const cg::SampleRecord r = to_record(c, i, jobs[i], results[i], tok);
    parsed += r.parsed;
    parsed_here += fresh[i] && r.parsed;
    tokens_here += fresh[i] ? r.num_tokens : 0;
    eos += results[i].hit_eos;
    tokens += r.num_tokens;
    if (!r.parsed) ++reasons[cg::reason_key(r.reason)];
    if (r.task == "infill") correct += r.element == jobs[i].truth;
    if (r.crystal) {
      try {
        cg::save_cif((staging / (r.id + ".cif")).string(), *r.crystal);
      } catch (const cg::Error& e) {
        failed_write(e);
      }
    }
    jl += cg::to_json_line(r) + "\n";
  }
  const double n = static_cast<double>(jobs.size());
  nlohmann::json sum = {{"task", c.sample.task},
                        {"model", what},
                        {"num_samples", jobs.size()},
                        {"constrained", gp.constrained},
                        {"parsed", parsed},
                        {"parse_rate", jobs.empty() ? 0.0 : parsed / n},
                        {"unparsed_reasons", reasons},
                        {"hit_eos", eos},
                        {"tokens", tokens},
                        {"seconds", secs},
                        {"resumed", int64_t(jobs.size() - todo.size())},  // sequences read from the journal
                        {"sequences_per_s", double(todo.size()) / secs},
                        {"crystals_per_s", parsed_here / secs},
                        {"tokens_per_s", tokens_here / secs},
                        {"tp", dims.tp},
                        {"dp", dims.dp},
                        {"device", device.str()},
                        {"seed", c.sample.seed},
                        {"max_new_tokens", gp.max_new_tokens},
                        {"min_new_tokens", c.sample.min_new_tokens},
                        {"temperature", c.sample.temperature},
                        {"top_p", c.sample.top_p},
                        {"top_k", c.sample.top_k},
                        {"batch_size", gp.batch_size},
                        // Rank 0's dp group: how full continuous batching kept the rows, and the attention's reads.
                        {"decode_steps", st.decode_steps},
                        {"decode_rows", st.decode_rows},
                        {"cuda_graphs", st.cuda_graphs},
                        {"decode_kernels", c.sample.decode_kernels},
                        {"one_pass_attention", model->one_pass_decode()},
                        {"prefill_passes", st.prefills},
                        {"shared_prefix", st.shared_prefix},
                        {"cache_positions_read", st.cache_read},
                        {"cache_positions_needed", st.cache_needed},
                        {"logits_to_host", st.logits_to_host},
                        {"logits_full", st.logits_full},
                        {"whole_rows", st.whole_rows},
                        // Where the decode loop's time went (GenerationStats): model calls / logits to host / host.
                        {"model_s", st.model_s},
                        {"to_host_s", st.to_host_s},
                        {"host_s", st.host_s}};
  if (c.sample.task == "infill") sum["infill_accuracy"] = jobs.empty() ? 0.0 : correct / n;
  if (!c.sample.conditions_from.empty()) {
    sum["conditions_from"] = cg::resolve_csv(c.sample.conditions_from, c);
    sum["condition_on"] = c.sample.condition_on;
  } else if (c.sample.task == "generate") {  // the fixed conditions every prompt states (absent: none)
    nlohmann::json fixed = nlohmann::json::object();
    if (!c.sample.formula.empty()) fixed["formula"] = c.sample.formula;
    if (c.sample.spacegroup > 0) fixed["spacegroup"] = c.sample.spacegroup;
    if (auto v = number_or_none(c.sample.formation_energy)) fixed["formation_energy_per_atom"] = *v;
    if (auto v = number_or_none(c.sample.band_gap)) fixed["band_gap"] = *v;
    if (auto v = number_or_none(c.sample.e_above_hull)) fixed["e_above_hull"] = *v;
    sum["conditions"] = fixed;
  }
  // From here to the journals' removal the earlier run's outputs are replaced: a stop signal (Slurm's TERM, a
  // Ctrl-C) acting halfway left this run's samples.jsonl beside the earlier run's cifs/, or a cifs/ half removed, which
  // cgeval read as whole. It is held, and acts once all is in place (the outputs whole, the journals gone).
  cg::HoldStopSignals held;
  // One set: a full disk at summary.json must not leave a new samples.jsonl beside the earlier run's summary and CIFs.
  // (Its renames are under `held` already: the set's own holder nests within it and does nothing.)
  try {
    cg::write_file_set(out.string(), {{"samples.jsonl", jl},
                                      {"summary.json", sum.dump(2, ' ', false,
                                                                nlohmann::json::error_handler_t::replace) + "\n"}});
  } catch (const cg::Error& e) {
    failed_write(e);
  }
  // Fault injection for tests (test_cgsample_e2e.sh): CG_TEST_SIGNAL_IN_SAMPLE_COMMIT=N raises signal N here.
  if (const char* hook = std::getenv("CG_TEST_SIGNAL_IN_SAMPLE_COMMIT")) std::raise(std::atoi(hook));
  // cgeval's reports of the earlier samples: eval/ (of the folder) and samples.jsonl.eval/ (of the file).
  for (const char* old : {"cifs", "eval", "samples.jsonl.eval"}) {
    if (std::string(old) == "samples.jsonl.eval" && !fs::exists(out / old / "report.json")) continue;
    if (fs::exists(out / old) && fs::remove_all(out / old, ec) > 0)
      spdlog::warn("cgsample: replaced {} of an earlier run in sample.out_dir (use another sample.out_dir to keep "
                   "runs apart)", (out / old).string());
    CG_CHECK(!ec, "cannot clear {}: {}; choose another sample.out_dir", (out / old).string(), ec.message());
  }
  fs::rename(staging, out / "cifs", ec);
  staged.kept = !ec;
  CG_CHECK(!ec, "cannot rename {} to {}: {}", staging.string(), (out / "cifs").string(), ec.message());
  cg::remove_journals(c.sample.out_dir);  // every sequence is in samples.jsonl now
  spdlog::info("cgsample: {} of {} parsed ({:.1f}%, grammar {}), {:.2f} {}/s; wrote {}", parsed, jobs.size(),
               jobs.empty() ? 0.0 : 100.0 * parsed / n, gp.constrained ? "on" : "off", parsed_here / secs,
               c.sample.task == "infill" ? "elements" : "crystals", out.string());
  if (const int sig = cg::g_held_stop_signal)  // acts as `held` goes: the exit status names it
    spdlog::warn("cgsample: signal {} came while the outputs replaced the earlier ones; they are whole, and it acts "
                 "now", sig);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cg::dist::run_main(argc, argv, parse, run); }
