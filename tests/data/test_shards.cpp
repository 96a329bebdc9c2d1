// HDF5 shards (round trip, atomic write, h5py-readable) and the cgprep pipeline (run_prep) end to end on MP-20 rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <thread>
#include <tuple>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/sha256.h"
#include "data/crystal_text.h"
#include "data/csv.h"
#include "data/elements.h"
#include "data/loader.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/space_groups.h"
#include "data/prep.h"
#include "data/shard.h"
#include "data/shard_settings.h"
#include "data/sp_model.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) {
  std::string d = testing::TempDir() + "/cg_shards_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

cg::SampleSet small_set() {
  cg::SampleSet s;
  s.add({1, 10, 11, 12, 2}, 2, 0, 7, 0);
  s.add({1, 20, 2}, 3, 1, 8, 1);
  s.add({1, 30, 31, 32, 33, 34, 35, 2}, 4, 0, 9, 0);
  return s;
}

cg::DataConfig small_config(const std::string& dir) {
  cg::DataConfig d;
  const std::string src = CG_SOURCE_DIR;
  d.train_csv = src + "/data/mp20/train.csv.gz";
  d.val_csv = src + "/data/mp20/val.csv.gz";
  d.test_csv = src + "/data/mp20/test.csv.gz";
  d.shards_dir = dir;
  d.tokenizer = "train";
  d.tokenizer_vocab_size = 400;
  d.max_rows = 120;
  d.copies = 2;
  return d;
}

// `t` written as a CSV, every cell quoted.
void write_csv(const std::string& path, const cg::CsvTable& t) {
  auto quote = [](const std::string& c) {
    std::string q = "\"";
    for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  std::ofstream out(path);
  for (size_t r = 0; r <= t.rows.size(); ++r) {
    const auto& cells = r == 0 ? t.header : t.rows[r - 1];
    for (size_t c = 0; c < cells.size(); ++c) out << (c ? "," : "") << quote(cells[c]);
    out << "\n";
  }
}

// The first `rows` data rows of an MP-20 split.
cg::CsvTable mp20_rows(const std::string& split, size_t rows) {
  cg::CsvTable t = cg::parse_csv(cg::read_maybe_gz(std::string(CG_SOURCE_DIR) + "/data/mp20/" + split + ".csv.gz"));
  t.rows.resize(rows);
  t.row_lines.resize(rows);
  return t;
}

// The columns `keep` of `t` ({name in t, name to write}), in that order.
cg::CsvTable select_columns(const cg::CsvTable& t, const std::vector<std::pair<std::string, std::string>>& keep) {
  cg::CsvTable out;
  for (const auto& k : keep) out.header.push_back(k.second);
  for (const auto& row : t.rows) {
    out.rows.emplace_back();
    for (const auto& k : keep) out.rows.back().push_back(row[t.column(k.first)]);
  }
  return out;
}

// What `f` throws as a cg::Error, or "<no error>".
std::string test_error_of_impl(const std::function<void()>& f) {
  try {
    f();
  } catch (const cg::Error& e) {
    return e.what();
  }
  return "<no error>";
}

// What `f` logs (spdlog's default logger), and its error after "\nerror: " if it throws one.
std::string logged(const std::function<void()>& f) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  try {
    f();
  } catch (const std::exception& e) {
    log << "\nerror: " << e.what();
  }
  spdlog::default_logger()->sinks().pop_back();
  return log.str();
}

}  // namespace

TEST(Shard, RoundTripAndAtomicWrite) {
  const std::string dir = fresh_dir("rt");
  const cg::SampleSet s = small_set();
  cg::ShardMeta m;
  m.split = "val";
  m.tokenizer_sha256 = "abc";
  m.vocab_size = 40;
  m.settings_json = R"({"seed": 1})";
  m.skipped_json = R"J([{"row": 3, "reason": "mp-3: partial occupancy 0.5 at site 0 (Na)"}])J";
  m.rows_read = 4;
  const std::string path = cg::shard_path(dir, "val", 0);
  EXPECT_EQ(path, dir + "/val-00000.h5");
  cg::write_shard(path, s, m);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  cg::ShardMeta back_meta;
  cg::SampleSet back = cg::read_shard(path, &back_meta);
  EXPECT_EQ(back.tokens, s.tokens);
  EXPECT_EQ(back.offsets, s.offsets);
  EXPECT_EQ(back.prompt_lens, s.prompt_lens);
  EXPECT_EQ(back.tasks, s.tasks);
  EXPECT_EQ(back.rows, s.rows);
  EXPECT_EQ(back.copies, s.copies);
  EXPECT_EQ(back_meta.skipped_json, m.skipped_json);
  EXPECT_EQ(back_meta.settings_json, m.settings_json);
  EXPECT_EQ(back_meta.samples, 3);
  EXPECT_EQ(back_meta.tokens, 16);
  EXPECT_EQ(back_meta.rows_read, 4);
  EXPECT_EQ(cg::list_shards(dir, "val"), std::vector<std::string>{path});
  EXPECT_THROW(cg::list_shards(dir, "train"), cg::Error);
  // An empty split still makes a valid shard.
  cg::write_shard(cg::shard_path(dir, "test", 0), cg::SampleSet{}, m);
  EXPECT_EQ(cg::read_shard(cg::shard_path(dir, "test", 0)).size(), 0u);
}

