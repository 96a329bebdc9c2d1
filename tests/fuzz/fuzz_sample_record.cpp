// Fuzz harness: one samples.jsonl line (sampler/sample_record.h), which cgeval reads from files users may edit or
// write by other tools. Checks: no crash; only cg::Error escapes (nlohmann's type and parse errors must be turned
// into it); an accepted record written back and read again is the same record.
#include <cstdint>
#include <string>

#include "sampler/sample_record.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  cg::SampleRecord r;
  if (!cg::fuzz::accepts([&] { r = cg::sample_from_json_line(line, "fuzz:1"); })) return 0;
  std::string out;
  if (!cg::fuzz::accepts([&] { out = cg::to_json_line(r); }))
    cg::fuzz::finding("an accepted record cannot be written back");
  cg::SampleRecord back;
  if (!cg::fuzz::accepts([&] { back = cg::sample_from_json_line(out, "fuzz:again"); }))
    cg::fuzz::finding("a written record does not read back: " + out);
  if (cg::to_json_line(back) != out) cg::fuzz::finding("record changed in the round trip: " + out);
  return 0;
}
