// Tensor parallelism equals serial, under mpirun (tp = world; at 4 ranks also tp 2 x dp 2): logits, per-token loss
// and every gradient (embedding table included) of the tp-sharded model match a tp 1 model built on the same rank
// from the same seed; a sharded HF checkpoint loads the same slices at tp 1 and tp > 1.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "dist/parallel_dims.h"
#include "dist/runtime.h"
#include "dist/tp_plan.h"
#include "dist/vocab_parallel_ce.h"
#include "model/hf_checkpoint.h"
#include "tests/dist/shared_scratch.h"

using namespace cg;
using model::Llama;
using model::LlamaConfig;

namespace {

const dist::ParallelDims& grid(int tp) {
  static std::map<int, dist::ParallelDims> grids;  // one MPI split per shape for the whole run
  if (!grids.count(tp)) grids[tp] = dist::make_parallel_dims(tp, 0, dist::Backend::Mpi);
  return grids.at(tp);
}

// A folder NAME for the checkpoints rank 0 writes and every rank reads, empty, in the job's folder that every rank
// shares (tests/dist/shared_scratch.h: removed at the end when every rank's tests passed, else kept). Collective.
std::filesystem::path shared_folder(const std::string& name, const dist::ParallelDims& dims) {
  static const std::string job = test::shared_scratch_dir("test_model_tp");
  const auto dir = std::filesystem::path(job) / name;
  if (dims.rank == 0) std::filesystem::remove_all(dir);  // a --gtest_repeat round's
  dims.host_world_comm->barrier();
  return dir;
}

LlamaConfig config_with_vocab(int64_t vocab) {
  LlamaConfig c;
  c.hidden_size = 64, c.intermediate_size = 96, c.num_attention_heads = 8, c.num_key_value_heads = 4;
  c.num_hidden_layers = 2, c.vocab_size = vocab, c.rms_norm_eps = 1e-5, c.max_position_embeddings = 64;
  return c;
}

Llama build(const LlamaConfig& c, const dist::ParallelDims& dims, bool checkpointing = false) {
  dist::ModelBuildOptions o;
  o.config = c;
  o.init_seed = 11;
  o.activation_checkpointing = checkpointing;
  o.train_base = true;  // full training so that every base weight has a gradient to compare
  return dist::build_llama(o, dims);
}

// Same batch on every rank: a fixed seed; a few ignored targets.
std::pair<at::Tensor, at::Tensor> batch(int64_t vocab) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(77);
  auto tok = at::randint(vocab, {2, 6}, g, at::TensorOptions().dtype(at::kLong));
  auto tgt = at::randint(vocab, {2, 6}, g, at::TensorOptions().dtype(at::kLong));
  tgt[0][5] = dist::kIgnoreIndex;
  tgt[1][0] = dist::kIgnoreIndex;
  tgt[1][1] = vocab - 1;  // the last real id (next to the padding at tp > 1)
  return {tok, tgt};
}

void expect_tp_equals_serial(int64_t vocab, int tp, bool checkpointing) {
  const auto& dims = grid(tp);
  const auto c = config_with_vocab(vocab);
  auto serial = build(c, dist::single_process_dims());
  auto par = build(c, dims, checkpointing);
  const auto [tok, tgt] = batch(vocab);
  serial->train(), par->train();

  const auto logits1 = serial->forward(tok);                    // (B, T, V)
  const auto loss1 = at::cross_entropy_loss(logits1.reshape({-1, vocab}), tgt.reshape({-1}), {},
                                            at::Reduction::None, dist::kIgnoreIndex).view({2, 6});
  loss1.sum().backward();

  const auto logits_local = par->forward(tok);                  // (B, T, V_local)
  const auto loss = dist::token_cross_entropy(*par, logits_local, tgt, dims);  // (B, T)
  loss.sum().backward();

  // Logits: gather the vocabulary shards; the real columns match, the padding is -inf.
  const auto all = dims.tp_comm->all_gather(logits_local.detach().contiguous(), 2);  // (B, T, V_padded)
  ASSERT_EQ(all.size(2), model::padded_vocab(vocab, tp));
  EXPECT_LT((all.narrow(2, 0, vocab) - logits1).abs().max().item<double>(), 1e-5);
  if (all.size(2) > vocab) EXPECT_TRUE(at::all(all.narrow(2, vocab, all.size(2) - vocab).isneginf()).item<bool>());
  EXPECT_LT((loss - loss1).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(loss[0][5].item<double>(), 0.0);

  // Gradients: this rank's slice of every serial gradient.
  const auto s1 = serial->param_specs();
  const auto sp = par->param_specs();
  ASSERT_EQ(s1.size(), sp.size());
  for (size_t i = 0; i < sp.size(); ++i) {
    ASSERT_EQ(s1[i].name, sp[i].name);
    ASSERT_TRUE(sp[i].param.grad().defined()) << sp[i].name;
    const auto want = sp[i].slice_of(s1[i].param.grad());
    EXPECT_LT((sp[i].param.grad() - want).abs().max().item<double>(), 1e-5) << sp[i].name << " tp " << tp;
  }
}

}  // namespace

