#include "sampler/eval_input.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/error.h"
#include "common/path_note.h"
#include "data/cif.h"
#include "data/csv.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "sampler/sample_journal.h"
#include "sampler/sample_record.h"

namespace cg {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One generated item: its crystal when the text parsed, else its reason; the conditions its prompt states.
void add_generated(SampleRecord&& r, EvalInput* in) {
  ++in->total;
  const bool parsed = r.parsed && r.crystal;
  if (parsed) {
    in->crystals.push_back(std::move(*r.crystal));
  } else {
    // A record marked parsed but without its crystal was not written by cgsample (which writes both).
    ++in->unparsed_reasons[reason_key(!r.reason.empty() ? r.reason
                                      : r.parsed        ? "the record says parsed but holds no \"crystal\""
                                                        : "unparsed (no reason in the record)")];
  }
  const GenerationConditions cond = conditions_of_prompt(r.prompt);
  if (cond.formula || cond.spacegroup || cond.formation_energy_per_atom || cond.band_gap || cond.e_above_hull)
    in->conditioned.push_back({cond, parsed ? int64_t(in->crystals.size()) - 1 : -1});
}

void from_samples(const std::string& file, int64_t max_rows, EvalInput* in) {
  in->kind = "samples";
  std::set<std::string> ids;
  int64_t repeated = 0, records = 0, unread_masks = 0;
  std::string first_repeated;
  for (auto& r : read_samples_jsonl(file)) {
    if (max_rows > 0 && records >= max_rows) break;  // the first N records, infill ones too
    ++records;
    if (r.id.empty()) {  // another sampler's record without one: its line, so items.jsonl can name it
      r.id = fmt::format("line{}", records);
      if (r.crystal) r.crystal->id = r.id;
    }
    if (!r.id.empty() && !ids.insert(r.id).second && repeated++ == 0) first_repeated = r.id;
    if (r.task == "infill") {  // an element, not a crystal: scored apart
      in->infill.push_back({masked_species_of_prompt(r.prompt), r.parsed ? r.element : "", r.truth});
      unread_masks += in->infill.back().masked_species.empty();
      continue;
    }
    if (r.task != "generate") continue;
    add_generated(std::move(r), in);
  }
  if (unread_masks > 0)
    spdlog::warn("cgeval: {} of {} infill records in {} hold no masked crystal cgeval can read in their prompt (not "
                 "the infill prompt of data/prompt.h, edited or of another tool?): their answers count as SMACT-invalid",
                 unread_masks, in->infill.size(), file);
  if (repeated > 0)
    spdlog::warn("cgeval: {} repeats {} sample id(s) (the first: {}): records of several runs put together? Each "
                 "counts, so rates mix the runs; evaluate each cgsample folder on its own", file, repeated,
                 first_repeated);
  // cgsample's summary.json beside it says how many samples it wrote: fewer records means a cut file.
  const fs::path summary = fs::path(file).parent_path() / "summary.json";
  if (max_rows == 0 && fs::path(file).filename() == "samples.jsonl" && fs::is_regular_file(summary)) {
    std::ifstream f(summary);
    const auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("num_samples") && j["num_samples"].is_number_integer() &&
        j["num_samples"].get<int64_t>() != records)
      spdlog::warn("cgeval: {} holds {} records, but its summary.json says cgsample wrote {}: the file was cut or "
                   "edited, and the rates are over what is left", file, records, j["num_samples"].get<int64_t>());
  }
}

// The report counts inputs that do not read by reason; the log names the first ones (row or file, full reason), so
// they can be found and fixed.
void log_unread(const Mp20Split& split, const std::string& path, const char* unit) {
  if (split.skipped.empty()) return;
  constexpr size_t kShown = 10;
  spdlog::info("cgeval: {} of {} {}s in {} did not read{}", split.skipped.size(), split.rows_read, unit, path,
               split.skipped.size() > kShown ? fmt::format(" (the first {}):", kShown) : ":");
  for (size_t i = 0; i < std::min(kShown, split.skipped.size()); ++i)
    spdlog::info("  {} {}: {}", unit, split.skipped[i].row, split.skipped[i].reason);
}

void from_cdvae_csv(const std::string& file, int64_t max_rows, EvalInput* in) {
  in->kind = "csv";
  Mp20Split split = read_mp20(file, max_rows);
  in->total = split.rows_read;
  in->crystals = std::move(split.crystals);
  for (size_t i = 0; i < in->crystals.size(); ++i) {
    const Crystal& c = in->crystals[i];
    ConditionedItem item{{}, int64_t(i)};
    if (!c.formula.empty()) item.cond.formula = c.formula;
    item.cond.spacegroup = c.spacegroup;
    if (item.cond.formula || item.cond.spacegroup) in->conditioned.push_back(std::move(item));
  }
  log_unread(split, file, "row");
  for (const auto& s : split.skipped) ++in->unparsed_reasons[reason_key(s.reason)];
}

