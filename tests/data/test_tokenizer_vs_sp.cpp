// cg::Tokenizer (our BPE, no libsentencepiece) against libsentencepiece's own SentencePieceProcessor, on the same
// .model bytes: ids must be equal on MP-20 crystal texts and prompts, edge cases and random strings, for LLaMA-2's
// tokenizer, a crystal tokenizer trained by cgprep's code, and models trained with other normalizer options.
// This binary links libsentencepiece and therefore must never link torch (see data/sp_train.h).
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "common/error.h"
#include "data/crystal_text.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/rng.h"
#include "data/sp_model.h"
#include "data/sp_train.h"
#include "data/tokenizer.h"

namespace {

using Ids = std::vector<int32_t>;
const std::string kSrc = CG_SOURCE_DIR;

// Crystal text, generation prompt + completion and infill prompt + completion of the first 2000 MP-20 train rows.
const std::vector<std::string>& mp20_texts() {
  static const std::vector<std::string> texts = [] {
    const cg::Mp20Split s = cg::read_mp20(kSrc + "/data/mp20/train.csv.gz", 2000);
    std::vector<std::string> out;
    for (size_t i = 0; i < s.crystals.size(); ++i) {
      cg::Rng rng(cg::Rng::derive({7, i}));
      out.push_back(cg::crystal_to_text(s.crystals[i]));
      cg::TextSample g = cg::make_generation_sample(s.crystals[i], {}, rng);
      out.push_back(g.prompt + g.completion);
      cg::TextSample f = cg::make_infill_sample(s.crystals[i], {}, rng);
      out.push_back(f.prompt + f.completion);
    }
    return out;
  }();
  return texts;
}

// Lines of the first `rows` texts: the sentences a tokenizer is trained on (as cgprep does).
std::vector<std::string> training_lines(size_t rows) {
  std::vector<std::string> lines;
  const auto& texts = mp20_texts();
  for (size_t i = 0; i < std::min(rows * 3, texts.size()); ++i) {
    size_t p = 0;
    for (size_t nl; (nl = texts[i].find('\n', p)) != std::string::npos; p = nl + 1)
      if (nl > p) lines.push_back(texts[i].substr(p, nl - p));
    if (p < texts[i].size()) lines.push_back(texts[i].substr(p));
  }
  return lines;
}

std::vector<std::string> edge_cases() {
  return {"", " ", "  ", "\n", " \n ", "\n\n", "a", " a", "a ", "a  b", "a   b  ", "   leading", "trailing   ",
          "\ttabs\t\t", "[MASK]", "x\n[MASK]\ny", "[MASK][MASK] [MASK]", "▁", "▁▁ ▁x", "Fe2O3", "Hello world",
          "ünïcödé ñ", "镇", "🦙Ꙋ", "Zz~ ✓ 12", "\xff", "a\xc3", "\xc3(", "\xed\xa0\x80", "\xef\xbf\xbd", "\xc0\x80",
          "\xf4\x90\x80\x80", std::string("a\0b", 3), "0.50 0.50 0.50\nMn\n", "The chemical formula is LiMnO2."};
}

// Random strings from a pool of ASCII, spaces, newlines, "▁", multi-byte characters, "[MASK]" and stray bytes.
std::vector<std::string> random_strings(int n, uint64_t seed) {
  const std::vector<std::string> pool = {"a", "b", "e", "Li", "O", "0", "1", "5", ".", " ", " ", "  ", "\n", "\t",
                                         "▁", "é", "镇", "🦙", "[MASK]", "[", "]", "\xff", "\xe2\x96", "<s>", "<0x0A>"};
  cg::Rng rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s;
    const uint64_t len = rng.below(24);
    for (uint64_t k = 0; k < len; ++k) s += pool[rng.below(pool.size())];
    out.push_back(s);
  }
  return out;
}

struct Pair {
  cg::Tokenizer ours;
  sentencepiece::SentencePieceProcessor sp;
};

std::unique_ptr<Pair> make_pair(const std::string& bytes) {
  auto p = std::make_unique<Pair>();
  p->ours = cg::Tokenizer::from_bytes(bytes);
  const auto st = p->sp.LoadFromSerializedProto(bytes);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return p;
}

std::string train(std::unordered_map<std::string, std::string> args, size_t rows) {
  const std::vector<std::string> lines = training_lines(rows);
  struct It : sentencepiece::SentenceIterator {
    const std::vector<std::string>& v;
    size_t i = 0;
    explicit It(const std::vector<std::string>& v_) : v(v_) {}
    bool done() const override { return i >= v.size(); }
    void Next() override { ++i; }
    const std::string& value() const override { return v[i]; }
    sentencepiece::util::Status status() const override { return {}; }
  } it(lines);
  args.emplace("minloglevel", "2");
  args.emplace("num_threads", "1");
  args.emplace("hard_vocab_limit", "false");
  args.emplace("character_coverage", "1.0");
  std::string model;
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return model;
}

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (unsigned char c : s) q += c < 0x20 || c >= 0x7F ? fmt::format("\\x{:02x}", c) : std::string(1, char(c));
  return q + "\"";
}

