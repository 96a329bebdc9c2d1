// The cgprep pipeline.
#include "data/prep.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/ranges.h>
#include <regex>
#include <set>
#include <thread>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/log.h"
#include "common/path_note.h"
#include "common/sha256.h"
#include "data/augment.h"
#include "data/mp20.h"
#include "data/rng.h"
#include "data/shard_settings.h"
#include "data/space_groups.h"
#include "data/sp_model.h"
#include "data/sp_train.h"

namespace cg {

TokenizedSample tokenize_sample(const Tokenizer& tok, const TextSample& s) {
  TokenizedSample out;
  out.tokens = tok.encode(s.prompt + s.completion, /*add_bos=*/true);
  out.tokens.push_back(tok.eos_id());
  const std::vector<int32_t> p = tok.encode(s.prompt, true);
  size_t n = 0;
  while (n < p.size() && n < out.tokens.size() && p[n] == out.tokens[n]) ++n;
  out.prompt_len = int32_t(n);
  return out;
}

TextSample make_sample(const Crystal& c, const DataConfig& d, int split_id, int64_t row, int64_t copy) {
  Rng rng(Rng::derive({d.seed, uint64_t(split_id), uint64_t(row), uint64_t(copy)}));
  AugmentOptions aug;
  aug.translate = split_id == 0 && d.translate;
  aug.permute = split_id == 0 && d.permute;
  Crystal a = augment(c, aug, rng);
  const bool infill = rng.uniform() < d.infill_fraction;
  return infill ? make_infill_sample(a, text_options(d), rng) : make_generation_sample(a, text_options(d), rng);
}

namespace {

struct SplitWork {
  std::string name;
  std::string csv;
  int id;
  int64_t copies;
};

// Output of one worker's block of crystals.
struct Block {
  SampleSet samples;
  std::vector<SkippedRow> too_long;
};

constexpr const char* kPrepStaging = ".cgprep.tmp";  // inside data.shards_dir, moved into place when complete

// A shard file's name, as cgprep writes it: {train,val,test}-NNNNN.h5.
bool is_shard_name(const std::string& name) {
  static const std::regex shard(R"((train|val|test)-[0-9]{5}\.h5)");
  return std::regex_match(name, shard);
}

// Moves a finished run's files from `stage` into `dir`. Every shard of the folder goes first: an earlier run's
// shards of a split this run does not write (cgtrain would validate on them), or beyond this run's count (they
// would be read as part of the split). Renames within one folder need no disk space.
void commit_shards(const std::string& stage, const std::string& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, int64_t> removed;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && is_shard_name(name)) {
      fs::remove(e.path());
      ++removed[name.substr(0, name.find('-'))];
    }
  }
  std::set<std::string> written;
  for (const auto& e : fs::directory_iterator(stage)) {
    const std::string name = e.path().filename().string();
    if (is_shard_name(name)) written.insert(name.substr(0, name.find('-')));
    fs::rename(e.path(), fs::path(dir) / name);
  }
  fs::remove(stage);
  fsync_path(dir, /*directory=*/true);
  for (const auto& [split, n] : removed)
    if (!written.count(split))
      spdlog::warn("removed {} '{}' shard(s) of an earlier cgprep run from {} (this run writes no {} split)", n,
                   split, dir, split);
}

}  // namespace

void check_shards_dir_owned(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  CG_CHECK(fs::is_directory(dir, ec), "data.shards_dir {} is not a folder: give a new or empty folder", dir);
  std::vector<std::string> foreign, replaced;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name == "config.json" || name == "adapter_config.json" || name == "checkpoints" || name == ".cgtrain.lock" ||
        e.path().extension() == ".safetensors")
      foreign.push_back(name);
    if (name == "tokenizer.model" || is_shard_name(name)) replaced.push_back(name);
  }
  std::sort(foreign.begin(), foreign.end());
  std::sort(replaced.begin(), replaced.end());
  CG_CHECK(foreign.empty(), "data.shards_dir {} holds {}: it is a model, adapter or run folder, and cgprep would "
           "replace its tokenizer.model and shard files; give cgprep a folder of its own (data.shards_dir)", dir,
           fmt::join(foreign, ", "));
  CG_CHECK(replaced.empty() || fs::is_regular_file(fs::path(dir) / "cgprep_config.yaml"),
           "data.shards_dir {} holds {} but no cgprep_config.yaml (cgprep writes one beside its shards): cgprep would "
           "replace them. Move them away (or delete them if an interrupted cgprep left them) or give another "
           "data.shards_dir", dir, fmt::join(replaced, ", "));
}

