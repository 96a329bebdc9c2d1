// Grammar-constrained decoding: character grammar, its lift to sentencepiece tokens, and the infill grammar.
// Independent checks: data/crystal_text.h's strict parser accepts everything the grammar completes, real MP-20
// crystal texts tokenized by a freshly trained tokenizer are accepted token by token, and the angle line is
// compared with a brute-force reference over all 179³ triples (volume factor from the half-angle sine identity).
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "data/crystal.h"
#include "data/crystal_text.h"
#include "data/elements.h"
#include "data/mp20.h"
#include "data/sp_model.h"
#include "data/sp_train.h"
#include "data/tokenizer.h"
#include "sampler/grammar.h"
#include "tests/sampler/tiny_vocab.h"

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
  EXPECT_TRUE(g.matches(" 10.5 3.0 0.7\n90 179 90\nOg\n0.99 0.01 0.00"));       // one leading space
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
  EXPECT_TRUE(g.matches("999.9 4.2 4.2\n90 90 90\nLi\n0.50 0.50 0.50"));      // three integer digits at most
  EXPECT_FALSE(g.matches("1000.0 4.2 4.2\n90 90 90\nLi\n0.50 0.50 0.50"));    // four
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
  EXPECT_EQ(tg.allowed_ids(s), (std::vector<int32_t>{3, 6}));  // the same set as ids
  GrammarState u = s;
  ASSERT_TRUE(tg.advance(u, 3));  // "L"
  const auto& m2 = tg.allowed(u);
  EXPECT_EQ(m2[4], 0);  // "n"
  EXPECT_EQ(m2[7], 0);  // "\n": "L" alone is not an element
  for (int v = 0; v < 9; ++v) {
    const auto& ids = tg.allowed_ids(u);
    EXPECT_EQ(m2[v] == 1, std::find(ids.begin(), ids.end(), v) != ids.end()) << v;
  }
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
  // Uniform random angles are the worst case for the cache (every first angle and (first, second) pair has its own
  // states; a trained model's run caches far fewer): 968 here, under 400 before angle triples were checked.
  EXPECT_LT(tg.cached_states(), 2000u);
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


// ---- The angle line against a brute-force reference.

// Volume factor (V / abc)² of a cell with angles a, b, c (degrees) by the identity
// 1 - cos²a - cos²b - cos²c + 2 cos a cos b cos c = 4 sin s sin(s - a) sin(s - b) sin(s - c), s = (a + b + c) / 2,
// a different formula from the grammar's.
double volume_factor(int a, int b, int c) {
  const double k = M_PI / 180, s = 0.5 * (a + b + c);
  return 4 * std::sin(s * k) * std::sin((s - a) * k) * std::sin((s - b) * k) * std::sin((s - c) * k);
}

// Which triples are allowed (factor above the margin) and which partial triples can still be completed.
struct AngleReference {
  std::vector<uint8_t> ok;           // [(a * 180 + b) * 180 + c]
  std::vector<uint8_t> ab_ok;        // [a * 180 + b]: some c completes
  std::vector<uint8_t> a_ok;         // [a]: some b, c complete
  AngleReference() : ok(180 * 180 * 180, 0), ab_ok(180 * 180, 0), a_ok(180, 0) {
    for (int a = 1; a < 180; ++a)
      for (int b = 1; b < 180; ++b)
        for (int c = 1; c < 180; ++c)
          if (volume_factor(a, b, c) > kMinAngleVolumeFactor) ok[(a * 180 + b) * 180 + c] = ab_ok[a * 180 + b] = a_ok[a] = 1;
  }
  // Whether the angle `field` (0..2) may take the complete value x after the angles a (, b).
  bool completes(int field, int a, int b, int x) const {
    if (x < 1 || x > 179) return false;
    return field == 0 ? a_ok[x] : field == 1 ? ab_ok[a * 180 + x] : ok[(a * 180 + b) * 180 + x];
  }
};

const AngleReference& angle_reference() {
  static const AngleReference r;
  return r;
}

// A prefix of an angle line: complete angles a (, b), then the digits p of the current angle (d of them).
struct AngleNode {
  int field = 0, a = 0, b = 0, p = 0, d = 0;
};

// Whether some allowed line starts with the node's text: the current angle has a completion (p itself, one or two
// more digits, or with no digit yet any value) that the reference allows.
bool node_live(const AngleReference& r, const AngleNode& n) {
  if (n.d == 0) {
    for (int x = 1; x < 180; ++x)
      if (r.completes(n.field, n.a, n.b, x)) return true;
    return false;
  }
  if (r.completes(n.field, n.a, n.b, n.p)) return true;
  for (int e = 0; e < 10 && n.d <= 2; ++e)
    if (r.completes(n.field, n.a, n.b, 10 * n.p + e)) return true;
  for (int e = 0; e < 100 && n.d <= 1; ++e)
    if (r.completes(n.field, n.a, n.b, 100 * n.p + e)) return true;
  return false;
}

