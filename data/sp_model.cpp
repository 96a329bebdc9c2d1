// sentencepiece ModelProto writer, BPE converters and the small-model trainer.
#include "data/sp_model.h"

#include <sentencepiece_trainer.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

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

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  CG_CHECK(in.good(), "cannot read {} '{}': check the path", what, path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
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
  std::string trainer;
  put_int32(trainer, 3, 2);  // model_type = BPE
  put_int32(trainer, 4, int32_t(spec.pieces.size()));
  put_bool(trainer, 25, spec.split_digits);
  put_bool(trainer, 35, spec.byte_fallback);
  put_int32(trainer, 40, spec.unk_id);
  put_int32(trainer, 41, spec.bos_id);
  put_int32(trainer, 42, spec.eos_id);
  put_int32(trainer, 43, spec.pad_id);
  put_bytes(out, 2, trainer);
  std::string norm;
  put_bytes(norm, 1, "identity");
  put_bool(norm, 3, spec.add_dummy_prefix);
  put_bool(norm, 4, false);  // remove_extra_whitespaces: keep text exactly
  put_bool(norm, 5, true);   // escape_whitespaces: ' ' -> '▁'
  put_bytes(out, 3, norm);
  return out;
}

SpModelSpec sp_model_from_bpe(const std::vector<std::string>& vocab,
                              const std::vector<std::pair<std::string, std::string>>& merges) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < vocab.size(); ++i) {
    CG_CHECK(index.emplace(vocab[i], i).second, "vocabulary lists piece '{}' twice (ids {} and {})", vocab[i],
             index[vocab[i]], i);
  }
  std::vector<bool> scored(vocab.size(), false);
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
    }
  }
  CG_CHECK(index.count("<unk>"), "vocabulary has no '<unk>' piece");
  for (int b = 0; b < 256; ++b)
    CG_CHECK(index.count(fmt::format("<0x{:02X}>", b)), "vocabulary lacks byte piece <0x{:02X}> (byte fallback)", b);
  return spec;
}

SpModelSpec sp_model_from_llama_tokenizer_js(const std::string& js_path) {
  const std::string js = read_text_file(js_path, "llama-tokenizer-js file");
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

SpModelSpec sp_model_from_hf_tokenizer_json(const std::string& json_path) {
  nlohmann::json j = nlohmann::json::parse(read_text_file(json_path, "tokenizer.json"));
  CG_CHECK(j.contains("model") && j["model"].value("type", "") == "BPE",
           "'{}' is not a BPE tokenizer.json (model.type must be \"BPE\")", json_path);
  const auto& jv = j["model"]["vocab"];
  std::vector<std::string> vocab(jv.size());
  for (auto it = jv.begin(); it != jv.end(); ++it) {
    size_t id = it.value().get<size_t>();
    CG_CHECK(id < vocab.size() && vocab[id].empty(), "'{}': vocab ids are not 0..{} without gaps", json_path,
             vocab.size() - 1);
    vocab[id] = it.key();
  }
  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& m : j["model"]["merges"]) {
    if (m.is_string()) {
      std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      CG_CHECK(sp != std::string::npos, "'{}': merge '{}' is not 'a b'", json_path, s);
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
    }
  }
  return sp_model_from_bpe(vocab, merges);
}

namespace {
class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& v_;
  size_t i_ = 0;
};
}  // namespace

std::string train_sp_model(const std::vector<std::string>& sentences, int vocab_size, int threads) {
  CG_CHECK(!sentences.empty(), "no text to train a tokenizer on");
  CG_CHECK(vocab_size >= 300, "data.tokenizer_vocab_size {} is too small: byte fallback alone needs 259 pieces; "
                              "use at least 300", vocab_size);
  std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},
      {"character_coverage", "1.0"},
      {"max_sentence_length", "100000"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"hard_vocab_limit", "false"},
      {"num_threads", std::to_string(std::max(1, threads))},
      {"minloglevel", "2"},
  };
  VectorIterator it(sentences);
  std::string model;
  auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  CG_CHECK(st.ok(), "sentencepiece training failed (raise data.tokenizer_vocab_size if it is too small): {}", st.ToString());
  return model;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    CG_CHECK(out.good(), "cannot write '{}': check that its folder exists and is writable", tmp);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.close();
    CG_CHECK(out.good(), "error writing '{}' (disk full?)", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  CG_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
}

}  // namespace cg
