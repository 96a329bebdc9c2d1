// Generator on a random tiny Llama: grammar-constrained decoding only ever yields parsable crystals with real
// elements, infill yields one element symbol, and a seed fixes the samples.
// The vocabulary is hand-made (tests/sampler/tiny_vocab.h), so this torch binary does not load libsentencepiece.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <set>

#include "data/crystal_text.h"
#include "data/elements.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/rng.h"
#include "model/llama.h"
#include "sampler/generator.h"
#include "tests/sampler/tiny_model.h"
#include "tests/sampler/tiny_vocab.h"
#include "tests/test_util.h"

namespace cg {
namespace {

using Fixture = sampler_test::TinyFixture;

Fixture& fixture() {
  static Fixture f = sampler_test::make_tiny_fixture(40, 2048, 11, 0.5);  // large init: peaky random logits
  return f;
}

std::vector<std::vector<int32_t>> gen_prompts(int n) {
  const std::string p = generation_prompt({});
  return std::vector<std::vector<int32_t>>(n, fixture().tok.encode(p, true));
}

// Infill prompts asking for the first site's element of the first n crystals.
std::vector<std::vector<int32_t>> infill_prompts(int n) {
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < n; ++i) {
    const Crystal& c = fixture().crystals[i];
    prompts.push_back(fixture().tok.encode(infill_prompt(c, c.species[0]), true));
  }
  return prompts;
}

// Sampling settings of a test: max_new_tokens, batch_size, {temperature, top_p, top_k}, seed.
GenerationParams params(int64_t max_new, int64_t batch, SamplingParams sampling, uint64_t seed) {
  GenerationParams p;
  p.max_new_tokens = max_new;
  p.batch_size = batch;
  p.sampling = sampling;
  p.seed = seed;
  return p;
}

std::string strip(std::string s) {
  if (!s.empty() && s[0] == ' ') s.erase(0, 1);
  return s;
}

TEST(Generator, ConstrainedDecodingOnlyYieldsValidCrystals) {
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(160, 8, {1.0, 1.0, 0}, 5);
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
  GenerationParams p = params(40, 3, {0.9, 0.95, 50}, 77);
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

TEST(Generator, SamplesDoNotDependOnBatchingOrStreamsOrder) {
  // Each sequence draws from its own RNG stream (seed, stream id): batch size 1 or 4 give the same samples, and a
  // prompt generated alone with stream id i equals the i-th of a full run (what the dp split relies on).
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(30, 4, {1.0, 1.0, 0}, 9);
  const auto prompts = gen_prompts(6);
  const auto a = gen.generate(prompts, p);
  p.batch_size = 1;
  const auto b = gen.generate(prompts, p);
  const auto c = gen.generate({prompts[4]}, p, nullptr, {4});
  ASSERT_EQ(a.size(), 6u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens) << i;
    EXPECT_EQ(a[i].hit_eos, b[i].hit_eos) << i;
  }
  EXPECT_EQ(c[0].tokens, a[4].tokens);
  EXPECT_NE(a[0].tokens, a[1].tokens);  // same prompt, different streams
}

TEST(Generator, MixedPromptLengthsGiveTheSameSamplesAtAnyBatchSize) {
  // Prompts of several lengths (formula / space group conditions) decode side by side, each row at its own position;
  // a sequence's tokens are the same whether it runs alone (batch 1), in a continuously refilled batch of 3, or with
  // all prompts at once. Identical prompts are prefilled once, distinct lengths in one pass each.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  std::vector<std::vector<int32_t>> prompts;
  std::set<size_t> lengths;
  for (int i = 0; i < 9; ++i) {
    GenerationConditions c;
    if (i % 3 == 1) c.formula = f.crystals[i].formula;
    if (i % 3 == 2) c.spacegroup = 1 + 20 * i;
    prompts.push_back(f.tok.encode(generation_prompt(c), true));
    lengths.insert(prompts.back().size());
  }
  ASSERT_GE(lengths.size(), 3u);
  GenerationParams p = params(40, 1, {1.0, 1.0, 0}, 21);
  const auto alone = gen.generate(prompts, p);
  for (int64_t batch : {3, 16}) {
    p.batch_size = batch;
    const auto out = gen.generate(prompts, p);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(out[i].tokens, alone[i].tokens) << i << " batch " << batch;
      EXPECT_EQ(out[i].hit_eos, alone[i].hit_eos) << i << " batch " << batch;
    }
  }
  // batch 16: everything admitted in the first step; the 3 unconditional prompts share one prefill row; the head all
  // prompts start with ("Below is a description of a bulk material. ") is computed once more, as the shared prefix.
  size_t common = prompts[0].size();
  for (const auto& pr : prompts)
    common = std::mismatch(pr.begin(), pr.begin() + std::min(common, pr.size()), prompts[0].begin()).first - pr.begin();
  ASSERT_GE(common, 8u);
  EXPECT_EQ(gen.stats().shared_prefix, static_cast<int64_t>(common));
  EXPECT_EQ(gen.stats().prefills, static_cast<int64_t>(lengths.size()) + 1);
  // sample.share_prompt=false: every row reads its own copy of the head; the same samples.
  p.share_prompt = false;
  const auto own = gen.generate(prompts, p);
  EXPECT_EQ(gen.stats().shared_prefix, 0);
  EXPECT_EQ(gen.stats().prefills, static_cast<int64_t>(lengths.size()));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(own[i].tokens, alone[i].tokens) << i;
  // sample.cuda_graphs (here, on the CPU, the graphs' padded steps run eagerly): every step runs all batch_size
  // rows with one attention span rounded up to 64 positions; the same samples, with and without the shared head,
  // and the attention reads the padding (batch x span per step).
  for (const bool share : {true, false}) {
    p.share_prompt = share;
    p.cuda_graphs = false;
    (void)gen.generate(prompts, p);
    const GenerationStats chunked = gen.stats();
    p.cuda_graphs = true;
    const auto padded = gen.generate(prompts, p);
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(padded[i].tokens, alone[i].tokens) << i << " " << share;
    EXPECT_EQ(gen.stats().cuda_graphs, 0);  // nothing captured on a CPU
    EXPECT_EQ(gen.stats().decode_steps, chunked.decode_steps) << share;
    EXPECT_GT(gen.stats().cache_read, chunked.cache_read) << share;  // the padding's reads
  }
}