// The reference's step: false when no allowed line starts with the text plus c. *line_done on the final "\n".
bool reference_step(const AngleReference& r, AngleNode& n, char c, bool* line_done) {
  *line_done = false;
  if (c >= '0' && c <= '9') {
    if (n.d == 3 || (n.d == 0 && c == '0')) return false;
    AngleNode m = n;
    m.p = 10 * n.p + (c - '0');
    ++m.d;
    if (!node_live(r, m)) return false;
    n = m;
    return true;
  }
  if (c == ' ') {
    if (n.field == 2 || n.d == 0 || !r.completes(n.field, n.a, n.b, n.p)) return false;
    (n.field == 0 ? n.a : n.b) = n.p;
    ++n.field;
    n.p = n.d = 0;
    return true;
  }
  if (c == '\n') {
    if (n.field != 2 || n.d == 0 || !r.completes(2, n.a, n.b, n.p)) return false;
    *line_done = true;
    return true;
  }
  return false;
}

GrammarState after_lengths(const CrystalGrammar& g) {
  GrammarState s = g.start();
  EXPECT_TRUE(g.accept(s, "4.2 4.2 4.2\n"));
  return s;
}

TEST(GrammarAngles, VolumeFactorReference) {
  EXPECT_NEAR(volume_factor(90, 90, 90), 1.0, 1e-12);
  EXPECT_NEAR(volume_factor(60, 60, 60), 0.5, 1e-12);   // (1 - c)²(1 + 2c), c = 1/2
  EXPECT_NEAR(volume_factor(90, 90, 120), 0.75, 1e-12);  // sin² 120
  EXPECT_NEAR(volume_factor(10, 10, 20), 0.0, 1e-12);    // flat: gamma = alpha + beta
  EXPECT_NEAR(volume_factor(120, 120, 120), 0.0, 1e-12); // flat: the angles sum to 360
  EXPECT_LT(volume_factor(10, 10, 170), 0.0);            // no such cell
  // Every MP-20 cell of the grammar test's sample, with its angles rounded as in the text, is far above the margin.
  for (const auto& c : mp20_sample())
    EXPECT_GT(volume_factor(std::lround(c.lattice.alpha), std::lround(c.lattice.beta), std::lround(c.lattice.gamma)),
              50 * kMinAngleVolumeFactor)
        << c.id;
}

TEST(GrammarAngles, HandPickedLines) {
  CrystalGrammar g;
  const std::string head = "4.2 4.2 4.2\n", atom = "\nLi\n0.50 0.50 0.50";
  for (const char* ok : {"90 90 90", "90 90 120", "60 60 60", "7 7 7", "1 90 90", "90 179 90", "10 10 19", "179 90 90"})
    EXPECT_TRUE(g.matches(head + ok + atom)) << ok;
  for (const char* bad : {"10 10 170", "120 120 120", "10 10 20", "1 1 1", "179 90 91", "100 100 170", "90 179 1"})
    EXPECT_FALSE(g.matches(head + bad + atom)) << bad;
  // Digit by digit: after "10 10 " gamma < 20, so "17" is a live prefix (17) but "170" is refused at its '0'.
  GrammarState s = after_lengths(g);
  ASSERT_TRUE(g.accept(s, "10 10 17"));
  GrammarState t = s;
  EXPECT_FALSE(g.step(t, '0'));
  EXPECT_TRUE(g.step(t, '\n'));
  s = after_lengths(g);
  ASSERT_TRUE(g.accept(s, "10 10 2"));
  t = s;
  EXPECT_FALSE(g.step(t, '0'));
  // "179 90 " leaves only gamma = 90 (beta + gamma must be exactly 180): '8' (8, 80..89) is refused, "9" may not end.
  s = after_lengths(g);
  ASSERT_TRUE(g.accept(s, "179 90 "));
  t = s;
  EXPECT_FALSE(g.step(t, '8'));
  ASSERT_TRUE(g.step(t, '9'));
  GrammarState u = t;
  EXPECT_FALSE(g.step(u, '\n'));
  EXPECT_FALSE(g.step(u, '1'));
  EXPECT_TRUE(g.accept(t, "0\n"));
}

