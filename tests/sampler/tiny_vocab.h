// Test helper: a small sentencepiece-style vocabulary (bytes as byte pieces, printable characters, element symbols
// and a few digit pieces) with a greedy longest-match encoder, so torch test binaries need no libsentencepiece.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/elements.h"
#include "sampler/grammar.h"

namespace cg::sampler_test {

struct TinyVocab {
  std::vector<std::string> pieces;
  int eos_id = 2;
  TinyVocab() {
    pieces = {"<unk>", "<s>", "</s>", "<0x0A>"};
    for (char c = 33; c < 127; ++c) pieces.push_back(std::string(1, c));
    pieces.push_back("\xe2\x96\x81");  // "▁"
    for (const auto& e : all_elements())
      if (e.size() == 2) pieces.push_back(e);
    for (const char* p : {"0.", "\xe2\x96\x81" "0.", "90", "\xe2\x96\x81" "90", "00", "50", "25", "75"})
      pieces.push_back(p);
  }
  int vocab_size() const { return static_cast<int>(pieces.size()); }
  int eos() const { return eos_id; }
  std::vector<int32_t> encode(const std::string& text, bool bos) const {
    std::vector<int32_t> ids;
    if (bos) ids.push_back(1);
    for (size_t i = 0; i < text.size();) {
      int best = -1;
      size_t best_len = 0;
      for (int v = 3; v < vocab_size(); ++v) {
        const std::string t = piece_text(pieces[v]);
        if (t.size() > best_len && text.compare(i, t.size(), t) == 0) {
          best = v;
          best_len = t.size();
        }
      }
      if (best < 0) {  // not representable: skip (prompts are ASCII)
        ++i;
        continue;
      }
      ids.push_back(best);
      i += best_len;
    }
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const {
    std::string s;
    for (int32_t v : ids) s += piece_text(pieces[v]);
    return s;
  }
};

}  // namespace cg::sampler_test