TEST(TensorParallel, EqualsSerialVocabDivisible) {
  expect_tp_equals_serial(48, dist::runtime().world, false);
}

TEST(TensorParallel, EqualsSerialWithVocabPadding) {
  expect_tp_equals_serial(37, dist::runtime().world, false);  // 37 -> 38 at tp 2, 40 at tp 4
}

TEST(TensorParallel, EqualsSerialWithActivationCheckpointing) {
  expect_tp_equals_serial(37, dist::runtime().world, true);
}

TEST(TensorParallel, TwoByTwoGridEqualsSerial) {
  if (dist::runtime().world != 4) GTEST_SKIP() << "needs 4 ranks";
  expect_tp_equals_serial(37, 2, false);
}

TEST(TensorParallel, EmbeddingGradientOnlyInTheOwnersRows) {
  // One token id everywhere: only the rank holding that row gets a (non-zero) embedding gradient.
  const int tp = dist::runtime().world;
  const auto& dims = grid(tp);
  auto par = build(config_with_vocab(37), dims);
  const auto tok = at::full({1, 3}, 20, at::kLong);
  par->forward(tok).sum().backward();
  const auto& emb = *par->model->embed_tokens;
  const auto g = emb.weight.grad();  // (V_local, d)
  for (int64_t r = 0; r < emb.vocab_local; ++r) {
    const bool owner_row = emb.vocab_start + r == 20;
    EXPECT_EQ(g[r].abs().sum().item<double>() > 0, owner_row) << "row " << r << " on tp rank " << dims.tp_rank;
  }
}

TEST(TensorParallel, TokenIdOutsideTheVocabularyIsAnErrorAtAnyTp) {
  // tp 1's embedding fails on such an id; the vocab-parallel one used to give it a zero row silently.
  const int tp = dist::runtime().world;
  auto par = build(config_with_vocab(36), grid(tp));
  const int64_t padded = par->model->embed_tokens->vocab_local * tp;
  at::NoGradGuard g;
  EXPECT_THROW(par->forward(at::full({1, 3}, padded, at::kLong)), std::exception);
  EXPECT_THROW(par->forward(at::full({1, 3}, -1, at::kLong)), std::exception);
  EXPECT_NO_THROW(par->forward(at::full({1, 3}, 35, at::kLong)));
}

TEST(TensorParallel, ShardedCheckpointLoadsTheSameSlices) {
  const int tp = dist::runtime().world;
  const auto& dims = grid(tp);
  const auto c = config_with_vocab(37);
  // Rank 0 writes a multi-file checkpoint (in bf16: loading casts to the model's fp32) into a folder all ranks share.
  const auto dir = shared_folder("sharded", dims);
  auto written = build(c, dist::single_process_dims());
  std::vector<std::pair<std::string, at::Tensor>> full;
  for (const auto& s : written->param_specs()) full.emplace_back(s.name, s.param.detach().to(at::kBFloat16));
  if (dims.rank == 0) model::write_hf_checkpoint(dir.string(), full, c, /*max_shard_bytes=*/20000);
  dims.host_world_comm->barrier();

  dist::ModelBuildOptions o;
  o.config = model::load_llama_config(dir.string());
  EXPECT_TRUE(o.config == c);
  o.hf_dir = dir.string();
  auto par = dist::build_llama(o, dims);
  auto serial = dist::build_llama(o, dist::single_process_dims());
  const auto specs = par->param_specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(specs[i].name, full[i].first);
    EXPECT_TRUE(at::equal(specs[i].param, specs[i].slice_of(full[i].second.to(at::kFloat)))) << specs[i].name;
    EXPECT_FALSE(specs[i].param.requires_grad()) << "base frozen: " << specs[i].name;
  }
  at::NoGradGuard ng;
  const auto tok = batch(37).first;
  const auto all = dims.tp_comm->all_gather(par->forward(tok).contiguous(), 2);
  EXPECT_LT((all.narrow(2, 0, 37) - serial->forward(tok)).abs().max().item<double>(), 1e-5);
}