// A token id the tokenizer does not have would index past the model's embedding in the first step: the reader
// names the shard, the sample and the id instead (a shard made with h5py for another tokenizer, or damaged).
TEST(Shard, TokenIdsOutsideTheVocabularyAreRefused) {
  const std::string dir = fresh_dir("ids");
  const std::string path = cg::shard_path(dir, "train", 0);
  cg::ShardMeta m;
  m.split = "train";
  m.vocab_size = 36;  // small_set's largest id is 35
  cg::write_shard(path, small_set(), m);
  EXPECT_EQ(cg::read_shard(path).size(), 3u);
  auto refusal = [&] {
    try {
      cg::read_shard(path);
    } catch (const cg::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  m.vocab_size = 35;
  cg::write_shard(path, small_set(), m);
  EXPECT_NE(refusal().find("sample 2 holds token id 35, outside the tokenizer's ids 0..34 (vocab_size 35)"),
            std::string::npos) << refusal();
  cg::SampleSet neg = small_set();
  neg.tokens[1] = -7;  // sample 0
  m.vocab_size = 36;
  cg::write_shard(path, neg, m);
  EXPECT_NE(refusal().find("sample 0 holds token id -7"), std::string::npos) << refusal();
  m.vocab_size = 0;
  cg::write_shard(path, small_set(), m);
  EXPECT_NE(refusal().find("has vocab_size 0"), std::string::npos) << refusal();
  cg::SampleSet bad_prompt = small_set();
  bad_prompt.prompt_lens[1] = -1;
  m.vocab_size = 36;
  cg::write_shard(path, bad_prompt, m);
  EXPECT_NE(refusal().find("sample 1 has bad offsets or prompt length"), std::string::npos) << refusal();
  bad_prompt.prompt_lens[1] = int32_t(bad_prompt.length(1)) + 1;  // a prompt longer than its sample
  cg::write_shard(path, bad_prompt, m);
  EXPECT_NE(refusal().find("sample 1 has bad offsets or prompt length"), std::string::npos) << refusal();
  bad_prompt.prompt_lens[1] = int32_t(bad_prompt.length(1));  // all prompt (no completion): read
  cg::write_shard(path, bad_prompt, m);
  EXPECT_EQ(cg::read_shard(path).prompt_lens[1], bad_prompt.length(1));
}

TEST(Shard, ReadableWithH5pyAndNumpy) {
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with h5py and numpy is not available";
  const std::string dir = fresh_dir("py");
  cg::ShardMeta m;
  m.split = "train";
  m.settings_json = R"({"loss_on": "all"})";
  cg::write_shard(cg::shard_path(dir, "train", 0), small_set(), m);
  const std::string script = dir + "/read.py", out = dir + "/out.json";
  std::ofstream(script) << "import h5py, numpy as np, json, sys\n"
                           "f = h5py.File(sys.argv[1], 'r')\n"
                           "tok, off, pl = f['tokens'][:], f['offsets'][:], f['prompt_lens'][:]\n"
                           "samples = [tok[off[i]:off[i + 1]].tolist() for i in range(len(off) - 1)]\n"
                           "json.dump({'samples': samples, 'prompt_lens': pl.tolist(), 'tasks': f['tasks'][:].tolist(),\n"
                           "           'split': f.attrs['split'], 'settings': json.loads(f.attrs['settings']),\n"
                           "           'dtype': str(tok.dtype), 'n': int(f.attrs['samples'])}, open(sys.argv[2], 'w'))\n";
  ASSERT_EQ(std::system(("/usr/bin/python3 " + script + " " + cg::shard_path(dir, "train", 0) + " " + out).c_str()), 0);
  nlohmann::json j = nlohmann::json::parse(std::ifstream(out));
  EXPECT_EQ(j["samples"][0], (std::vector<int>{1, 10, 11, 12, 2}));
  EXPECT_EQ(j["samples"][2], (std::vector<int>{1, 30, 31, 32, 33, 34, 35, 2}));
  EXPECT_EQ(j["prompt_lens"], (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(j["tasks"], (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(j["split"], "train");
  EXPECT_EQ(j["settings"]["loss_on"], "all");
  EXPECT_EQ(j["dtype"], "int32");
  EXPECT_EQ(j["n"], 3);
}

// The settings as cgprep wrote them before the tokenizer left them (git 836e025^, data/prep.cpp), verbatim: what
// runs trained on older shards hold the digest of.
namespace {
std::string older_cgprep_settings_json(const cg::DataConfig& d, const cg::TextOptions& t) {
  nlohmann::json j;
  j["text"] = {{"angle_mode", cg::angle_mode_name(t.angles)}, {"fold_one", t.fold_one}, {"length_decimals", 1},
               {"coord_decimals", 2}};
  j["augment"] = {{"translate", d.translate}, {"permute", d.permute}, {"copies_train", d.copies},
                  {"copies_val_test", 1}, {"val_test", "not augmented"}};
  j["tasks"] = {{"infill_fraction", d.infill_fraction}, {"prompt_version", 1}};
  j["loss_on"] = d.loss_on;
  j["max_tokens"] = d.max_tokens;
  j["seed"] = d.seed;
  j["max_rows"] = d.max_rows;
  j["strict"] = d.strict;
  j["tokenizer"] = d.tokenizer;
  j["tokenizer_vocab_size"] = d.tokenizer_vocab_size;
  j["tokens"] = "BOS + encode(prompt + completion) + EOS";
  return j.dump();
}

// The settings as cgprep wrote them before data.site_order (git aa47979, data/shard_settings.cpp), verbatim: no
// site order recorded, the file's order written.
std::string before_site_order_settings_json(const cg::DataConfig& d, const cg::TextOptions& t) {
  nlohmann::json j;
  j["text"] = {{"angle_mode", cg::angle_mode_name(t.angles)}, {"fold_one", t.fold_one}, {"length_decimals", 1},
               {"coord_decimals", 2}};
  j["augment"] = {{"translate", d.translate}, {"permute", d.permute}, {"copies_train", d.copies},
                  {"copies_val_test", 1}, {"val_test", "not augmented"}};
  j["tasks"] = {{"infill_fraction", d.infill_fraction}, {"prompt_version", 1}};
  j["loss_on"] = d.loss_on;
  j["max_tokens"] = d.max_tokens;
  j["seed"] = d.seed;
  j["max_rows"] = d.max_rows;
  j["strict"] = d.strict;
  j["tokens"] = "BOS + encode(prompt + completion) + EOS";
  return j.dump();
}
}  // namespace

TEST(ShardSettings, OlderCgprepSpellingIsRecognised) {
  cg::DataConfig a = small_config("unused");
  cg::DataConfig b = a;
  b.tokenizer = "/models/llama2/tokenizer.model";
  b.translate = false;
  b.angle_mode = "truncate";
  b.infill_fraction = 0.25;
  b.site_order = "file";
  for (const cg::DataConfig& d : {a, b}) {
    const cg::TextOptions t = cg::text_options(d);
    const std::string now = cg::settings_json(d, t);
    EXPECT_EQ(now.find("tokenizer"), std::string::npos) << now;  // identified by its sha256 only
    EXPECT_NE(now.find("\"site_order\":\"" + d.site_order + "\""), std::string::npos) << now;
    const std::vector<std::string> older = cg::legacy_settings_jsons(now, d);
    // Only site_order=file is what cgprep wrote before it recorded an order (pymatgen's changes a CIF folder's text).
    if (d.site_order == "file") {
      ASSERT_EQ(older.size(), 2u);
      EXPECT_EQ(older[0], before_site_order_settings_json(d, t));
      EXPECT_EQ(older[1], older_cgprep_settings_json(d, t));
      EXPECT_EQ(cg::legacy_settings_jsons(older[0], d), std::vector<std::string>{older[1]});
      EXPECT_TRUE(cg::legacy_settings_jsons(older[1], d).empty());  // already the oldest spelling
    } else {
      EXPECT_TRUE(older.empty()) << older.size();
    }
  }
  EXPECT_NE(cg::settings_json(a, cg::text_options(a)), cg::settings_json(b, cg::text_options(b)));
  EXPECT_TRUE(cg::legacy_settings_jsons("not json", a).empty());
}

TEST(ShardSettings, DifferencesNameTheDataKeys) {
  cg::DataConfig a = small_config("unused");
  cg::DataConfig b = a;
  b.tokenizer = "/elsewhere/tokenizer.model";  // not a shard setting
  const auto json = [](const cg::DataConfig& d) { return cg::settings_json(d, cg::text_options(d)); };
  EXPECT_TRUE(cg::settings_differences(json(a), json(b)).empty());
  b.copies = a.copies + 2;
  b.infill_fraction = 0;
  b.angle_mode = "truncate";
  b.site_order = "file";
  b.loss_on = "completion";
  EXPECT_EQ(cg::settings_differences(json(a), json(b)),
            (std::vector<std::string>{"data.angle_mode: \"round\" in the shards, \"truncate\" in the config",
                                      "data.site_order: \"pymatgen\" in the shards, \"file\" in the config",
                                      fmt::format("data.copies: {} in the shards, {} in the config", a.copies,
                                                  b.copies),
                                      fmt::format("data.infill_fraction: {} in the shards, 0.0 in the config",
                                                  nlohmann::json(a.infill_fraction).dump()),
                                      "data.loss_on: \"all\" in the shards, \"completion\" in the config"}));
  // An older cgprep's spelling (extra keys) compares on the keys both have.
  cg::DataConfig f = a;
  f.site_order = "file";  // the order older cgpreps wrote, so they have a spelling of it
  EXPECT_TRUE(cg::settings_differences(cg::legacy_settings_jsons(json(f), f).at(0), json(f)).empty());
  EXPECT_TRUE(cg::settings_differences("not json", json(a)).empty());
  // The same settings but for the loss_on cgprep recorded (the samples do not depend on it).
  b = a;
  b.loss_on = "completion";
  EXPECT_EQ(cg::other_loss_on_settings(json(a)), std::vector<std::string>{json(b)});
  EXPECT_EQ(cg::other_loss_on_settings(json(b)), std::vector<std::string>{json(a)});
  EXPECT_TRUE(cg::other_loss_on_settings("{}").empty());
}

TEST(Prep, EndToEndOnMp20Rows) {
  const std::string dir = fresh_dir("prep");
  cg::DataConfig d = small_config(dir);
  cg::PrepReport r = cg::run_prep(d, 2);
  ASSERT_EQ(r.splits.size(), 3u);
  cg::Tokenizer tok = cg::Tokenizer::load(dir + "/tokenizer.model");
  EXPECT_EQ(tok.hash(), cg::sha256_file(dir + "/tokenizer.model"));
  for (const char* split : {"train", "val", "test"}) {
    cg::ShardMeta m;
    cg::SampleSet s = cg::read_shard(cg::shard_path(dir, split, 0), &m);
    const int64_t copies = std::string(split) == "train" ? 2 : 1;
    EXPECT_EQ(m.rows_read, 120);
    EXPECT_EQ(m.rows_used + m.rows_skipped, 120);
    EXPECT_EQ(int64_t(s.size()), copies * m.rows_used) << split;  // max_tokens 1024: nothing too long here
    EXPECT_EQ(m.tokenizer_sha256, tok.hash());
    EXPECT_EQ(m.vocab_size, tok.vocab_size());
    EXPECT_EQ(m.source_sha256, cg::sha256_file(std::string(CG_SOURCE_DIR) + "/data/mp20/" + split + ".csv.gz"));
    {  // property_counts against the split's own cells
      const cg::Mp20Split mp = cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/" + split + ".csv.gz", 120);
      const auto counts = nlohmann::json::parse(m.property_counts);
      EXPECT_EQ(counts["crystals"], mp.crystals.size());
      EXPECT_EQ(counts["band_gap"], std::count_if(mp.crystals.begin(), mp.crystals.end(),
                                                  [](const cg::Crystal& c) { return c.band_gap.has_value(); }));
      EXPECT_EQ(counts["spacegroup"], mp.crystals.size());
    }
    auto settings = nlohmann::json::parse(m.settings_json);
    EXPECT_EQ(settings["augment"]["translate"], true);
    EXPECT_EQ(settings["text"]["angle_mode"], "round");
    int infill = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      std::vector<int32_t> ids(s.sample(i), s.sample(i) + s.length(i));
      ASSERT_EQ(ids.front(), tok.bos_id());
      ASSERT_EQ(ids.back(), tok.eos_id());
      const std::string prompt = tok.decode(std::vector<int32_t>(ids.begin(), ids.begin() + s.prompt_lens[i]));
      const std::string completion = tok.decode(std::vector<int32_t>(ids.begin() + s.prompt_lens[i], ids.end()));
      EXPECT_EQ(tok.decode(ids), prompt + completion);
      ASSERT_GE(prompt.size(), 2u);
      EXPECT_EQ(prompt.substr(prompt.size() - 2), ":\n");
      if (s.tasks[i] == 1) {
        ++infill;
        EXPECT_TRUE(cg::is_element(completion)) << completion;
        EXPECT_NE(prompt.find("[MASK]"), std::string::npos);
      } else {
        cg::Crystal c;
        std::string err;
        EXPECT_TRUE(cg::parse_crystal_text(completion, &c, &err)) << err << "\n" << completion;
      }
    }
    EXPECT_GT(infill, int(s.size()) / 6);  // infill_fraction 1/3
    EXPECT_LT(infill, int(s.size()) / 2);
  }
  // Only the training split is augmented: a validation or test crystal's text is its CSV row's, untranslated.
  for (const char* split : {"val", "test"}) {
    const cg::Mp20Split mp = cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/" + split + ".csv.gz", 120);
    const cg::SampleSet s = cg::read_shard(cg::shard_path(dir, split, 0));
    int generation = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.tasks[i] != 0) continue;
      const auto at = std::find(mp.source_rows.begin(), mp.source_rows.end(), int64_t(s.rows[i]));
      ASSERT_NE(at, mp.source_rows.end()) << split << " row " << s.rows[i];
      const cg::Crystal& c = mp.crystals[size_t(at - mp.source_rows.begin())];
      std::vector<int32_t> ids(s.sample(i) + s.prompt_lens[i], s.sample(i) + s.length(i));
      EXPECT_EQ(tok.decode(ids), cg::crystal_to_text(c)) << split << " " << c.id;
      ++generation;
    }
    EXPECT_GT(generation, 40) << split;
  }
  // The two copies of a training crystal differ (translation redrawn per copy).
  cg::SampleSet tr = cg::read_shard(cg::shard_path(dir, "train", 0));
  ASSERT_EQ(tr.rows[0], tr.rows[1]);
  EXPECT_EQ(tr.copies[1], 1);
  EXPECT_NE(std::vector<int32_t>(tr.sample(0), tr.sample(0) + tr.length(0)),
            std::vector<int32_t>(tr.sample(1), tr.sample(1) + tr.length(1)));

  // Same seed, one thread, several shards: the same samples; stale shards of a larger run are removed.
  const std::string dir2 = fresh_dir("prep2");
  cg::DataConfig d2 = d;
  d2.shards_dir = dir2;
  d2.shard_samples = 50;
  d2.val_csv = d2.test_csv = "";
  cg::run_prep(d2, 1);
  EXPECT_EQ(cg::list_shards(dir2, "train").size(), 5u);  // 240 samples / 50
  cg::SampleSet joined;
  for (const auto& p : cg::list_shards(dir2, "train")) joined.append(cg::read_shard(p));
  EXPECT_EQ(joined.tokens, tr.tokens);
  EXPECT_EQ(joined.offsets, tr.offsets);
  EXPECT_EQ(joined.prompt_lens, tr.prompt_lens);
  d2.shard_samples = 100000;
  cg::run_prep(d2, 1);
  EXPECT_EQ(cg::list_shards(dir2, "train").size(), 1u);

  // The tokenizer the first run fitted, given as a file: the same samples and the same recorded settings (the
  // tokenizer enters by its sha256, not by how data.tokenizer named it), so a run trained on either resumes on the
  // other.
  const std::string dir3 = fresh_dir("prep3");
  cg::DataConfig d3 = d;
  d3.shards_dir = dir3;
  d3.tokenizer = dir + "/tokenizer.model";
  cg::run_prep(d3, 2);
  cg::ShardMeta m1, m3;
  const cg::SampleSet first = cg::read_shard(cg::shard_path(dir, "train", 0), &m1);
  EXPECT_EQ(cg::read_shard(cg::shard_path(dir3, "train", 0), &m3).tokens, first.tokens);
  EXPECT_EQ(m3.tokenizer_sha256, m1.tokenizer_sha256);
  EXPECT_EQ(m3.settings_json, m1.settings_json);
}

TEST(Prep, TokenizerWithoutEosIsRefusedBeforeAnyShard) {
  // A BPE tokenizer.json with <unk> and <s> but no </s>: samples end with EOS, so cgprep must refuse it.
  const std::string dir = fresh_dir("no_eos");
  std::string vocab = "\"<unk>\": 0, \"<s>\": 1";
  for (int b = 0; b < 256; ++b) vocab += fmt::format(", \"<0x{:02X}>\": {}", b, 2 + b);
  vocab += ", \"\u2581\": 258";
  const std::string json_path = dir + "/tokenizer.json", model_path = dir + "/no_eos.model";
  std::ofstream(json_path) << "{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\u2581\"}, "
                               "\"model\": {\"type\": \"BPE\", \"vocab\": {" + vocab + "}, \"merges\": []}}";
  std::ofstream(model_path, std::ios::binary)
      << cg::serialize_sp_model(cg::sp_model_from_hf_tokenizer_json(json_path));
  ASSERT_LT(cg::Tokenizer::load(model_path).eos_id(), 0);
  cg::DataConfig d = small_config(dir + "/shards");
  d.tokenizer = model_path;
  try {
    cg::run_prep(d, 1);
    FAIL() << "a tokenizer without </s> was accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no </s> (EOS) piece"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(cg::shard_path(dir + "/shards", "train", 0)));
}

// tokenizer.json ids must be whole numbers >= 0 (nlohmann would convert 1e30 with undefined behaviour, -1 wrapped).
TEST(Prep, TokenizerJsonIdsThatAreNotWholeNumbersAreRefused) {
  const std::string dir = fresh_dir("bad_ids");
  for (const auto& [id, shown] : std::vector<std::pair<std::string, std::string>>{
           {"1e30", "1e+30"}, {"-1", "-1"}, {"1.5", "1.5"}, {"\"1\"", "\"1\""}}) {
    const std::string json_path = dir + "/tokenizer.json";
    std::ofstream(json_path) << "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": " + id +
                                    "}, \"merges\": []}}";
    try {
      cg::hf_tokenizer_json_vocab(json_path);
      ADD_FAILURE() << "id " << id << " was read";
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find("model.vocab id of \"a\" is " + shown + ", not a whole number >= 0"),
                std::string::npos) << e.what();
    }
  }
}

TEST(Prep, MalformedRowsAreCountedNotDropped) {
  const std::string dir = fresh_dir("bad");
  // The first 41 validation rows, then two copies of row 0 made malformed: partial occupancy, unknown element.
  cg::CsvTable t = cg::parse_csv(cg::read_maybe_gz(std::string(CG_SOURCE_DIR) + "/data/mp20/val.csv.gz"));
  t.rows.resize(41);
  auto occ = t.rows[0], elem = t.rows[0];
  const size_t id = t.column("material_id"), cif = t.column("cif");
  occ[id] = "mp-bad-occ";
  occ[cif].replace(occ[cif].rfind("  1\n"), 4, "  0.5\n");
  elem[id] = "mp-bad-el";
  elem[cif].replace(elem[cif].find("  Si  Si0"), 9, "  Qq  Si0");
  t.rows.push_back(occ);
  t.rows.push_back(elem);
  auto quote = [](const std::string& c) {
    std::string q = "\"";
    for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  const std::string csv = dir + "/bad.csv";
  {
    std::ofstream out(csv);
    for (size_t r = 0; r <= t.rows.size(); ++r) {
      const auto& cells = r == 0 ? t.header : t.rows[r - 1];
      for (size_t c = 0; c < cells.size(); ++c) out << (c ? "," : "") << quote(cells[c]);
      out << "\n";
    }
  }
  cg::DataConfig d = small_config(dir);
  d.train_csv = csv;
  d.val_csv = d.test_csv = "";
  d.max_rows = 0;
  d.copies = 1;
  cg::run_prep(d, 2);
  cg::ShardMeta m;
  cg::SampleSet first = cg::read_shard(cg::shard_path(dir, "train", 0), &m);
  EXPECT_EQ(m.rows_read, 43);
  EXPECT_EQ(m.rows_skipped, 2);
  auto skipped = nlohmann::json::parse(m.skipped_json);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0]["row"], 41);
  EXPECT_NE(skipped[0]["reason"].get<std::string>().find("mp-bad-occ: partial occupancy 0.5"), std::string::npos);
  EXPECT_NE(skipped[1]["reason"].get<std::string>().find("mp-bad-el: unknown element 'Qq'"), std::string::npos);
  d.strict = true;
  const auto seed0 = d.seed;
  d.seed = seed0 + 9;  // other samples: the failed run must not have written any of them
  const std::string before = cg::read_file(cg::shard_path(dir, "train", 0));
  try {
    cg::run_prep(d, 2);
    FAIL() << "data.strict must turn the first malformed row into an error";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mp-bad-occ"), std::string::npos) << e.what();
  }
  // A failed run leaves the earlier run's shards as they were, and no staging folder.
  EXPECT_EQ(cg::read_file(cg::shard_path(dir, "train", 0)), before);
  EXPECT_FALSE(std::filesystem::exists(dir + "/.cgprep.tmp"));
  d.seed = seed0;
  // Samples over data.max_tokens are skipped with a reason, not silently.
  d.strict = false;
  std::vector<int64_t> lens;
  for (size_t i = 0; i < first.size(); ++i) lens.push_back(first.length(i));
  std::sort(lens.begin(), lens.end());
  d.max_tokens = lens[lens.size() / 2];  // about half the samples are longer
  cg::run_prep(d, 2);
  m = cg::read_shard_meta(cg::shard_path(dir, "train", 0));
  skipped = nlohmann::json::parse(m.skipped_json);
  EXPECT_GT(m.rows_skipped, 2);
  EXPECT_EQ(int64_t(skipped.size()), m.rows_skipped);
  bool saw_long = false;
  const std::string needle = "> data.max_tokens = " + std::to_string(d.max_tokens);
  for (const auto& s : skipped) saw_long |= s["reason"].get<std::string>().find(needle) != std::string::npos;
  EXPECT_TRUE(saw_long);
  EXPECT_GT(m.samples, 0);
  EXPECT_EQ(m.samples + m.rows_skipped, 43);
  // The limit itself is allowed: exactly the samples of at most data.max_tokens tokens are kept, the median among them.
  const cg::SampleSet kept = cg::read_shard(cg::shard_path(dir, "train", 0));
  const auto fit = [&](int64_t n) { return n <= d.max_tokens; };
  EXPECT_EQ(int64_t(kept.size()), std::count_if(lens.begin(), lens.end(), fit));
  // A split of which nothing is usable is an error naming a reason, not an empty shard for cgtrain to trip on.
  d.max_tokens = 8;
  try {
    cg::run_prep(d, 2);
    FAIL() << "a split without a usable sample was written";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("train: no usable sample in " + csv + " (43 rows read, e.g. row 0: "),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("): check the file, or raise data.max_tokens"), std::string::npos)
        << e.what();  // every sample too long: here raising it would help
  }
}