TEST(GrammarAngles, AllTriplesBruteForce) {
  // The grammar accepts "a b c\n" (after a length line) iff the volume factor exceeds the margin, for all 179³
  // triples; every accepted cell passes the CIF reader's degenerate-cell test at the smallest lengths (0.1 Å).
  CrystalGrammar g;
  const GrammarState line2 = after_lengths(g);
  int64_t accepted = 0, expected = 0, mismatches = 0, degenerate = 0;
  double closest = 1e300;  // min |factor - margin| / margin: no triple is a rounding error away from the margin
  for (int a = 1; a < 180; ++a) {
    GrammarState sa = line2;
    const bool ok_a = g.accept(sa, std::to_string(a) + " ");
    for (int b = 1; b < 180; ++b) {
      GrammarState sb = sa;
      const bool ok_b = ok_a && g.accept(sb, std::to_string(b) + " ");
      for (int c = 1; c < 180; ++c) {
        GrammarState sc = sb;
        const bool got = ok_b && g.accept(sc, std::to_string(c) + "\n");
        const double f = volume_factor(a, b, c);
        const bool want = f > kMinAngleVolumeFactor;
        closest = std::min(closest, std::fabs(f - kMinAngleVolumeFactor) / kMinAngleVolumeFactor);
        accepted += got;
        expected += want;
        if (got != want && ++mismatches <= 10) ADD_FAILURE() << a << " " << b << " " << c << ": factor " << f;
        if (got && !(cell_volume(Lattice{0.1, 0.1, 0.1, double(a), double(b), double(c)}) > 1e-6)) ++degenerate;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(accepted, expected);
  EXPECT_EQ(degenerate, 0);
  EXPECT_GT(closest, 0.1);
  EXPECT_GT(accepted, 179 * 179 * 179 / 4);  // about a third of all triples are cells
  EXPECT_LT(accepted, 179 * 179 * 179 / 2);
}

TEST(GrammarAngles, AcceptedPrefixesAreExactlyTheLiveOnes) {
  // Enumerate the angle line digit by digit: at every accepted prefix, each of "0..9", ' ', '\n' is accepted iff
  // some allowed triple's line starts with the prefix plus it (so every accepted prefix is live, and every dead
  // one is refused at its first character). Also: states with equal keys have equal continuations. Within the
  // third angle that is the set of digit strings that may still follow (after "\n" all states are alike).
  CrystalGrammar g;
  const AngleReference& r = angle_reference();
  int64_t nodes = 0, mismatches = 0, dead = 0, key_clashes = 0;
  std::map<uint64_t, std::vector<uint8_t>> continuation_of_key;
  std::string text;
  auto continuation = [&](const AngleNode& n) {  // what follows the node, as the reference sees it
    std::vector<uint8_t> v = {uint8_t(n.field), uint8_t(n.d == 0)};
    if (n.field < 2) {  // the grammar keys these by (alpha,) digits: compare exactly that
      for (int x : {n.a, n.p, n.d}) v.push_back(uint8_t(x));
    } else if (n.d == 0) {
      for (int x = 1; x < 180; ++x) v.push_back(r.completes(2, n.a, n.b, x));
    } else {
      v.push_back(r.completes(2, n.a, n.b, n.p));
      for (int e = 0; e < 10; ++e) v.push_back(n.d <= 2 && r.completes(2, n.a, n.b, 10 * n.p + e));
      for (int e = 0; e < 100; ++e) v.push_back(n.d <= 1 && r.completes(2, n.a, n.b, 100 * n.p + e));
    }
    return v;
  };
  std::function<void(const GrammarState&, const AngleNode&)> visit = [&](const GrammarState& s, const AngleNode& n) {
    ++nodes;
    auto [it, fresh] = continuation_of_key.emplace(s.key(), continuation(n));
    if (!fresh && it->second != continuation(n) && ++key_clashes <= 5) ADD_FAILURE() << "key clash at '" << text << "'";
    int allowed = 0;
    for (char c : std::string("0123456789 \n")) {
      GrammarState t = s;
      const bool got = g.step(t, c);
      AngleNode m = n;
      bool line_done = false;
      const bool want = reference_step(r, m, c, &line_done);
      if (got != want && ++mismatches <= 10) ADD_FAILURE() << "'" << text << "' + '" << c << "': grammar " << got;
      if (!got) continue;
      ++allowed;
      if (!want) continue;
      if (line_done) {
        EXPECT_TRUE(g.accept(t, "Li\n0.00 0.00 0.00") && g.can_end(t));  // on to the atoms
        continue;
      }
      text.push_back(c);
      visit(t, m);
      text.pop_back();
    }
    if (allowed == 0) ++dead;
  };
  visit(after_lengths(g), AngleNode{});
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(dead, 0);
  EXPECT_EQ(key_clashes, 0);
  EXPECT_GT(nodes, 1000000);  // the whole tree was walked
  // Third-angle states merge: "90 90 5" and "60 60 5" both allow 5 and 50..59 and nothing else.
  GrammarState x = after_lengths(g), y = after_lengths(g), z = after_lengths(g);
  ASSERT_TRUE(g.accept(x, "90 90 5") && g.accept(y, "60 60 5") && g.accept(z, "60 60 1"));
  EXPECT_EQ(x.key(), y.key());
  GrammarState w = after_lengths(g);
  ASSERT_TRUE(g.accept(w, "90 90 1"));
  EXPECT_NE(w.key(), z.key());  // 100..179 vs 100..119
}

TEST(GrammarAngles, TokenMasksMatchTheReference) {
  // The token-level grammar (cached masks) on the test vocabulary, and on it plus multi-digit pieces (some across a
  // space), allows exactly the tokens whose whole text the reference allows, over every first-angle prefix and all
  // prefixes after selected first and second angles.
  const AngleReference& r = angle_reference();
  sampler_test::TinyVocab plain, multi;
  const std::string sp = "\xe2\x96\x81";
  for (const std::string& p : std::vector<std::string>{"1", "10", "12", "17", "170", "179", "100", "120", "60", "45", "109", "0" + sp,
                              "0" + sp + "1", "10" + sp + "10", sp + "1", sp + "17", sp + "170", sp + "179",
                              sp + "120", sp + "10", sp + "60", sp + "109"})
    if (std::find(multi.pieces.begin(), multi.pieces.end(), p) == multi.pieces.end()) multi.pieces.push_back(p);
  const std::vector<int> picked = {1, 2, 7, 10, 17, 30, 45, 60, 89, 90, 91, 109, 120, 150, 170, 178, 179};
  auto is_picked = [&](int x) { return std::find(picked.begin(), picked.end(), x) != picked.end(); };
  for (const auto* vocab : {&plain, &multi}) {
    TokenGrammar tg(CrystalGrammar(), vocab->pieces, vocab->eos());
    std::vector<std::string> text(vocab->pieces.size());
    for (size_t v = 0; v < text.size(); ++v) {
      text[v] = static_cast<int>(v) == vocab->eos() ? "" : piece_text(vocab->pieces[v]);
      ASSERT_TRUE(text[v].find('\n') == std::string::npos || text[v] == "\n") << "the reference stops at the line end";
    }
    int64_t states = 0, mismatches = 0;
    std::function<void(const GrammarState&, const AngleNode&)> visit = [&](const GrammarState& s, const AngleNode& n) {
      ++states;
      const std::vector<uint8_t> mask = tg.allowed(s);
      for (size_t v = 0; v < text.size(); ++v) {
        AngleNode m = n;
        bool want = !text[v].empty(), done = false;
        for (char c : text[v]) want = want && !done && reference_step(r, m, c, &done);
        if (mask[v] != want && ++mismatches <= 10)
          ADD_FAILURE() << "token '" << vocab->pieces[v] << "' (" << v << ") at field " << n.field << " a " << n.a
                        << " b " << n.b << " p " << n.p << ": mask " << int(mask[v]);
      }
      for (char c : std::string("0123456789 ")) {
        AngleNode m = n;
        bool done = false;
        if (!reference_step(r, m, c, &done)) continue;
        if (c == ' ' && !is_picked(n.p)) continue;  // descend into selected first / second angles only
        GrammarState t = s;
        ASSERT_TRUE(tg.grammar().step(t, c));
        visit(t, m);
      }
    };
    GrammarState s = tg.grammar().start();
    ASSERT_TRUE(tg.grammar().accept(s, "4.2 4.2 4.2\n"));
    visit(s, AngleNode{});
    EXPECT_EQ(mismatches, 0);
    EXPECT_GT(states, 10000);
    EXPECT_LT(tg.cached_states(), size_t(states));  // some states share a mask
  }
  // Whole lines through the multi-digit vocabulary's greedy encoding (pieces like "170", "0▁1"): accepted iff allowed.
  TokenGrammar tg(CrystalGrammar(), multi.pieces, multi.eos());
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> angle(1, 179);
  for (int i = 0; i < 3000; ++i) {
    const int a = i < 300 ? picked[i % picked.size()] : angle(rng), b = angle(rng), c = angle(rng);
    const std::string line = std::to_string(a) + " " + std::to_string(b) + " " + std::to_string(c) + "\n";
    GrammarState s = tg.grammar().start();
    ASSERT_TRUE(tg.grammar().accept(s, "4.2 4.2 4.2\n"));
    bool ok = true;
    for (int32_t id : multi.encode(line, /*bos=*/false)) ok = ok && tg.allowed(s)[id] && tg.advance(s, id);
    EXPECT_EQ(ok, volume_factor(a, b, c) > kMinAngleVolumeFactor) << line;
  }
}

}  // namespace
}  // namespace cg