TEST(Generator, OnePassDecodeAttentionGivesTheSameSamples) {
  // cgsample's model is fused; sample.decode_kernels=on (off a GPU: the attention kernels' ATen reference) gives
  // the samples the ops give, with the shared prompt head and without, eager and through the graphs' padded steps,
  // and each row reads exactly the cached positions it attends to.
  Fixture& f = fixture();
  auto m = sampler_test::tiny_random_llama(f.tok.vocab_size(), 2048, 11, 0.5);
  m->fuse_for_inference();
  Generator gen(*m, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(40, 4, {1.0, 1.0, 0}, 5);
  const auto prompts = gen_prompts(6);
  for (const bool share : {true, false})
    for (const bool graphs : {false, true}) {
      SCOPED_TRACE(testing::Message() << "share " << share << ", graphs " << graphs);
      p.share_prompt = share, p.cuda_graphs = graphs;
      m->set_decode_kernels(model::DecodeKernels::Off);
      const auto ops = gen.generate(prompts, p);
      m->set_decode_kernels(model::DecodeKernels::On);
      const auto one = gen.generate(prompts, p);
      for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(one[i].tokens, ops[i].tokens) << i;
      if (!graphs) EXPECT_EQ(gen.stats().cache_read, gen.stats().cache_needed);
      else EXPECT_GT(gen.stats().cache_read, gen.stats().cache_needed);  // the padding rows' reads
    }
}

TEST(Generator, ContinuousBatchingKeepsTheBatchFull) {
  // 16 sequences through 4 rows. Every decoded row samples a token (the first token of each sequence comes from its
  // prefill), so decode_rows = sampled tokens - sequences: no row ever decodes for a finished sequence. Static
  // batches of 4 would need, per batch, as many steps as its longest sequence; refilling rows needs fewer.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(60, 4, {1.0, 1.0, 0}, 3);
  const int n = 16;
  const auto out = gen.generate(gen_prompts(n), p);
  int64_t sampled = 0, static_steps = 0, longest = 0;
  std::set<size_t> sizes;
  for (int i = 0; i < n; ++i) {
    const int64_t k = static_cast<int64_t>(out[i].tokens.size()) + (out[i].hit_eos ? 1 : 0);
    sampled += k;
    longest = std::max(longest, k);
    sizes.insert(out[i].tokens.size());
    if (i % 4 == 3) static_steps += longest - 1, longest = 0;
  }
  ASSERT_GE(sizes.size(), 4u) << "lengths should vary for this test to mean anything";
  const auto& st = gen.stats();
  EXPECT_EQ(st.decode_rows, sampled - n);
  EXPECT_GE(st.decode_steps * 4, st.decode_rows);  // at most 4 rows a step
  EXPECT_LT(st.decode_steps, static_steps);
  EXPECT_GT(st.decode_rows, 3 * st.decode_steps);  // mostly full: more than 3 of 4 rows busy on average
}

TEST(Generator, SaysEachSequenceTheMomentItFinishes) {
  // on_done (cgsample's journal) hears of every sequence once, with its result, in the order they finish: a short
  // sequence admitted later is heard of before a long one admitted first.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(60, 4, {1.0, 1.0, 0}, 3);
  std::vector<std::pair<size_t, Generation>> heard;
  const auto out = gen.generate(gen_prompts(12), p, nullptr, {},
                                [&](size_t i, const Generation& g) { heard.emplace_back(i, g); });
  ASSERT_EQ(heard.size(), out.size());
  std::set<size_t> seen;
  bool out_of_order = false;
  for (size_t k = 0; k < heard.size(); ++k) {
    const auto& [i, g] = heard[k];
    ASSERT_LT(i, out.size());
    EXPECT_TRUE(seen.insert(i).second) << "sequence " << i << " heard of twice";
    EXPECT_EQ(g.tokens, out[i].tokens) << i;
    EXPECT_EQ(g.hit_eos, out[i].hit_eos) << i;
    out_of_order |= k > 0 && i < heard[k - 1].first;
  }
  EXPECT_TRUE(out_of_order) << "with lengths that vary, sequences should finish out of prompt order";
}

TEST(Generator, ReportsProgressEveryBatchSizeSequencesAndAtTheEnd) {
  // cgsample's progress line: (done, total, tokens so far) once batch_size (4) more sequences have finished (a step
  // finishes at most 4, so a report comes 4 to 7 after the last) and at the end, where the tokens are all that were
  // drawn: the EOS-free tokens of every sequence.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(60, 4, {1.0, 1.0, 0}, 3);
  std::vector<std::array<int64_t, 3>> calls;
  const auto out = gen.generate(gen_prompts(16), p, [&](int64_t done, int64_t total, int64_t tokens) {
    calls.push_back({done, total, tokens});
  });
  int64_t tokens = 0;
  for (const auto& o : out) tokens += static_cast<int64_t>(o.tokens.size());
  ASSERT_GE(calls.size(), 3u);  // 16 sequences, 4 to 7 a report
  EXPECT_EQ(calls.back(), (std::array<int64_t, 3>{16, 16, tokens}));
  for (size_t k = 0; k < calls.size(); ++k) {
    const int64_t prev_done = k > 0 ? calls[k - 1][0] : 0, prev_tokens = k > 0 ? calls[k - 1][2] : 0;
    EXPECT_EQ(calls[k][1], 16) << k;
    EXPECT_GT(calls[k][2], prev_tokens) << k;
    EXPECT_LT(calls[k][0] - prev_done, 8) << k;
    if (k + 1 < calls.size()) EXPECT_GE(calls[k][0] - prev_done, 4) << k;
  }
}

TEST(Generator, ReportsWhereTheLoopTimeWent) {
  // model calls + logits to host + host work = the decode loop's wall time (the shared prefix's pass before it
  // aside), each part > 0.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(40, 4, {1.0, 1.0, 0}, 5);
  const auto t0 = std::chrono::steady_clock::now();
  gen.generate(gen_prompts(12), p);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& st = gen.stats();
  EXPECT_GT(st.model_s, 0);
  EXPECT_GT(st.to_host_s, 0);
  EXPECT_GT(st.host_s, 0);
  const double sum = st.model_s + st.to_host_s + st.host_s;
  EXPECT_LE(sum, wall);
  EXPECT_GT(sum, 0.5 * wall) << "the parts should cover most of generate()";
}

TEST(Generator, RowsStayInAdmissionOrderSoAttentionReadsLittleItDoesNotNeed) {
  // 160 sequences through 48 rows, BOS alone as the prompt, so rows admitted at different times sit at positions
  // spread over [1, 120]. Rows are kept grouped by admission (oldest first) and decode attention is split into
  // chunks of rows (model::decode_chunks), so the cached positions read stay nearer those the rows attend to.
  // Measured: 1.59x needed; one span for all rows (the oldest row's) reads 2.26x, and so do chunks over rows left
  // in any order (refilling holes from the end).
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(120, 48, {1.0, 1.0, 0}, 8);
  gen.generate(std::vector<std::vector<int32_t>>(160, {1}), p);
  const auto& st = gen.stats();
  EXPECT_GT(st.decode_rows, 30 * st.decode_steps) << "the batch should mostly be full";
  EXPECT_LT(st.cache_read, 1.8 * st.cache_needed) << st.cache_read << " read, " << st.cache_needed << " needed";
}

TEST(Generator, SamplesDoNotDependOnTheThreadCount) {
  // The batch's sequences sample in parallel (chunks of >= 16): 40 sequences at 1 and at 3 threads, constrained and
  // not, give the same tokens.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationParams p = params(25, 40, {1.0, 0.95, 0}, 5);
  const auto prompts = gen_prompts(40);
  const int before = at::get_num_threads();
  for (bool constrained : {true, false}) {
    p.constrained = constrained;
    at::set_num_threads(1);
    const auto a = gen.generate(prompts, p);
    at::set_num_threads(3);
    const auto b = gen.generate(prompts, p);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].tokens, b[i].tokens) << i << " constrained " << constrained;
  }
  at::set_num_threads(before);
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

