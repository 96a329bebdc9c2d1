// Fuzz harness: the BPE tokenizer (data/tokenizer.h) on arbitrary text, with the demo's trained model
// (corpus/sp_model/demo_tokenizer.model: byte fallback, split digits, as LLaMA-2's). Checks the contract the
// header states: ids in range; decode(encode(x)) == x for valid UTF-8 without a literal "▁"; for any bytes, decode
// of the encoding is valid UTF-8 (malformed bytes become U+FFFD), and encoding is deterministic.
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

const cg::Tokenizer& tokenizer() {
  static const cg::Tokenizer t = cg::Tokenizer::load(CG_FUZZ_TOKENIZER);
  return t;
}

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when it is malformed (overlong, surrogate, > U+10FFFF).
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return uint8_t(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cg::Tokenizer& tok = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids;
  if (!cg::fuzz::accepts([&] { ids = tok.encode(text, /*add_bos=*/true); }))
    cg::fuzz::finding("encode refused text");
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) cg::fuzz::finding("id " + std::to_string(id) + " outside the vocabulary");
  if (ids.empty() || ids[0] != tok.bos_id()) cg::fuzz::finding("add_bos did not put BOS first");
  if (tok.encode(text, true) != ids) cg::fuzz::finding("encoding is not deterministic");
  const std::string back = tok.decode(ids);
  if (!valid_utf8(back)) cg::fuzz::finding("decode gave malformed UTF-8");
  if (valid_utf8(text) && text.find("\xE2\x96\x81") == std::string_view::npos && back != text)
    cg::fuzz::finding("decode(encode(x)) != x for x = '" + std::string(text) + "', got '" + back + "'");
  return 0;
}