// The formula cgprep derives is pymatgen's, of the sites sorted as its CifParser sorts them, and the crystal text
// lists the sites in that order too (data.site_order=pymatgen, the default: the reference code's Structure.from_str
// gave Ar, Na, Cl for this CIF), or as the file lists them with data.site_order=file: a P1 CIF listing Na, Cl, Ar has
// prompts stating ArNaCl either way (its sites in the file's order would spell NaClAr), each sample of it.
// data.translate and data.permute augment the training split only (prep.h): a validation or test sample's
// completion is its crystal's text as written, whatever the row, copy or seed; a training copy is moved.
TEST(Prep, OnlyTrainingSamplesAreAugmented) {
  cg::Crystal c;
  c.lattice = {5, 6, 7, 90, 90, 90};
  c.species = {"Li", "Na", "K", "Rb", "Cs", "Fr"};
  c.frac = {{0.1, 0.2, 0.3},    {0.4, 0.5, 0.6},    {0.7, 0.8, 0.9},
            {0.15, 0.25, 0.35}, {0.45, 0.55, 0.65}, {0.75, 0.85, 0.95}};
  cg::DataConfig d;
  d.infill_fraction = 0;  // generation samples: the completion is the whole crystal
  const std::string written = cg::crystal_to_text(c, cg::text_options(d));
  for (const bool translate : {false, true}) {
    d.translate = translate;
    d.permute = !translate;
    int moved = 0;
    for (int64_t row = 0; row < 8; ++row) {
      for (int split = 1; split <= 2; ++split)
        EXPECT_EQ(cg::make_sample(c, d, split, row, row % 3).completion, written) << split << " " << row;
      moved += cg::make_sample(c, d, 0, row, 0).completion != written;
    }
    EXPECT_GE(moved, 7) << (translate ? "translate" : "permute");  // a permutation is the identity 1 in 720
  }
}