// Ids equal to libsentencepiece's for every text, and decoding those ids (after BOS) equal to its decoding;
// round_trip: also decode(encode(x)) == x.
void expect_same(const Pair& p, const std::vector<std::string>& texts, const std::string& what,
                   bool round_trip) {
  int bad = 0;
  for (const std::string& text : texts) {
    std::vector<int> ref;
    ASSERT_TRUE(p.sp.Encode(text, &ref).ok());
    const Ids ours = p.ours.encode(text, false);
    if (ours != Ids(ref.begin(), ref.end()) && ++bad <= 5) {
      ADD_FAILURE() << what << ": ids differ for " << quoted(text) << "\n  ours: " << fmt::format("{}", fmt::join(ours, " "))
                    << "\n  sp:   " << fmt::format("{}", fmt::join(ref, " "));
    }
    {
      std::string ref_text;
      std::vector<int> with_bos = ref;
      if (p.sp.bos_id() >= 0) with_bos.insert(with_bos.begin(), p.sp.bos_id());
      ASSERT_TRUE(p.sp.Decode(with_bos, &ref_text).ok());
      const std::string ours_text = p.ours.decode(Ids(with_bos.begin(), with_bos.end()));
      if (ours_text != ref_text && ++bad <= 5)
        ADD_FAILURE() << what << ": decode differs for " << quoted(text) << ": ours " << quoted(ours_text) << ", sp "
                      << quoted(ref_text);
    }
    if (round_trip && p.ours.decode(ours) != text && ++bad <= 5)
      ADD_FAILURE() << what << ": decode(encode(x)) != x for " << quoted(text) << ": " << quoted(p.ours.decode(ours));
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << texts.size() << " texts differ";
}

// Strings decode(encode(x)) == x holds for: malformed bytes become U+FFFD and a literal "▁" decodes to ' '.
std::vector<std::string> round_trippable(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) {
    bool ok = s.find("\xe2\x96\x81") == std::string::npos;
    for (size_t k = 0, n; ok && k < s.size(); k += n) {
      n = 1;
      const auto b = uint8_t(s[k]);
      if (b >= 0x80) {  // well-formed multi-byte characters of the pools above only: é, ▁, 镇, 🦙, ñ, ... (C2-F0 leads)
        n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        ok = b >= 0xC2 && b <= 0xF0 && b != 0xED && k + n <= s.size();
        for (size_t m = 1; ok && m < n; ++m) ok = (uint8_t(s[k + m]) & 0xC0) == 0x80;
        if (ok && b == 0xF0) ok = uint8_t(s[k + 1]) >= 0x90;
      }
    }
    if (ok) out.push_back(s);
  }
  return out;
}

// mp20_rows: how many of the 2000 rows' texts to compare (all for the models cgprep and LLaMA-2 use).
void compare_all(const Pair& p, const std::string& what, bool round_trip, size_t mp20_rows = 2000) {
  const auto edges = edge_cases();
  const auto randoms = random_strings(400, 11);
  const auto& all = mp20_texts();
  expect_same(p, std::vector<std::string>(all.begin(), all.begin() + long(std::min(all.size(), 3 * mp20_rows))),
              what + " MP-20", round_trip);
  expect_same(p, round_trip ? round_trippable(edges) : edges, what + " edge cases", round_trip);
  expect_same(p, round_trip ? round_trippable(randoms) : randoms, what + " random", round_trip);
  if (round_trip) {  // malformed input still encodes like sentencepiece
    expect_same(p, edges, what + " edge cases (ids)", false);
    expect_same(p, randoms, what + " random (ids)", false);
  }
}

