#include "sampler/grammar.h"

#include <algorithm>
#include <array>
#include <cmath>

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
  return line == kLengths ? NumberSpec{3, 1, false} : NumberSpec{1, 2, true};  // kCoords (angles: step_angle)
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool number_complete(const GrammarState& s, const NumberSpec& spec) {
  return s.digits > 0 && s.dot && s.decimals == spec.decimals;
}

void reset_number(GrammarState& s) {
  s.digits = s.decimals = s.dot = s.zero = 0;
  s.value = 0;
}

// ---- The angle line: which triples exist, digit by digit.
// An angle is an integer 1..179 written without leading zeros, so a prefix p (1..179) can complete to p, 10p..10p+9
// or 100p..100p+99 (those <= 179). Each of the three angles may only take a digit after which some allowed value,
// and after it some allowed rest of the line, is still reachable: every accepted prefix stays live.

constexpr int kMaxAngle = 179;
constexpr int kN = kMaxAngle + 1;  // table stride; index 0 unused

struct AngleTables {
  // For alpha (field 0) and beta given alpha (field 1): whether a complete value leaves the rest of the line
  // completable (ok), and whether some such value starts with the digits of p (prefix). Indexed [p] / [alpha][p].
  std::array<uint8_t, kN> alpha_ok{}, alpha_prefix{};
  std::vector<uint8_t> beta_ok, beta_prefix;  // (kN * kN)
  // gamma given (alpha, beta): the allowed values are exactly the interval [lo, hi] (lo > hi: none). For fixed
  // alpha, beta the volume factor is a concave quadratic in cos(gamma), and cos is monotonic on (0, 180).
  std::vector<uint8_t> gamma_lo, gamma_hi;    // (kN * kN)
};

void mark_prefixes(int n, uint8_t* prefix) {  // n and the prefixes of its digits
  for (int p = n; p >= 1; p /= 10) prefix[p] = 1;
}

AngleTables build_angle_tables() {
  AngleTables t;
  t.beta_ok.assign(kN * kN, 0);
  t.beta_prefix.assign(kN * kN, 0);
  t.gamma_lo.assign(kN * kN, 1);
  t.gamma_hi.assign(kN * kN, 0);
  std::array<double, kN> cs{};
  for (int a = 1; a <= kMaxAngle; ++a) cs[a] = std::cos(a * M_PI / 180.0);
  for (int a = 1; a <= kMaxAngle; ++a) {
    for (int b = 1; b <= kMaxAngle; ++b) {
      int lo = 0, hi = 0, count = 0;
      for (int g = 1; g <= kMaxAngle; ++g) {
        const double f = 1 - cs[a] * cs[a] - cs[b] * cs[b] - cs[g] * cs[g] + 2 * cs[a] * cs[b] * cs[g];
        if (f > kMinAngleVolumeFactor) {
          if (count++ == 0) lo = g;
          hi = g;
        }
      }
      if (count == 0) continue;
      CG_CHECK(hi - lo + 1 == count, "grammar: allowed gammas for angles {} {} are not an interval", a, b);
      t.gamma_lo[a * kN + b] = static_cast<uint8_t>(lo);
      t.gamma_hi[a * kN + b] = static_cast<uint8_t>(hi);
      t.beta_ok[a * kN + b] = 1;
      mark_prefixes(b, &t.beta_prefix[a * kN]);
      t.alpha_ok[a] = 1;
    }
    if (t.alpha_ok[a]) mark_prefixes(a, t.alpha_prefix.data());
  }
  return t;
}

const AngleTables& angle_tables() {
  static const AngleTables t = build_angle_tables();  // ~5.7M volume factors, a few ms, once per process
  return t;
}

// Whether the integer interval [lo, hi] holds a number whose digits start with those of p (p >= 1).
bool interval_has_prefix(int lo, int hi, int p) {
  for (int first = p, width = 1; first <= hi; first *= 10, width *= 10)
    if (first + width - 1 >= lo) return true;
  return false;
}

// The third angle's interval given the first two.
void gamma_range(const GrammarState& s, int* lo, int* hi) {
  const AngleTables& t = angle_tables();
  *lo = t.gamma_lo[s.alpha * kN + s.beta];
  *hi = t.gamma_hi[s.alpha * kN + s.beta];
}

// Whether the current angle, with digits so far p (>= 1), can still complete to an allowed value.
bool angle_prefix_live(const GrammarState& s, int p) {
  const AngleTables& t = angle_tables();
  if (s.field == 0) return t.alpha_prefix[p];
  if (s.field == 1) return t.beta_prefix[s.alpha * kN + p];
  int lo, hi;
  gamma_range(s, &lo, &hi);
  return interval_has_prefix(lo, hi, p);
}

// Whether the current angle is complete and allowed (the rest of the line stays completable).
bool angle_complete(const GrammarState& s) {
  if (s.digits == 0) return false;
  const AngleTables& t = angle_tables();
  if (s.field == 0) return t.alpha_ok[s.value];
  if (s.field == 1) return t.beta_ok[s.alpha * kN + s.value];
  int lo, hi;
  gamma_range(s, &lo, &hi);
  return s.value >= lo && s.value <= hi;
}