TEST(Prep, SiteOrderOfTheTextAndTheDerivedFormula) {
  for (const char* order : {"pymatgen", "file"}) {
    const std::string dir = fresh_dir(std::string("cif_order_") + order);
    const cg::CsvTable t = cg::parse_csv(cg::read_maybe_gz(std::string(CG_SOURCE_DIR) + "/data/mp20/train.csv.gz"));
    fs::create_directories(dir + "/cifs");
    for (size_t r = 0; r < 40; ++r)  // text for the tokenizer to train on; mp-* ids come before zz in name order
      std::ofstream(dir + "/cifs/" + t.rows[r][t.column("material_id")] + ".cif") << t.rows[r][t.column("cif")];
    std::ofstream(dir + "/cifs/zz_nacl_ar.cif")
        << "data_x\n_cell_length_a 5.1\n_cell_length_b 5.6\n_cell_length_c 6.3\n_cell_angle_alpha 90\n"
           "_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n_atom_site_type_symbol\n_atom_site_fract_x\n"
           "_atom_site_fract_y\n_atom_site_fract_z\nNa 0 0 0\nCl 0.5 0.5 0.5\nAr 0.25 0.25 0.25\n";
    cg::DataConfig d = small_config(dir + "/shards");
    d.train_csv = dir + "/cifs";
    d.val_csv = d.test_csv = "";
    d.copies = 8;
    d.site_order = order;
    cg::run_prep(d, 2);
    cg::ShardMeta m;
    const cg::SampleSet s = cg::read_shard(cg::shard_path(dir + "/shards", "train", 0), &m);
    EXPECT_EQ(nlohmann::json::parse(m.settings_json)["text"]["site_order"], order);
    const cg::Tokenizer tok = cg::Tokenizer::load(dir + "/shards/tokenizer.model");
    const std::vector<std::string> want = std::string(order) == "pymatgen"
                                              ? std::vector<std::string>{"Ar", "Na", "Cl"}
                                              : std::vector<std::string>{"Na", "Cl", "Ar"};
    int written = 0, stated = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.rows[i] != 40 || s.tasks[i] != 0) continue;
      const std::string prompt = tok.decode(std::vector<int32_t>(s.sample(i), s.sample(i) + s.prompt_lens[i]));
      const std::string text =
          tok.decode(std::vector<int32_t>(s.sample(i) + s.prompt_lens[i], s.sample(i) + s.length(i)));
      cg::Crystal c;
      std::string err;
      ASSERT_TRUE(cg::parse_crystal_text(text, &c, &err)) << err << "\n" << text;
      EXPECT_EQ(c.species, want) << order << "\n" << text;
      ++written;
      if (const auto formula = cg::conditions_of_prompt(prompt).formula) {
        EXPECT_EQ(*formula, "ArNaCl") << prompt;
        ++stated;
      }
    }
    EXPECT_GT(written, 0);
    if (cg::have_spglib()) EXPECT_GT(stated, 0);  // the formula is stated beside the space group, derived by spglib
  }
}

// A missing input file is refused before anything is made, naming the key; a run that fails later leaves no empty
// data.shards_dir behind where there was none.
// A folder of CIFs (here MP-20's own CIF cells, one file each) trains conditional prompts: cgprep derives each
// crystal's formula and space group, which then read as Materials Project's own columns say; the shards record what
// was derived, and it enters their digest (MP-20's CSV shards, with nothing derived, keep theirs).
TEST(Prep, ACifFolderTrainsFormulaAndSpaceGroupPrompts) {
  const std::string dir = fresh_dir("cif_prep");
  const cg::CsvTable t = cg::parse_csv(cg::read_maybe_gz(std::string(CG_SOURCE_DIR) + "/data/mp20/train.csv.gz"));
  const size_t id = t.column("material_id"), cif = t.column("cif"), formula = t.column("pretty_formula"),
               sg = t.column("spacegroup.number");
  std::map<std::string, std::pair<std::string, std::string>> mp;  // material_id -> (formula, space group)
  fs::create_directories(dir + "/cifs");
  for (size_t r = 0; r < 60; ++r) {
    std::ofstream(dir + "/cifs/" + t.rows[r][id] + ".cif") << t.rows[r][cif];
    mp[t.rows[r][id]] = {t.rows[r][formula], t.rows[r][sg]};
  }
  cg::DataConfig d = small_config(dir + "/shards");
  d.train_csv = fs::relative(dir + "/cifs").string();  // as a user writes it, from the folder cgprep runs in
  ASSERT_TRUE(fs::path(d.train_csv).is_relative()) << d.train_csv;
  d.val_csv = d.test_csv = "";
  d.copies = 4;
  cg::run_prep(d, 2);
  cg::ShardMeta m;
  const cg::SampleSet s = cg::read_shard(cg::shard_path(dir + "/shards", "train", 0), &m);
  EXPECT_EQ(m.rows_used, 60);
  // The source is recorded absolute: checkpoints carry it to cgsample, which may run from another folder.
  EXPECT_EQ(m.source_path, fs::absolute(dir + "/cifs").lexically_normal().string());
  EXPECT_EQ(m.derived_properties, cg::have_spglib() ? "formula (pymatgen's reduced formula); spacegroup (spglib, "
                                                      "symprec 0.1 A, 5 degrees)"
                                                    : "formula (pymatgen's reduced formula); no spacegroup (built "
                                                      "without spglib)");
  // What the split carries, for cgtrain's training_data record: every crystal a formula and space group, nothing else.
  EXPECT_EQ(nlohmann::json::parse(m.property_counts),
            nlohmann::json::parse(fmt::format(R"({{"crystals": 60, "formula": 60, "spacegroup": {}, )"
                                              R"("formation_energy": 0, "band_gap": 0, "e_above_hull": 0}})",
                                              cg::have_spglib() ? 60 : 0)));
  // Material ids in name order (read_cif_folder's row order) to match rows to MP's columns.
  std::vector<std::string> ids;
  for (const auto& [k, v] : mp) ids.push_back(k);
  const cg::Tokenizer tok = cg::Tokenizer::load(dir + "/shards/tokenizer.model");
  int conditioned = 0, with_sg = 0, sg_agree = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.tasks[i] != 0) continue;
    const std::string prompt = tok.decode(std::vector<int32_t>(s.sample(i), s.sample(i) + s.prompt_lens[i]));
    const cg::GenerationConditions c = cg::conditions_of_prompt(prompt);
    if (!c.formula) continue;
    ++conditioned;
    const auto& [want_formula, want_sg] = mp.at(ids.at(size_t(s.rows[i])));
    EXPECT_EQ(*c.formula, want_formula) << prompt;
    EXPECT_FALSE(c.band_gap || c.formation_energy_per_atom || c.e_above_hull) << prompt;
    if (c.spacegroup) {
      ++with_sg;
      sg_agree += std::to_string(*c.spacegroup) == want_sg;
    }
  }
  if (cg::have_spglib()) {
    EXPECT_GT(conditioned, 60);  // 4 copies, 4 in 5 generation prompts draw the space group (and so the formula)
    EXPECT_EQ(with_sg, conditioned);
    EXPECT_GE(sg_agree, with_sg - 2);
  } else {
    EXPECT_EQ(conditioned, 0);  // the formula is stated only with another property, and none is known
  }
  // The digest: what was derived enters it; a shard without the attribute (an older cgprep's) reads as "".
  cg::LoaderOptions lo;
  lo.seq_len = 1024;
  const cg::Loader l = cg::Loader::from_shards(dir + "/shards", "train", lo);
  const std::string base = m.tokenizer_sha256 + "\n" + m.settings_json + "\n" + m.source_sha256;
  const std::string with = base + "\nderived " + m.derived_properties;
  EXPECT_EQ(l.shards_digest(m.settings_json), cg::sha256_hex(with.data(), with.size()).substr(0, 16));
  cg::ShardMeta older = m;
  older.derived_properties = "";
  cg::write_shard(dir + "/older.h5", s, older);
  EXPECT_EQ(cg::read_shard_meta(dir + "/older.h5").derived_properties, "");
  fs::create_directories(dir + "/older");
  fs::rename(dir + "/older.h5", cg::shard_path(dir + "/older", "train", 0));
  const cg::Loader lold = cg::Loader::from_shards(dir + "/older", "train", lo);
  EXPECT_EQ(lold.shards_digest(m.settings_json), cg::sha256_hex(base.data(), base.size()).substr(0, 16));
}