// A tied base (tie_word_embeddings true, no lm_head.weight) at tp = world: its logits, gathered over the vocabulary
// shards, equal an untied copy's (lm_head.weight a copy of the embedding) at tp 1. The vocabulary 37 is padded at
// tp 2 and 4, so lm_head's slice of the embedding must be its own rows, padding zero.
TEST(TensorParallel, TiedCheckpointEqualsUntiedCopy) {
  const int tp = dist::runtime().world;
  const auto& dims = grid(tp);
  const auto c = config_with_vocab(37);
  const auto dir = shared_folder("tied", dims);
  auto written = build(c, dist::single_process_dims());
  std::vector<std::pair<std::string, at::Tensor>> tied, untied;
  for (const auto& s : written->param_specs()) {
    if (s.name != "lm_head.weight") tied.emplace_back(s.name, s.param.detach().clone());
    untied.emplace_back(s.name, s.name == "lm_head.weight" ? untied.front().second.clone() : s.param.detach().clone());
  }
  if (dims.rank == 0) {
    model::write_hf_checkpoint((dir / "tied").string(), tied, c);
    model::write_hf_checkpoint((dir / "untied").string(), untied, c);
    std::string text = c.to_hf_json("float32");
    const std::string untied_flag = "\"tie_word_embeddings\": false";
    ASSERT_NE(text.find(untied_flag), std::string::npos) << text;
    text.replace(text.find(untied_flag), untied_flag.size(), "\"tie_word_embeddings\": true");
    std::ofstream((dir / "tied" / "config.json").string()) << text;
  }
  dims.host_world_comm->barrier();

  dist::ModelBuildOptions o;
  o.config = c;
  o.hf_dir = (dir / "tied").string();
  auto par = dist::build_llama(o, dims);
  o.hf_dir = (dir / "untied").string();
  auto serial = dist::build_llama(o, dist::single_process_dims());
  at::NoGradGuard ng;
  const auto tok = batch(37).first;
  const auto all = dims.tp_comm->all_gather(par->forward(tok).contiguous(), 2);
  EXPECT_LT((all.narrow(2, 0, 37) - serial->forward(tok)).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(at::equal(par->lm_head->weight, par->model->embed_tokens->weight));
}

namespace {
// Delegates to a real group and counts all-reduces.
struct CountingComm : dist::Comm {
  dist::CommPtr inner;
  int all_reduces = 0;
  explicit CountingComm(dist::CommPtr c) : inner(std::move(c)) {}
  int rank() const override { return inner->rank(); }
  int size() const override { return inner->size(); }
  std::string backend() const override { return inner->backend(); }
  void all_reduce(at::Tensor& t, dist::ReduceOp op) override { ++all_reduces, inner->all_reduce(t, op); }
  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override { return inner->all_gather(t, dim); }
  void broadcast(at::Tensor& t, int root) override { inner->broadcast(t, root); }
  void barrier() override { inner->barrier(); }
};
}  // namespace

TEST(TensorParallel, TwoAllReducesPerLayerEachWay) {
  // forward: o_proj, down_proj per layer + the embedding; backward: one for q/k/v's shared input, one for gate/up's,
  // per layer, + lm_head's input. (model::accounting counts the same.)
  const int tp = dist::runtime().world;
  if (tp == 1) GTEST_SKIP() << "no collectives at tp 1";
  auto dims = grid(tp);
  auto counting = std::make_shared<CountingComm>(dims.tp_comm);
  dims.tp_comm = counting;
  auto m = build(config_with_vocab(48), dims);
  const auto logits = m->forward(batch(48).first);
  const int L = 2;
  EXPECT_EQ(counting->all_reduces, 2 * L + 1);
  logits.sum().backward();
  EXPECT_EQ(counting->all_reduces, 2 * (2 * L + 1));
}
