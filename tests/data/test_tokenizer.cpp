// Tokenizers: LLaMA-2's converted from llama-tokenizer-js reproduces LLaMA-2's ids; the HF tokenizer.json converter;
// a small trained model round-trips crystal text and splits digits.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/sp_model.h"
#include "data/sp_train.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

namespace {

const std::string kJs = std::string(CG_SOURCE_DIR) + "/third_party/llama-tokenizer-js/llama-tokenizer.js";

// LLaMA-2's tokenizer, converted once per test binary; nullptr when the npm file is absent.
const cg::Tokenizer* llama() {
  static std::unique_ptr<cg::Tokenizer> tok = []() -> std::unique_ptr<cg::Tokenizer> {
    if (!std::filesystem::exists(kJs)) return nullptr;
    const std::string path = testing::TempDir() + "/llama2_test.model";
    cg::write_file_atomic(path, cg::serialize_sp_model(cg::sp_model_from_llama_tokenizer_js(kJs)));
    return std::make_unique<cg::Tokenizer>(cg::Tokenizer::load(path));
  }();
  return tok.get();
}

#define NEED_LLAMA()                                                                           \
  if (llama() == nullptr) GTEST_SKIP() << kJs << " is absent (scripts/install.sh fetches it)"

using Ids = std::vector<int32_t>;

}  // namespace

TEST(LlamaTokenizer, KnownIds) {
  NEED_LLAMA();
  const cg::Tokenizer& t = *llama();
  EXPECT_EQ(t.vocab_size(), 32000);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.encode("Hello world", true), (Ids{1, 15043, 3186}));
  EXPECT_EQ(t.piece(29871), "▁");
  EXPECT_EQ(t.piece(13), "<0x0A>");
  EXPECT_EQ(t.piece(1), "<s>");
  // Cases from llama-tokenizer-js's own suite (checked there against LLaMA's tokenizer).
  EXPECT_EQ(t.encode("grabbed", true), (Ids{1, 2646, 1327, 287}));
  EXPECT_EQ(t.encode(" grabbed", true), (Ids{1, 29871, 2646, 1327, 287}));
  EXPECT_EQ(t.encode("           grabbed", true), (Ids{1, 9651, 2646, 1327, 287}));
  EXPECT_EQ(t.encode("\n", true), (Ids{1, 29871, 13}));
  EXPECT_EQ(t.encode(" \n", true), (Ids{1, 259, 13}));
  EXPECT_EQ(t.encode("\ttabs\t\t\t\tout here", true), (Ids{1, 29871, 12, 21175, 12, 12, 12, 12, 449, 1244}));
  EXPECT_EQ(t.encode("ax\n####\nboo", true), (Ids{1, 4853, 13, 4136, 13, 833, 29877}));
  EXPECT_EQ(t.encode("镇", true), (Ids{1, 29871, 30411}));
  EXPECT_EQ(t.encode("🦙Ꙋ", true), (Ids{1, 29871, 243, 162, 169, 156, 237, 156, 141}));
  EXPECT_EQ(t.decode({1, 29871, 243, 162, 169, 156, 237, 156, 141}), "🦙Ꙋ");
}