TEST(Prep, AMissingFileNamesItsKeyAndAFailedRunLeavesNoFolder) {
  const std::string dir = fresh_dir("missing");
  cg::DataConfig d = small_config(dir + "/shards");
  d.val_csv = dir + "/no_such_val.csv.gz";
  try {
    cg::run_prep(d, 1);
    FAIL() << "a missing data.val_csv was accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.val_csv: " + d.val_csv + " does not exist; set data.val_csv to a CSV "
                                         "in CDVAE's layout or a folder of CIF files (data.val_csv= leaves the split "
                                         "out)"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/shards"));
  d.val_csv = "no_such_val.csv.gz";  // relative: said where it was looked for
  try {
    cg::run_prep(d, 1);
    FAIL() << "a missing data.val_csv was accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist in " + fs::current_path().string() + " (relative paths are "
                                         "read from the folder cgprep runs in)"), std::string::npos) << e.what();
  }
  d.val_csv = "";
  d.tokenizer_vocab_size = 7;  // fails after the folder is made (too few pieces for the training text)
  EXPECT_THROW(cg::run_prep(d, 1), std::exception);
  EXPECT_FALSE(fs::exists(dir + "/shards"));
  d.shards_dir = dir + "/new/deeper/shards/";  // nor the parents it made for it
  EXPECT_THROW(cg::run_prep(d, 1), std::exception);
  EXPECT_FALSE(fs::exists(dir + "/new"));
  EXPECT_TRUE(fs::is_directory(dir));
  fs::create_directories(dir + "/mine");  // a folder that was there before stays
  d.shards_dir = dir + "/mine";
  EXPECT_THROW(cg::run_prep(d, 1), std::exception);
  EXPECT_TRUE(fs::is_directory(dir + "/mine"));
}

// A stop signal (cgprep's handlers store its number in the flag run_prep polls) is a failure: run_prep throws saying
// so, and nothing of the run is left: no staging folder, no data.shards_dir it made, an earlier run's files
// byte-identical. Here the flag is set from another thread once the staging folder holds the tokenizer, i.e. while
// samples are being made: MP-20's whole train split with 8 copies keeps run_prep there for seconds.
TEST(Prep, AStopSignalLeavesNothingOfTheRun) {
  const std::string dir = fresh_dir("stop");
  const auto files_of = [](const std::string& folder) {
    std::map<std::string, std::string> out;  // name -> bytes
    for (const auto& e : fs::directory_iterator(folder))
      out[e.path().filename().string()] = e.is_regular_file() ? cg::read_file(e.path().string()) : "(folder)";
    return out;
  };
  const auto stopped_run = [](const cg::DataConfig& d, bool stop_before) -> std::string {
    std::atomic<int> stop{stop_before ? SIGTERM : 0};
    std::atomic<bool> done{false};
    std::thread asker([&] {
      const std::string staged = d.shards_dir + "/.cgprep.tmp/tokenizer.model";
      while (!done.load() && !fs::exists(staged)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      stop.store(SIGTERM);
    });
    std::string error;
    try {
      cg::run_prep(d, 2, &stop);
    } catch (const cg::Error& e) {
      error = e.what();
    }
    done = true;
    asker.join();
    return error;
  };
  cg::DataConfig d = small_config(dir + "/new/shards");
  d.val_csv = d.test_csv = "";
  d.max_rows = 0;
  d.copies = 8;
  // Into a folder that was not there: it goes, and the parents the run made for it.
  std::string error = stopped_run(d, false);
  EXPECT_NE(error.find("stopped by signal 15 (SIGTERM) before the shards were written; nothing of this run was kept "
                       "and " + d.shards_dir + ", which it made, is removed (with any parent it made)"),
            std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir + "/new"));
  // Asked before anything was made: nothing is.
  error = stopped_run(d, true);
  EXPECT_NE(error.find("stopped by signal 15 (SIGTERM)"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir + "/new"));
  // Into a folder of an earlier run's shards: they stay as they were.
  cg::DataConfig first = small_config(dir + "/old");
  first.max_rows = 30;
  first.test_csv = "";
  cg::run_prep(first, 2);
  const auto before = files_of(dir + "/old");
  ASSERT_TRUE(before.count("train-00000.h5") && before.count("val-00000.h5") && before.count("tokenizer.model"));
  d.shards_dir = dir + "/old";
  error = stopped_run(d, false);
  EXPECT_NE(error.find("stopped by signal 15 (SIGTERM) before the shards were written; nothing of this run was kept "
                       "and " + d.shards_dir + " is as it was"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir + "/old/.cgprep.tmp"));
  EXPECT_EQ(files_of(dir + "/old"), before);
}

