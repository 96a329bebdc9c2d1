// A checkpoint written on one tp x dp grid and read on another, in one process (no mpirun): every rank of the old grid
// writes its file with write_rank_checkpoint, every rank of the new one loads with load_rank_checkpoint, and cgexport's
// read_full_params joins the shards. Neither runs a collective, so a rank is its dist::ParallelDims numbers and its
// model the tp-local Llama of its tp rank: in full-parameter mode the model's own ParamSpecs (column- and row-split
// weights, replicated norms, vocabulary tables padded to a multiple of tp), in LoRA mode its adapters' (A split on
// `in` for row-split layers, B on `out` for column-split ones, the other factor replicated) and a dropout stream.
//
// Every element of a full tensor differs, and every dp replica's differ from the others' (real replicas are
// identical; these differ so that a file of the wrong replica shows), so a wrong file, a wrong order or dim of the
// concatenation, or a missing trim of the vocabulary padding gives other numbers than those cut by hand here. The
// padding rows of a saved shard hold kPad (a trained model's hold zeros): a missing trim would carry it along.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "dist/parallel_dims.h"
#include "lora/inject.h"
#include "model/llama.h"
#include "tests/test_util.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/train_model.h"

namespace cg {
namespace {

constexpr float kPad = -1.f;  // the padding rows of a saved vocabulary shard

struct Grid {
  int tp = 1, dp = 1;
};

// Vocabulary 11 pads to 12 at tp 2 (the last rank holds 5 of its 6 rows) and at tp 4 (3 rows each, the last 2 real);
// 4 heads and 4 kv heads and an MLP of 24 split over tp 4.
model::LlamaConfig tiny() {
  model::LlamaConfig c;
  c.hidden_size = 16, c.intermediate_size = 24, c.num_attention_heads = 4, c.num_key_value_heads = 4;
  c.num_hidden_layers = 1, c.vocab_size = 11, c.max_position_embeddings = 16;
  return c;
}

dist::ParallelDims rank_dims(Grid g, int dp_rank, int tp_rank) {
  dist::ParallelDims d;
  d.world = g.tp * g.dp, d.tp = g.tp, d.dp = g.dp;
  d.rank = dp_rank * g.tp + tp_rank, d.tp_rank = tp_rank, d.dp_rank = dp_rank;
  return d;
}

// The tp group of a rank whose model is built and never run: LoRA's adapters read its rank and size to cut their
// factors; a collective would be an error of this test's setup.
struct UnusedTpGroup : dist::Comm {
  int rank_, size_;
  UnusedTpGroup(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "none"; }
  void all_reduce(at::Tensor&, dist::ReduceOp) override { CG_FAIL("no collective in these tests"); }
  at::Tensor all_gather(const at::Tensor&, int64_t) override { CG_FAIL("no collective in these tests"); }
  void broadcast(at::Tensor&, int) override { CG_FAIL("no collective in these tests"); }
  void barrier() override { CG_FAIL("no collective in these tests"); }
};

enum class Mode { Full, Lora };

// The TrainModel tp rank `tp_rank` of `tp` builds (build_train_model without the base weights and the TP hooks):
// every base tensor trains, or LoRA factors of rank 2 on every linear layer, with a dropout stream.
TrainModel rank_model(int tp_rank, int tp, Mode mode) {
  TrainModel m;
  m.full_param = mode == Mode::Full;
  m.llama = model::Llama(tiny(), model::TpShape{tp_rank, tp}, at::TensorOptions().dtype(at::kFloat));
  if (m.full_param) {
    m.trainable = m.llama->param_specs();
    return m;
  }
  lora::LoraSpec spec;
  spec.r = 2;
  spec.dropout = 0.1;
  m.lora = lora::inject_lora(*m.llama, spec, {"all-linear"}, std::make_shared<UnusedTpGroup>(tp_rank, tp), at::kCPU,
                             lora::make_dropout_gen(1, at::kCPU));
  m.trainable = m.lora.params();
  return m;
}

// The full tensor number `index` (its place in the model's ParamSpecs) of dp replica `replica`, for `slot` 0 (the
// parameter), 1 (exp_avg) or 2 (exp_avg_sq): 0, 1, 2, ... in row-major order, offset by all three so that no two
// tensors share a value (exact in fp32: all below 2^24).
at::Tensor full_value(const std::vector<int64_t>& shape, size_t index, int replica, int slot) {
  const double offset = 1e6 * slot + 1e5 * replica + 1e3 * double(index);
  return at::arange(c10::multiply_integers(shape), at::kFloat).reshape(shape) + offset;
}

// What tp rank `tp_rank` holds of `full` when it holds `local` indices of `dim`: indices tp_rank * local onwards, and
// past the end of `full` (vocabulary padding) rows of `pad`.
at::Tensor cut(const at::Tensor& full, int64_t dim, int tp_rank, int64_t local, float pad) {
  if (dim < 0) return full.clone();
  const int64_t start = tp_rank * local;
  const int64_t real = std::max<int64_t>(0, std::min(local, full.size(dim) - start));
  auto shape = full.sizes().vec();
  shape[size_t(dim)] = local;
  at::Tensor out = at::full(shape, pad, full.options());
  out.narrow(dim, 0, real).copy_(full.narrow(dim, start, real));
  return out;
}

// The file number of a saved rank, where its AdamW step count, its TrainState's tokens_seen and its torch generator's
// seed come from: each file tells its own.
int64_t adam_step_of(int file) { return 100 + file; }
uint64_t rng_seed_of(int file) { return 500 + uint64_t(file); }
uint64_t dropout_seed_of(int file) { return 700 + uint64_t(file); }

// Saves step 7 of every rank of `g` into run_dir, as a resume finds it.
CheckpointInfo save_grid(const std::string& run_dir, Grid g, Mode mode) {
  auto write_all = [&](const std::string& dir) {
    for (int q = 0; q < g.dp; ++q)
      for (int t = 0; t < g.tp; ++t) {
        const dist::ParallelDims d = rank_dims(g, q, t);
        TrainModel m = rank_model(t, g.tp, mode);
        AdamW opt = make_optimizer(m, TrainConfig{});
        std::vector<std::pair<std::string, at::Tensor>> state;
        at::NoGradGuard no_grad;
        for (size_t i = 0; i < m.trainable.size(); ++i) {
          const model::ParamSpec& p = m.trainable[i];
          const int64_t local = p.shard_dim < 0 ? 0 : p.param.size(p.shard_dim);
          auto part = [&](int slot) { return cut(full_value(p.full_shape, i, q, slot), p.shard_dim, t, local, kPad); };
          p.param.copy_(part(0));
          state.emplace_back(p.name + ".exp_avg", part(1));
          state.emplace_back(p.name + ".exp_avg_sq", part(2));
          state.emplace_back(p.name + ".step", at::scalar_tensor(adam_step_of(d.rank), at::kLong));
        }
        opt.load_state(state);
        TrainState st;
        st.step = 7;
        st.tokens_seen = d.rank;
        at::manual_seed(rng_seed_of(d.rank));
        if (m.lora.dropout_gen) m.lora.dropout_gen->set_current_seed(dropout_seed_of(d.rank));
        write_rank_checkpoint(dir, m, opt, st, d, "h");
      }
  };
  save_checkpoint(run_dir, 7, 0, CheckpointLayout{g.tp * g.dp, g.tp, g.dp}, "h", write_all,
                  [](bool ok) { return ok; }, 1);
  CheckpointInfo ck;
  ck.step = 7;
  ck.path = step_folder(run_dir, 7);
  ck.manifest = read_manifest(ck.path);
  return ck;
}

// Saves on `from`, loads on every rank of `to`, and compares each rank's tensors, AdamW state, TrainState and torch
// generator with what it should have read: on the same tp, the file of its own (dp_rank, tp_rank) as saved, of dp
// replica 0 when dp changed; on another tp, its slice of the full tensors of that replica (its own on the same dp,
// else replica 0), cut here from the full values, with zero padding rows. The dropout stream (LoRA) is the replica's
// on the same dp, whatever the tp, and re-seeded per dp rank on another dp.
void check_resume(Grid from, Grid to, Mode mode = Mode::Full) {
  SCOPED_TRACE(fmt::format("{} tp {} x dp {} resumed on tp {} x dp {}", mode == Mode::Full ? "full" : "LoRA", from.tp,
                           from.dp, to.tp, to.dp));
  test::TempDir dir("cg_reshard");
  const CheckpointInfo ck = save_grid(dir.path, from, mode);
  for (int q = 0; q < to.dp; ++q)
    for (int t = 0; t < to.tp; ++t) {
      SCOPED_TRACE(fmt::format("dp rank {}, tp rank {}", q, t));
      const int replica = from.dp == to.dp ? q : 0;
      const bool same_tp = from.tp == to.tp;
      const int file = replica * from.tp + (same_tp ? t : 0);  // where the step counts and the TrainState come from
      TrainModel m = rank_model(t, to.tp, mode);
      AdamW opt = make_optimizer(m, TrainConfig{});
      const TrainState st = load_rank_checkpoint(ck, m, opt, rank_dims(to, q, t), 42);
      EXPECT_EQ(st.step, 7);
      EXPECT_EQ(st.tokens_seen, file);
      if (from.dp == to.dp) {
        at::manual_seed(rng_seed_of(file));
        const at::Tensor want = at::rand({4});
        at::manual_seed(12345);  // the restore below must undo this
        ASSERT_NO_THROW(load_rank_checkpoint(ck, m, opt, rank_dims(to, q, t), 42));
        EXPECT_TRUE(at::rand({4}).equal(want)) << "the torch CPU generator is not file " << file << "'s";
      }
      if (mode == Mode::Lora && from.dp == to.dp) {
        EXPECT_TRUE(m.lora.dropout_gen->get_state().equal(
            lora::make_dropout_gen(dropout_seed_of(file), at::kCPU)->get_state()))
            << "the dropout stream is not file " << file << "'s";
      } else if (mode == Mode::Lora) {
        const uint64_t reseeded = model::stable_hash(fmt::format("lora-dropout-resume/42/{}/7", q));
        EXPECT_EQ(m.lora.dropout_gen->current_seed(), reseeded);
      }
      std::map<std::string, at::Tensor> state;
      for (const auto& [name, v] : opt.state()) state[name] = v;
      for (size_t i = 0; i < m.trainable.size(); ++i) {
        const model::ParamSpec& p = m.trainable[i];
        const int64_t local = p.shard_dim < 0 ? 0 : p.param.size(p.shard_dim);
        auto want = [&](int slot) {
          return cut(full_value(p.full_shape, i, replica, slot), p.shard_dim, t, local, same_tp ? kPad : 0.f);
        };
        EXPECT_TRUE(p.param.equal(want(0))) << p.name;
        EXPECT_TRUE(state.at(p.name + ".exp_avg").equal(want(1))) << p.name;
        EXPECT_TRUE(state.at(p.name + ".exp_avg_sq").equal(want(2))) << p.name;
        EXPECT_EQ(state.at(p.name + ".step").item<int64_t>(), adam_step_of(file)) << p.name;
      }
    }
}

TEST(CheckpointReshard, SameGridReadsEachRanksOwnFile) {
  check_resume({2, 2}, {2, 2});  // dp rank 1 reads its own replica's files, not replica 0's
  check_resume({1, 2}, {1, 2});
}

TEST(CheckpointReshard, AnotherDpOnTheSameTpReadsReplicaZero) {
  check_resume({2, 2}, {2, 1});
  check_resume({2, 1}, {2, 2});  // replica 1 has no file of its own
  check_resume({2, 2}, {2, 3});
}

TEST(CheckpointReshard, AnotherTpJoinsTheShardsAndCutsItsSlice) {
  check_resume({2, 1}, {1, 1});
  check_resume({1, 1}, {2, 1});
  check_resume({2, 1}, {4, 1});
  check_resume({4, 1}, {2, 1});  // the padding row of the last shard is dropped, another one added
  check_resume({4, 1}, {1, 1});
}

TEST(CheckpointReshard, AnotherTpOnTheSameDpJoinsItsOwnReplicasShards) {
  check_resume({2, 2}, {1, 2});
  check_resume({2, 2}, {4, 2});
}

TEST(CheckpointReshard, AnotherTpAndDpJoinReplicaZerosShards) {
  check_resume({2, 2}, {4, 1});  // the same world of 4, another grid
  check_resume({4, 1}, {2, 2});
  check_resume({2, 2}, {1, 1});
}

// LoRA factors: A of the row-split layers (o, down) and B of the column-split ones are joined and cut, the other factor
// of each is whole in every file.
TEST(CheckpointReshard, LoraFactorsAndDropoutStreamFollowTheGrid) {
  check_resume({2, 2}, {2, 2}, Mode::Lora);
  check_resume({2, 1}, {2, 2}, Mode::Lora);
  check_resume({2, 2}, {1, 2}, Mode::Lora);
  check_resume({2, 2}, {4, 1}, Mode::Lora);
  check_resume({4, 1}, {2, 2}, Mode::Lora);
}

// cgexport's reader: the full tensors of dp replica 0, trimmed to the model's shape, whatever grid wrote them.
TEST(CheckpointReshard, ReadFullParamsJoinsReplicaZerosShards) {
  for (Mode mode : {Mode::Full, Mode::Lora}) {
    for (Grid g : {Grid{1, 1}, Grid{2, 2}, Grid{4, 1}, Grid{4, 2}}) {
      SCOPED_TRACE(fmt::format("{} tp {} x dp {}", mode == Mode::Full ? "full" : "LoRA", g.tp, g.dp));
      test::TempDir dir("cg_reshard");
      const auto full = read_full_params(save_grid(dir.path, g, mode));
      const TrainModel m = rank_model(0, 1, mode);
      ASSERT_EQ(full.size(), m.trainable.size());
      for (size_t i = 0; i < m.trainable.size(); ++i) {
        const model::ParamSpec& p = m.trainable[i];
        ASSERT_TRUE(full.count(p.name)) << p.name;
        EXPECT_TRUE(full.at(p.name).equal(full_value(p.full_shape, i, 0, 0))) << p.name;
      }
    }
  }
}

}  // namespace
}  // namespace cg