namespace {

// Runs fn(i) for i in [0, n) on `threads` workers in contiguous blocks; fn(block, begin, end).
template <class F>
void parallel_blocks(int64_t n, int threads, F&& fn) {
  const int64_t nb = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b) {
    pool.emplace_back([&, b] {
      try {
        fn(b, n * b / nb, n * (b + 1) / nb);
      } catch (...) {
        errors[size_t(b)] = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// The numeric columns a CSV has and nothing reads (another dataset's properties, perov-5's heat_ref), for the
// warning that says which properties are unknown: "; it has heat_ref, dir_gap: map one with
// data.columns=[formation_energy_per_atom=heat_ref]", the entries `columns` already has kept in front (the setting to
// write replaces them). "" when it has none.
std::string unread_columns_hint(const Mp20Split& p, const std::string& unknown,
                                const std::vector<std::string>& columns) {
  if (p.unread_numeric_columns.empty()) return "";
  std::vector<std::string> entries = effective_columns(columns);
  entries.push_back(unknown + "=" + p.unread_numeric_columns[0]);
  return fmt::format("; it has {} (not read): map one with {} (docs/formats.md#other-datasets)",
                     fmt::join(p.unread_numeric_columns, ", "), columns_setting(entries));
}

// Whether `path` is the file `default_path` names (MP-20's split as DataConfig's default gives it), however spelled.
bool is_default_split(const std::string& path, const std::string& default_path) {
  if (path.empty()) return false;
  std::error_code ec;
  return path == default_path || std::filesystem::equivalent(path, default_path, ec);
}

// Only data.train_csv set (a CIF folder, another dataset): val and test keep MP-20's defaults, so cgtrain would
// validate on MP-20 and cgeval and cgsample take MP-20 as the test split, without a word. Say so, naming the keys.
void warn_if_mp20_val_test(const DataConfig& d) {
  const DataConfig defaults;
  if (d.train_csv.empty() || is_default_split(d.train_csv, defaults.train_csv)) return;
  std::vector<std::string> kept, effects;
  if (is_default_split(d.val_csv, defaults.val_csv)) {
    kept.push_back("data.val_csv=" + d.val_csv);
    effects.push_back("cgtrain would validate on MP-20");
  }
  if (is_default_split(d.test_csv, defaults.test_csv)) {
    kept.push_back("data.test_csv=" + d.test_csv);
    effects.push_back("cgeval and cgsample would compare with and draw conditions from MP-20 (data.test_csv)");
  }
  if (kept.empty()) return;
  spdlog::warn("data.train_csv is {}, but {} {} still MP-20's default{}: {}. Set data.val_csv= and data.test_csv= to "
               "your own splits (empty: no such split; nothing splits one file or folder for you), best in your own "
               "YAML, so that every tool reads the same ones", d.train_csv, fmt::join(kept, " and "),
               kept.size() > 1 ? "are" : "is", kept.size() > 1 ? "s" : "", fmt::join(effects, ", and "));
}

// Why a split gave no sample: rows read, the first skipped row's reason, what to check. Raising data.max_tokens
// helps only where samples were dropped for their length (too_long).
std::string no_usable_sample(const SplitWork& w, const Mp20Split& p, const std::vector<SkippedRow>& skipped,
                             bool too_long) {
  return fmt::format("{}: no usable sample in {} ({} rows read{}): check the file{}", w.name, w.csv, p.rows_read,
                     skipped.empty() ? "" : fmt::format(", e.g. row {}: {}", skipped[0].row, skipped[0].reason),
                     too_long ? ", or raise data.max_tokens" : p.rows_read == 0 ? " (it has no data rows)" : "");
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

}  // namespace

PrepReport run_prep(const DataConfig& d, int threads, const std::atomic<int>* stop, const std::string& config_yaml) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  CG_CHECK(d.copies >= 1, "data.copies = {} must be at least 1", d.copies);
  CG_CHECK(d.infill_fraction >= 0 && d.infill_fraction <= 1, "data.infill_fraction = {} must lie in [0, 1]",
           d.infill_fraction);
  CG_CHECK(d.loss_on == "all" || d.loss_on == "completion", "data.loss_on '{}' is not one of: all, completion",
           d.loss_on);
  CG_CHECK(d.max_tokens >= 8, "data.max_tokens = {} is too small: a sample needs at least 8 tokens", d.max_tokens);
  const TextOptions topt = text_options(d);
  const CsvColumns columns = parse_columns(d.columns);  // a bad mapping fails before anything is read

  std::vector<SplitWork> work;
  if (!d.train_csv.empty()) work.push_back({"train", d.train_csv, 0, d.copies});
  if (!d.val_csv.empty()) work.push_back({"val", d.val_csv, 1, 1});
  if (!d.test_csv.empty()) work.push_back({"test", d.test_csv, 2, 1});
  CG_CHECK(!work.empty(), "data.train_csv, data.val_csv and data.test_csv are all empty: nothing to prepare");
  for (const auto& w : work) {  // before anything is made: a missing file is the likeliest mistake
    std::error_code ec;
    CG_CHECK(std::filesystem::exists(w.csv, ec), "data.{}_csv: {} does not exist{}; set data.{}_csv to a CSV in "
             "CDVAE's layout or a folder of CIF files (data.{}_csv= leaves the split out)", w.name, w.csv,
             relative_path_note(w.csv, "cgprep"), w.name, w.name);
  }
  warn_if_mp20_val_test(d);
  // A stop request is a failure like any other: the error unwinds through the cleanup below (staging folder, then
  // made_dir). Called only where nothing of the run is in data.shards_dir yet, i.e. not once the commit has begun.
  std::error_code exists_ec;
  const bool dir_existed = std::filesystem::exists(d.shards_dir, exists_ec);
  const auto stop_if_asked = [&] {
    const int sig = stop ? stop->load(std::memory_order_relaxed) : 0;
    if (sig == 0) return;
    CG_FAIL("stopped by signal {} ({}) before the shards were written; nothing of this run was kept and {}", sig,
            signal_name(sig), dir_existed ? d.shards_dir + " is as it was"
                                          : d.shards_dir + ", which it made, is removed (with any parent it made)");
  };
  const auto asked_to_stop = [&] { return stop && stop->load(std::memory_order_relaxed) != 0; };
  stop_if_asked();
  // A failed run leaves no trace: the earlier run's shards as they were, and no folder where there was none (nor
  // the parents it made for it).
  MadeFolders made_dir(d.shards_dir);
  make_output_dir(d.shards_dir, "data.shards_dir");

  // 1. Read and parse every split.
  // The formula and space group the structures tell are filled in where the source gives none (a CIF folder).
  std::vector<Mp20Split> parsed;
  std::vector<DerivedProperties> derived;
  for (const auto& w : work) {
    stop_if_asked();  // reading a split is not interrupted: up to a second or so for MP-20's
    auto t = Clock::now();
    parsed.push_back(read_mp20(w.csv, d.max_rows, d.strict, columns, parse_site_order(d.site_order)));
    auto& p = parsed.back();
    spdlog::info("{}: {} rows read from {}, {} crystals, {} skipped ({:.1f}s)", w.name, p.rows_read, w.csv,
                 p.crystals.size(), p.skipped.size(), std::chrono::duration<double>(Clock::now() - t).count());
    t = Clock::now();
    derived.push_back(derive_properties(&p.crystals, threads, stop));
    stop_if_asked();
    const DerivedProperties& dp = derived.back();
    if (dp.formulas > 0 || dp.spacegroups > 0)
      spdlog::info("{}: derived from the structures where {} gives none: {} ({:.1f}s)", w.name, w.csv,
                   derived_summary(dp), std::chrono::duration<double>(Clock::now() - t).count());
    log_formula_cells(w.name, w.csv, dp);
    if (dp.no_spacegroup > 0) {
      std::vector<std::string> ids;  // the first few, to look at
      for (const auto& c : p.crystals)
        if (!c.spacegroup && ids.size() < 5) ids.push_back(c.id);
      spdlog::warn("{}: {} crystal(s) have no space group ({}{}): {}; their prompts never state one (nor, where no "
                   "other property is known, the formula: a prompt states it only beside another)", w.name,
                   dp.no_spacegroup, fmt::join(ids, ", "), dp.no_spacegroup > int64_t(ids.size()) ? ", ..." : "",
                   have_spglib() ? "spglib finds none at 0.1 A (e.g. atoms closer than that, or a degenerate cell)"
                                 : "this build has no spglib (install libsymspg-dev and rebuild to derive them)");
    }
    std::vector<std::string> unknown;  // columns the file lacks that were not derived either
    for (const auto& col : p.missing_columns)
      if (col != std::string("pretty_formula") && (col != std::string("spacegroup.number") || !have_spglib()))
        unknown.push_back(col);
    if (!unknown.empty())
      spdlog::warn("{}: {} {} {}: unknown for every row, never in a prompt{}", w.name, w.csv,
                   is_cif_folder(w.csv) || is_cif_file(w.csv) ? "(CIF files) gives no" : "lacks the column(s)",
                   fmt::join(unknown, ", "), unread_columns_hint(p, unknown[0], d.columns));
    for (size_t i = 0; i < std::min<size_t>(p.skipped.size(), 5); ++i)
      spdlog::warn("{}: skipped row {}: {}", w.name, p.skipped[i].row, p.skipped[i].reason);
    if (p.skipped.size() > 5) spdlog::warn("{}: ... {} more skipped rows (all listed in the shards' 'skipped' attribute)",
                                          w.name, p.skipped.size() - 5);
  }

  // 2. Tokenizer: load, or train a small one on the train split's text (copy 0 of each crystal).
  stop_if_asked();
  Tokenizer tok;
  if (d.tokenizer == "train") {
    CG_CHECK(work[0].name == "train", "data.tokenizer = train needs data.train_csv");
    auto t = Clock::now();
    std::vector<std::string> sentences;
    const auto& tr = parsed[0];
    // No crystal read: say why, as for a split with no usable sample, not that the tokenizer has no text.
    CG_CHECK(!tr.crystals.empty(), "{}", no_usable_sample(work[0], tr, tr.skipped, false));
    for (size_t i = 0; i < tr.crystals.size(); ++i) {
      stop_if_asked();
      TextSample s = make_sample(tr.crystals[i], d, 0, tr.source_rows[i], 0);
      std::string text = s.prompt + s.completion;
      size_t pos = 0;
      while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        if (nl > pos) sentences.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
      }
    }
    // libsentencepiece's training cannot be interrupted: a stop asked during it is seen when it returns.
    tok = Tokenizer::from_bytes(train_sp_model(sentences, int(d.tokenizer_vocab_size), threads));
    spdlog::info("trained a {}-piece BPE tokenizer on {} lines ({:.1f}s)", tok.vocab_size(), sentences.size(),
                 std::chrono::duration<double>(Clock::now() - t).count());
    // sentencepiece stops early (hard_vocab_limit=false) when the text has no more pairs to merge.
    if (tok.vocab_size() < d.tokenizer_vocab_size)
      spdlog::warn("data.tokenizer_vocab_size asked for {} pieces, but {} lines of text gave only {}: the model's "
                   "vocabulary is {}; set data.tokenizer_vocab_size={} (or less) to ask for what the data has, or "
                   "prepare more rows", d.tokenizer_vocab_size, sentences.size(), tok.vocab_size(), tok.vocab_size(),
                   tok.vocab_size());
  } else {
    tok = Tokenizer::load(d.tokenizer);
    spdlog::info("tokenizer {} ({} pieces, sha256 {})", d.tokenizer, tok.vocab_size(), tok.hash().substr(0, 12));
  }
  // Every sample is BOS + text + EOS: a model without those control pieces would write ids -1 into the shards.
  CG_CHECK(tok.bos_id() >= 0 && tok.eos_id() >= 0, "tokenizer {} has no {} piece (bos id {}, eos id {}): use a "
           "model with <s> and </s> as control pieces (LLaMA-2's has them; for a tokenizer.json, check that "
           "cgtok hf-json found them)", d.tokenizer, tok.bos_id() < 0 ? "<s> (BOS)" : "</s> (EOS)", tok.bos_id(),
           tok.eos_id());
  PrepReport report;
  report.tokenizer_path = d.shards_dir + "/tokenizer.model";
  // Everything is written into a staging folder and moved into data.shards_dir at the end (commit_shards): a failed
  // run (a full disk, a bad row with data.strict) leaves the shards of an earlier run as they were.
  const std::string stage = d.shards_dir + "/" + kPrepStaging;
  std::filesystem::remove_all(stage);
  std::filesystem::create_directories(stage);
  try {
    write_file_atomic(stage + "/tokenizer.model", tok.model_bytes());
    if (!config_yaml.empty()) write_file_atomic(stage + "/cgprep_config.yaml", config_yaml);
    const std::string settings = settings_json(d, topt);

    // 3. Samples per split, in parallel blocks (merged in order: output independent of the thread count), then shards.
    for (size_t si = 0; si < work.size(); ++si) {
      stop_if_asked();
      const auto& w = work[si];
      const auto& p = parsed[si];
      const int64_t n = int64_t(p.crystals.size());
      std::vector<Block> blocks(static_cast<size_t>(threads));
      std::atomic<int64_t> done{0};
      std::atomic<bool> finished{false};
      const auto ts = Clock::now();
      std::thread progress([&] {  // progress line every 5 s: rows/s and ETA
        auto last = Clock::now();
        while (!finished.load()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          if (Clock::now() - last < std::chrono::seconds(5)) continue;
          last = Clock::now();
          const double el = std::chrono::duration<double>(last - ts).count();
          const int64_t k = done.load();
          const double rate = double(k) / std::max(el, 1e-9);
          spdlog::info("{}: {}/{} crystals, {:.0f} rows/s, ETA {}", w.name, k, n, rate,
                       human_duration(rate > 0 ? double(n - k) / rate : 0));
        }
      });
      try {
        parallel_blocks(n, threads, [&](int64_t b, int64_t begin, int64_t end) {
          Block& out = blocks[size_t(b)];
          for (int64_t i = begin; i < end; ++i) {
            if (asked_to_stop()) return;  // the blocks are discarded: stop_if_asked below throws
            const Crystal& c = p.crystals[size_t(i)];
            const int64_t row = p.source_rows[size_t(i)];
            for (int64_t k = 0; k < w.copies; ++k) {
              const TextSample s = make_sample(c, d, w.id, row, k);
              const TokenizedSample t = tokenize_sample(tok, s);
              if (int64_t(t.tokens.size()) > d.max_tokens) {
                out.too_long.push_back({row, fmt::format("{}: copy {} has {} tokens > data.max_tokens = {}", c.id, k,
                                                         t.tokens.size(), d.max_tokens)});
                continue;
              }
              out.samples.add(t.tokens, t.prompt_len, int8_t(s.task), int32_t(row), int16_t(k));
            }
            done.fetch_add(1);
          }
        });
      } catch (...) {
        finished = true;
        progress.join();
        throw;
      }
      finished = true;
      progress.join();
      stop_if_asked();

      SampleSet all;
      std::vector<SkippedRow> skipped = p.skipped;
      for (auto& b : blocks) {
        all.append(b.samples);
        skipped.insert(skipped.end(), b.too_long.begin(), b.too_long.end());
      }
      std::sort(skipped.begin(), skipped.end(), [](const SkippedRow& a, const SkippedRow& b) { return a.row < b.row; });
      if (d.strict && !skipped.empty())
        CG_FAIL("{}: row {}: {} (data.strict=true; raise data.max_tokens or set data.strict=false)", w.name,
                skipped[0].row, skipped[0].reason);
      bool any_too_long = false;
      for (const auto& b : blocks) any_too_long |= !b.too_long.empty();
      CG_CHECK(all.size() > 0, "{}", no_usable_sample(w, p, skipped, any_too_long));
      nlohmann::json skipped_j = nlohmann::json::array();
      for (const auto& s : skipped) skipped_j.push_back({{"row", s.row}, {"reason", s.reason}});
      std::vector<int32_t> used_rows = all.rows;
      used_rows.erase(std::unique(used_rows.begin(), used_rows.end()), used_rows.end());

      ShardMeta meta;
      meta.split = w.name;
      meta.tokenizer_sha256 = tok.hash();
      meta.vocab_size = tok.vocab_size();
      meta.bos_id = tok.bos_id();
      meta.eos_id = tok.eos_id();
      meta.settings_json = settings;
      // Absolute, so the record means the same file wherever cgtrain, cgsample or a reader of a checkpoint runs.
      meta.source_path = std::filesystem::absolute(w.csv).lexically_normal().string();
      meta.source_sha256 = source_sha256(w.csv);
      if (!std::filesystem::is_directory(w.csv) && !is_cif_file(w.csv)) meta.source_columns = columns.describe();
      // Marks these as read with renames, which shards of an older cgprep with the same settings were not.
      if (!meta.source_columns.empty()) meta.columns_semantics = kColumnsRename;
      meta.derived_properties = derived[si].what;
      meta.property_counts = property_counts_json(p.crystals);
      meta.rows_read = p.rows_read;
      meta.rows_used = int64_t(used_rows.size());
      meta.rows_skipped = meta.rows_read - meta.rows_used;
      // Reasons quote input bytes, which need not be UTF-8.
      meta.skipped_json = skipped_j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

      const int64_t per = std::max<int64_t>(1, d.shard_samples);
      const int64_t num_shards = std::max<int64_t>(1, (int64_t(all.size()) + per - 1) / per);
      meta.num_shards = num_shards;
      for (int64_t k = 0; k < num_shards; ++k) {
        SampleSet part;
        const size_t b = size_t(k * per), e = std::min(all.size(), size_t((k + 1) * per));
        for (size_t i = b; i < e; ++i) {
          std::vector<int32_t> toks(all.sample(i), all.sample(i) + all.length(i));
          part.add(toks, all.prompt_lens[i], all.tasks[i], all.rows[i], all.copies[i]);
        }
        meta.shard_index = k;
        stop_if_asked();
        write_shard(shard_path(stage, w.name, k), part, meta);
      }

      SplitReport r{w.name, meta.rows_read, meta.rows_used, meta.rows_skipped, int64_t(all.size()),
                    int64_t(all.tokens.size()), num_shards};
      const double el = std::chrono::duration<double>(Clock::now() - ts).count();
      spdlog::info("{}: {} samples, {} tokens ({:.1f} per sample), {} rows skipped, {} shard(s) in {} ({:.1f}s)",
                   w.name, r.samples, r.tokens, r.samples ? double(r.tokens) / double(r.samples) : 0.0,
                   r.rows_skipped, num_shards, d.shards_dir, el);
      report.splits.push_back(r);
    }
    stop_if_asked();  // the last chance: from here the run completes, so data.shards_dir is never half committed
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(stage, ec);
    throw;
  }
  commit_shards(stage, d.shards_dir);
  made_dir.keep();
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return report;
}

}  // namespace cg