// A full disk (a 256 KiB tmpfs) while a run writes its shards: run_prep fails with the OS reason, naming the shard
// and what to do, and leaves nothing of the run: no staging folder, the earlier run's files byte-identical.
TEST(Prep, AFullDiskKeepsTheEarlierRun) {
  const std::string dir = fresh_dir("full");
  cg::test::TmpfsMount tmpfs(dir + "/tmpfs", 256 * 1024);
  if (!tmpfs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  const auto sha_of_files = [](const std::string& folder) {
    std::map<std::string, std::string> out;  // name -> sha256 of its bytes
    for (const auto& e : fs::directory_iterator(folder))
      out[e.path().filename().string()] = cg::sha256_file(e.path().string());
    return out;
  };
  cg::DataConfig d = small_config(tmpfs.dir + "/shards");
  d.max_rows = 30;
  d.val_csv = d.test_csv = "";
  cg::run_prep(d, 2, nullptr, "data: {copies: 2}\n");
  const auto before = sha_of_files(d.shards_dir);
  ASSERT_TRUE(before.count("train-00000.h5") && before.count("tokenizer.model") && before.count("cgprep_config.yaml"));
  d.max_rows = 2000;  // about 1 MiB of shards
  d.copies = 4;
  std::string error;
  try {
    cg::run_prep(d, 2, nullptr, "data: {copies: 4}\n");
  } catch (const cg::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("cannot write shard " + d.shards_dir + "/.cgprep.tmp/train-00000.h5: HDF5 call failed: "),
            std::string::npos) << error;
  EXPECT_NE(error.find("No space left on device (errno 28); the disk is full: free disk space or set "
                       "data.shards_dir to a folder with room, then run cgprep again; nothing of this run was kept "
                       "(an earlier run's shards in data.shards_dir are as they were)"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(d.shards_dir + "/.cgprep.tmp"));
  EXPECT_EQ(sha_of_files(d.shards_dir), before);
}

// Shards of a split the run does not write are an earlier run's: removed, so that cgtrain cannot validate on them.
TEST(Prep, SplitsNotWrittenLoseTheirOldShards) {
  const std::string dir = fresh_dir("old_splits");
  cg::DataConfig d = small_config(dir);
  d.max_rows = 30;
  d.test_csv = "";
  cg::run_prep(d, 2);
  ASSERT_TRUE(std::filesystem::exists(cg::shard_path(dir, "val", 0)));
  d.val_csv = "";
  d.seed = 5;
  cg::run_prep(d, 2);
  EXPECT_FALSE(std::filesystem::exists(cg::shard_path(dir, "val", 0)));
  EXPECT_TRUE(std::filesystem::exists(cg::shard_path(dir, "train", 0)));
}

// cgprep replaces tokenizer.model and every shard file of data.shards_dir: it refuses folders that are not its own.
TEST(Prep, RefusesFoldersThatAreNotItsOwn) {
  const auto error_of = [](const std::string& dir) -> std::string {
    try {
      cg::check_shards_dir_owned(dir);
    } catch (const cg::Error& e) {
      return e.what();
    }
    return "";
  };
  const auto touch = [](const std::string& path, const std::string& text) { std::ofstream(path) << text; };
  const std::string d = fresh_dir("owned");
  EXPECT_EQ(error_of(d + "/not_yet"), "");  // cgprep creates it
  EXPECT_EQ(error_of(d), "");               // empty
  touch(d + "/notes.txt", "mine");
  EXPECT_EQ(error_of(d), "");  // files cgprep does not write are left alone

  // A Hugging Face model folder (and its tokenizer.model), an adapter, a run folder.
  const std::string hf = fresh_dir("owned_hf");
  touch(hf + "/config.json", "{}");
  touch(hf + "/model.safetensors", "x");
  touch(hf + "/tokenizer.model", "the model's own");
  const std::string e = error_of(hf);
  EXPECT_NE(e.find("holds config.json, model.safetensors: it is a model, adapter or run folder"), std::string::npos)
      << e;
  EXPECT_NE(e.find("data.shards_dir"), std::string::npos) << e;
  const std::string adapter = fresh_dir("owned_adapter");
  touch(adapter + "/adapter_config.json", "{}");
  EXPECT_NE(error_of(adapter).find("adapter_config.json"), std::string::npos);
  const std::string run = fresh_dir("owned_run");
  fs::create_directories(run + "/checkpoints");
  EXPECT_NE(error_of(run).find("holds checkpoints:"), std::string::npos) << error_of(run);

  // Shard-named files without cgprep's cgprep_config.yaml: someone else's; with it, an earlier cgprep's.
  touch(d + "/train-00007.h5", "x");
  const std::string orphan = error_of(d);
  EXPECT_NE(orphan.find("holds train-00007.h5 but no cgprep_config.yaml"), std::string::npos) << orphan;
  touch(d + "/cgprep_config.yaml", "data: {}\n");
  EXPECT_EQ(error_of(d), "");

  touch(d + "/a_file", "x");
  EXPECT_NE(error_of(d + "/a_file").find("is not a folder"), std::string::npos);
  for (const auto& p : {d, hf, adapter, run}) fs::remove_all(p);
}

// Only data.train_csv set: val and test would be MP-20's defaults. cgprep says so, naming the keys to set, and says
// nothing once they are set (or emptied), nor when train is MP-20's own.
TEST(Prep, AnOwnTrainSplitWithMp20ValAndTestIsWarnedOf) {
  const std::string dir = fresh_dir("mp20_defaults");
  const std::string csv = dir + "/own.csv";
  write_csv(csv, mp20_rows("val", 20));
  const fs::path cwd = fs::current_path();
  fs::current_path(CG_SOURCE_DIR);  // the defaults are relative to the folder cgprep runs in
  cg::DataConfig d;                 // val_csv, test_csv: MP-20's defaults
  d.train_csv = csv;
  d.shards_dir = dir + "/shards";
  d.max_rows = 20;
  d.tokenizer_vocab_size = 400;
  const std::string both = logged([&] { cg::run_prep(d, 2); });
  d.val_csv = "";
  const std::string test_only = logged([&] { cg::run_prep(d, 2); });
  d.test_csv = dir + "/own.csv";
  const std::string none = logged([&] { cg::run_prep(d, 2); });
  cg::DataConfig mp20 = d;
  mp20.train_csv = cg::DataConfig().train_csv;
  mp20.val_csv = cg::DataConfig().val_csv;
  mp20.test_csv = std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz";  // the default, spelled otherwise
  const std::string all_mp20 = logged([&] { cg::run_prep(mp20, 2); });
  fs::current_path(cwd);
  EXPECT_NE(both.find("data.train_csv is " + csv + ", but data.val_csv=data/mp20/val.csv.gz and "
                      "data.test_csv=data/mp20/test.csv.gz are still MP-20's defaults: cgtrain would validate on "
                      "MP-20, and cgeval and cgsample would compare with and draw conditions from MP-20 "
                      "(data.test_csv). Set data.val_csv= and data.test_csv= to your own splits (empty: no such "
                      "split"), std::string::npos) << both;
  EXPECT_EQ(both.find("\nerror: "), std::string::npos) << both;  // a warning, not a refusal
  EXPECT_NE(test_only.find("but data.test_csv=data/mp20/test.csv.gz is still MP-20's default: cgeval and cgsample "
                           "would compare"), std::string::npos) << test_only;
  EXPECT_EQ(test_only.find("validate on MP-20"), std::string::npos) << test_only;
  EXPECT_EQ(none.find("MP-20's default"), std::string::npos) << none;
  EXPECT_EQ(all_mp20.find("MP-20's default"), std::string::npos) << all_mp20;
  EXPECT_EQ(all_mp20.find("\nerror: "), std::string::npos) << all_mp20;
}

// Another dataset's column names mapped with data.columns: the same shards (token arrays, property counts) as the
// same rows under MP-20's names; the mapping recorded beside the source. Bad mappings fail naming entry and column.
TEST(Prep, RenamedColumnsMappedWithDataColumnsGiveTheSameShards) {
  const std::string dir = fresh_dir("columns");
  const cg::CsvTable t = mp20_rows("val", 30);
  write_csv(dir + "/mp20.csv", t);
  write_csv(dir + "/own.csv", select_columns(t, {{"cif", "structure"}, {"material_id", "id"},
                                                 {"formation_energy_per_atom", "heat_ref"}, {"band_gap", "gap"},
                                                 {"pretty_formula", "formula"}, {"e_above_hull", "ehull"},
                                                 {"spacegroup.number", "sg"}}));
  cg::DataConfig d = small_config(dir + "/a");
  d.train_csv = dir + "/mp20.csv";
  d.val_csv = d.test_csv = "";
  d.max_rows = 0;
  cg::run_prep(d, 2);
  // Identity entries are as none: the same shards, recorded alike (a run on either resumes on the other).
  cg::DataConfig identity = d;
  identity.shards_dir = dir + "/identity";
  identity.columns = {"material_id=material_id", "band_gap=band_gap"};
  cg::run_prep(identity, 2);
  const cg::ShardMeta mi = cg::read_shard_meta(cg::shard_path(identity.shards_dir, "train", 0));
  const cg::ShardMeta m0 = cg::read_shard_meta(cg::shard_path(d.shards_dir, "train", 0));
  EXPECT_EQ(mi.settings_json, m0.settings_json);
  EXPECT_EQ(mi.source_columns, "");
  EXPECT_EQ(mi.tokenizer_sha256, m0.tokenizer_sha256);
  cg::DataConfig own = d;
  own.shards_dir = dir + "/b";
  own.train_csv = dir + "/own.csv";
  own.columns = {"material_id=id", "cif=structure", "formation_energy_per_atom=heat_ref", "band_gap=gap",
                 "pretty_formula=formula", "e_above_hull=ehull", "spacegroup.number=sg"};
  cg::run_prep(own, 2);
  cg::ShardMeta ma, mb;
  const cg::SampleSet a = cg::read_shard(cg::shard_path(d.shards_dir, "train", 0), &ma);
  const cg::SampleSet b = cg::read_shard(cg::shard_path(own.shards_dir, "train", 0), &mb);
  EXPECT_EQ(a.size(), 60u);  // 30 rows, 2 copies
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.offsets, a.offsets);
  EXPECT_EQ(b.prompt_lens, a.prompt_lens);
  EXPECT_EQ(b.rows, a.rows);
  EXPECT_EQ(mb.property_counts, ma.property_counts);
  const auto with_energy = std::count_if(t.rows.begin(), t.rows.end(), [&](const std::vector<std::string>& r) {
    return !r[t.column("formation_energy_per_atom")].empty();
  });
  EXPECT_EQ(nlohmann::json::parse(ma.property_counts)["formation_energy"], with_energy);
  EXPECT_EQ(ma.source_columns, "");  // MP-20's names: nothing recorded, as before
  EXPECT_EQ(nlohmann::json::parse(ma.settings_json).count("columns"), 0u);
  EXPECT_EQ(mb.source_columns, "material_id=id, cif=structure, pretty_formula=formula, spacegroup.number=sg, "
                               "formation_energy_per_atom=heat_ref, band_gap=gap, e_above_hull=ehull");
  EXPECT_EQ(nlohmann::json::parse(mb.settings_json)["columns"], nlohmann::json(own.columns));

  // Without the mapping: the missing properties are named, and so are the numeric columns nothing read (not the
  // index column pandas writes), with the data.columns entry that would read one.
  write_csv(dir + "/perov.csv", select_columns(t, {{"", ""}, {"material_id", "material_id"}, {"cif", "cif"},
                                                   {"formation_energy_per_atom", "heat_ref"},
                                                   {"band_gap", "dir_gap"}, {"elements", "elements"}}));
  cg::DataConfig perov = d;
  perov.shards_dir = dir + "/c";
  perov.train_csv = dir + "/perov.csv";
  const std::string hint = logged([&] { cg::run_prep(perov, 2); });
  EXPECT_NE(hint.find("train: " + perov.train_csv + " lacks the column(s) formation_energy_per_atom, band_gap, "
                      "e_above_hull: unknown for every row, never in a prompt; it has heat_ref, dir_gap (not read): "
                      "map one with data.columns=[formation_energy_per_atom=heat_ref]"), std::string::npos) << hint;
  // With a mapping given, the hint keeps its entries: the setting it shows replaces the one given.
  cg::DataConfig partial = perov;
  partial.shards_dir = dir + "/c1";
  partial.columns = {"formation_energy_per_atom=heat_ref", "cif=cif"};
  const std::string extended = logged([&] { cg::run_prep(partial, 2); });
  EXPECT_NE(extended.find("train: " + perov.train_csv + " lacks the column(s) band_gap, e_above_hull: unknown for "
                          "every row, never in a prompt; it has dir_gap (not read): map one with "
                          "data.columns=[formation_energy_per_atom=heat_ref, band_gap=dir_gap]"), std::string::npos)
      << extended;
  perov.columns = {"formation_energy_per_atom=heat_ref", "band_gap=dir_gap"};
  const std::string mapped = logged([&] { cg::run_prep(perov, 2); });
  EXPECT_NE(mapped.find("lacks the column(s) e_above_hull: unknown for every row, never in a prompt\n"),
            std::string::npos) << mapped;
  nlohmann::json counts = nlohmann::json::parse(ma.property_counts);  // formula and space group derived now
  counts["e_above_hull"] = 0;
  EXPECT_EQ(nlohmann::json::parse(cg::read_shard_meta(cg::shard_path(perov.shards_dir, "train", 0)).property_counts),
            counts);

  // cgsample and cgeval read the file the shards were made from as cgprep read it, whatever the config says (often
  // nothing: data.columns given to cgprep alone), and say so; a config with the same mapping hears nothing.
  cg::DataConfig later = perov;
  later.columns = {};
  std::string described;
  std::string said = logged([&] { described = cg::data_csv_columns(perov.train_csv, later).describe(); });
  EXPECT_EQ(described, "formation_energy_per_atom=heat_ref, band_gap=dir_gap");
  EXPECT_NE(said.find("[warning] " + perov.train_csv + " is the file the train shards in " + perov.shards_dir +
                      " were made from, with data.columns=[formation_energy_per_atom=heat_ref, band_gap=dir_gap], "
                      "but this config says data.columns=[]: it is read with the shards' mapping, as cgprep read it; "
                      "set data.columns=[formation_energy_per_atom=heat_ref, band_gap=dir_gap] in this config"),
            std::string::npos) << said;
  later.columns = {"band_gap=dir_gap", "cif=cif", "formation_energy_per_atom=heat_ref"};  // the same mapping
  said = logged([&] { described = cg::data_csv_columns(perov.train_csv, later).describe(); });
  EXPECT_EQ(described, "formation_energy_per_atom=heat_ref, band_gap=dir_gap");
  EXPECT_EQ(said, "");
  const auto recorded = cg::shards_columns(perov.shards_dir);
  ASSERT_TRUE(recorded.has_value());
  EXPECT_EQ(recorded->columns, perov.columns);
  ASSERT_EQ(recorded->sources.size(), 1u);  // train only
  EXPECT_EQ(recorded->sources[0].first, "train");
  EXPECT_FALSE(cg::shards_columns(dir + "/none").has_value());

  // Bad mappings: an unknown name, a column the file lacks, no '=' — each an error before any shard is written.
  const auto error_with = [&](std::vector<std::string> columns) {
    cg::DataConfig bad = perov;
    bad.shards_dir = dir + "/bad";
    bad.columns = std::move(columns);
    const std::string log = logged([&] { cg::run_prep(bad, 2); });
    EXPECT_FALSE(fs::exists(bad.shards_dir)) << log;
    return log.substr(log.find("\nerror: ") == std::string::npos ? log.size() : log.find("\nerror: "));
  };
  EXPECT_NE(error_with({"heat=heat_ref"}).find("data.columns entry 'heat=heat_ref': 'heat' is no column cgtrain "
                                               "reads; the left side is one of material_id, cif, pretty_formula, "
                                               "spacegroup.number, formation_energy_per_atom, band_gap, "
                                               "e_above_hull"), std::string::npos);
  EXPECT_NE(error_with({"band_gap=ind_gap"}).find("data.columns maps band_gap to column 'ind_gap', which the CSV "
                                                  "lacks; its columns are '', 'material_id', 'cif', "
                                                  "'heat_ref', 'dir_gap', 'elements': correct data.columns"),
            std::string::npos);
  EXPECT_NE(error_with({"band_gap=ind_gap"}).find("(in " + perov.train_csv + ")"), std::string::npos);
  EXPECT_NE(error_with({"heat_ref"}).find("data.columns entry 'heat_ref' is not name=column"), std::string::npos);
  EXPECT_NE(error_with({"band_gap=dir_gap", "band_gap=heat_ref"}).find("data.columns maps band_gap twice"),
            std::string::npos);
  EXPECT_NE(error_with({"band_gap=dir_gap", "e_above_hull=dir_gap"}).find("data.columns maps both band_gap and "
                                                                          "e_above_hull to column 'dir_gap'"),
            std::string::npos);
}

// Shards an older cgprep made with a mapping that renames a column away from its own name read it under both names,
// yet record the same settings: only columns_semantics, which cgprep writes beside source_columns now, tells them
// apart. Such shards, the marker stripped as that cgprep wrote them, are refused where their mapping is read (cgtrain,
// cgsample, cgeval), saying to run cgprep again; stripped shards whose mapping renames nothing away (a swap, a column
// of another name) and shards without a mapping read as before.
TEST(Prep, ShardsOfAnOlderCgprepWithASelfRenamingMappingAreRefused) {
  const std::string dir = fresh_dir("columns_semantics");
  const cg::CsvTable t = mp20_rows("val", 20);
  write_csv(dir + "/mp20.csv", t);
  write_csv(dir + "/own.csv", select_columns(t, {{"material_id", "material_id"}, {"cif", "cif"},
                                                 {"band_gap", "gap"}}));
  const auto prep = [&](const std::string& name, const std::string& csv, std::vector<std::string> columns) {
    cg::DataConfig d = small_config(dir + "/" + name);
    d.train_csv = csv;
    d.val_csv = d.test_csv = "";
    d.max_rows = 0;
    d.copies = 1;
    d.columns = std::move(columns);
    logged([&] { cg::run_prep(d, 2); });
    return d;
  };
  // As a cgprep before the marker wrote them: the attribute left out, all else as it was.
  const auto strip_marker = [](const std::string& shards_dir) {
    const std::string path = cg::shard_path(shards_dir, "train", 0);
    cg::ShardMeta meta;
    const cg::SampleSet s = cg::read_shard(path, &meta);
    meta.columns_semantics.clear();  // write_shard then writes no columns_semantics attribute
    cg::write_shard(path, s, meta);
    EXPECT_EQ(cg::read_shard_meta(path).columns_semantics, "");
  };
  const cg::DataConfig renamed = prep("renamed", dir + "/mp20.csv", {"band_gap=formation_energy_per_atom"});
  const std::string shard = cg::shard_path(renamed.shards_dir, "train", 0);
  EXPECT_EQ(cg::read_shard_meta(shard).columns_semantics, "rename");
  ASSERT_TRUE(cg::shards_columns(renamed.shards_dir).has_value());  // made now: read
  EXPECT_EQ(cg::data_csv_columns(renamed.train_csv, renamed).describe(), "band_gap=formation_energy_per_atom");
  strip_marker(renamed.shards_dir);
  const std::string want = "shard '" + shard + "' was made by a cgprep older than data.columns' renames: with "
                           "data.columns=[band_gap=formation_energy_per_atom] it read column 'formation_energy_per_atom' "
                           "as both band_gap and formation_energy_per_atom (this build: as band_gap only), stating one "
                           "value as two properties; run cgprep again with this config to remake the shards in " +
                           renamed.shards_dir;
  std::string e = test_error_of_impl([&] { cg::shards_columns(renamed.shards_dir); });  // cgtrain's read
  EXPECT_NE(e.find(want), std::string::npos) << e;
  // cgsample and cgeval reading the file the shards were made from, or any other CSV, with the shards' mapping.
  e = test_error_of_impl([&] { cg::data_csv_columns(renamed.train_csv, renamed); });
  EXPECT_NE(e.find(want), std::string::npos) << e;
  // The shards remade: read again.
  cg::run_prep(renamed, 2);
  EXPECT_EQ(cg::shards_columns(renamed.shards_dir)->columns, renamed.columns);

  // Not affected, stripped or not: a swap (each name read from the other's column, then as now), a rename from a
  // column no MP-20 name has, and no mapping (nothing recorded, no marker written).
  for (const auto& [name, csv, columns] : std::vector<std::tuple<std::string, std::string, std::vector<std::string>>>{
           {"swap", dir + "/mp20.csv", {"band_gap=formation_energy_per_atom", "formation_energy_per_atom=band_gap"}},
           {"other_name", dir + "/own.csv", {"band_gap=gap"}},
           {"none", dir + "/mp20.csv", {}}}) {
    SCOPED_TRACE(name);
    const cg::DataConfig d = prep(name, csv, columns);
    EXPECT_EQ(cg::read_shard_meta(cg::shard_path(d.shards_dir, "train", 0)).columns_semantics,
              columns.empty() ? "" : "rename");
    strip_marker(d.shards_dir);
    const auto read = cg::shards_columns(d.shards_dir);
    ASSERT_TRUE(read.has_value());
    EXPECT_EQ(read->columns, columns);
    EXPECT_EQ(test_error_of_impl([&] { cg::data_csv_columns(d.train_csv, d); }), "<no error>");
  }
}

// pretty_formula cells are checked against the structure: one that is no formula or another composition's is
// replaced by the derived formula (warned of), an unreduced or reordered spelling becomes pymatgen's reduced formula.
// MP-20's own column is that formula for every row, so the edited CSV must give the shards of the original.
TEST(Prep, FormulaCellsAreCheckedAgainstTheStructure) {
  const std::string dir = fresh_dir("formula_cells");
  cg::CsvTable t = mp20_rows("val", 12);  // SiOs, LuTlS2, LuTlSe2, LuSi, LuCoC2, ...
  write_csv(dir + "/mp20.csv", t);
  const size_t f = t.column("pretty_formula");
  ASSERT_EQ(t.rows[3][f], "LuSi");
  ASSERT_EQ(t.rows[4][f], "LuCoC2");
  t.rows[0][f] = "Si1 Os1";  // pymatgen's Composition.formula: a formula, not as prompts write it
  t.rows[1][f] = "NaCl";     // another crystal's
  t.rows[2][f] = "xyz";
  t.rows[3][f] = "Lu2Si2";   // unreduced
  t.rows[4][f] = "C2CoLu";   // in another order
  t.rows[5][f] = " " + t.rows[5][f] + " ";  // padded: pymatgen reads past the blanks
  // Parts spaced by runs of blanks, as pymatgen's Composition reads them too: "Lu  Tl  Se2", "Lu \tTl \tSe2".
  const auto spaced = [](const std::string& formula, const std::string& blanks) {
    std::string out;
    for (const char ch : formula)
      out += (std::isupper(static_cast<unsigned char>(ch)) && !out.empty() ? blanks : "") + ch;
    return out;
  };
  const std::string six = t.rows[6][f], seven = t.rows[7][f];
  t.rows[6][f] = spaced(six, "  ");
  t.rows[7][f] = spaced(seven, " \t");
  ASSERT_NE(t.rows[6][f], six);
  ASSERT_NE(t.rows[7][f], seven);
  write_csv(dir + "/edited.csv", t);
  cg::DataConfig d = small_config(dir + "/a");
  d.train_csv = dir + "/mp20.csv";
  d.val_csv = d.test_csv = "";
  d.max_rows = 0;
  const std::string plain = logged([&] { cg::run_prep(d, 2); });
  cg::DataConfig e = d;
  e.shards_dir = dir + "/b";
  e.train_csv = dir + "/edited.csv";
  const std::string edited = logged([&] { cg::run_prep(e, 2); });
  EXPECT_EQ(plain.find("formula cell"), std::string::npos) << plain;
  EXPECT_NE(edited.find("[warning] train: 2 row(s) of " + e.train_csv + " have a formula cell that is not a formula "
                        "or not the composition of their structure; their prompts state the formula derived from the "
                        "structure instead (the first: mp-1001604: 'NaCl' is not the composition of its structure; "
                        "LuTlS2 stated instead)"), std::string::npos) << edited;
  EXPECT_NE(edited.find("train: 6 formula cell(s) of " + e.train_csv + " written as pymatgen's reduced formula, as "
                        "every prompt writes formulas (the first: mp-10015: Si1 Os1 -> SiOs)"), std::string::npos)
      << edited;
  cg::ShardMeta ma, mb;
  const cg::SampleSet a = cg::read_shard(cg::shard_path(d.shards_dir, "train", 0), &ma);
  const cg::SampleSet b = cg::read_shard(cg::shard_path(e.shards_dir, "train", 0), &mb);
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.offsets, a.offsets);
  EXPECT_EQ(ma.derived_properties, "");  // MP-20's cells: nothing derived, as before
  EXPECT_EQ(mb.derived_properties, "formula (pymatgen's reduced formula)");
  // The prompts state MP's formulas, not the cells: decode the generation prompts of the edited run.
  const cg::Tokenizer tok = cg::Tokenizer::load(e.shards_dir + "/tokenizer.model");
  std::string prompts;
  for (size_t i = 0; i < b.size(); ++i)
    prompts += tok.decode(std::vector<int32_t>(b.sample(i), b.sample(i) + b.prompt_lens[i])) + "\n";
  for (const char* wrong : {"Si1 Os1", "NaCl", "xyz", "Lu2Si2", "C2CoLu"})
    EXPECT_EQ(prompts.find(wrong), std::string::npos) << wrong << "\n" << prompts;
}

