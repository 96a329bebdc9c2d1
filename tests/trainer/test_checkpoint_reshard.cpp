// A checkpoint written on one tp x dp grid and read on another, in one process (no mpirun): every rank of the old grid
// writes its file with write_rank_checkpoint, every rank of the new one loads with load_rank_checkpoint, and cgexport's
// read_full_params joins the shards. Neither needs a communicator, so a rank is its dist::ParallelDims numbers and
// its model the tp-local Llama of its tp rank (full-parameter mode: the model's own ParamSpecs, column- and
// row-split weights, replicated norms, and vocabulary tables padded to a multiple of tp).
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

#include "dist/parallel_dims.h"
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

// A full-parameter TrainModel as tp rank `tp_rank` of `tp` builds it (build_train_model without the base weights and
// the TP hooks, which need the tp group).
TrainModel rank_model(int tp_rank, int tp) {
  TrainModel m;
  m.full_param = true;
  m.llama = model::Llama(tiny(), model::TpShape{tp_rank, tp}, at::TensorOptions().dtype(at::kFloat));
  m.trainable = m.llama->param_specs();
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

// Saves step 7 of every rank of `g` into run_dir, as a resume finds it.
CheckpointInfo save_grid(const std::string& run_dir, Grid g) {
  auto write_all = [&](const std::string& dir) {
    for (int q = 0; q < g.dp; ++q)
      for (int t = 0; t < g.tp; ++t) {
        const dist::ParallelDims d = rank_dims(g, q, t);
        TrainModel m = rank_model(t, g.tp);
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
// else replica 0), cut here from the full values, with zero padding rows.
void check_resume(Grid from, Grid to) {
  SCOPED_TRACE(fmt::format("tp {} x dp {} resumed on tp {} x dp {}", from.tp, from.dp, to.tp, to.dp));
  test::TempDir dir("cg_reshard");
  const CheckpointInfo ck = save_grid(dir.path, from);
  for (int q = 0; q < to.dp; ++q)
    for (int t = 0; t < to.tp; ++t) {
      SCOPED_TRACE(fmt::format("dp rank {}, tp rank {}", q, t));
      const int replica = from.dp == to.dp ? q : 0;
      const bool same_tp = from.tp == to.tp;
      const int file = replica * from.tp + (same_tp ? t : 0);  // where the step counts and the TrainState come from
      TrainModel m = rank_model(t, to.tp);
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

// cgexport's reader: the full tensors of dp replica 0, trimmed to the model's shape, whatever grid wrote them.
TEST(CheckpointReshard, ReadFullParamsJoinsReplicaZerosShards) {
  for (Grid g : {Grid{1, 1}, Grid{2, 2}, Grid{4, 1}, Grid{4, 2}}) {
    SCOPED_TRACE(fmt::format("tp {} x dp {}", g.tp, g.dp));
    test::TempDir dir("cg_reshard");
    const auto full = read_full_params(save_grid(dir.path, g));
    const TrainModel m = rank_model(0, 1);
    ASSERT_EQ(full.size(), m.trainable.size());
    for (size_t i = 0; i < m.trainable.size(); ++i) {
      const model::ParamSpec& p = m.trainable[i];
      ASSERT_TRUE(full.count(p.name)) << p.name;
      EXPECT_TRUE(full.at(p.name).equal(full_value(p.full_shape, i, 0, 0))) << p.name;
    }
  }
}

}  // namespace
}  // namespace cg