TEST(LlamaTokenizer, CrystalTextAndPrompts) {
  NEED_LLAMA();
  const cg::Tokenizer& t = *llama();
  // Ids from llama-tokenizer-js for the paper's example: digits one per token, "\n" = <0x0A> = 13.
  const std::string text = "4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50\nMn\n0.00 0.00 0.00";
  const Ids expect = {1,     29871, 29946, 29889, 29906, 29871, 29946, 29889, 29906, 29871, 29946, 29889,
                      29906, 13,    29953, 29900, 29871, 29953, 29900, 29871, 29953, 29900, 13,    23410,
                      13,    29900, 29889, 29945, 29900, 29871, 29900, 29889, 29945, 29900, 29871, 29900,
                      29889, 29945, 29900, 13,    29924, 29876, 13,    29900, 29889, 29900, 29900, 29871,
                      29900, 29889, 29900, 29900, 29871, 29900, 29889, 29900, 29900};
  EXPECT_EQ(t.encode(text, true), expect);
  EXPECT_EQ(t.decode(expect), text);
  cg::GenerationConditions c;
  c.formula = "LiMnO2";
  c.spacegroup = 225;
  const Ids gen = {1,     13866, 338,   263,   6139,  310,   263,   21610, 5518,  29889, 450,   22233,
                   7063,  338,   2718,  29924, 29876, 29949, 29906, 29889, 450,   2913,  2972,  1353,
                   338,   29871, 29906, 29906, 29945, 29889, 3251,  403,   263,   6139,  310,   278,
                   27497, 322,   23619, 310,   278,   24094, 12047, 322,   769,   278,   1543,  1134,
                   322,   10350, 363,   1269,  12301, 2629,  278,   24094, 29901, 13};
  EXPECT_EQ(t.encode(cg::generation_prompt(c), true), gen);
  // The infill prompt + completion as one string.
  cg::Crystal x;
  x.lattice = {5, 5, 5, 90, 90, 90};
  x.species = {"Cl", "Na"};
  x.frac = {{0, 0, 0}, {0.5, 0.5, 0.5}};
  const Ids infill = t.encode(cg::infill_prompt(x, "Cl") + "Cl", true);
  const Ids infill_tail = {13, 5631, 403, 385, 1543, 393, 1033, 5191, 518, 1529, 16033, 29962, 297, 278, 21610,
                           5518, 29901, 13, 6821};
  ASSERT_GT(infill.size(), infill_tail.size());
  EXPECT_EQ(Ids(infill.end() - long(infill_tail.size()), infill.end()), infill_tail);
  EXPECT_EQ(Ids(infill.begin(), infill.begin() + 5), (Ids{1, 13866, 338, 263, 7687}));
}

// LLaMA-2's tokenizer.json normalizer: a leading "▁", spaces as "▁".
constexpr const char* kLlamaNormalizer =
    "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\u2581\"}, "
    "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}]}";

