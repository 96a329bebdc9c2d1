// sentencepiece ModelProto reader and writer (protobuf wire format by hand) and the BPE converters.
#include "data/sp_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/json_int.h"
#include "common/durable_file.h"
#include "common/error.h"

namespace cg {
namespace {

// --- protobuf wire format: varint (type 0), fixed32 (type 5), length-delimited (type 2) ---
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
void put_tag(std::string& out, int field, int wire) { put_varint(out, uint64_t(field) << 3 | uint64_t(wire)); }
// int32 fields encode negatives as 10-byte sign-extended varints.
void put_int32(std::string& out, int field, int32_t v) {
  put_tag(out, field, 0);
  put_varint(out, uint64_t(int64_t(v)));
}
void put_bool(std::string& out, int field, bool v) {
  put_tag(out, field, 0);
  put_varint(out, v ? 1 : 0);
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_float(std::string& out, int field, float v) {
  put_tag(out, field, 5);
  uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int i = 0; i < 4; ++i) out.push_back(char(uint8_t(u >> (8 * i))));
}

std::string base64_decode(std::string_view s) {
  static int8_t table[256];
  static bool init = [] {
    std::memset(table, -1, sizeof(table));
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) table[uint8_t(a[i])] = int8_t(i);
    return true;
  }();
  (void)init;
  std::string out;
  out.reserve(s.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : s) {
    if (ch == '=') break;
    int v = table[uint8_t(ch)];
    CG_CHECK(v >= 0, "invalid base64 character '{}'", ch);
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char(uint8_t(acc >> bits)));
    }
  }
  return out;
}

// The string literal assigned by `const NAME = "...";` in a JS file.
std::string_view js_string_const(std::string_view js, const std::string& name, const std::string& path) {
  std::string key = "const " + name + " = \"";
  size_t p = js.find(key);
  CG_CHECK(p != std::string_view::npos, "'{}' has no `{}`: is it llama-tokenizer-js's llama-tokenizer.js?", path, name);
  p += key.size();
  size_t e = js.find('"', p);
  CG_CHECK(e != std::string_view::npos, "'{}': `{}` is not terminated", path, name);
  return js.substr(p, e - p);
}

bool is_byte_piece(const std::string& p) {
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && std::isxdigit(uint8_t(p[3])) &&
         std::isxdigit(uint8_t(p[4]));
}

}  // namespace

std::string serialize_sp_model(const SpModelSpec& spec) {
  std::string out;
  for (const auto& p : spec.pieces) {
    CG_CHECK(!p.piece.empty(), "sentencepiece pieces must not be empty");
    std::string msg;
    put_bytes(msg, 1, p.piece);
    put_float(msg, 2, p.score);
    put_int32(msg, 3, int32_t(p.type));
    put_bytes(out, 1, msg);
  }
  CG_CHECK(!spec.has_charsmap && !spec.has_denormalizer,
           "cannot write a sentencepiece model with a precompiled normalization map (only identity normalization)");
  std::string trainer;
  put_int32(trainer, 3, spec.model_type);  // BPE = 2
  put_int32(trainer, 4, int32_t(spec.pieces.size()));
  put_bool(trainer, 25, spec.split_digits);
  put_bool(trainer, 35, spec.byte_fallback);
  put_int32(trainer, 40, spec.unk_id);
  put_int32(trainer, 41, spec.bos_id);
  put_int32(trainer, 42, spec.eos_id);
  put_int32(trainer, 43, spec.pad_id);
  if (spec.treat_whitespace_as_suffix) put_bool(trainer, 24, true);
  if (spec.unk_piece != "<unk>") put_bytes(trainer, 45, spec.unk_piece);
  if (spec.bos_piece != "<s>") put_bytes(trainer, 46, spec.bos_piece);
  if (spec.eos_piece != "</s>") put_bytes(trainer, 47, spec.eos_piece);
  if (spec.unk_surface != " \xE2\x81\x87 ") put_bytes(trainer, 44, spec.unk_surface);
  put_bytes(out, 2, trainer);
  std::string norm;
  put_bytes(norm, 1, spec.normalizer_name);
  put_bool(norm, 3, spec.add_dummy_prefix);
  put_bool(norm, 4, spec.remove_extra_whitespaces);  // default false: keep text exactly
  put_bool(norm, 5, spec.escape_whitespaces);        // ' ' -> '▁'
  put_bytes(out, 3, norm);
  return out;
}

