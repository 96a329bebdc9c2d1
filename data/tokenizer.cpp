// Tokenizer: sentencepiece's BPE encoding and its decoding, reimplemented without libsentencepiece (whose bundled
// protobuf crashes any process that also loads libtorch). Follows sentencepiece's normalizer.cc (identity
// normalization), bpe_model.cc (the merge agenda), model_interface.cc (piece tables) and sentencepiece_processor.cc
// (byte fallback, unknown runs, decoding) step by step, so ids equal SentencePieceProcessor::Encode's;
// tests/data/test_tokenizer_vs_sp.cpp checks that against the library on MP-20 text.
#include "data/tokenizer.h"

#include <array>
#include <filesystem>
#include <fstream>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "common/error.h"
#include "common/path_note.h"
#include "common/sha256.h"
#include "data/sp_model.h"

namespace cg {
namespace {

constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";      // U+2581 "▁"
constexpr std::string_view kReplacementChar = "\xef\xbf\xbd";  // U+FFFD

// sentencepiece's string_util::DecodeUTF8 validity rule: the length of the well-formed UTF-8 character at the
// start of `s` (no overlongs, no surrogates, <= U+10FFFF), or 0 when it is malformed.
size_t valid_utf8_len(std::string_view s) {
  const auto b = [&](size_t i) { return uint8_t(s[i]); };
  const auto trail = [&](size_t i) { return (b(i) & 0xC0) == 0x80; };
  const auto ok = [](uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); };
  if (b(0) < 0x80) return 1;
  if (s.size() >= 2 && (b(0) & 0xE0) == 0xC0) {
    const uint32_t c = uint32_t(b(0) & 0x1F) << 6 | uint32_t(b(1) & 0x3F);
    if (trail(1) && c >= 0x80 && ok(c)) return 2;
  } else if (s.size() >= 3 && (b(0) & 0xF0) == 0xE0) {
    const uint32_t c = uint32_t(b(0) & 0x0F) << 12 | uint32_t(b(1) & 0x3F) << 6 | uint32_t(b(2) & 0x3F);
    if (trail(1) && trail(2) && c >= 0x800 && ok(c)) return 3;
  } else if (s.size() >= 4 && (b(0) & 0xF8) == 0xF0) {
    const uint32_t c = uint32_t(b(0) & 0x07) << 18 | uint32_t(b(1) & 0x3F) << 12 | uint32_t(b(2) & 0x3F) << 6 |
                       uint32_t(b(3) & 0x3F);
    if (trail(1) && trail(2) && trail(3) && c >= 0x10000 && ok(c)) return 4;
  }
  return 0;
}

// sentencepiece's OneCharLen: the UTF-8 length its lead byte announces (the text is valid after normalization).
size_t one_char_len(std::string_view s) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return std::min<size_t>(s.size(), kLen[uint8_t(s[0]) >> 4]);
}

