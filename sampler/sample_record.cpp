#include "sampler/sample_record.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_int.h"
#include "common/log.h"
#include "data/crystal.h"
#include "data/crystal_text.h"
#include "data/elements.h"

namespace cg {

using nlohmann::json;

std::string to_json_line(const SampleRecord& r) {
  json j = {{"id", r.id},     {"task", r.task},     {"prompt", r.prompt},         {"text", r.text},
            {"parsed", r.parsed}, {"reason", r.reason}, {"num_tokens", r.num_tokens}, {"constrained", r.constrained}};
  if (r.crystal) {
    const Crystal& c = *r.crystal;
    const Lattice& l = c.lattice;
    json frac = json::array();
    for (const auto& f : c.frac) frac.push_back({f[0], f[1], f[2]});
    j["crystal"] = {{"lattice", {{"a", l.a}, {"b", l.b}, {"c", l.c}, {"alpha", l.alpha}, {"beta", l.beta},
                                 {"gamma", l.gamma}}},
                    {"species", c.species},
                    {"frac", frac}};
  }
  if (!r.element.empty()) j["element"] = r.element;
  if (!r.truth.empty()) j["truth"] = r.truth;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // sampled bytes may not be UTF-8
}

namespace {

// Why a record's crystal cannot be scored ("" when it can): what the text parser refuses in a generated crystal
// (angles no cell has pass, as there: pymatgen's lattice matrix, and so cgeval's, clamps them into a cell).
std::string crystal_problem(const Crystal& c) {
  const Lattice& l = c.lattice;
  for (double x : {l.a, l.b, l.c})
    if (!(std::isfinite(x) && x > 0)) return fmt::format("lattice length {} is not a positive number", x);
  for (double x : {l.alpha, l.beta, l.gamma})
    if (!(x > 0 && x < 180)) return fmt::format("lattice angle {} outside (0, 180) degrees", x);
  // Angles each in range can still form no cell (138 138 90): the text and CIF readers' test, so a record gets the
  // verdict its text and its CIF get.
  if (!forms_cell(l)) return "lattice lengths and angles form no cell (zero volume)";
  if (c.species.empty()) return "no sites";
  for (const auto& s : c.species)
    if (!is_element(s)) return fmt::format("'{}' is not an element symbol", s);
  for (const auto& f : c.frac)
    if (!(std::isfinite(f[0]) && std::isfinite(f[1]) && std::isfinite(f[2]))) return "a coordinate is not finite";
  return "";
}

}  // namespace

void parse_record_text(SampleRecord* r, bool trim) {
  std::string text = r->text;
  if (!text.empty() && text[0] == ' ') text.erase(0, 1);  // sentencepiece's dummy-prefix space
  // An infill answer is the first line, taken before any trimming as the reference takes it (split("\n")[0] of the
  // completion): "\nFe" answers "" there, so here too, whoever sampled it.
  if (r->task == "infill") text = text.substr(0, text.find('\n'));
  if (trim) {  // another sampler's text: Windows line ends and white space at the ends forgiven
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
  }
  r->parsed = false;
  r->reason.clear();
  if (r->task == "infill") {
    r->parsed = is_element(text);
    r->element = r->parsed ? text : "";
    if (!r->parsed) r->reason = "not an element symbol";
    return;
  }
  Crystal c;
  std::string err;
  if (parse_crystal_text(text, &c, &err, r->id)) {
    r->parsed = true;
    r->crystal = std::move(c);
  } else {
    r->reason = err;
  }
}

SampleRecord sample_from_json_line(const std::string& line, const std::string& where) {
  SampleRecord r;
  try {
    const json j = json::parse(line);
    r.id = j.value("id", std::string());
    r.task = j.value("task", std::string("generate"));
    r.prompt = j.value("prompt", std::string());
    r.text = j.value("text", std::string());
    r.parsed = j.value("parsed", false);
    r.reason = j.value("reason", std::string());
    if (j.contains("num_tokens"))  // an integer only (common/json_int.h): a float beyond int64 would be undefined
      CG_CHECK(json_int64(j["num_tokens"], &r.num_tokens) && r.num_tokens >= 0,
               "num_tokens {} is not a whole number >= 0", j["num_tokens"].dump());
    r.constrained = j.value("constrained", false);
    r.element = j.value("element", std::string());
    r.truth = j.value("truth", std::string());
    if (j.contains("crystal") && !j["crystal"].is_null()) {
      const json& jc = j["crystal"];
      Crystal c;
      c.id = r.id;
      const json& l = jc.at("lattice");
      c.lattice = {l.at("a").get<double>(),     l.at("b").get<double>(),    l.at("c").get<double>(),
                   l.at("alpha").get<double>(), l.at("beta").get<double>(), l.at("gamma").get<double>()};
      c.species = jc.at("species").get<std::vector<std::string>>();
      for (const auto& f : jc.at("frac")) {
        CG_CHECK(f.is_array() && f.size() == 3, "a coordinate {} is not [x, y, z]", f.dump());
        c.frac.push_back({f.at(0).get<double>(), f.at(1).get<double>(), f.at(2).get<double>()});
      }
      CG_CHECK(c.species.size() == c.frac.size(), "{} species but {} coordinates", c.species.size(), c.frac.size());
      // A crystal no parser would have produced counts as unparsed, with the reason, instead of ending the report.
      if (const std::string why = crystal_problem(c); !why.empty()) {
        spdlog::warn("{}: sample {}: {}; counted as unparsed", where, r.id, why);
        r.parsed = false;
        r.reason = "invalid crystal in the record: " + why;
      } else {
        r.crystal = std::move(c);
      }
    }
    // A record of another sampler ({"prompt", "text"}, no "parsed"): its text is read as cgsample reads its own.
    if (!j.contains("parsed") && !r.crystal) {
      if (!r.text.empty()) parse_record_text(&r, /*trim=*/true);
      else r.reason = "no text in the record";
    }
  } catch (const json::parse_error& e) {
    CG_FAIL("{}: malformed sample record, not one JSON object (a line cut short or edited: {}): mend or delete that "
            "line, or sample again into an empty sample.out_dir", where, e.what());
  } catch (const json::exception& e) {
    CG_FAIL("{}: malformed sample record: {}", where, e.what());
  } catch (const Error& e) {
    CG_FAIL("{}: malformed sample record: {}", where, message_of(e));
  }
  return r;
}

std::vector<SampleRecord> read_samples_jsonl(const std::string& path) {
  std::ifstream in(path);
  CG_CHECK(in.good(), "cannot read '{}': is eval.input a cgsample output folder?", path);
  std::vector<SampleRecord> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    out.push_back(sample_from_json_line(line, path + ":" + std::to_string(n)));
  }
  return out;
}

}  // namespace cg