bool step_angle(GrammarState& t, char c) {
  if (is_digit(c)) {
    if (t.digits == 0 && c == '0') return false;  // no leading zeros, and "0" is not an angle
    const int v = t.value * 10 + (c - '0');
    if (v > kMaxAngle || !angle_prefix_live(t, v)) return false;
    t.value = static_cast<uint16_t>(v);
    ++t.digits;
    return true;
  }
  if (c == ' ') {
    if (t.field >= 2 || !angle_complete(t)) return false;
    (t.field == 0 ? t.alpha : t.beta) = static_cast<uint8_t>(t.value);
    ++t.field;
    reset_number(t);
    return true;
  }
  if (c == '\n') {
    if (t.field != 2 || !angle_complete(t)) return false;
    t.line = kElement;
    t.field = 0;
    t.alpha = t.beta = 0;
    reset_number(t);
    return true;
  }
  return false;
}

// The angle line's part of the key (the line itself and the field are added by the caller).
//   alpha: its digits so far; beta: alpha and its digits so far (alpha decides which betas and gammas follow).
//   gamma: only the set of digit strings that may still follow, which is what decides the future: with no digit
//   yet, the interval [lo, hi]; after digits p, whether p itself is allowed and the ranges of one more digit e
//   (10p + e) and two more digits (100p + ee) inside [lo, hi]. E.g. "60 60 1" and "90 90 1" share an entry when
//   both allow 1, 10..19 and 100..179.
uint64_t angle_key(const GrammarState& s) {
  if (s.field == 0) return s.value;
  if (s.field == 1) return static_cast<uint64_t>(s.alpha) << 8 | s.value;
  int lo, hi;
  gamma_range(s, &lo, &hi);
  if (s.digits == 0) return 1ull << 39 | static_cast<uint64_t>(lo) | static_cast<uint64_t>(hi) << 8;
  auto range = [&](int first, int width) -> uint64_t {  // [first, first + width) ∩ [lo, hi] as offsets; 0xFFFF: none
    const int a = std::max(lo, first) - first, b = std::min(hi, first + width - 1) - first;
    return a <= b ? static_cast<uint64_t>(a) | static_cast<uint64_t>(b) << 8 : 0xFFFF;
  };
  const uint64_t in = s.value >= lo && s.value <= hi;
  return in | range(s.value * 10, 10) << 1 | range(s.value * 100, 100) << 17;
}

}  // namespace

uint64_t GrammarState::key() const {
  // line (8 bits) | field (8) | the rest (48), so keys of different lines never collide.
  const uint64_t head = static_cast<uint64_t>(line) | static_cast<uint64_t>(field) << 8;
  if (line == kAngles) return head | angle_key(*this) << 16;
  // Other lines: only what decides the future goes in (not the atom count; value is 0 off the angle line).
  return head | static_cast<uint64_t>(digits) << 16 | static_cast<uint64_t>(decimals) << 24 |
         static_cast<uint64_t>(dot) << 32 | static_cast<uint64_t>(zero) << 36 | static_cast<uint64_t>(elem) << 40;
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
    case kAngles:
      if (!step_angle(t, c)) return false;
      break;
    case kLengths:
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
          if (t.digits == 0 && c == '0') t.zero = 1;  // no leading zeros: "0" is the whole integer part
          ++t.digits;
        }
      } else if (c == '.') {
        if (t.dot || t.digits == 0) return false;
        t.dot = 1;
      } else if (c == ' ') {
        if (!number_complete(t, spec) || t.field >= 2) return false;
        ++t.field;
        reset_number(t);
      } else if (c == '\n') {
        if (!number_complete(t, spec) || t.field != 2) return false;
        t.field = 0;
        reset_number(t);
        if (t.line != kLengths) return false;  // a coordinate line ends with kAtomDone's "\n", handled below
        t.line = kAngles;
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

const TokenGrammar::Allowed& TokenGrammar::entry(const GrammarState& s) {
  const uint64_t k = s.key();
  auto it = cache_.find(k);
  if (it != cache_.end()) return it->second;
  Allowed a;
  a.mask.assign(text_.size(), 0);
  if (!g_.finished(s)) {
    for (int ch = 0; ch < 256; ++ch) {
      if (by_first_char_[ch].empty()) continue;
      GrammarState t = s;
      if (!g_.step(t, static_cast<char>(ch))) continue;
      for (int v : by_first_char_[ch]) {
        GrammarState u = t;
        if (g_.accept(u, std::string_view(text_[v]).substr(1))) a.mask[v] = 1;
      }
    }
    if (g_.can_end(s)) a.mask[eos_] = 1;
  }
  for (size_t v = 0; v < a.mask.size(); ++v)
    if (a.mask[v]) a.ids.push_back(static_cast<int32_t>(v));
  return cache_.emplace(k, std::move(a)).first->second;
}

const std::vector<uint8_t>& TokenGrammar::allowed(const GrammarState& s) { return entry(s).mask; }

const std::vector<int32_t>& TokenGrammar::allowed_ids(const GrammarState& s) { return entry(s).ids; }

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