// "<0xNN>" -> NN, or -1.
int byte_of_piece(std::string_view p) {
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

struct Tokenizer::Impl {
  std::string bytes;
  std::string hash;
  SpModelSpec spec;
  std::vector<SpPieceType> type;                        // per id
  std::unordered_map<std::string_view, int> mergeable;  // NORMAL, USER_DEFINED, UNUSED: what merges may produce
  std::unordered_map<std::string_view, int> reserved;   // CONTROL, UNKNOWN, BYTE: looked up first (PieceToId)
  std::vector<std::string_view> user_defined;           // matched first and never merged (longest match wins)
  std::vector<int> byte_piece;                          // byte -> id of "<0xNN>" (byte fallback)
  std::vector<int> byte_value;                          // id -> byte, -1 for other pieces
  int unk_id = -1, bos_id = -1, eos_id = -1;

  int piece_to_id(std::string_view w) const {
    if (auto it = reserved.find(w); it != reserved.end()) return it->second;
    if (auto it = mergeable.find(w); it != mergeable.end()) return it->second;
    return unk_id;
  }
  // Length of the longest user-defined symbol that starts `s` (0: none).
  size_t user_defined_prefix(std::string_view s) const {
    size_t best = 0;
    for (std::string_view u : user_defined)
      if (u.size() > best && s.substr(0, u.size()) == u) best = u.size();
    return best;
  }
  std::string normalize(std::string_view input) const;
  void bpe(std::string_view normalized, std::vector<std::pair<std::string_view, int>>& out) const;
};

// normalizer.cc Normalize() with an empty precompiled map (identity): optional removal of extra whitespace, the
// dummy prefix (or suffix), ' ' -> "▁"; malformed UTF-8 bytes become U+FFFD one byte at a time.
std::string Tokenizer::Impl::normalize(std::string_view input) const {
  std::string out;
  if (input.empty()) return out;
  const bool remove_extra = spec.remove_extra_whitespaces;
  const std::string_view ws = spec.escape_whitespaces ? kSpaceSymbol : std::string_view(" ");
  // One normalized unit: a user-defined symbol, a valid UTF-8 character, or U+FFFD for one malformed byte.
  auto prefix = [&](std::string_view s) -> std::pair<std::string_view, size_t> {
    if (size_t n = user_defined_prefix(s)) return {s.substr(0, n), n};
    if (size_t n = valid_utf8_len(s)) return {s.substr(0, n), n};
    return {kReplacementChar, 1};
  };
  if (remove_extra) {
    while (!input.empty() && prefix(input).first == " ") input.remove_prefix(prefix(input).second);
    if (input.empty()) return out;
  }
  out.reserve(input.size() * 3 / 2 + 3);
  if (!spec.treat_whitespace_as_suffix && spec.add_dummy_prefix) out += ws;
  bool prev_space = remove_extra;
  while (!input.empty()) {
    auto [sp, len] = prefix(input);
    if (prev_space)
      while (!sp.empty() && sp[0] == ' ') sp.remove_prefix(1);
    if (!sp.empty()) {
      for (char c : sp) {
        if (c == ' ' && spec.escape_whitespaces) out += kSpaceSymbol;
        else out += c;
      }
      prev_space = sp.back() == ' ';
    }
    input.remove_prefix(len);
    if (!remove_extra) prev_space = false;
  }
  if (remove_extra)
    while (out.size() >= ws.size() && std::string_view(out).substr(out.size() - ws.size()) == ws)
      out.resize(out.size() - ws.size());
  if (spec.treat_whitespace_as_suffix && spec.add_dummy_prefix) out += ws;
  return out;
}

// bpe_model.cc Model::Encode(): split into characters (user-defined symbols whole and frozen), then repeatedly
// merge the adjacent pair whose concatenation is a piece with the highest score, leftmost first; UNUSED pieces are
// split back into the pieces they were merged from. Output: (piece text, id) with unk_id for unknown characters.
void Tokenizer::Impl::bpe(std::string_view normalized, std::vector<std::pair<std::string_view, int>>& out) const {
  struct Symbol {
    int prev, next;   // neighbours in the linked list of live symbols (-1: none)
    bool freeze;      // user-defined: never merged
    std::string_view piece;
  };
  struct Pair {
    int left, right;
    float score;
    size_t size;  // bytes of the merged piece: a pair whose symbols changed since is stale
  };
  // Highest score on top; on ties the leftmost (sentencepiece's SymbolPairComparator).
  struct Lower {
    bool operator()(const Pair& a, const Pair& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };
  std::vector<Symbol> symbols;
  symbols.reserve(normalized.size());
  for (int index = 0; !normalized.empty(); ++index) {
    const size_t u = user_defined.empty() ? 0 : user_defined_prefix(normalized);
    const size_t len = u > 0 ? u : one_char_len(normalized);
    normalized.remove_prefix(len);
    symbols.push_back({index - 1, normalized.empty() ? -1 : index + 1, u > 0,
                       std::string_view(normalized.data() - len, len)});
  }
  if (symbols.empty()) return;

  std::priority_queue<Pair, std::vector<Pair>, Lower> agenda;
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;  // UNUSED pieces
  auto maybe_add = [&](int left, int right) {
    if (left == -1 || right == -1 || symbols[left].freeze || symbols[right].freeze) return;
    const std::string_view merged(symbols[left].piece.data(), symbols[left].piece.size() + symbols[right].piece.size());
    const auto it = mergeable.find(merged);
    if (it == mergeable.end()) return;
    agenda.push({left, right, spec.pieces[size_t(it->second)].score, merged.size()});
    if (type[size_t(it->second)] == SpPieceType::kUnused)
      rev_merge[merged] = {symbols[left].piece, symbols[right].piece};
  };
  for (size_t i = 1; i < symbols.size(); ++i) maybe_add(int(i) - 1, int(i));

  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& l = symbols[size_t(top.left)];
    Symbol& r = symbols[size_t(top.right)];
    if (l.piece.empty() || r.piece.empty() || l.piece.size() + r.piece.size() != top.size) continue;  // stale
    l.piece = std::string_view(l.piece.data(), l.piece.size() + r.piece.size());
    l.next = r.next;
    if (r.next >= 0) symbols[size_t(r.next)].prev = top.left;
    r.piece = {};
    maybe_add(l.prev, top.left);
    maybe_add(top.left, l.next);
  }

  // Resegments UNUSED pieces into the pieces they were merged from (recursively).
  auto emit = [&](std::string_view w, auto&& self) -> void {
    const int id = piece_to_id(w);
    const auto p = type[size_t(id)] == SpPieceType::kUnused ? rev_merge.find(w) : rev_merge.end();
    if (p == rev_merge.end()) {
      out.emplace_back(w, id);
      return;
    }
    self(p->second.first, self);
    self(p->second.second, self);
  };
  for (int i = 0; i != -1; i = symbols[size_t(i)].next) emit(symbols[size_t(i)].piece, emit);
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::error_code ec;
  CG_CHECK(!std::filesystem::is_directory(path, ec), "tokenizer model '{}' is a folder: give the .model file in it "
           "(e.g. {}/tokenizer.model)", path, path);
  CG_CHECK(std::filesystem::exists(path, ec), "tokenizer model '{}' does not exist{}: set data.tokenizer to a "
           "sentencepiece .model file (cgtok converts LLaMA-2's tokenizer.json), or to 'train' and data.shards_dir to "
           "the folder cgprep wrote (it holds the tokenizer.model cgprep fitted)", path,
           relative_path_note(path, "the command"));
  std::ifstream in(path, std::ios::binary);
  CG_CHECK(in.good(), "cannot read tokenizer model '{}': set data.tokenizer to a sentencepiece .model file "
                      "(cgtok converts LLaMA-2's tokenizer.json), or to 'train'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return from_bytes(ss.str());
  } catch (const Error& e) {
    // Most often another file given for it (a safetensors file, HF's tokenizer.json): said, with the way to one.
    CG_FAIL("tokenizer model '{}': {}; it is no sentencepiece .model file that reads: set data.tokenizer to one "
            "(cgtok converts LLaMA-2's tokenizer.json), or to 'train'", path, e.what());
  }
}

// The checks of model_interface.cc InitializePieces() and the model factory, with errors that say what to change.
Tokenizer Tokenizer::from_bytes(std::string model_proto) {
  auto impl = std::make_shared<Impl>();
  SpModelSpec& s = impl->spec;
  s = parse_sp_model(model_proto);
  CG_CHECK(!s.pieces.empty(), "not a valid sentencepiece model: it has no pieces");
  CG_CHECK(s.model_type == 2, "sentencepiece model_type {} ({}) is not supported: cg::Tokenizer implements BPE models "
           "only (LLaMA-2's tokenizer and the ones cgprep trains); retrain it with model_type=bpe", s.model_type,
           s.model_type == 1 ? "unigram" : s.model_type == 3 ? "word" : s.model_type == 4 ? "char" : "unknown");
  CG_CHECK(!s.has_charsmap, "sentencepiece normalizer '{}' uses a precompiled normalization map, which cg::Tokenizer "
           "does not implement; use a model trained with normalization_rule_name=identity", s.normalizer_name);
  CG_CHECK(!s.has_denormalizer, "sentencepiece model has a denormalizer map, which cg::Tokenizer does not implement");
  const size_t n = s.pieces.size();
  impl->type.resize(n);
  impl->byte_value.assign(n, -1);
  impl->byte_piece.assign(256, -1);
  for (size_t i = 0; i < n; ++i) {
    const SpPiece& p = s.pieces[i];
    const int t = int(p.type);
    CG_CHECK(!p.piece.empty(), "not a valid sentencepiece model: piece {} is empty", i);
    CG_CHECK(t >= 1 && t <= 6, "not a valid sentencepiece model: piece {} ('{}') has unknown type {}", i, p.piece, t);
    impl->type[i] = p.type;
    const bool mergeable = p.type == SpPieceType::kNormal || p.type == SpPieceType::kUserDefined ||
                           p.type == SpPieceType::kUnused;
    auto& table = mergeable ? impl->mergeable : impl->reserved;
    CG_CHECK(!impl->mergeable.count(p.piece) && !impl->reserved.count(p.piece),
             "not a valid sentencepiece model: piece '{}' is defined twice (ids {} and {})", p.piece,
             impl->piece_to_id(p.piece), i);
    table.emplace(p.piece, int(i));
    if (p.type == SpPieceType::kUserDefined) impl->user_defined.push_back(p.piece);
    if (p.type == SpPieceType::kUnknown) {
      CG_CHECK(impl->unk_id < 0, "not a valid sentencepiece model: two unknown pieces (ids {} and {})", impl->unk_id, i);
      impl->unk_id = int(i);
    }
    if (p.type == SpPieceType::kByte) {
      CG_CHECK(s.byte_fallback, "not a valid sentencepiece model: byte piece '{}' but byte_fallback is off", p.piece);
      const int b = byte_of_piece(p.piece);
      CG_CHECK(b >= 0, "not a valid sentencepiece model: byte piece '{}' is not <0xNN>", p.piece);
      impl->byte_piece[size_t(b)] = int(i);
      impl->byte_value[i] = b;
    }
  }
  CG_CHECK(impl->unk_id >= 0, "not a valid sentencepiece model: it has no unknown piece ('<unk>')");
  if (s.byte_fallback)
    for (int b = 0; b < 256; ++b)
      CG_CHECK(impl->byte_piece[size_t(b)] >= 0, "not a valid sentencepiece model: byte_fallback is on but byte "
               "piece <0x{:02X}> is missing", b);
  // SentencePieceProcessor::bos_id(): the id of TrainerSpec.bos_piece when it is a control piece, else -1.
  auto control_id = [&](const std::string& piece) {
    const int id = impl->piece_to_id(piece);
    return impl->type[size_t(id)] == SpPieceType::kControl ? id : -1;
  };
  impl->bos_id = control_id(s.bos_piece);
  impl->eos_id = control_id(s.eos_piece);
  impl->hash = sha256_hex(model_proto.data(), model_proto.size());
  impl->bytes = std::move(model_proto);
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

// SentencePieceProcessor::Encode(): normalize, BPE, then unknown characters become their UTF-8 bytes' pieces with
// byte fallback, or one unk id per run of unknown characters without it.
std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  if (add_bos) {
    CG_CHECK(m.bos_id >= 0, "this tokenizer has no BOS piece ('{}' is not a control piece); encode without BOS",
             m.spec.bos_piece);
    out.push_back(m.bos_id);
  }
  const std::string normalized = m.normalize(text);
  std::vector<std::pair<std::string_view, int>> pieces;
  m.bpe(normalized, pieces);
  out.reserve(out.size() + pieces.size());
  bool prev_unk = false;
  for (const auto& [w, id] : pieces) {
    const bool unk = m.type[size_t(id)] == SpPieceType::kUnknown;
    if (unk && m.spec.byte_fallback) {
      for (char c : w) out.push_back(m.byte_piece[uint8_t(c)]);
    } else if (!(unk && prev_unk)) {
      out.push_back(id);
    }
    prev_unk = unk;
  }
  return out;
}

// SentencePieceProcessor::Decode(): control pieces give no text, <unk> its surface, runs of byte pieces are
// reassembled into UTF-8 (U+FFFD per malformed byte), "▁" -> ' ', and the dummy-prefix "▁" of the first text piece
// is dropped once (so decode(encode(x)) == x, also for x with leading spaces).
std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  std::string out, bytes;
  auto flush_bytes = [&] {
    std::string_view b = bytes;
    while (!b.empty()) {
      const size_t n = valid_utf8_len(b);
      if (n == 0) {
        out += kReplacementChar;
        b.remove_prefix(1);
      } else {
        out += b.substr(0, n);
        b.remove_prefix(n);
      }
    }
    bytes.clear();
  };
  bool is_bos_ws = true, bos_ws_seen = false;
  const bool strip = m.spec.add_dummy_prefix || m.spec.remove_extra_whitespaces;
  for (int32_t id : ids) {
    CG_CHECK(id >= 0 && id < vocab_size(), "token id {} outside the vocabulary [0, {})", id, vocab_size());
    const SpPieceType t = m.type[size_t(id)];
    if (t == SpPieceType::kByte) {
      bytes.push_back(char(m.byte_value[size_t(id)]));
      continue;
    }
    flush_bytes();
    if (bos_ws_seen || !out.empty()) is_bos_ws = false;
    bos_ws_seen = false;
    if (t == SpPieceType::kControl) continue;
    if (t == SpPieceType::kUnknown) {
      out += m.spec.unk_surface;
      continue;
    }
    std::string_view p = m.spec.pieces[size_t(id)].piece;
    if (is_bos_ws && strip && p.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
      p.remove_prefix(kSpaceSymbol.size());
      bos_ws_seen = !m.spec.remove_extra_whitespaces;
    }
    for (size_t k; (k = p.find(kSpaceSymbol)) != std::string_view::npos; p.remove_prefix(k + kSpaceSymbol.size())) {
      out += p.substr(0, k);
      out += ' ';
    }
    out += p;
  }
  flush_bytes();
  return out;
}

int Tokenizer::bos_id() const { return impl_->bos_id; }
int Tokenizer::eos_id() const { return impl_->eos_id; }
int Tokenizer::vocab_size() const { return int(impl_->spec.pieces.size()); }

std::string Tokenizer::piece(int id) const {
  CG_CHECK(id >= 0 && id < vocab_size(), "token id {} outside the vocabulary [0, {})", id, vocab_size());
  return impl_->spec.pieces[size_t(id)].piece;
}

const std::string& Tokenizer::hash() const { return impl_->hash; }
const std::string& Tokenizer::model_bytes() const { return impl_->bytes; }

}  // namespace cg