TEST(Generator, EqualsAPlainReferenceSampler) {
  // The reference: per sequence, recompute the full forward over prompt + tokens so far, mask the whole last row
  // with the grammar, draw with sample_token from the sequence's stream. The generator (KV cache, continuous
  // batching over 3 rows, prompts of two lengths, their common head read from one shared copy, attention chunks,
  // allowed columns only on the host where they are few) must give the same tokens. With this ~200-piece vocabulary
  // both host paths run: digit states allow a few columns, element states too many (> a quarter of the row) for the
  // compact copy. Then with sample.min_new_tokens (EOS's logit left out of the draw while a sequence is shorter and
  // something else is allowed), with the grammar and without.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  GenerationConditions nacl;
  nacl.formula = "NaCl";
  const std::vector<std::vector<int32_t>> prompts = {
      f.tok.encode(generation_prompt({}), true), f.tok.encode(generation_prompt(nacl), true),
      f.tok.encode(generation_prompt({}), true), f.tok.encode(generation_prompt(nacl), true),
      f.tok.encode(generation_prompt({}), true)};
  size_t ended_early = 0;  // sequences that took EOS before 30 tokens without min_new_tokens
  for (const auto& [min_new, constrained] : std::vector<std::pair<int64_t, bool>>{{0, true}, {30, true}, {30, false}}) {
    SCOPED_TRACE(testing::Message() << "min_new_tokens " << min_new << " constrained " << constrained);
    GenerationParams p = params(45, 3, {0.8, 0.95, 0}, 31);
    p.min_new_tokens = min_new;
    p.constrained = constrained;
    const auto out = gen.generate(prompts, p);
    if (min_new == 0) {
      EXPECT_LT(gen.stats().logits_to_host, gen.stats().logits_full);  // the compact path ran
      EXPECT_GT(gen.stats().shared_prefix, 8);                           // and the shared-prefix attention
    }
    TokenGrammar grammar(CrystalGrammar(p.mode), f.tok.pieces, f.tok.eos());
    torch::NoGradGuard ng;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::mt19937_64 rng(Rng::derive({p.seed, i}));
      GrammarState st = grammar.grammar().start();
      std::vector<int64_t> seq(prompts[i].begin(), prompts[i].end());
      std::vector<int32_t> want;
      bool eos = false;
      while (static_cast<int64_t>(want.size()) < p.max_new_tokens) {
        at::Tensor logits = f.model->forward(torch::tensor(seq).view({1, -1}))[0][-1].contiguous().clone();
        if (static_cast<int64_t>(want.size()) < min_new && (!constrained || grammar.allowed_ids(st).size() > 1))
          logits[f.tok.eos()] = -std::numeric_limits<float>::infinity();
        const int tok = sample_token(logits.data_ptr<float>(), f.tok.vocab_size(),
                                     constrained ? grammar.allowed(st).data() : nullptr, p.sampling, rng);
        ASSERT_GE(tok, 0);
        if (constrained) grammar.advance(st, tok);
        if (tok == f.tok.eos()) {
          eos = true;
          break;
        }
        want.push_back(tok);
        seq.push_back(tok);
      }
      EXPECT_EQ(out[i].tokens, want) << i;
      EXPECT_EQ(out[i].hit_eos, eos) << i;
      if (min_new > 0 && out[i].hit_eos) EXPECT_GE(static_cast<int64_t>(out[i].tokens.size()), min_new) << i;
      if (min_new == 0 && out[i].hit_eos && out[i].tokens.size() < 30) ++ended_early;
    }
  }
  EXPECT_GT(ended_early, 0u) << "no sequence ended before 30 tokens: min_new_tokens was not exercised";
  GenerationParams bad = params(10, 3, {0.8, 0.95, 0}, 31);
  for (const int64_t m : {11, 10}) {  // EOS would have to be token 11 or 12 of at most 10: no sample could end
    bad.min_new_tokens = m;
    const std::string err = test::error_of([&] { gen.generate(prompts, bad); });
    EXPECT_TRUE(test::contains(err, "sample.min_new_tokens (" + std::to_string(m) + ") must be in [0, "
                               "sample.max_new_tokens (10))")) << err;
  }
}

