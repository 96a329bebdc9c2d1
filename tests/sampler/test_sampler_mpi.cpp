// Sampling under mpirun equals serial sampling: a tiny random model written as an HF checkpoint (+ a PEFT adapter)
// is loaded with load_sampling_model at tp 1 on every rank and at tp = world (and at 4 ranks also tp 2 x dp 2);
// greedy generation (grammar on and off, generate and infill prompts) gives the same tokens, temperature sampling
// gives identical tokens on every rank, and completion log-likelihoods match the serial ones.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "common/error.h"
#include "data/elements.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "dist/parallel_dims.h"
#include "dist/runtime.h"
#include "lora/peft.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "sampler/generator.h"
#include "sampler/invariance.h"
#include "sampler/sampling_model.h"
#include "tests/dist/shared_scratch.h"
#include "tests/sampler/tiny_vocab.h"
#include "trainer/config.h"

namespace cg {
namespace {

namespace fs = std::filesystem;
using sampler_test::TinyVocab;

const dist::ParallelDims& grid(int tp) {
  static std::map<int, dist::ParallelDims> grids;  // one MPI split per shape for the whole run
  if (!grids.count(tp)) grids[tp] = dist::make_parallel_dims(tp, 0, dist::Backend::Mpi);
  return grids.at(tp);
}

const TinyVocab& vocab() {
  static TinyVocab v;
  return v;
}

// Rank 0 writes {hf, adapter} once, in a folder every rank shares (tests/dist/shared_scratch.h); everyone waits for it.
std::string setup_dir() {
  static std::string dir = [] {
    const auto& w = grid(dist::runtime().world);
    const std::string d = test::shared_scratch_dir(fmt::format("sampler_mpi_np{}", w.world));
    if (w.rank == 0) {
      model::LlamaConfig lc;
      lc.hidden_size = 64;
      lc.intermediate_size = 96;
      lc.num_attention_heads = 4;
      lc.num_key_value_heads = 4;
      lc.num_hidden_layers = 2;
      lc.vocab_size = vocab().vocab_size();  // not a multiple of 4: padded columns at tp > 1
      lc.max_position_embeddings = 512;
      model::Llama m(lc);
      model::init_weights(*m, 17, 0.5);  // peaky logits: few near-ties for greedy decoding
      std::vector<std::pair<std::string, at::Tensor>> t;
      for (const auto& p : m->param_specs()) t.emplace_back(p.name, p.param.detach());
      model::write_hf_checkpoint(d + "/hf", t, lc);
      lora::PeftConfig pc;
      pc.r = 4;
      pc.lora_alpha = 8;
      pc.target_modules = {"v_proj", "o_proj", "gate_proj"};
      std::map<std::string, at::Tensor> factors;
      auto g = at::make_generator<at::CPUGeneratorImpl>(3);
      for (const auto& [name, W] : t) {
        const std::string mod = name.substr(0, name.size() - 7);
        for (const auto& tm : pc.target_modules)
          if (mod.size() > tm.size() && mod.compare(mod.size() - tm.size(), tm.size(), tm) == 0) {
            factors[mod + ".lora_A.weight"] = at::randn({pc.r, W.size(1)}, g) * 0.3;
            factors[mod + ".lora_B.weight"] = at::randn({W.size(0), pc.r}, g) * 0.3;
          }
      }
      lora::write_peft_adapter(d + "/adapter", pc, factors);
    }
    w.host_world_comm->barrier();
    return d;
  }();
  return dir;
}

Config config(bool adapter) {
  Config c;
  c.model.hf_dir = setup_dir() + "/hf";
  c.model.device = "cpu";
  c.model.dtype = "fp32";
  if (adapter) c.sample.adapter = setup_dir() + "/adapter";
  return c;
}

struct Models {
  model::Llama serial{nullptr}, par{nullptr};
};

Models& models(int tp, bool adapter) {
  static std::map<std::pair<int, bool>, Models> cache;
  auto key = std::make_pair(tp, adapter);
  if (!cache.count(key)) {
    Models m;
    m.serial = load_sampling_model(config(adapter), dist::single_process_dims(), 0, at::kCPU);
    m.par = load_sampling_model(config(adapter), grid(tp), 0, at::kCPU);
    cache[key] = m;
  }
  return cache[key];
}

std::vector<std::vector<int32_t>> prompts(CrystalGrammar::Mode mode) {
  std::vector<std::vector<int32_t>> p;
  if (mode == CrystalGrammar::Mode::kCrystal) {
    for (int i = 0; i < 5; ++i) p.push_back(vocab().encode(generation_prompt({}), true));
    GenerationConditions cond;
    cond.formula = "NaCl";
    cond.spacegroup = 225;
    p.push_back(vocab().encode(generation_prompt(cond), true));
  } else {
    const auto cr = read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz", 4).crystals;
    for (const auto& c : cr) p.push_back(vocab().encode(infill_prompt(c, c.species[0]), true));
  }
  return p;
}

std::vector<int> tp_degrees() {
  const int world = dist::runtime().world;
  return world == 4 ? std::vector<int>{2, 4} : std::vector<int>{world};
}

void expect_same(const std::vector<Generation>& a, const std::vector<Generation>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens) << what << " sample " << i;
    EXPECT_EQ(a[i].hit_eos, b[i].hit_eos) << what << " sample " << i;
  }
}