// Decoding random id sequences (control, unknown, byte pieces that form malformed UTF-8, normal pieces) equals
// sentencepiece's.
void compare_decode_random(const Pair& p, const std::string& what) {
  cg::Rng rng(5);
  const int v = p.ours.vocab_size();
  const int space = p.sp.PieceToId("▁");
  int bad = 0;
  for (int i = 0; i < 500; ++i) {
    std::vector<int> ids;
    const uint64_t len = rng.below(12);
    if (i % 4 == 0) ids.push_back(space);  // a leading "▁" piece: the dummy prefix must be dropped once only
    for (uint64_t k = 0; k < len; ++k) ids.push_back(int(rng.below(uint64_t(v))));
    std::string ref;
    ASSERT_TRUE(p.sp.Decode(ids, &ref).ok());
    const std::string ours = p.ours.decode(Ids(ids.begin(), ids.end()));
    if (ours != ref && ++bad <= 5)
      ADD_FAILURE() << what << ": decode of [" << fmt::format("{}", fmt::join(ids, " ")) << "]: ours " << quoted(ours)
                    << ", sp " << quoted(ref);
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace

TEST(TokenizerVsSentencepiece, Llama2) {
  std::string path = kSrc + "/third_party/llama2/tokenizer.model";
  std::string bytes;
  if (std::filesystem::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    bytes = ss.str();
  } else if (std::filesystem::exists(kSrc + "/third_party/llama-tokenizer-js/llama-tokenizer.js")) {
    bytes = cg::serialize_sp_model(
        cg::sp_model_from_llama_tokenizer_js(kSrc + "/third_party/llama-tokenizer-js/llama-tokenizer.js"));
  } else {
    GTEST_SKIP() << path << " is absent (scripts/build.sh makes it with cgtok llama-js)";
  }
  auto p = make_pair(bytes);
  EXPECT_EQ(p->ours.vocab_size(), p->sp.GetPieceSize());
  EXPECT_EQ(p->ours.bos_id(), p->sp.bos_id());
  EXPECT_EQ(p->ours.eos_id(), p->sp.eos_id());
  EXPECT_EQ(p->ours.encode("Hello world", true), (Ids{1, 15043, 3186}));
  compare_all(*p, "llama2", true);
  compare_decode_random(*p, "llama2");
}

TEST(TokenizerVsSentencepiece, CrystalTokenizerFromCgprepCode) {
  for (int vocab : {400, 1200}) {
    auto p = make_pair(cg::train_sp_model(training_lines(vocab == 400 ? 2000 : 600), vocab, 2));
    EXPECT_EQ(p->ours.vocab_size(), p->sp.GetPieceSize());
    EXPECT_EQ(p->ours.bos_id(), p->sp.bos_id());
    EXPECT_EQ(p->ours.eos_id(), p->sp.eos_id());
    for (int id = 0; id < p->ours.vocab_size(); ++id) ASSERT_EQ(p->ours.piece(id), p->sp.IdToPiece(id));
    compare_all(*p, fmt::format("trained{}", vocab), true);
    compare_decode_random(*p, fmt::format("trained{}", vocab));
  }
}

// Other normalizer and vocabulary options sentencepiece models can carry: each branch of the normalizer, user-defined
// and control symbols, unknown runs without byte fallback, whitespace as suffix.
TEST(TokenizerVsSentencepiece, OtherOptions) {
  const std::unordered_map<std::string, std::string> bpe = {{"model_type", "bpe"}, {"vocab_size", "350"},
                                                            {"normalization_rule_name", "identity"}};
  auto with = [&](std::unordered_map<std::string, std::string> extra) {
    for (const auto& kv : bpe) extra.emplace(kv);
    return extra;
  };
  struct Case {
    std::string name;
    std::unordered_map<std::string, std::string> args;
  };
  const std::vector<Case> cases = {
      {"remove_extra_ws+user_defined+control",
       with({{"byte_fallback", "true"}, {"user_defined_symbols", "[MASK],Li"}, {"control_symbols", "<ctl>"}})},
      {"no_dummy_prefix+no_byte_fallback", with({{"add_dummy_prefix", "false"}, {"remove_extra_whitespaces", "false"}})},
      {"ws_suffix", with({{"treat_whitespace_as_suffix", "true"}, {"byte_fallback", "true"},
                          {"remove_extra_whitespaces", "false"}})},
      {"no_escape_ws_unused", with({{"byte_fallback", "true"}, {"remove_extra_whitespaces", "false"}})},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string bytes = train(c.args, 300);
    if (c.name == "no_escape_ws_unused") {
      // Turn escape_whitespaces off and mark a few merged pieces UNUSED (they are split back into their parts).
      cg::SpModelSpec s = cg::parse_sp_model(bytes);
      s.escape_whitespaces = false;
      int unused = 0;
      for (auto& piece : s.pieces)
        if (piece.type == cg::SpPieceType::kNormal && piece.piece.size() >= 2 && unused < 12)
          piece.type = cg::SpPieceType::kUnused, ++unused;
      EXPECT_EQ(unused, 12);
      bytes = cg::serialize_sp_model(s);
    }
    const cg::SpModelSpec spec = cg::parse_sp_model(bytes);
    EXPECT_EQ(spec.treat_whitespace_as_suffix, c.name == "ws_suffix");
    EXPECT_EQ(spec.add_dummy_prefix, c.name != "no_dummy_prefix+no_byte_fallback");
    EXPECT_EQ(spec.remove_extra_whitespaces, c.name == "remove_extra_ws+user_defined+control");
    EXPECT_EQ(spec.byte_fallback, c.name != "no_dummy_prefix+no_byte_fallback");
    auto p = make_pair(bytes);
    compare_all(*p, c.name, false, 500);
    compare_decode_random(*p, c.name);
  }
}

TEST(TokenizerVsSentencepiece, RefusesUnigramModels) {
  const std::string bytes = train({{"model_type", "unigram"}, {"vocab_size", "300"}}, 200);
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(bytes).ok());  // a valid model, just not BPE
  try {
    cg::Tokenizer::from_bytes(bytes);
    FAIL() << "a unigram model was accepted";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unigram"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("BPE"), std::string::npos) << e.what();
  }
}