TEST(Generator, UnconstrainedDrawsFromTheLargestLogitsEqualWholeRows) {
  // GenerationParams::top_logits (on by default on a GPU): unconstrained rows bring their 64 largest logits and
  // softmax sum to the host, whole rows only where those do not decide; the same tokens as whole rows throughout,
  // for nucleus, top-k, greedy, with EOS held back (min_new_tokens, on the device) and a nucleus past 64 tokens.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  const auto prompts = gen_prompts(5);
  struct Case {
    SamplingParams sampling;
    int64_t min_new;
    bool wide;  // a nucleus past the 64 largest: rows come whole
  };
  for (const Case& c : std::vector<Case>{{{0.8, 0.95, 0}, 0, false}, {{0.7, 0.5, 0}, 10, false},
                                         {{1.0, 1.0, 5}, 0, false}, {{0.0, 1.0, 0}, 0, false},
                                         {{1.3, 0.9, 3}, 20, false}, {{3.0, 0.9999, 0}, 0, true}}) {
    SCOPED_TRACE(testing::Message() << "T " << c.sampling.temperature << " top_p " << c.sampling.top_p << " top_k "
                                    << c.sampling.top_k << " min_new " << c.min_new);
    GenerationParams p = params(40, 3, c.sampling, 17);
    p.constrained = false;
    p.min_new_tokens = c.min_new;
    p.top_logits = GenerationParams::TopLogits::Off;
    const auto whole = gen.generate(prompts, p);
    EXPECT_EQ(gen.stats().logits_to_host, gen.stats().logits_full);
    p.top_logits = GenerationParams::TopLogits::On;
    const auto top = gen.generate(prompts, p);
    if (c.wide) {
      EXPECT_GT(gen.stats().whole_rows, 0);
    } else {
      EXPECT_LT(gen.stats().logits_to_host, gen.stats().logits_full);  // the top logits path ran
      EXPECT_LT(gen.stats().whole_rows, gen.stats().decode_rows / 2);
    }
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(top[i].tokens, whole[i].tokens) << i;
      EXPECT_EQ(top[i].hit_eos, whole[i].hit_eos) << i;
      if (c.min_new > 0 && whole[i].hit_eos) EXPECT_GE(static_cast<int64_t>(whole[i].tokens.size()), c.min_new);
    }
  }
}

