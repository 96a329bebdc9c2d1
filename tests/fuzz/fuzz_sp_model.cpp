// Fuzz harness: the sentencepiece .model reader (data/sp_model.h: the protobuf wire format by hand) and the
// tokenizer built from it (data/tokenizer.h), which load whatever file data.tokenizer names. Checks: no crash;
// only cg::Error escapes; a model the tokenizer accepts encodes and decodes a crystal without crashing, its ids
// in range; an accepted spec serializes and parses back to the same pieces.
#include <cstdint>
#include <string>

#include "data/sp_model.h"
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  cg::SpModelSpec spec;
  if (!cg::fuzz::accepts([&] { spec = cg::parse_sp_model(bytes); })) return 0;
  std::string again;
  if (cg::fuzz::accepts([&] { again = cg::serialize_sp_model(spec); })) {
    cg::SpModelSpec back;
    if (!cg::fuzz::accepts([&] { back = cg::parse_sp_model(again); }))
      cg::fuzz::finding("a serialized spec does not parse back");
    if (back.pieces.size() != spec.pieces.size()) cg::fuzz::finding("piece count changed in the round trip");
    for (size_t i = 0; i < spec.pieces.size(); ++i)
      if (back.pieces[i].piece != spec.pieces[i].piece || back.pieces[i].type != spec.pieces[i].type)
        cg::fuzz::finding("piece " + std::to_string(i) + " changed in the round trip");
  }
  cg::Tokenizer tok;
  if (!cg::fuzz::accepts([&] { tok = cg::Tokenizer::from_bytes(bytes); })) return 0;
  const std::string text = "4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50\n\xE2\x96\x81 \xC3\x28 \xF0\x9F\x98\x80";
  std::vector<int32_t> ids;
  cg::fuzz::accepts([&] { ids = tok.encode(text, /*add_bos=*/true); });
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) cg::fuzz::finding("encode gave id " + std::to_string(id) + " outside the vocabulary");
  cg::fuzz::accepts([&] { tok.decode(ids); });
  cg::fuzz::accepts([&] { tok.decode({0, 1, 2, tok.vocab_size() - 1}); });
  return 0;
}
