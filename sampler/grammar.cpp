#include "sampler/grammar.h"

#include <algorithm>

#include "common/error.h"
#include "data/elements.h"

namespace cg {

namespace {

enum Line : uint8_t {
  kStart = 0,     // before anything; one optional space
  kStartSpaced,   // after the optional leading space
  kLengths,       // line 1
  kAngles,        // line 2
  kElement,       // an element symbol line (also the first line of the infill grammar)
  kCoords,        // a coordinate line
  kAtomDone,      // a complete coordinate line, before its "\n": EOS allowed
  kAfterAtom,     // "\n" after a complete atom: the next element symbol
  kDone,          // EOS taken
};

struct NumberSpec {
  int max_int_digits;
  int decimals;    // required decimals (0: an integer, no '.')
  bool zero_int;   // integer part must be exactly "0" (coordinates in [0, 1))
};

NumberSpec spec_of(uint8_t line) {
  switch (line) {
    case kLengths: return {3, 1, false};
    case kAngles: return {3, 0, false};
    default: return {1, 2, true};  // kCoords
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool number_complete(const GrammarState& s, const NumberSpec& spec) {
  if (s.digits == 0) return false;
  if (spec.decimals == 0) return !s.dot && s.value >= 1;  // angles: 1..179
  return s.dot && s.decimals == spec.decimals;
}

void reset_number(GrammarState& s) {
  s.digits = s.decimals = s.dot = s.zero = 0;
  s.value = 0;
}


constexpr int kMaxAngle = 179;

}  // namespace

uint64_t GrammarState::key() const {
  // Only what decides the future goes in: atoms are implied by the line, and an angle's value matters only as its
  // class (1: may grow to 10..19; 2..9 or 18+: complete, may take at most one / no more digit; 10..17: one more).
  const uint64_t value = this->value == 0 ? 0 : this->value == 1 ? 1 : this->value <= 9 ? 2 : this->value <= 17 ? 10 : 18;
  return static_cast<uint64_t>(line) | static_cast<uint64_t>(field) << 8 | static_cast<uint64_t>(digits) << 16 |
         static_cast<uint64_t>(decimals) << 24 | static_cast<uint64_t>(dot) << 32 |
         static_cast<uint64_t>(zero) << 36 | static_cast<uint64_t>(elem) << 40 | static_cast<uint64_t>(value) << 48;
}

CrystalGrammar::CrystalGrammar(Mode mode) : mode_(mode) {
  for (const auto& sym : all_elements()) {
    for (size_t n = 1; n <= sym.size(); ++n) {
      const std::string p = sym.substr(0, n);
      if (!prefix_id_.count(p)) {
        prefix_id_[p] = static_cast<uint8_t>(prefixes_.size());
        prefixes_.push_back(p);
        is_symbol_.push_back(0);
      }
    }
    is_symbol_[prefix_id_[sym]] = 1;
  }
  CG_CHECK(prefixes_.size() < 255, "element prefix table too large ({})", prefixes_.size());
}

GrammarState CrystalGrammar::start() const { return GrammarState{}; }

bool CrystalGrammar::step_element(GrammarState& s, char c) const {
  std::string p = s.elem ? prefixes_[s.elem - 1] : std::string();
  p += c;
  auto it = prefix_id_.find(p);
  if (it == prefix_id_.end()) return false;
  s.elem = static_cast<uint8_t>(it->second + 1);
  return true;
}

bool CrystalGrammar::step(GrammarState& s, char c) const {
  GrammarState t = s;
  switch (t.line) {
    case kStart:
      if (c == ' ') {
        t.line = kStartSpaced;
        break;
      }
      [[fallthrough]];
    case kStartSpaced:
      t.line = mode_ == Mode::kCrystal ? kLengths : kElement;
      if (!step(t, c)) return false;
      break;
    case kLengths:
    case kAngles:
    case kCoords: {
      const NumberSpec spec = spec_of(t.line);
      if (is_digit(c)) {
        if (t.dot) {
          if (t.decimals >= spec.decimals) return false;
          // Lengths must be > 0: after "0." the one decimal cannot be 0 (that state would be dead).
          if (t.line == kLengths && t.zero && c == '0') return false;
          ++t.decimals;
        } else {
          if (t.zero || t.digits >= spec.max_int_digits) return false;
          if (spec.zero_int && c != '0') return false;
          if (t.digits == 0 && c == '0') {
            if (t.line == kAngles) return false;  // an angle starting with 0 could only be "0", which is invalid
            t.zero = 1;  // no leading zeros: "0" is the whole integer part
          }
          if (t.line == kAngles) {
            const int v = t.value * 10 + (c - '0');
            if (v > kMaxAngle) return false;
            t.value = static_cast<uint16_t>(v);
          }
          ++t.digits;
        }
      } else if (c == '.') {
        if (spec.decimals == 0 || t.dot || t.digits == 0) return false;
        t.dot = 1;
      } else if (c == ' ') {
        if (!number_complete(t, spec) || t.field >= 2) return false;
        ++t.field;
        reset_number(t);
      } else if (c == '\n') {
        if (!number_complete(t, spec) || t.field != 2) return false;
        t.field = 0;
        reset_number(t);
        if (t.line == kLengths) {
          t.line = kAngles;
        } else if (t.line == kAngles) {
          t.line = kElement;
        } else {
          return false;  // a coordinate line ends with kAtomDone's "\n", handled below
        }
      } else {
        return false;
      }
      // The third coordinate just completed: the atom is complete.
      if (t.line == kCoords && t.field == 2 && number_complete(t, spec)) {
        t.line = kAtomDone;
        if (t.atoms < 255) ++t.atoms;
        reset_number(t);
        t.field = 0;
      }
      break;
    }
    case kAtomDone:
      if (c != '\n') return false;
      t.line = kAfterAtom;
      break;
    case kAfterAtom:
      t.line = kElement;
      t.elem = 0;
      if (!step_element(t, c)) return false;
      break;
    case kElement:
      if (c == '\n' && mode_ == Mode::kCrystal) {
        if (!t.elem || !is_symbol_[t.elem - 1]) return false;
        t.line = kCoords;
        t.elem = 0;
        break;
      }
      if (!step_element(t, c)) return false;
      break;
    default:
      return false;
  }
  s = t;
  return true;
}

bool CrystalGrammar::accept(GrammarState& s, std::string_view text) const {
  GrammarState t = s;
  for (char c : text)
    if (!step(t, c)) return false;
  s = t;
  return true;
}

bool CrystalGrammar::can_end(const GrammarState& s) const {
  if (mode_ == Mode::kElement) return s.line == kElement && s.elem && is_symbol_[s.elem - 1];
  return s.line == kAtomDone;  // data/crystal_text.h: no trailing newline
}

bool CrystalGrammar::finished(const GrammarState& s) const { return s.line == kDone; }

void CrystalGrammar::finish(GrammarState& s) const {
  CG_CHECK(can_end(s), "grammar: end of text is not allowed in this state");
  s.line = kDone;
}

bool CrystalGrammar::matches(std::string_view text) const {
  GrammarState s = start();
  return accept(s, text) && can_end(s);
}

std::string piece_text(const std::string& piece) {
  if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>') {
    return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  }
  if (piece.size() >= 2 && piece.front() == '<' && piece.back() == '>') return "";  // <s>, </s>, <unk>, <pad>
  static const std::string kSpace = "\xe2\x96\x81";  // U+2581
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

TokenGrammar::TokenGrammar(CrystalGrammar grammar, const std::vector<std::string>& pieces, int eos_id)
    : g_(std::move(grammar)), eos_(eos_id), by_first_char_(256) {
  CG_CHECK(eos_id >= 0 && eos_id < static_cast<int>(pieces.size()), "eos id {} outside the vocabulary of {}", eos_id,
           pieces.size());
  text_.reserve(pieces.size());
  for (size_t v = 0; v < pieces.size(); ++v) {
    text_.push_back(static_cast<int>(v) == eos_id ? std::string() : piece_text(pieces[v]));
    if (!text_.back().empty()) by_first_char_[static_cast<unsigned char>(text_.back()[0])].push_back(static_cast<int>(v));
  }
}

const std::vector<uint8_t>& TokenGrammar::allowed(const GrammarState& s) {
  const uint64_t k = s.key();
  auto it = cache_.find(k);
  if (it != cache_.end()) return it->second;
  std::vector<uint8_t> mask(text_.size(), 0);
  if (!g_.finished(s)) {
    for (int ch = 0; ch < 256; ++ch) {
      if (by_first_char_[ch].empty()) continue;
      GrammarState t = s;
      if (!g_.step(t, static_cast<char>(ch))) continue;
      for (int v : by_first_char_[ch]) {
        GrammarState u = t;
        if (g_.accept(u, std::string_view(text_[v]).substr(1))) mask[v] = 1;
      }
    }
    if (g_.can_end(s)) mask[eos_] = 1;
  }
  return cache_.emplace(k, std::move(mask)).first->second;
}

bool TokenGrammar::advance(GrammarState& s, int token) const {
  if (token < 0 || token >= vocab_size() || g_.finished(s)) return false;
  if (token == eos_) {
    if (!g_.can_end(s)) return false;
    g_.finish(s);
    return true;
  }
  if (text_[token].empty()) return false;
  return g_.accept(s, text_[token]);
}

}  // namespace cg
