// Fuzz harness: the Hugging Face tokenizer.json converter (data/sp_model.h), which reads a base model's tokenizer
// from the Hub when it has no tokenizer.model. The input is written to a file and converted. Checks: only cg::Error
// escapes; an accepted file gives a sentencepiece model that serializes, loads as a tokenizer, and encodes text to
// ids in range that decode without crashing; its vocabulary as hf_tokenizer_json_vocab reads it is the model's.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "data/sp_model.h"
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cg::test::ScratchPath file("cg_fuzz_tokenizer_" + std::to_string(::getpid()) + ".json");
  const std::string path = file.path.string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  cg::SpModelSpec spec;
  if (!cg::fuzz::accepts([&] { spec = cg::sp_model_from_hf_tokenizer_json(path); })) return 0;
  std::vector<std::string> vocab;
  if (!cg::fuzz::accepts([&] { vocab = cg::hf_tokenizer_json_vocab(path); }))
    cg::fuzz::finding("a converted tokenizer.json has no readable vocabulary");
  if (vocab.size() != spec.pieces.size()) cg::fuzz::finding("the vocabulary and the model differ in size");
  for (size_t i = 0; i < vocab.size(); ++i)
    if (vocab[i] != spec.pieces[i].piece) cg::fuzz::finding("piece " + std::to_string(i) + " differs");
  cg::Tokenizer tok;
  std::string bytes;
  if (!cg::fuzz::accepts([&] { bytes = cg::serialize_sp_model(spec); })) return 0;
  if (!cg::fuzz::accepts([&] { tok = cg::Tokenizer::from_bytes(bytes); })) return 0;
  std::vector<int32_t> ids;
  cg::fuzz::accepts([&] { ids = tok.encode("4.2 4.2 4.2\n90 90 90\nNa\n0.00 0.50 0.50\n\xC3\x28", true); });
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) cg::fuzz::finding("encode gave id " + std::to_string(id) + " outside the vocabulary");
  cg::fuzz::accepts([&] { tok.decode(ids); });
  return 0;
}