namespace {

// Reads one message's fields in order; each field is handed to `on_field(field, wire, varint, bytes)`.
class WireReader {
 public:
  explicit WireReader(std::string_view s, const char* what) : s_(s), what_(what) {}
  bool done() const { return pos_ >= s_.size(); }
  // Next field: its number and wire type; the value lands in varint_ (types 0, 1, 5) or bytes_ (type 2).
  void next() {
    const uint64_t key = varint();
    field_ = int(key >> 3);
    wire_ = int(key & 7);
    CG_CHECK(field_ > 0, "sentencepiece model: field number 0 in {} (corrupt .model file?)", what_);
    switch (wire_) {
      case 0: value_ = varint(); break;
      case 1: value_ = fixed(8); break;
      case 5: value_ = fixed(4); break;
      case 2: {
        const uint64_t n = varint();
        CG_CHECK(n <= s_.size() - pos_, "sentencepiece model: {} field {} runs past the end (truncated .model file?)",
                 what_, field_);
        bytes_ = s_.substr(pos_, size_t(n));
        pos_ += size_t(n);
        break;
      }
      default:
        CG_FAIL("sentencepiece model: {} field {} has wire type {} (groups are not used by ModelProto; corrupt "
                ".model file?)", what_, field_, wire_);
    }
  }
  int field() const { return field_; }
  // Typed views of the current value; each checks the wire type.
  int32_t int32() const { return int32_t(int64_t(u64(0))); }
  bool boolean() const { return u64(0) != 0; }
  float f32() const {
    const uint32_t u = uint32_t(u64(5));
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  std::string_view bytes() const {
    CG_CHECK(wire_ == 2, "sentencepiece model: {} field {} should be length-delimited, has wire type {}", what_,
             field_, wire_);
    return bytes_;
  }

 private:
  uint64_t u64(int want) const {
    CG_CHECK(wire_ == want, "sentencepiece model: {} field {} has wire type {}, expected {}", what_, field_, wire_,
             want);
    return value_;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      CG_CHECK(pos_ < s_.size(), "sentencepiece model: {} ends inside a varint (truncated .model file?)", what_);
      const uint8_t b = uint8_t(s_[pos_++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    CG_FAIL("sentencepiece model: varint longer than 10 bytes in {} (not a .model file?)", what_);
  }
  uint64_t fixed(int n) {
    CG_CHECK(size_t(n) <= s_.size() - pos_, "sentencepiece model: {} ends inside a fixed-size field", what_);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(uint8_t(s_[pos_ + size_t(i)])) << (8 * i);
    pos_ += size_t(n);
    return v;
  }

  std::string_view s_;
  const char* what_;
  size_t pos_ = 0;
  int field_ = 0, wire_ = 0;
  uint64_t value_ = 0;
  std::string_view bytes_;
};

}  // namespace

SpModelSpec parse_sp_model(std::string_view bytes) {
  SpModelSpec spec;  // proto2 defaults where they differ from the writer's
  spec.model_type = 1;
  spec.byte_fallback = false;
  spec.split_digits = false;
  spec.remove_extra_whitespaces = true;
  spec.normalizer_name.clear();
  WireReader top(bytes, "ModelProto");
  while (!top.done()) {
    top.next();
    if (top.field() == 1) {  // pieces
      SpPiece p;
      WireReader r(top.bytes(), "SentencePiece");
      while (!r.done()) {
        r.next();
        if (r.field() == 1) p.piece = std::string(r.bytes());
        else if (r.field() == 2) p.score = r.f32();
        else if (r.field() == 3) p.type = SpPieceType(r.int32());
      }
      spec.pieces.push_back(std::move(p));
    } else if (top.field() == 2) {  // trainer_spec
      WireReader r(top.bytes(), "TrainerSpec");
      while (!r.done()) {
        r.next();
        switch (r.field()) {
          case 3: spec.model_type = r.int32(); break;
          case 24: spec.treat_whitespace_as_suffix = r.boolean(); break;
          case 25: spec.split_digits = r.boolean(); break;
          case 35: spec.byte_fallback = r.boolean(); break;
          case 40: spec.unk_id = r.int32(); break;
          case 41: spec.bos_id = r.int32(); break;
          case 42: spec.eos_id = r.int32(); break;
          case 43: spec.pad_id = r.int32(); break;
          case 44: spec.unk_surface = std::string(r.bytes()); break;
          case 45: spec.unk_piece = std::string(r.bytes()); break;
          case 46: spec.bos_piece = std::string(r.bytes()); break;
          case 47: spec.eos_piece = std::string(r.bytes()); break;
          default: break;
        }
      }
    } else if (top.field() == 3) {  // normalizer_spec
      WireReader r(top.bytes(), "NormalizerSpec");
      while (!r.done()) {
        r.next();
        switch (r.field()) {
          case 1: spec.normalizer_name = std::string(r.bytes()); break;
          case 2: spec.has_charsmap = !r.bytes().empty(); break;
          case 3: spec.add_dummy_prefix = r.boolean(); break;
          case 4: spec.remove_extra_whitespaces = r.boolean(); break;
          case 5: spec.escape_whitespaces = r.boolean(); break;
          default: break;
        }
      }
    } else if (top.field() == 5) {  // denormalizer_spec: only its map matters
      WireReader r(top.bytes(), "NormalizerSpec");
      while (!r.done()) {
        r.next();
        if (r.field() == 2 && !r.bytes().empty()) spec.has_denormalizer = true;
      }
    }
  }
  return spec;
}

namespace {

// UTF-8 characters in s (bytes that do not continue a character).
size_t utf8_length(const std::string& s) {
  return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

SpModelSpec sp_model_from_bpe(const std::vector<std::string>& vocab,
                              const std::vector<std::pair<std::string, std::string>>& merges) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < vocab.size(); ++i) {
    CG_CHECK(index.emplace(vocab[i], i).second, "vocabulary lists piece '{}' twice (ids {} and {})", vocab[i],
             index[vocab[i]], i);
  }
  std::vector<bool> scored(vocab.size(), false);
  std::vector<std::string> unmade;
  SpModelSpec spec;
  spec.pieces.resize(vocab.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto it = index.find(a + b);
    CG_CHECK(it != index.end(), "merge {} ('{}' '{}') produces '{}', which is not in the vocabulary", rank, a, b, a + b);
    if (!scored[it->second]) {
      scored[it->second] = true;
      spec.pieces[it->second].score = -float(rank);
    }
  }
  for (size_t i = 0; i < vocab.size(); ++i) {
    SpPiece& p = spec.pieces[i];
    p.piece = vocab[i];
    if (vocab[i] == "<unk>") {
      p.type = SpPieceType::kUnknown;
      spec.unk_id = int(i);
      p.score = 0;
    } else if (vocab[i] == "<s>" || vocab[i] == "</s>") {
      p.type = SpPieceType::kControl;
      (vocab[i] == "<s>" ? spec.bos_id : spec.eos_id) = int(i);
      p.score = 0;
    } else if (is_byte_piece(vocab[i])) {
      p.type = SpPieceType::kByte;
      p.score = 0;
    } else if (!scored[i]) {
      p.score = -float(merges.size() + i);  // single characters: never the result of a merge
      // A longer piece no merge makes: HF's BPE never produces it. Unused, sentencepiece (and Tokenizer) split it
      // back into the pieces it was merged from.
      if (utf8_length(vocab[i]) > 1) {
        p.type = SpPieceType::kUnused;
        unmade.push_back(vocab[i]);
      }
    }
  }
  if (!unmade.empty())
    spdlog::warn("{} vocabulary piece(s) longer than one character are made by no merge (e.g. '{}'): marked unused, "
                 "as Hugging Face's BPE never produces them", unmade.size(), unmade.front());
  CG_CHECK(index.count("<unk>"), "vocabulary has no '<unk>' piece");
  for (int b = 0; b < 256; ++b)
    CG_CHECK(index.count(fmt::format("<0x{:02X}>", b)), "vocabulary lacks byte piece <0x{:02X}> (byte fallback)", b);
  return spec;
}

SpModelSpec sp_model_from_llama_tokenizer_js(const std::string& js_path) {
  const std::string js = read_file(js_path, "llama-tokenizer-js file");
  std::string vocab_text = base64_decode(js_string_const(js, "llama_vocab_base64", js_path));
  std::vector<std::string> vocab;
  size_t pos = 0;
  while (true) {
    size_t nl = vocab_text.find('\n', pos);
    vocab.push_back(vocab_text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  std::string mb = base64_decode(js_string_const(js, "llama_merges_binary", js_path));
  CG_CHECK(mb.size() % 4 == 0, "'{}': merges are {} bytes, not a multiple of 4 (uint16 id pairs)", js_path, mb.size());
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(mb.size() / 4);
  auto id_at = [&](size_t i) { return size_t(uint8_t(mb[i])) | size_t(uint8_t(mb[i + 1])) << 8; };
  for (size_t i = 0; i < mb.size(); i += 4) {
    size_t a = id_at(i), b = id_at(i + 2);
    CG_CHECK(a < vocab.size() && b < vocab.size(), "'{}': merge {} names id {} or {} outside the vocabulary", js_path,
             i / 4, a, b);
    merges.emplace_back(vocab[a], vocab[b]);
  }
  return sp_model_from_bpe(vocab, merges);
}

namespace {

// The written model is LLaMA's sentencepiece BPE: a dummy "▁" prefix, spaces as "▁", unknown characters as <0xXX>
// bytes. A tokenizer.json that says otherwise would encode differently after conversion, so it is refused by what
// differs: byte-level BPE (GPT-2, LLaMA-3), byte_fallback false, no "▁" prefix and space replacement (as LLaMA-2's
// normalizer Prepend + Replace, or the Metaspace pre-tokenizer of newer exports).
void check_llama_style(const nlohmann::json& j, const std::string& path) {
  auto steps = [](const nlohmann::json& n, const char* list) {
    std::vector<nlohmann::json> out;
    if (!n.is_object()) return out;
    if (n.value("type", "") == "Sequence" && n.contains(list)) {
      for (const auto& m : n[list]) out.push_back(m);
    } else {
      out.push_back(n);
    }
    return out;
  };
  const auto pre = steps(j.value("pre_tokenizer", nlohmann::json()), "pretokenizers");
  const auto norm = steps(j.value("normalizer", nlohmann::json()), "normalizers");
  for (const auto& p : pre)
    CG_CHECK(p.value("type", "") != "ByteLevel", "'{}' is a byte-level BPE (GPT-2 / LLaMA-3 style): only "
             "sentencepiece-style BPE (LLaMA-2) converts to a tokenizer.model", path);
  CG_CHECK(j["model"].value("byte_fallback", true), "'{}' has byte_fallback false: LLaMA-2's tokenizer spells unknown "
           "characters as <0xXX> bytes, and the converted model would too", path);
  // Other normalizers (Lowercase, NFKC, Strip, ...) change the text before BPE; sentencepiece's identity
  // normalization would not.
  const auto is_prepend = [](const nlohmann::json& n) {
    return n.value("type", "") == "Prepend" && n.value("prepend", "") == "\u2581";
  };
  const auto is_replace = [](const nlohmann::json& n) {
    return n.value("type", "") == "Replace" && n.value("content", "") == "\u2581" && n.contains("pattern") &&
           n["pattern"].is_object() && n["pattern"].value("String", "") == " ";
  };
  for (const auto& n : norm)
    CG_CHECK(is_prepend(n) || is_replace(n), "'{}' has the normalizer {}: the converted model keeps text as it is "
             "(LLaMA-2 normalizes nothing but spaces, Prepend(\"\u2581\") + Replace(\" \", \"\u2581\")), so it "
             "would encode differently", path, n.dump());
  for (const auto& p : pre)
    CG_CHECK(p.value("type", "") == "Metaspace" ||
             (p.value("type", "") == "Digits" && p.value("individual_digits", false)),  // = split_digits
             "'{}' has a {} pre-tokenizer, which a sentencepiece model cannot reproduce", path,
             p.value("type", p.dump()));
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    CG_CHECK(!j["model"].contains(k) || j["model"][k].is_null() || j["model"][k] == "",
             "'{}' has model.{} {}: sentencepiece BPE marks words by \"\u2581\" only", path, k,
             j["model"][k].dump());
  bool prepend = false, replace = false, metaspace = false;
  for (const auto& n : norm) {
    prepend = prepend || is_prepend(n);
    replace = replace || is_replace(n);
  }
  for (const auto& p : pre)
    if (p.value("type", "") == "Metaspace" && p.value("replacement", "") == "\u2581" &&
        p.value("prepend_scheme", "always") != "never" && p.value("add_prefix_space", true))
      metaspace = true;
  CG_CHECK((prepend && replace) || metaspace, "'{}' does not write spaces as \"\u2581\" with a leading one (LLaMA-2's "
           "normalizer Prepend(\"\u2581\") + Replace(\" \", \"\u2581\"), or a Metaspace pre-tokenizer): the converted "
           "sentencepiece model would encode differently", path);
}

}  // namespace

namespace {

// model.vocab {piece: id} as id -> piece.
std::vector<std::string> vocab_of(const nlohmann::json& j, const std::string& json_path) {
  CG_CHECK(j.contains("model") && j["model"].contains("vocab") && j["model"]["vocab"].is_object(),
           "'{}' has no model.vocab object", json_path);
  const auto& jv = j["model"]["vocab"];
  std::vector<std::string> vocab(jv.size());
  for (auto it = jv.begin(); it != jv.end(); ++it) {
    uint64_t id = 0;
    CG_CHECK(json_uint64(it.value(), &id), "'{}': model.vocab id of {} is {}, not a whole number >= 0", json_path,
             nlohmann::json(it.key()).dump(), it.value().dump());
    CG_CHECK(id < vocab.size() && vocab[id].empty(), "'{}': vocab ids are not 0..{} without gaps", json_path,
             vocab.size() - 1);
    vocab[id] = it.key();
  }
  return vocab;
}

SpModelSpec spec_from_hf_json(const std::string& json_path) {
  nlohmann::json j = nlohmann::json::parse(read_file(json_path, "tokenizer.json"));
  CG_CHECK(j.contains("model") && j["model"].value("type", "") == "BPE",
           "'{}' is not a BPE tokenizer.json (model.type must be \"BPE\")", json_path);
  check_llama_style(j, json_path);
  const std::vector<std::string> vocab = vocab_of(j, json_path);
  // Added tokens must be pieces of the vocabulary (LLaMA-2's <unk>, <s>, </s>); one past it (a <pad> added for
  // fine-tuning) has no place in a sentencepiece model and would silently vanish.
  for (const auto& t : j.value("added_tokens", nlohmann::json::array())) {
    CG_CHECK(t.is_object(), "'{}': added token {} is not an object {{\"id\": ..., \"content\": ...}}", json_path,
             t.dump());
    uint64_t id = uint64_t(-1);  // stays so for a missing, negative or fractional id: none
    if (t.contains("id")) json_uint64(t["id"], &id);
    const std::string content = t.value("content", "");
    CG_CHECK(id < vocab.size() && vocab[id] == content, "'{}': added token '{}' (id {}) is not in the BPE vocabulary "
             "of {} pieces: a sentencepiece tokenizer.model cannot carry it; use the base model's tokenizer.json",
             json_path, content, id == uint64_t(-1) ? t.value("id", nlohmann::json()).dump() : std::to_string(id),
             vocab.size());
  }
  CG_CHECK(j["model"].contains("merges") && j["model"]["merges"].is_array(), "'{}' has no model.merges list: a BPE "
           "tokenizer.json lists its merges in rank order", json_path);
  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& m : j["model"]["merges"]) {
    if (m.is_string()) {
      std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      CG_CHECK(sp != std::string::npos, "'{}': merge '{}' is not 'a b'", json_path, s);
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      CG_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), "'{}': merge {} is not a pair "
               "of pieces (\"a b\" or [\"a\", \"b\"])", json_path, m.dump());
      merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
    }
  }
  return sp_model_from_bpe(vocab, merges);
}

}  // namespace

SpModelSpec sp_model_from_hf_tokenizer_json(const std::string& json_path) {
  try {
    return spec_from_hf_json(json_path);
  } catch (const nlohmann::json::exception& e) {  // a bad type or syntax: say which file
    CG_FAIL("'{}' is not a tokenizer.json this converter reads: {}", json_path, e.what());
  }
}

std::vector<std::string> hf_tokenizer_json_vocab(const std::string& json_path) {
  try {
    return vocab_of(nlohmann::json::parse(read_file(json_path, "tokenizer.json")), json_path);
  } catch (const nlohmann::json::exception& e) {
    CG_FAIL("'{}' is not a readable tokenizer.json: {}", json_path, e.what());
  }
}

}  // namespace cg