TEST(HfTokenizerJson, HandBuiltBpe) {
  // Vocabulary: specials, 256 bytes, then pieces; merges a+b, ▁+a, ab+c in that priority.
  std::string vocab = "\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2";
  for (int b = 0; b < 256; ++b) vocab += fmt::format(", \"<0x{:02X}>\": {}", b, 3 + b);
  const char* pieces[] = {"▁", "a", "b", "c", "ab", "▁a", "abc"};
  for (int i = 0; i < 7; ++i) vocab += fmt::format(", \"{}\": {}", pieces[i], 259 + i);
  for (const char* merges : {R"(["a b", "▁ a", "ab c"])", R"([["a", "b"], ["▁", "a"], ["ab", "c"]])"}) {
    const std::string json = std::string("{") + kLlamaNormalizer + ", \"model\": {\"type\": \"BPE\", \"vocab\": {" +
                             vocab + "}, \"merges\": " + merges + "}}";
    const std::string path = testing::TempDir() + "/hf_tokenizer.json";
    std::ofstream(path) << json;
    cg::Tokenizer t = cg::Tokenizer::from_bytes(cg::serialize_sp_model(cg::sp_model_from_hf_tokenizer_json(path)));
    EXPECT_EQ(t.vocab_size(), 266);
    // "abc ab" -> "▁abc▁ab": a+b first (both places, left to right), then ab+c; "▁ab" is not a piece.
    EXPECT_EQ(t.encode("abc ab", true), (Ids{1, 259, 265, 259, 263}));
    // "ca" -> "▁ca": ▁+a is not adjacent; unknown "z" falls back to its byte <0x7A> = 3 + 122.
    EXPECT_EQ(t.encode("caz", false), (Ids{259, 262, 260, 3 + 0x7A}));
    EXPECT_EQ(t.decode(t.encode("abc ab z\n", true)), "abc ab z\n");
  }
  // Pieces no merge makes (▁a, abc without their merges) are never produced, as in HF's BPE: "abc" is ▁ ab c with
  // only a+b, and ▁ a b c with no merge at all (before, ▁a and abc were merged as if they had one).
  for (const auto& [merges, want] : std::vector<std::pair<std::string, Ids>>{{R"(["a b"])", {259, 263, 262}},
                                                                             {"[]", {259, 260, 261, 262}}}) {
    const std::string path = testing::TempDir() + "/hf_unmade.json";
    std::ofstream(path) << std::string("{") + kLlamaNormalizer + ", \"model\": {\"type\": \"BPE\", \"vocab\": {" +
                               vocab + "}, \"merges\": " + merges + "}}";
    cg::Tokenizer t = cg::Tokenizer::from_bytes(cg::serialize_sp_model(cg::sp_model_from_hf_tokenizer_json(path)));
    EXPECT_EQ(t.encode("abc", false), want) << merges;
    EXPECT_EQ(t.decode(t.encode("abc a", false)), "abc a") << merges;
  }
  const std::string bad = testing::TempDir() + "/hf_bad.json";
  std::ofstream(bad) << "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}";
  EXPECT_THROW(cg::sp_model_from_hf_tokenizer_json(bad), cg::Error);
  // Settings the sentencepiece model cannot follow are refused by what differs, not converted into another tokenizer.
  const std::string model = "\"model\": {\"type\": \"BPE\", \"vocab\": {" + vocab + "}, \"merges\": []";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string(kLlamaNormalizer) + ", " + model + ", \"byte_fallback\": false}", "byte_fallback false"},
      {model + "}", "does not write spaces as"},
      {"\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, " + model + "}", "byte-level BPE"},
      {std::string(kLlamaNormalizer) + ", \"added_tokens\": [{\"id\": 266, \"content\": \"<pad>\"}], " + model + "}",
       "added token '<pad>' (id 266) is not in the BPE vocabulary of 266 pieces"},
      // An id that is not a whole number >= 0 is no id (1e30 was converted to size_t: undefined behaviour).
      {std::string(kLlamaNormalizer) + ", \"added_tokens\": [{\"id\": 1e30, \"content\": \"<s>\"}], " + model + "}",
       "added token '<s>' (id 1e+30) is not in the BPE vocabulary"},
      {std::string(kLlamaNormalizer) + ", \"added_tokens\": [{\"id\": -1, \"content\": \"<s>\"}], " + model + "}",
       "added token '<s>' (id -1) is not in the BPE vocabulary"},
      {std::string(kLlamaNormalizer) + ", \"added_tokens\": [7], " + model + "}", "added token 7 is not an object"},
      // Normalizers and pre-tokenizers that change the text, word-end markers: HF would encode otherwise.
      {"\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Lowercase\"}, "
       "{\"type\": \"Prepend\", \"prepend\": \"\u2581\"}, {\"type\": \"Replace\", \"pattern\": "
       "{\"String\": \" \"}, \"content\": \"\u2581\"}]}, " + model + "}",
       "has the normalizer {\"type\":\"Lowercase\"}"},
      {"\"normalizer\": {\"type\": \"NFKC\"}, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": "
       "\"\u2581\"}, " + model + "}", "has the normalizer {\"type\":\"NFKC\"}"},
      {"\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Metaspace\", "
       "\"replacement\": \"\u2581\"}, {\"type\": \"Whitespace\"}]}, " + model + "}",
       "has a Whitespace pre-tokenizer"},
      {std::string(kLlamaNormalizer) + ", " + model + ", \"end_of_word_suffix\": \"</w>\"}",
       "model.end_of_word_suffix \"</w>\""},
      {std::string(kLlamaNormalizer) + ", \"model\": {\"type\": \"BPE\", \"vocab\": {" + vocab + "}}",
       "has no model.merges list"},
      {std::string(kLlamaNormalizer) + ", \"model\": {\"type\": \"BPE\", \"vocab\": {" + vocab +
           "}, \"merges\": [[\"a\", \"b\", \"c\"]]}", "merge [\"a\",\"b\",\"c\"] is not a pair of pieces"},
      {std::string(kLlamaNormalizer) + ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": \"zero\"}, "
       "\"merges\": []}", "model.vocab id of \"<unk>\" is \"zero\", not a whole number >= 0"},
  };
  for (const auto& [json, expect] : cases) {
    std::ofstream(bad) << "{" << json << "}";
    const std::string err = cg::test::error_of([&] { cg::sp_model_from_hf_tokenizer_json(bad); });
    EXPECT_NE(err.find(expect), std::string::npos) << json << " -> " << err;
    EXPECT_NE(err.find(bad), std::string::npos) << err;  // the file is named
  }
  std::ofstream(bad) << "{\"model\": ";  // cut short: the JSON error names the file
  EXPECT_NE(cg::test::error_of([&] { cg::sp_model_from_hf_tokenizer_json(bad); }).find(bad), std::string::npos);
  // Newer exports: no normalizer, a Metaspace pre-tokenizer; added tokens that are vocabulary pieces.
  std::ofstream(bad) << "{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\u2581\", "
                        "\"prepend_scheme\": \"first\"}, \"added_tokens\": [{\"id\": 1, \"content\": \"<s>\"}], "
                     << model << "}}";
  EXPECT_NO_THROW(cg::sp_model_from_hf_tokenizer_json(bad));
}

