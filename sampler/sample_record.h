// One generated sample as cgsample writes it to samples.jsonl and cgeval reads it back:
//   {"id", "task", "prompt", "text", "parsed", "reason", "crystal": {"lattice": {a,b,c,alpha,beta,gamma},
//    "species": [...], "frac": [[x,y,z], ...]}, "element" and "truth" (infill), "num_tokens", "constrained"}
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/crystal.h"

namespace cg {

struct SampleRecord {
  std::string id;                  // "s000012"
  std::string task = "generate";   // generate | infill
  std::string prompt;
  std::string text;                // the generated completion, raw
  bool parsed = false;             // text parsed into a crystal (generate) / is an element symbol (infill)
  std::string reason;              // why parsing failed ("" when parsed)
  std::optional<Crystal> crystal;  // generate, when parsed
  std::string element;             // infill, when parsed
  std::string truth;               // infill: the element that was masked ("" when not recorded)
  int64_t num_tokens = 0;          // generated tokens (EOS excluded)
  bool constrained = false;        // grammar-constrained decoding was on
};

// New tokens an infill answer may take: the reference's llama_sample.py (infill_sample) generates max_new_tokens=10
// and answers with the first line of them.
constexpr int64_t kInfillMaxNewTokens = 10;

// Reads r->text as cgsample reads what it generated: a crystal (task generate) or an element symbol (infill: the
// text's first line, as the reference reads it, whatever follows; a text cut off within its first line is that
// line so far); sets parsed, reason, crystal / element. A leading space (sentencepiece's dummy prefix) is dropped;
// trim: white space at either end too (of an infill answer's first line: "\nFe" answers "", as in the reference).
// A record that has no "parsed" key (another sampler's {"prompt", "text"} lines) is read so, with trim, by
// sample_from_json_line.
void parse_record_text(SampleRecord* r, bool trim = false);

// One JSON line (no trailing newline).
std::string to_json_line(const SampleRecord& r);
// Parses one JSON line; throws cg::Error naming `where` ("samples.jsonl:12") on malformed input.
SampleRecord sample_from_json_line(const std::string& line, const std::string& where);
// All records of a samples.jsonl file.
std::vector<SampleRecord> read_samples_jsonl(const std::string& path);

}  // namespace cg