// Every rank holds the same tokens: elementwise max and min over the world equal this rank's table.
void expect_all_ranks_agree(const std::vector<Generation>& g, int64_t max_new) {
  at::Tensor t = at::full({static_cast<int64_t>(g.size()), max_new + 1}, -1, at::kLong);
  for (size_t i = 0; i < g.size(); ++i) {
    t[i][0] = g[i].hit_eos ? 1 : 0;
    for (size_t k = 0; k < g[i].tokens.size(); ++k) t[i][1 + k] = g[i].tokens[k];
  }
  at::Tensor mx = t.clone(), mn = t.clone();
  grid(1).host_world_comm->all_reduce(mx, dist::ReduceOp::Max);
  grid(1).host_world_comm->all_reduce(mn, dist::ReduceOp::Min);
  EXPECT_TRUE(at::equal(mx, t) && at::equal(mn, t)) << "ranks drew different tokens";
}

TEST(SamplerMpi, GreedyAtTpEqualsSerial) {
  for (int tp : tp_degrees()) {
    for (bool adapter : {false, true}) {
      Models& m = models(tp, adapter);
      Generator serial(*m.serial, vocab().pieces, vocab().eos(), nullptr);
      Generator par(*m.par, vocab().pieces, vocab().eos(), grid(tp).tp_comm);
      for (auto mode : {CrystalGrammar::Mode::kCrystal, CrystalGrammar::Mode::kElement}) {
        for (bool constrained : {true, false}) {
          GenerationParams p;
          p.max_new_tokens = mode == CrystalGrammar::Mode::kCrystal ? 40 : 6;
          p.batch_size = 4;
          p.sampling.temperature = 0;
          p.mode = mode;
          p.constrained = constrained;
          const auto pr = prompts(mode);
          const auto a = serial.generate(pr, p);
          const auto b = generate_data_parallel(par, pr, p, grid(tp));
          const std::string what = fmt::format("{} adapter {} mode {} constrained {}", grid(tp).describe(), adapter,
                                               int(mode), constrained);
          expect_same(a, b, what);
          expect_all_ranks_agree(b, p.max_new_tokens);
          if (mode == CrystalGrammar::Mode::kElement && constrained)
            for (const auto& g : b) EXPECT_TRUE(is_element(vocab().decode(g.tokens))) << vocab().decode(g.tokens);
        }
      }
    }
  }
}

TEST(SamplerMpi, TemperatureSamplingIsIdenticalOnEveryRankAndEqualsSerial) {
  for (int tp : tp_degrees()) {
    Models& m = models(tp, false);
    Generator serial(*m.serial, vocab().pieces, vocab().eos(), nullptr);
    Generator par(*m.par, vocab().pieces, vocab().eos(), grid(tp).tp_comm);
    GenerationParams p;
    p.max_new_tokens = 40;
    p.batch_size = 3;
    p.sampling = {1.0, 0.95, 40};
    p.seed = 31;
    const auto pr = prompts(CrystalGrammar::Mode::kCrystal);
    const auto b = generate_data_parallel(par, pr, p, grid(tp));
    expect_all_ranks_agree(b, p.max_new_tokens);
    const auto a = serial.generate(pr, p);
    expect_same(a, b, grid(tp).describe());
    // The prompts left after a stop (every other one), each with its own stream: what the whole run gave them
    // (cgsample's journal resumes so).
    std::vector<std::vector<int32_t>> rest;
    std::vector<uint64_t> streams;
    std::vector<Generation> want;
    for (size_t i = 1; i < pr.size(); i += 2) rest.push_back(pr[i]), streams.push_back(i), want.push_back(a[i]);
    // Each finished sequence is heard of on the ranks of the dp group that drew it, by its index in `rest`.
    std::vector<int64_t> heard(rest.size(), 0);
    const auto c = generate_data_parallel(par, rest, p, grid(tp), nullptr, streams, [&](size_t i, const Generation& g) {
      ASSERT_LT(i, rest.size());
      EXPECT_EQ(g.tokens, want[i].tokens) << i;
      ++heard[i];
    });
    expect_all_ranks_agree(c, p.max_new_tokens);
    expect_same(want, c, grid(tp).describe() + ", the odd prompts with their streams");
    const auto& g = grid(tp);
    for (size_t i = 0; i < rest.size(); ++i)
      EXPECT_EQ(heard[i], int64_t(i % size_t(g.dp)) == g.dp_rank ? 1 : 0) << g.describe() << ", sequence " << i;
    at::Tensor total = at::tensor(std::vector<int64_t>(heard.begin(), heard.end()));
    g.host_world_comm->all_reduce(total, dist::ReduceOp::Sum);
    for (size_t i = 0; i < rest.size(); ++i)  // once per rank of one dp group: tp ranks
      EXPECT_EQ(total[int64_t(i)].item<int64_t>(), g.tp) << g.describe() << ", sequence " << i;
  }
}

TEST(SamplerMpi, LogLikelihoodsAtTpEqualSerial) {
  const auto cr = read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz", 3).crystals;
  const auto enc = [](const std::string& s) { return vocab().encode(s, true); };
  for (int tp : tp_degrees()) {
    if (grid(tp).dp > 1) continue;  // the check runs in one tp group
    Models& m = models(tp, true);
    const auto a = invariance_check(*m.serial, cr, enc, vocab().eos(), dist::single_process_dims());
    const auto b = invariance_check(*m.par, cr, enc, vocab().eos(), grid(tp));
    ASSERT_EQ(a.rows.size(), b.rows.size());
    for (size_t i = 0; i < a.rows.size(); ++i) {
      EXPECT_NEAR(a.rows[i].ll, b.rows[i].ll, 1e-3);
      EXPECT_NEAR(a.rows[i].ll_permuted, b.rows[i].ll_permuted, 1e-3);
    }
  }
}

}  // namespace
}  // namespace cg
