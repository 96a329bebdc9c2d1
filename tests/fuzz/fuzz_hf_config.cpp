// Fuzz harness: a Hugging Face config.json (model/llama_config.h), read from every base checkpoint. Checks: no crash,
// no undefined behaviour; only cg::Error escapes; an accepted config is valid (LlamaConfig::validate) and the
// config.json we write for it (cgexport --merge) reads back equal.
#include <cstdint>
#include <string>

#include "model/llama_config.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cg::model::LlamaConfig c;
  if (!cg::fuzz::accepts([&] { c = cg::model::llama_config_from_json(text); })) return 0;
  if (!cg::fuzz::accepts([&] { c.validate(); })) cg::fuzz::finding("accepted a config validate() refuses: " + text);
  const std::string written = c.to_hf_json("bfloat16");
  cg::model::LlamaConfig back;
  if (!cg::fuzz::accepts([&] { back = cg::model::llama_config_from_json(written); }))
    cg::fuzz::finding("our config.json of an accepted config is refused:\n" + written);
  if (!(back == c)) cg::fuzz::finding("config changed in the config.json round trip:\n" + written);
  return 0;
}