TEST(TrainedTokenizer, RoundTripsAndSplitsDigits) {
  cg::Mp20Split s = cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/val.csv.gz", 300);
  std::vector<std::string> lines, held_out;
  for (size_t i = 0; i < s.crystals.size(); ++i) {
    cg::Rng rng(i);
    cg::TextSample t = cg::make_generation_sample(s.crystals[i], {}, rng);
    std::string text = t.prompt + t.completion;
    if (i >= 250) {
      held_out.push_back(text);
      continue;
    }
    size_t p = 0;
    for (size_t nl; (nl = text.find('\n', p)) != std::string::npos; p = nl + 1) lines.push_back(text.substr(p, nl - p));
    lines.push_back(text.substr(p));
  }
  cg::Tokenizer t = cg::Tokenizer::from_bytes(cg::train_sp_model(lines, 400, 1));
  EXPECT_LE(t.vocab_size(), 400);
  EXPECT_GT(t.vocab_size(), 259);
  std::string multi_digit;  // normal pieces with two or more digits (byte pieces "<0x30>" excluded)
  for (int id = 0; id < t.vocab_size(); ++id) {
    const std::string p = t.piece(id);
    int digits = 0;
    for (char ch : p) digits += ch >= '0' && ch <= '9';
    if (digits > 1 && p.rfind("<0x", 0) != 0) multi_digit += " '" + p + "'";
  }
  EXPECT_EQ(multi_digit, "");
  const Ids ids = t.encode("123.45", false);
  EXPECT_GE(ids.size(), 6u);  // every digit its own token
  for (const auto& text : held_out) {
    const Ids ids = t.encode(text, true);
    EXPECT_EQ(ids[0], t.bos_id());
    EXPECT_EQ(t.decode(ids), text);
  }
  // Characters never seen in training fall back to bytes and still round-trip.
  EXPECT_EQ(t.decode(t.encode("Zz~ ✓ 12", true)), "Zz~ ✓ 12");
  EXPECT_THROW(cg::train_sp_model(lines, 100, 1), cg::Error);

  // The smallest vocabulary sentencepiece takes: 259 + one piece per distinct character (this text is ASCII, so
  // distinct bytes). One less is our error naming the number, not sentencepiece's.
  std::set<char> distinct;
  for (const auto& l : lines)
    for (char ch : l) {
      ASSERT_GE(static_cast<unsigned char>(ch), 0x20) << "the count below assumes printable ASCII";
      ASSERT_LT(static_cast<unsigned char>(ch), 0x80) << "the count below assumes printable ASCII";
      distinct.insert(ch);
    }
  const int need = 259 + int(distinct.size());
  EXPECT_EQ(cg::min_sp_vocab_size(lines), need);
  EXPECT_EQ(cg::min_sp_vocab_size({"a\xE2\x9C\x93 b"}), 259 + 4);  // a, ✓ (3 bytes, one character), ▁, b
  EXPECT_GT(cg::Tokenizer::from_bytes(cg::train_sp_model(lines, need, 1)).vocab_size(), 259);
  try {
    cg::train_sp_model(lines, need - 1, 1);
    ADD_FAILURE() << "no error at " << need - 1;
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("set data.tokenizer_vocab_size=" + std::to_string(need)), std::string::npos)
        << e.what();
  }
}