// The unnamed index column pandas writes, to name items by, or -1 when there is none or it repeats a value over the
// first n rows (frames concatenated without ignore_index=True: 0, 1, ..., 0, 1, ...), which would give several items
// one id in items.jsonl; that is warned of, and the items are named by row number.
int64_t index_column(const CsvTable& t, size_t n, const std::string& file) {
  const int64_t c = t.find("");
  if (c < 0) return -1;
  std::map<std::string, size_t> first_row;
  int64_t repeats = 0;
  std::string first;
  for (size_t r = 0; r < n; ++r) {
    if (t.rows[r].size() <= size_t(c) || t.rows[r][size_t(c)].empty()) continue;
    const auto [it, fresh] = first_row.emplace(t.rows[r][size_t(c)], r);
    if (!fresh && repeats++ == 0) first = fmt::format("'{}' in rows {} and {}", it->first, it->second, r);
  }
  if (repeats == 0) return c;
  spdlog::warn("cgeval: the unnamed index column of {} repeats values ({} row(s) repeat an earlier row's; the first: "
               "{}), as concatenated frames' indexes do: its items are named by row number instead (row<N>, 0-based "
               "data row). To keep the index as ids, write it unique (pandas: pd.concat(frames, ignore_index=True))",
               file, repeats, first);
  return -1;
}

// The reference's samples (facebookresearch/crystal-text-llm): llama_sample.py writes gen_str,cif,model_name, where
// gen_str is the decoded prompt + generated text; its saved_samples CSVs hold ",cif" (pandas' index and the CIF).
// With a gen_str column that text is what is evaluated, read as cgsample reads another sampler's text (its prompt
// cut off as the reference's gen_str.replace(prompt, "") does, the conditions it states kept); the cif column is the
// reference's parse of it, made by a looser parser, and is read only when there is no gen_str. Ids: the unnamed
// index column, else "row<N>" (0-based data row); also where the index repeats a value (index_column).
void from_reference_csv(const std::string& file, const std::string& text, int64_t max_rows, EvalInput* in) {
  const CsvTable t = parse_csv(text);
  const size_t n = max_rows > 0 ? std::min(t.rows.size(), size_t(max_rows)) : t.rows.size();
  const int64_t c_gen = t.find("gen_str"), c_cif = t.find("cif"), c_index = index_column(t, n, file);
  in->kind = c_gen >= 0 ? "reference_samples" : "cif_csv";
  const std::string prompt = generation_prompt({});
  const std::string instruction = prompt.substr(prompt.find("Generate "));  // the end of every generation prompt
  Mp20Split unread;  // for log_unread
  unread.rows_read = int64_t(n);
  int64_t without_prompt = 0;
  for (size_t r = 0; r < n; ++r) {
    const auto& row = t.rows[r];
    const std::string id = c_index >= 0 && size_t(c_index) < row.size() && !row[size_t(c_index)].empty()
                               ? row[size_t(c_index)]
                               : fmt::format("row{}", r);
    if (row.size() != t.header.size()) {
      ++in->total;
      const std::string why = fmt::format("{}: {} cells, header has {}", id, row.size(), t.header.size());
      unread.skipped.push_back({int64_t(r), why});
      ++in->unparsed_reasons[reason_key(why)];
      continue;
    }
    if (c_gen >= 0) {
      SampleRecord rec;
      rec.id = id;
      const std::string& gen = row[size_t(c_gen)];
      const size_t at = gen.find(instruction);
      without_prompt += at == std::string::npos;
      const size_t cut = at == std::string::npos ? 0 : at + instruction.size();
      rec.prompt = gen.substr(0, cut);
      rec.text = gen.substr(cut);
      parse_record_text(&rec, /*trim=*/true);
      if (!rec.parsed) unread.skipped.push_back({int64_t(r), id + ": " + rec.reason});
      add_generated(std::move(rec), in);
      continue;
    }
    ++in->total;
    Crystal c;
    std::string reason, warning;
    if (parse_cif(row[size_t(c_cif)], id, &c, &reason, &warning)) {
      if (!warning.empty()) unread.cif_warnings.push_back({int64_t(r), warning});
      in->crystals.push_back(std::move(c));
    } else {
      unread.skipped.push_back({int64_t(r), reason});
      ++in->unparsed_reasons[reason_key(reason)];
    }
  }
  if (without_prompt > 0)
    spdlog::warn("cgeval: {} of {} gen_str cells in {} hold no generation prompt (\"...{}\"): each is read whole as "
                 "the generated text, as the reference's gen_str.replace(prompt, \"\") leaves it; cut or edited "
                 "cells?", without_prompt, n, file, instruction.substr(instruction.size() - 20, 19));
  log_unread(unread, file, "row");
  warn_cif_warnings(file, unread);
}