// A train split in which no crystal reads: said as for any split without a usable sample (rows read, the first
// reason, what to check), not as a tokenizer without text; data.max_tokens is named only where length dropped some.
TEST(Prep, ATrainSplitOfWhichNothingReadsSaysWhy) {
  const std::string dir = fresh_dir("nothing_reads");
  cg::CsvTable t = mp20_rows("val", 3);
  const size_t cif = t.column("cif");
  for (auto& row : t.rows) row[cif].replace(row[cif].rfind("  1\n"), 4, "  0.5\n");  // partial occupancy
  write_csv(dir + "/bad.csv", t);
  cg::DataConfig d = small_config(dir + "/shards");
  d.train_csv = dir + "/bad.csv";
  d.val_csv = d.test_csv = "";
  d.max_rows = 0;
  const std::string e = test_error_of_impl([&] { cg::run_prep(d, 2); });
  EXPECT_NE(e.find("train: no usable sample in " + d.train_csv + " (3 rows read, e.g. row 0: mp-10015: partial "
                   "occupancy 0.5"), std::string::npos) << e;
  EXPECT_NE(e.find("): check the file"), std::string::npos) << e;
  EXPECT_EQ(e.find("max_tokens"), std::string::npos) << e;
  EXPECT_EQ(e.find("tokenizer"), std::string::npos) << e;
  // The same rows as val, with a train split that reads: the same words for val.
  d.val_csv = d.train_csv;
  d.train_csv = std::string(CG_SOURCE_DIR) + "/data/mp20/train.csv.gz";
  d.max_rows = 30;
  const std::string v = test_error_of_impl([&] { cg::run_prep(d, 2); });
  EXPECT_NE(v.find("val: no usable sample in " + d.val_csv + " (3 rows read, e.g. row 0: mp-10015: partial "
                   "occupancy 0.5"), std::string::npos) << v;
  EXPECT_EQ(v.find("max_tokens"), std::string::npos) << v;
}