TEST(Tokenizer, LoadErrorsNameThePath) {
  try {
    cg::Tokenizer::load("/nonexistent/tok.model");
    FAIL();
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer model '/nonexistent/tok.model' does not exist: set "
                                         "data.tokenizer to a sentencepiece .model file"), std::string::npos)
        << e.what();
  }
  // Relative: said with the folder it was looked for in (a command run from another folder than the repository's).
  try {
    cg::Tokenizer::load("runs/nonexistent/tokenizer.model");
    FAIL();
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer model 'runs/nonexistent/tokenizer.model' does not exist in " +
                                         std::filesystem::current_path().string() + " (relative paths are read "
                                         "from the folder the command runs in)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cg::Tokenizer::from_bytes("not a model"), cg::Error);
  // Another file given as the tokenizer (a safetensors header here): named, with what to give instead.
  const std::string other = ::testing::TempDir() + "/adapter_model.safetensors";
  std::ofstream(other, std::ios::binary) << std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}", 15);
  try {
    cg::Tokenizer::load(other);
    FAIL();
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer model '" + other + "': "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("it is no sentencepiece .model file that reads: set data.tokenizer to one "
                                         "(cgtok converts LLaMA-2's tokenizer.json), or to 'train'"),
              std::string::npos) << e.what();
  }
}

namespace {

// A hand-made BPE model (no byte fallback): ids 0 <unk>, 1 <s>, 2 </s>, 3 "▁", 4 "a", 5 "b", 6 "c", 7 "ab", 8 "bc",
// 9 "▁a", 10 "abc". "ab" and "bc" tie on score: the leftmost pair merges first.
cg::SpModelSpec hand_spec() {
  cg::SpModelSpec s;
  s.byte_fallback = false;
  using T = cg::SpPieceType;
  s.pieces = {{"<unk>", 0, T::kUnknown}, {"<s>", 0, T::kControl}, {"</s>", 0, T::kControl}, {"▁", -10, T::kNormal},
              {"a", -11, T::kNormal},    {"b", -12, T::kNormal},   {"c", -13, T::kNormal},    {"ab", -1, T::kNormal},
              {"bc", -1, T::kNormal},    {"▁a", -2, T::kNormal},   {"abc", -3, T::kNormal}};
  return s;
}

}  // namespace

