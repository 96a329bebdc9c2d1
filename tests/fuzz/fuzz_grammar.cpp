// Fuzz harness: the constrained-decoding grammar (sampler/grammar.h) against the strict parser it promises to
// agree with (data/crystal_text.h). Two checks per input:
//   1. the input as text: when the grammar matches it, the parser accepts it (after the one optional leading space),
//      and the cell has the volume the grammar guarantees;
//   2. the input as choices: a walk from the start state takes, at each step, the allowed continuation (a character
//      or EOS) that the next byte picks. Every state must allow something ("every state is live"), and a walk that
//      ends in EOS must be a sentence the parser accepts.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/crystal_text.h"
#include "sampler/grammar.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

const cg::CrystalGrammar& grammar() {
  static const cg::CrystalGrammar g(cg::CrystalGrammar::Mode::kCrystal);
  return g;
}

void check_sentence(std::string_view sentence) {
  std::string_view text = sentence;
  if (!text.empty() && text[0] == ' ') text.remove_prefix(1);
  cg::Crystal c;
  std::string error;
  if (!cg::parse_crystal_text(text, &c, &error))
    cg::fuzz::finding("the grammar accepts what the parser refuses (" + error + "):\n" + std::string(sentence));
  if (!(cg::cell_volume(c.lattice) > 1e-6))
    cg::fuzz::finding("the grammar accepts a cell of volume <= 1e-6:\n" + std::string(sentence));
  for (const auto& f : c.frac)
    for (double x : f)
      if (!(x < 1)) cg::fuzz::finding("the grammar accepts a coordinate of 1:\n" + std::string(sentence));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cg::CrystalGrammar& g = grammar();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (g.matches(input)) check_sentence(input);

  static const std::string alphabet = " \n.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  cg::GrammarState s = g.start();
  std::string text;
  std::vector<int> allowed;  // indices into alphabet; alphabet.size() stands for EOS
  for (size_t i = 0; i < size; ++i) {
    allowed.clear();
    for (size_t k = 0; k < alphabet.size(); ++k) {
      cg::GrammarState t = s;
      if (g.step(t, alphabet[k])) allowed.push_back(int(k));
    }
    if (g.can_end(s)) allowed.push_back(int(alphabet.size()));
    if (allowed.empty()) cg::fuzz::finding("a dead state after:\n" + text);
    const int pick = allowed[data[i] % allowed.size()];
    if (pick == int(alphabet.size())) {
      g.finish(s);
      if (!g.matches(text)) cg::fuzz::finding("a walk ended in EOS that matches() refuses:\n" + text);
      check_sentence(text);
      return 0;
    }
    if (!g.step(s, alphabet[size_t(pick)])) cg::fuzz::finding("an allowed character was refused");
    text += alphabet[size_t(pick)];
  }
  return 0;
}