// Rows with an empty material_id: left out, and said once with their count, the first rows and what to do; one such
// row is named alone; a file with ids for all: no warning.
TEST(Prep, RowsWithoutAMaterialIdAreWarnedOfOnce) {
  const std::string dir = fresh_dir("no_ids");
  cg::CsvTable t = mp20_rows("val", 9);
  const size_t id = t.column("material_id");
  for (size_t r : {1, 3, 4, 5, 6, 8}) t.rows[r][id] = "";
  write_csv(dir + "/no_ids.csv", t);
  std::string log = logged([&] {
    const cg::Mp20Split s = cg::read_mp20(dir + "/no_ids.csv");
    EXPECT_EQ(s.crystals.size(), 3u);
    EXPECT_EQ(s.source_rows, (std::vector<int64_t>{0, 2, 7}));
  });
  const std::string said = dir + "/no_ids.csv: 6 row(s) have an empty material_id and are left out (rows 1, 3, 4, 5 "
                           "and 2 more): every crystal is named by its id (in the shards, skip reasons and cgeval's "
                           "items); fill in their material_id cells (any name, one per row), or, if another column "
                           "holds the ids, name it with data.columns=[material_id=<that column>]";
  EXPECT_NE(log.find(said), std::string::npos) << log;
  EXPECT_EQ(log.find("material_id", log.find(said) + said.size()), std::string::npos) << log;  // once
  t.rows = {t.rows[0], t.rows[1], t.rows[2]};
  write_csv(dir + "/one.csv", t);
  log = logged([&] { EXPECT_EQ(cg::read_mp20(dir + "/one.csv").crystals.size(), 2u); });
  EXPECT_NE(log.find("1 row(s) have an empty material_id and are left out (row 1): "), std::string::npos) << log;
  log = logged([&] { cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/val.csv.gz", 200); });
  EXPECT_EQ(log.find("empty material_id"), std::string::npos) << log;
}

// Repeated material_ids: every row kept, the repeats warned of (how many ids, how many rows, the first few ids with
// their rows, long lists cut). MP-20: no warning.
TEST(Prep, ARepeatedMaterialIdIsWarnedOf) {
  const std::string dir = fresh_dir("dup_ids");
  cg::CsvTable t = mp20_rows("val", 9);
  const size_t id = t.column("material_id");
  const std::string id0 = t.rows[0][id], id2 = t.rows[2][id];
  t.rows[1][id] = id0;
  for (size_t r = 3; r < 9; ++r) t.rows[r][id] = id2;  // id2 in 7 rows
  write_csv(dir + "/dup.csv", t);
  std::string log = logged([&] { EXPECT_EQ(cg::read_mp20(dir + "/dup.csv").crystals.size(), 9u); });
  EXPECT_NE(log.find(dir + "/dup.csv: 2 material_id(s) are each given to more than one row, 9 rows in all (" + id0 +
                     " in rows 0 and 1; " + id2 + " in rows 2, 3, 4, 5 and 3 more); all are kept"), std::string::npos)
      << log;
  log = logged([&] { cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/val.csv.gz"); });
  EXPECT_EQ(log.find("more than one row"), std::string::npos) << log;
}

// sentencepiece stops merging when the text has no more pairs: fewer pieces than data.tokenizer_vocab_size asked
// for is said, with the size the data gave; a size the text fills is not.
TEST(Prep, TokenizerSmallerThanAskedIsWarnedOf) {
  const std::string dir = fresh_dir("vocab_short");
  cg::DataConfig d = small_config(dir + "/a");
  d.max_rows = 10;
  d.tokenizer_vocab_size = 100000;
  const std::string short_vocab = logged([&] { cg::run_prep(d, 1); });
  const int64_t got = cg::Tokenizer::load(d.shards_dir + "/tokenizer.model").vocab_size();
  EXPECT_LT(got, 100000);
  EXPECT_NE(short_vocab.find(fmt::format("data.tokenizer_vocab_size asked for 100000 pieces, but ")), std::string::npos)
      << short_vocab;
  EXPECT_NE(short_vocab.find(fmt::format("gave only {}: the model's vocabulary is {}; set data.tokenizer_vocab_size={}",
                                         got, got, got)), std::string::npos) << short_vocab;
  cg::DataConfig fits = small_config(dir + "/b");
  fits.max_rows = 10;
  fits.tokenizer_vocab_size = got;
  EXPECT_EQ(logged([&] { cg::run_prep(fits, 1); }).find("asked for"), std::string::npos);
  fs::remove_all(dir);
}