TEST(Tokenizer, HandBuiltMergeOrderUnknownRunsAndDummyPrefix) {
  const cg::Tokenizer t = cg::Tokenizer::from_bytes(cg::serialize_sp_model(hand_spec()));
  // "▁abc": ab (score -1, left 1) beats bc (-1, left 2) and ▁a (-2); then ab+c = abc; "▁ab" is no piece.
  EXPECT_EQ(t.encode("abc", false), (Ids{3, 10}));
  // A tie broken to the right would give ▁a + bc instead.
  EXPECT_EQ(t.encode("abc", true), (Ids{1, 3, 10}));
  EXPECT_EQ(t.encode("a", false), (Ids{9}));
  EXPECT_EQ(t.encode("", false), Ids{});
  EXPECT_EQ(t.encode("", true), Ids{1});
  // Without byte fallback a run of unknown characters is one <unk>; "▁" is its own piece.
  EXPECT_EQ(t.encode("xyz a", false), (Ids{3, 0, 9}));
  EXPECT_EQ(t.encode("x\xff" "b", false), (Ids{3, 0, 5}));
  EXPECT_EQ(t.decode({3, 0, 9}), " \xE2\x81\x87  a");  // <unk> decodes to " ⁇ "
  // The dummy prefix is dropped once, so leading spaces survive a round trip; control pieces give no text.
  EXPECT_EQ(t.encode(" a", false), (Ids{3, 9}));
  EXPECT_EQ(t.decode({1, 3, 9, 2}), " a");
  EXPECT_EQ(t.decode({1, 9, 9}), "a a");
  EXPECT_EQ(t.piece(10), "abc");
  EXPECT_THROW(t.decode({11}), cg::Error);
  EXPECT_THROW(t.piece(-1), cg::Error);
}

TEST(Tokenizer, ModelBytesRoundTripThroughTheParser) {
  cg::SpModelSpec s = hand_spec();
  s.bos_piece = "<s>";
  const std::string bytes = cg::serialize_sp_model(s);
  const cg::SpModelSpec back = cg::parse_sp_model(bytes);
  ASSERT_EQ(back.pieces.size(), s.pieces.size());
  for (size_t i = 0; i < s.pieces.size(); ++i) {
    EXPECT_EQ(back.pieces[i].piece, s.pieces[i].piece);
    EXPECT_EQ(back.pieces[i].score, s.pieces[i].score);
    EXPECT_EQ(back.pieces[i].type, s.pieces[i].type);
  }
  EXPECT_EQ(back.model_type, 2);
  EXPECT_FALSE(back.byte_fallback);
  EXPECT_TRUE(back.add_dummy_prefix);
  EXPECT_FALSE(back.remove_extra_whitespaces);
  EXPECT_EQ(back.normalizer_name, "identity");
  EXPECT_EQ(cg::serialize_sp_model(back), bytes);  // writer(parser(x)) == x
  // proto2 defaults for an empty message: a unigram model that removes extra whitespace.
  const cg::SpModelSpec empty = cg::parse_sp_model("");
  EXPECT_EQ(empty.model_type, 1);
  EXPECT_TRUE(empty.remove_extra_whitespaces);
  EXPECT_FALSE(empty.byte_fallback);
  // Truncated bytes are an error, not a silently shorter model.
  EXPECT_THROW(cg::parse_sp_model(std::string_view(bytes).substr(0, bytes.size() - 3)), cg::Error);
}

TEST(Tokenizer, RefusesModelsItCannotEncodeExactly) {
  auto rejects = [](const cg::SpModelSpec& s, const std::string& words) {
    try {
      cg::Tokenizer::from_bytes(cg::serialize_sp_model(s));
      ADD_FAILURE() << "accepted a model that should be refused (" << words << ")";
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  cg::SpModelSpec s = hand_spec();
  s.model_type = 1;
  rejects(s, "BPE");
  s = hand_spec();
  s.pieces[4].piece = "b";
  rejects(s, "defined twice");
  s = hand_spec();
  s.pieces[0].type = cg::SpPieceType::kNormal;
  rejects(s, "unknown piece");
  s = hand_spec();
  s.byte_fallback = true;
  rejects(s, "<0x00> is missing");
  s = hand_spec();
  s.has_charsmap = true;
  EXPECT_THROW(cg::serialize_sp_model(s), cg::Error);
}
