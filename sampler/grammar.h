// Grammar for constrained decoding of the crystal text format (no torch):
//   line 1: three lengths > 0 with exactly 1 decimal ("3.9 3.9 12.4"), at most 3 integer digits
//   line 2: three integer angles in 1..179 ("90 90 120") that some cell has: its volume factor
//           1 - cos²α - cos²β - cos²γ + 2 cosα cosβ cosγ (= (V / abc)²) exceeds kMinAngleVolumeFactor, which rules out
//           impossible triples ("10 10 170", "120 120 120") and flat ones ("10 10 20"), digit by digit
//   then, once or more: an element symbol line (a real element, data/elements.h) and a line of three fractional
//   coordinates with exactly 2 decimals in [0, 1) ("0.00 0.50 0.25");
//   end of text (EOS) only right after a complete coordinate line (no trailing newline, as data/crystal_text.h).
// Numbers are separated by exactly one space, lines by "\n", no leading zeros ("05.1"); one optional leading space
// (sentencepiece's dummy prefix) is allowed before the first character. Every sentence is accepted by
// data/crystal_text.h's strict parser (after dropping that space), and every state is live: each accepted prefix
// can still be completed.
// The infill grammar accepts exactly one element symbol (optionally after one space), then EOS.
// CrystalGrammar works on characters; TokenGrammar lifts it to a vocabulary of sentencepiece pieces ("▁" is a space,
// "<0x0A>" the byte "\n") and caches, per grammar state, the mask of allowed tokens.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cg {

// The smallest volume factor (V / abc)² an angle line may have (it is exactly 0 for a flat cell, negative where no
// cell exists). At the smallest lengths the grammar allows (0.1 Å), V = abc·sqrt(factor) > 1e-3 · 1e-3 = 1e-6 Å³, so
// every accepted cell passes data/cif.h's "degenerate cell" test (cell_volume > 1e-6) and its CIF reads back into
// cgeval. cgeval's own volume test (eval.min_volume, 0.1 Å³ absolute) also depends on the lengths: the angles
// guarantee it whenever abc >= 100 Å³. The MP-20 copy in data/mp20 (all splits, angles rounded or truncated) has
// factors >= 9e-5 (7° and 6° rhombohedral cells), so no real crystal is excluded; no integer triple lies within 10%
// of the margin.
constexpr double kMinAngleVolumeFactor = 1e-6;

struct GrammarState {
  uint8_t line = 0;      // see grammar.cpp (Line enum)
  uint8_t field = 0;     // number 0..2 within a numeric line
  uint8_t digits = 0;    // integer digits of the current number
  uint8_t decimals = 0;  // decimals of the current number
  uint8_t dot = 0;       // the current number has its '.'
  uint8_t zero = 0;      // the current number's integer part is a leading "0" (no more integer digits)
  uint8_t elem = 0;      // element-symbol prefix: 0 none, else 1 + index into the prefix table
  uint8_t atoms = 0;     // complete atoms so far, saturating at 255
  uint16_t value = 0;    // an angle's value so far; 0 for other numbers
  uint8_t alpha = 0;     // angle line: the first angle once complete (field >= 1), else 0
  uint8_t beta = 0;      // angle line: the second angle once complete (field 2), else 0
  // Equal keys => the same set of continuations (what the mask cache needs). States are merged where that is cheap
  // (the atom count is left out; a third angle's digits are reduced to the digit strings that may still follow them),
  // which keeps the cache small.
  uint64_t key() const;
};

class CrystalGrammar {
 public:
  enum class Mode { kCrystal, kElement };
  explicit CrystalGrammar(Mode mode = Mode::kCrystal);

  Mode mode() const { return mode_; }
  GrammarState start() const;
  // Consume one character; false (state unchanged) when it is not allowed.
  bool step(GrammarState& s, char c) const;
  // Consume all of `text`; false (state unchanged) when any character is not allowed.
  bool accept(GrammarState& s, std::string_view text) const;
  // Whether EOS is allowed here.
  bool can_end(const GrammarState& s) const;
  bool finished(const GrammarState& s) const;  // EOS was taken
  void finish(GrammarState& s) const;          // take EOS (requires can_end)
  // Whether `text` is a complete sentence of the grammar.
  bool matches(std::string_view text) const;

 private:
  Mode mode_;
  std::vector<std::string> prefixes_;  // all prefixes of element symbols ("F", "Fe", ...)
  std::unordered_map<std::string, uint8_t> prefix_id_;
  std::vector<char> is_symbol_;        // per prefix: a complete element symbol
  bool step_element(GrammarState& s, char c) const;
};

// Text of a sentencepiece piece: "▁" -> ' ', "<0xNN>" -> that byte; other "<...>" control pieces -> "" (never
// allowed as text).
std::string piece_text(const std::string& piece);

class TokenGrammar {
 public:
  // pieces[v]: the raw sentencepiece piece of token v; eos_id: the token that ends the text.
  TokenGrammar(CrystalGrammar grammar, const std::vector<std::string>& pieces, int eos_id);

  const CrystalGrammar& grammar() const { return g_; }
  int vocab_size() const { return static_cast<int>(text_.size()); }
  int eos_id() const { return eos_; }
  // 1 where token v may follow state s (EOS included when can_end). Cached per state; the reference stays valid.
  const std::vector<uint8_t>& allowed(const GrammarState& s);
  // The same set as ascending token ids (cached alongside).
  const std::vector<int32_t>& allowed_ids(const GrammarState& s);
  // Advance by one token; false (state unchanged) when it is not allowed.
  bool advance(GrammarState& s, int token) const;
  size_t cached_states() const { return cache_.size(); }

 private:
  CrystalGrammar g_;
  int eos_;
  std::vector<std::string> text_;                     // per token
  std::vector<std::vector<int>> by_first_char_;       // 256 buckets of token ids with non-empty text
  struct Allowed {
    std::vector<uint8_t> mask;
    std::vector<int32_t> ids;
  };
  const Allowed& entry(const GrammarState& s);
  std::unordered_map<uint64_t, Allowed> cache_;
};

}  // namespace cg