TEST(Generator, AKvCacheThatCannotBeAllocatedIsAClearError) {
  // 1,000 rows x 2^40 positions (more bytes than any address space): the error says what to lower, not just that an
  // allocation failed.
  Fixture& f = fixture();
  auto big = sampler_test::tiny_random_llama(f.tok.vocab_size(), int64_t{1} << 42, 3, 0.02);
  Generator gen(*big, f.tok.pieces, f.tok.eos(), nullptr);
  const GenerationParams p = params(int64_t{1} << 40, 1000, {1.0, 1.0, 0}, 0);
  const std::string err = test::error_of([&] { gen.generate(std::vector<std::vector<int32_t>>(1000, {1}), p); });
  EXPECT_TRUE(test::contains(err, "sample.batch_size") && test::contains(err, "KV cache")) << err;
}

TEST(Generator, InfillReturnsAnElementSymbol) {
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  const auto prompts = infill_prompts(6);  // different lengths: several batches
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

TEST(Generator, MinNewTokensDoesNotHoldBackTheOnlyTokenAllowed) {
  // sample.min_new_tokens holds EOS back only where the grammar allows something else: after an element symbol
  // (1 or 2 tokens here) infill allows EOS alone, so min_new_tokens 6 still ends every answer there with its EOS.
  Fixture& f = fixture();
  Generator gen(*f.model, f.tok.pieces, f.tok.eos(), nullptr);
  const auto prompts = infill_prompts(6);
  GenerationParams p;
  p.max_new_tokens = 8;
  p.min_new_tokens = 6;
  p.mode = CrystalGrammar::Mode::kElement;
  p.sampling = {1.0, 1.0, 0};
  for (const auto& o : gen.generate(prompts, p)) {
    EXPECT_TRUE(o.hit_eos);
    EXPECT_LT(o.tokens.size(), 6u);
    EXPECT_TRUE(is_element(strip(f.tok.decode(o.tokens)))) << "'" << f.tok.decode(o.tokens) << "'";
  }
}

}  // namespace
}  // namespace cg