// CSV layouts cgeval reads, by the columns they have: the first whose columns the file has.
void from_csv(const std::string& file, int64_t max_rows, EvalInput* in) {
  const std::string text = read_maybe_gz(file);
  std::vector<std::string> header;
  std::string_view body = text;
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);  // as parse_csv: a BOM is no column name
  CsvReader(body).next(&header);
  auto has = [&](const char* name) { return std::find(header.begin(), header.end(), name) != header.end(); };
  if (has("material_id") && has("cif")) return from_cdvae_csv(file, max_rows, in);
  if (has("gen_str") || has("cif")) return from_reference_csv(file, text, max_rows, in);
  std::string cols;
  for (const auto& h : header) cols += (cols.empty() ? "'" : ", '") + h + "'";
  CG_FAIL("eval.input {}: cgeval reads a CSV with columns material_id and cif (CDVAE's layout: the MP-20 splits), "
          "gen_str (the reference's llama_sample.py output: gen_str,cif,model_name; gen_str is evaluated) or cif "
          "(any other, e.g. the reference's saved_samples ',cif'; ids are the unnamed index column or the row "
          "number); this file's columns are {}: rename the column that holds the CIFs to cif",
          file, cols.empty() ? "none" : cols);
}

void from_cifs(const fs::path& dir, int64_t max_rows, EvalInput* in) {
  in->kind = "cifs";
  Mp20Split split = read_cif_folder(dir.string(), max_rows);  // each data_ block an item
  log_unread(split, dir.string(), "CIF block");
  warn_cif_warnings(dir.string(), split);
  in->total = split.rows_read;
  in->crystals = std::move(split.crystals);
  for (const auto& s : split.skipped) ++in->unparsed_reasons[reason_key(s.reason)];
}

}  // namespace

std::string reason_key(const std::string& reason) {
  std::string r = reason.substr(0, reason.find(" (got"));
  size_t colon = r.find(": ");
  if (colon != std::string::npos && r.compare(0, 5, "line ") != 0 && r.find(' ') > colon)  // "<id>: "
    r = r.substr(colon + 2), colon = r.find(": ");
  for (const char* unit : {"line ", "row "})  // "line N: ", "row N: " (a row without a material_id)
    if (colon != std::string::npos && r.rfind(unit, 0) == 0 &&
        r.find_first_not_of("0123456789", std::strlen(unit)) == colon)
      r = r.substr(colon + 2), colon = r.find(": ");
  // A bound on the key, as reasons may quote input bytes: cut at a word, marked, never mid-word or mid-character.
  constexpr size_t kMax = 240;
  if (r.size() > kMax) {
    size_t cut = r.rfind(' ', kMax);
    if (cut == std::string::npos || cut < kMax / 2) {
      cut = kMax;
      while (cut > 0 && (static_cast<unsigned char>(r[cut]) & 0xC0) == 0x80) --cut;  // a UTF-8 continuation byte
    }
    r = r.substr(0, cut) + " …";
  }
  return r;
}

EvalInput load_eval_input(const std::string& path, int64_t max_rows) {
  EvalInput in;
  in.path = path;
  const fs::path p(path);
  CG_CHECK(fs::exists(p), "eval.input '{}' does not exist{}; point it at a cgsample folder (sample.out_dir), a .jsonl, "
           "a .csv/.csv.gz, a .cif file or a folder of .cif files", path, relative_path_note(path, "cgeval"));
  if (fs::is_directory(p) && fs::exists(p / "samples.jsonl")) {
    from_samples((p / "samples.jsonl").string(), max_rows, &in);
    // A live journal: a cgsample run into this folder stopped before it wrote its outputs. What is here is an earlier
    // run's; or, where that run was killed (SIGKILL, a lost node) as it replaced them, partly its.
    if (const auto live = live_journals(path); !live.empty())
      spdlog::warn("cgeval: {} holds {}, the journal of a cgsample run into it that stopped before it finished: these "
                   "samples are an earlier run's, or partly that run's; rerun that cgsample command to finish it, "
                   "then cgeval", path, live.front());
  } else if (fs::is_regular_file(p) && ends_with(path, ".jsonl")) {
    from_samples(path, max_rows, &in);
  } else if (fs::is_regular_file(p) && (ends_with(path, ".csv") || ends_with(path, ".csv.gz"))) {
    from_csv(path, max_rows, &in);
  } else if (is_cif_folder(path) || is_cif_file(path)) {
    from_cifs(p, max_rows, &in);
  } else if (is_cif_folder((p / "cifs").string())) {
    from_cifs(p / "cifs", max_rows, &in);
  } else {
    // A folder whose CIFs all lie in subfolders (ICSD and COD downloads nest them) is named as such, as cgprep's
    // splits and eval.train_csv name it, rather than left for the user to find.
    const std::string nested = cifs_in_subfolders_hint(path);
    CG_CHECK(nested.empty(), "eval.input '{}' holds no .cif or .cif.gz file{}", path, nested);
    CG_FAIL("eval.input '{}' is not a cgsample folder (samples.jsonl), a .jsonl, a .csv/.csv.gz, a .cif file or a "
            "folder of .cif files; point eval.input at one of those",
            path);
  }
  spdlog::info("cgeval: read {} items from {} ({}): {} crystals, {} unparsed{}", in.total, path, in.kind,
               in.crystals.size(), in.unparsed(),
               in.infill.empty() ? "" : fmt::format("; and {} infill records, scored apart", in.infill.size()));
  return in;
}

}  // namespace cg
