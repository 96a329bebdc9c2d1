// Grammar-constrained decoding: character grammar, its lift to sentencepiece tokens, and the infill grammar.
// Independent checks: data/crystal_text.h's strict parser accepts everything the grammar completes, and real
// MP-20 crystal texts tokenized by a freshly trained tokenizer are accepted token by token.
#include <gtest/gtest.h>

#include <random>

#include "data/crystal_text.h"
#include "data/elements.h"
#include "data/mp20.h"
#include "data/sp_model.h"
#include "data/sp_train.h"
#include "data/tokenizer.h"
#include "sampler/grammar.h"

namespace cg {
namespace {

const std::vector<Crystal>& mp20_sample() {
  static const std::vector<Crystal> cs = read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz", 60).crystals;
  return cs;
}

const Tokenizer& tiny_tokenizer() {
  static const Tokenizer tok = [] {
    std::vector<std::string> lines;
    for (const auto& c : mp20_sample()) {
      const std::string t = crystal_to_text(c);
      size_t a = 0;
      for (size_t b; (b = t.find('\n', a)) != std::string::npos; a = b + 1) lines.push_back(t.substr(a, b - a));
      lines.push_back(t.substr(a));
    }
    return Tokenizer::from_bytes(train_sp_model(lines, 320, 1));
  }();
  return tok;
}

std::vector<std::string> pieces_of(const Tokenizer& tok) {
  std::vector<std::string> p;
  for (int v = 0; v < tok.vocab_size(); ++v) p.push_back(tok.piece(v));
  return p;
}

TEST(Grammar, CharacterLevelAcceptsTheFormat) {
  CrystalGrammar g;
  EXPECT_TRUE(g.matches("4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50\nMn\n0.00 0.00 0.00"));
  EXPECT_TRUE(g.matches(" 10.5 3.0 0.7\n90 179 1\nOg\n0.99 0.01 0.00"));        // one leading space
  EXPECT_FALSE(g.matches("4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50\n"));      // trailing newline
  EXPECT_FALSE(g.matches("4.2 4.2 4.2\n60 60 60\n"));                          // no atom
  EXPECT_FALSE(g.matches("4.2 4.2 4.2\n60 60 60\nLn\n0.50 0.50 0.50"));        // not an element
  EXPECT_FALSE(g.matches("4.20 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50"));       // two decimals on a length
  EXPECT_FALSE(g.matches("4.2 4.2 4.2\n60.0 60 60\nLi\n0.50 0.50 0.50"));      // decimal angle
  EXPECT_FALSE(g.matches("4.2 4.2 4.2\n60 60 180\nLi\n0.50 0.50 0.50"));       // angle out of range
  EXPECT_FALSE(g.matches("4.2 4.2 4.2\n60 60 60\nLi\n1.00 0.50 0.50"));        // coordinate not in [0, 1)
  EXPECT_FALSE(g.matches("4.2 4.2 4.2\n60 60 60\nLi\n0.5 0.50 0.50"));         // one decimal on a coordinate
  EXPECT_FALSE(g.matches("4.2  4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50"));       // double space
  EXPECT_FALSE(g.matches("04.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50"));       // leading zero
  EXPECT_FALSE(g.matches("0.0 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50"));        // zero length
  EXPECT_FALSE(g.matches("  4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50"));      // two leading spaces
}

TEST(Grammar, LnIsNeverAllowed) {
  CrystalGrammar g;
  GrammarState s = g.start();
  ASSERT_TRUE(g.accept(s, "4.2 4.2 4.2\n60 60 60\n"));
  GrammarState t = s;
  EXPECT_TRUE(g.step(t, 'L'));
  EXPECT_FALSE(g.step(t, 'n'));
  EXPECT_TRUE(g.accept(t, "i\n"));
  // Token level on a hand-made vocabulary.
  const std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", "L", "n", "Ln", "Li", "<0x0A>", "\xe2\x96\x81" "0"};
  TokenGrammar tg(CrystalGrammar(), pieces, /*eos_id=*/2);
  const auto& m = tg.allowed(s);
  EXPECT_EQ(std::vector<uint8_t>(m.begin(), m.end()), (std::vector<uint8_t>{0, 0, 0, 1, 0, 0, 1, 0, 0}));
  GrammarState u = s;
  ASSERT_TRUE(tg.advance(u, 3));  // "L"
  const auto& m2 = tg.allowed(u);
  EXPECT_EQ(m2[4], 0);  // "n"
  EXPECT_EQ(m2[7], 0);  // "\n": "L" alone is not an element
  EXPECT_FALSE(tg.advance(u, 4));
}

TEST(Grammar, RealCrystalsAcceptedTokenByToken) {
  const Tokenizer& tok = tiny_tokenizer();
  TokenGrammar tg(CrystalGrammar(), pieces_of(tok), tok.eos_id());
  CrystalGrammar g;
  int checked = 0;
  for (const auto& c : mp20_sample()) {
    const std::string text = crystal_to_text(c);
    ASSERT_TRUE(g.matches(text)) << c.id << ":\n" << text;
    GrammarState s = tg.grammar().start();
    for (int32_t id : tok.encode(text, /*add_bos=*/false)) {
      ASSERT_TRUE(tg.allowed(s)[id]) << c.id << ": token '" << tok.piece(id) << "' refused";
      ASSERT_TRUE(tg.advance(s, id));
      ASSERT_FALSE(tg.allowed(s)[tok.eos_id()] && false);
    }
    EXPECT_TRUE(tg.allowed(s)[tok.eos_id()]) << c.id;
    ++checked;
  }
  EXPECT_GE(checked, 50);
}

TEST(Grammar, RandomAllowedWalksEndInParsableCrystals) {
  // Every allowed token keeps the text a prefix of a valid crystal: walks that pick uniformly among allowed tokens
  // never get stuck, and each ends (EOS) in text the strict parser accepts.
  const Tokenizer& tok = tiny_tokenizer();
  TokenGrammar tg(CrystalGrammar(), pieces_of(tok), tok.eos_id());
  std::mt19937 rng(3);
  for (int walk = 0; walk < 200; ++walk) {
    GrammarState s = tg.grammar().start();
    std::vector<int32_t> ids;
    for (int step = 0; step < 400 && !tg.grammar().finished(s); ++step) {
      const auto& mask = tg.allowed(s);
      std::vector<int> ok;
      for (int v = 0; v < tg.vocab_size(); ++v)
        if (mask[v]) ok.push_back(v);
      ASSERT_FALSE(ok.empty()) << "dead state after '" << tok.decode(ids) << "'";
      int pick = ok[std::uniform_int_distribution<size_t>(0, ok.size() - 1)(rng)];
      if (mask[tok.eos_id()] && std::uniform_real_distribution<double>(0, 1)(rng) < 0.3) pick = tok.eos_id();
      ASSERT_TRUE(tg.advance(s, pick));
      if (pick != tok.eos_id()) ids.push_back(pick);
    }
    if (!tg.grammar().finished(s)) continue;  // long walk cut off: its prefix property is still checked above
    std::string text = tok.decode(ids);
    if (!text.empty() && text[0] == ' ') text.erase(0, 1);
    Crystal c;
    std::string err;
    EXPECT_TRUE(parse_crystal_text(text, &c, &err)) << err << "\n" << text;
    for (const auto& sp : c.species) EXPECT_TRUE(is_element(sp));
  }
  EXPECT_LT(tg.cached_states(), 400u);
}

TEST(Grammar, InfillAllowsExactlyOneElementThenEos) {
  CrystalGrammar g(CrystalGrammar::Mode::kElement);
  EXPECT_TRUE(g.matches("Fe"));
  EXPECT_TRUE(g.matches(" O"));
  EXPECT_FALSE(g.matches("Fe\n"));
  EXPECT_FALSE(g.matches("FeO"));
  EXPECT_FALSE(g.matches("Ln"));
  EXPECT_FALSE(g.matches(""));
  const std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", "F", "e", "Fe", "<0x0A>", "O", "\xe2\x96\x81" "O"};
  TokenGrammar tg(g, pieces, 2);
  GrammarState s = g.start();
  EXPECT_EQ(tg.allowed(s)[2], 0);  // no EOS before a symbol
  ASSERT_TRUE(tg.advance(s, 3));   // "F" is fluorine already, and a prefix of Fe
  EXPECT_EQ(tg.allowed(s)[2], 1);
  EXPECT_EQ(tg.allowed(s)[4], 1);
  ASSERT_TRUE(tg.advance(s, 4));   // "Fe"
  const auto& m = tg.allowed(s);
  EXPECT_EQ(std::count(m.begin(), m.end(), 1), 1);  // only EOS
  EXPECT_TRUE(tg.advance(s, 2));
  EXPECT_TRUE(g.finished(s));
}

TEST(Grammar, PieceText) {
  EXPECT_EQ(piece_text("\xe2\x96\x81" "Fe"), " Fe");
  EXPECT_EQ(piece_text("<0x0A>"), "\n");
  EXPECT_EQ(piece_text("<s>"), "");
  EXPECT_EQ(piece_text("0.5"), "0.5");
}

}  // namespace
}  // namespace cg
