// Generator on a random tiny Llama: grammar-constrained decoding only ever yields parsable crystals with real
// elements, infill yields one element symbol, and a seed fixes the samples.
// The vocabulary is hand-made (bytes as sentencepiece byte pieces, printable characters, element symbols and a few
// digit pieces), so this torch binary does not load libsentencepiece (see sampler/generator.h).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "data/crystal_text.h"
#include "data/elements.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "model/llama.h"
#include "sampler/generator.h"

namespace cg {
namespace {

// A small sentencepiece-style vocabulary with a greedy longest-match encoder.
struct TinyVocab {
  std::vector<std::string> pieces;
  int eos_id = 2;
  TinyVocab() {
    pieces = {"<unk>", "<s>", "</s>", "<0x0A>"};
    for (char c = 33; c < 127; ++c) pieces.push_back(std::string(1, c));
    pieces.push_back("\xe2\x96\x81");  // "▁"
    for (const auto& e : all_elements())
      if (e.size() == 2) pieces.push_back(e);
    for (const char* p : {"0.", "\xe2\x96\x81" "0.", "90", "\xe2\x96\x81" "90", "00", "50", "25", "75"})
      pieces.push_back(p);
  }
  int vocab_size() const { return static_cast<int>(pieces.size()); }
  int eos() const { return eos_id; }
  std::vector<int32_t> encode(const std::string& text, bool bos) const {
    std::vector<int32_t> ids;
    if (bos) ids.push_back(1);
    for (size_t i = 0; i < text.size();) {
      int best = -1;
      size_t best_len = 0;
      for (int v = 3; v < vocab_size(); ++v) {
        const std::string t = piece_text(pieces[v]);
        if (t.size() > best_len && text.compare(i, t.size(), t) == 0) {
          best = v;
          best_len = t.size();
        }
      }
      if (best < 0) {  // not representable: skip (prompts are ASCII)
        ++i;
        continue;
      }
      ids.push_back(best);
      i += best_len;
    }
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const {
    std::string s;
    for (int32_t v : ids) s += piece_text(pieces[v]);
    return s;
  }
};

struct Fixture {
  TinyVocab tok;
  model::Llama model{nullptr};
  std::vector<Crystal> crystals;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    f.crystals = read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz", 40).crystals;
    model::LlamaConfig lc;
    lc.hidden_size = 64;
    lc.intermediate_size = 128;
    lc.num_attention_heads = 4;
    lc.num_key_value_heads = 2;
    lc.num_hidden_layers = 2;
    lc.vocab_size = f.tok.vocab_size();
    lc.max_position_embeddings = 2048;
    f.model = model::Llama(lc);
    model::init_weights(*f.model, 11, 0.5);  // large init: peaky random logits
    f.model->eval();
    return f;
  }();
  return f;
}

std::vector<std::vector<int32_t>> gen_prompts(int n) {
  const std::string p = generation_prompt({});
  return std::vector<std::vector<int32_t>>(n, fixture().tok.encode(p, true));
}

std::string strip(std::string s) {
  if (!s.empty() && s[0] == ' ') s.erase(0, 1);
  return s;
}

TEST(Generator, ConstrainedDecodingOnlyYieldsValidCrystals) {
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p;
  p.max_new_tokens = 160;
  p.batch_size = 8;
  p.sampling = {1.0, 1.0, 0};
  p.seed = 5;
  const auto out = gen.generate(gen_prompts(16), p);
  int ended = 0;
  CrystalGrammar g;
  for (const auto& o : out) {
    const std::string text = f.tok.decode(o.tokens);
    GrammarState s = g.start();
    EXPECT_TRUE(g.accept(s, text)) << text;  // always a prefix of a valid crystal
    if (!o.hit_eos) continue;
    ++ended;
    Crystal c;
    std::string err;
    ASSERT_TRUE(parse_crystal_text(strip(text), &c, &err)) << err << "\n" << text;
    for (const auto& sp : c.species) EXPECT_TRUE(is_element(sp)) << sp;
  }
  EXPECT_GE(ended, 4);

  // Unconstrained, the same random model essentially never writes a crystal.
  p.constrained = false;
  int parsed = 0;
  for (const auto& o : gen.generate(gen_prompts(8), p)) {
    Crystal c;
    std::string err;
    parsed += o.hit_eos && parse_crystal_text(strip(f.tok.decode(o.tokens)), &c, &err);
  }
  EXPECT_LT(parsed, 8);
}

TEST(Generator, SameSeedSameSamples) {
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p;
  p.max_new_tokens = 40;
  p.batch_size = 3;
  p.sampling = {0.9, 0.95, 50};
  p.seed = 77;
  const auto a = gen.generate(gen_prompts(5), p);
  const auto b = gen.generate(gen_prompts(5), p);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].tokens, b[i].tokens);
  p.seed = 78;
  const auto c = gen.generate(gen_prompts(5), p);
  bool differ = false;
  for (size_t i = 0; i < a.size(); ++i) differ |= a[i].tokens != c[i].tokens;
  EXPECT_TRUE(differ);
}

TEST(Generator, KvCacheDecodingMatchesFullRecompute) {
  // Greedy decoding with the cache equals argmax of a full forward over prompt + generated tokens.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p;
  p.max_new_tokens = 12;
  p.sampling.temperature = 0;
  p.constrained = false;
  const auto prompt = gen_prompts(1)[0];
  const auto out = gen.generate({prompt}, p);
  std::vector<int64_t> seq(prompt.begin(), prompt.end());
  torch::NoGradGuard ng;
  for (int32_t t : out[0].tokens) {
    const at::Tensor logits = f.model->forward(torch::tensor(seq).view({1, -1}));
    const at::Tensor last = logits[0][-1].slice(0, 0, f.tok.vocab_size());
    EXPECT_EQ(last.argmax().item<int64_t>(), t);
    seq.push_back(t);
  }
}

TEST(Generator, InfillReturnsAnElementSymbol) {
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    const Crystal& c = f.crystals[i];
    prompts.push_back(f.tok.encode(infill_prompt(c, c.species[0]), true));  // different lengths: several batches
  }
  GenerationParams p;
  p.max_new_tokens = 8;
  p.mode = CrystalGrammar::Mode::kElement;
  p.sampling = {1.0, 1.0, 0};
  const auto out = gen.generate(prompts, p);
  for (const auto& o : out) {
    EXPECT_TRUE(o.hit_eos);
    EXPECT_TRUE(is_element(strip(f.tok.decode(o.tokens)))) << "'" << f.tok.decode(o.tokens) << "'";
  }
}

}  // namespace
}  // namespace cg
