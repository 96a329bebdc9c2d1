// Loader: batch layout and shifted targets (hand-computed), exactly-once per epoch for dp = 1, 2, 4, dp-sharded ==
// serial, exact resume, length bucketing, validation batches, shards on disk.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "common/error.h"
#include "data/loader.h"
#include "data/rng.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

namespace {

// n samples with lengths in [3, 40]; token values encode (sample, position) so batches can be checked by value.
cg::SampleSet synthetic(int n, uint64_t seed = 3) {
  cg::Rng rng(seed);
  cg::SampleSet s;
  for (int i = 0; i < n; ++i) {
    const int len = 3 + int(rng.below(38));
    std::vector<int32_t> toks(static_cast<size_t>(len));
    for (int t = 0; t < len; ++t) toks[size_t(t)] = i * 100 + t;
    s.add(toks, 1 + int32_t(rng.below(uint64_t(len - 1))), int8_t(i % 2), i, 0);
  }
  return s;
}

cg::LoaderOptions opts(int64_t mb, int64_t dp_rank, int64_t dp_size, uint64_t seed = 11) {
  cg::LoaderOptions o;
  o.micro_batch = mb;
  o.dp_rank = dp_rank;
  o.dp_size = dp_size;
  o.seed = seed;
  o.seq_len = 64;
  return o;
}

std::vector<cg::Loader> rank_loaders(const cg::SampleSet& s, int64_t mb, int64_t dp, uint64_t seed = 11) {
  std::vector<cg::Loader> v;
  for (int64_t r = 0; r < dp; ++r) v.emplace_back(s, opts(mb, r, dp, seed));
  return v;
}

void expect_same(const cg::Batch& a, const cg::Batch& b) {
  EXPECT_EQ(a.B, b.B);
  EXPECT_EQ(a.T, b.T);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.targets, b.targets);
  EXPECT_EQ(a.sample_ids, b.sample_ids);
  EXPECT_EQ(a.global_loss_tokens, b.global_loss_tokens);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.index, b.index);
}

}  // namespace

TEST(Loader, BatchLayoutAndShiftedTargets) {
  cg::SampleSet s;
  s.add({1, 5, 6, 7, 2}, 3, 0, 0, 0);
  s.add({1, 8, 2}, 2, 1, 1, 0);
  cg::LoaderOptions o = opts(2, 0, 1);
  o.shuffle = false;
  o.pad_id = 0;
  cg::Batch b = cg::Loader(s, o).next();
  ASSERT_EQ(b.B, 2);
  ASSERT_EQ(b.T, 4);
  EXPECT_EQ(b.tokens, (std::vector<int32_t>{1, 5, 6, 7, /**/ 1, 8, 0, 0}));
  EXPECT_EQ(b.targets, (std::vector<int32_t>{5, 6, 7, 2, /**/ 8, 2, -100, -100}));
  EXPECT_EQ(b.loss_tokens, 6);
  EXPECT_EQ(b.real_tokens, 6);
  EXPECT_EQ(b.global_loss_tokens, 6);
  // Completion only: targets at positions t with t + 1 >= prompt_len.
  o.loss_on_completion = true;
  b = cg::Loader(s, o).next();
  EXPECT_EQ(b.targets, (std::vector<int32_t>{-100, -100, 7, 2, /**/ -100, 2, -100, -100}));
  EXPECT_EQ(b.loss_tokens, 3);
  EXPECT_EQ(b.real_tokens, 6);
}

TEST(Loader, ExactlyOncePerEpochForDp124) {
  const cg::SampleSet s = synthetic(103);
  for (int64_t dp : {1, 2, 4}) {
    auto loaders = rank_loaders(s, 4, dp);
    const int64_t steps = loaders[0].batches_per_epoch();
    EXPECT_EQ(steps, (103 + 4 * dp - 1) / (4 * dp));
    std::vector<int64_t> first_epoch_order;
    for (int epoch = 0; epoch < 2; ++epoch) {
      std::vector<int64_t> seen;
      for (int64_t step = 0; step < steps; ++step) {
        int64_t loss_sum = 0, global = -1;
        for (auto& l : loaders) {
          cg::Batch b = l.next();
          EXPECT_EQ(b.epoch, epoch);
          EXPECT_EQ(b.index, step);
          EXPECT_LE(b.T, 64);
          seen.insert(seen.end(), b.sample_ids.begin(), b.sample_ids.end());
          loss_sum += b.loss_tokens;
          if (global >= 0) EXPECT_EQ(b.global_loss_tokens, global);  // every rank knows the global divisor
          global = b.global_loss_tokens;
          // Rows hold the right sample, shifted targets included.
          for (int64_t r = 0; r < b.B; ++r) {
            const int64_t id = b.sample_ids[size_t(r)];
            EXPECT_EQ(b.tokens[size_t(r * b.T)], id * 100);
            EXPECT_EQ(b.targets[size_t(r * b.T)], id * 100 + 1);
          }
        }
        EXPECT_EQ(loss_sum, global) << "dp " << dp << " step " << step;
      }
      if (epoch == 0) first_epoch_order = seen;
      std::vector<int64_t> sorted = seen;
      std::sort(sorted.begin(), sorted.end());
      std::vector<int64_t> all(103);
      for (int64_t i = 0; i < 103; ++i) all[size_t(i)] = i;
      EXPECT_EQ(sorted, all) << "dp " << dp << " epoch " << epoch;
      if (epoch == 1) EXPECT_NE(seen, first_epoch_order) << "a new epoch must reshuffle";
    }
  }
}

TEST(Loader, DataParallelEqualsSerial) {
  // dp = 2 x micro_batch 4 sees, step by step, the same samples as dp = 1 x micro_batch 8.
  const cg::SampleSet s = synthetic(90);
  cg::Loader serial(s, opts(8, 0, 1));
  auto ranks = rank_loaders(s, 4, 2);
  for (int64_t step = 0; step < 2 * serial.batches_per_epoch(); ++step) {
    cg::Batch one = serial.next();
    std::vector<int64_t> both;
    int64_t loss = 0;
    for (auto& l : ranks) {
      cg::Batch b = l.next();
      both.insert(both.end(), b.sample_ids.begin(), b.sample_ids.end());
      loss += b.loss_tokens;
      EXPECT_EQ(b.global_loss_tokens, one.global_loss_tokens);
    }
    EXPECT_EQ(both, one.sample_ids) << "step " << step;
    EXPECT_EQ(loss, one.loss_tokens);
  }
}

// One optimizer step's samples, over every (micro-step, dp rank) of a layout with grad_accum micro-steps, sorted,
// and the divisor every rank was given.
static std::pair<std::vector<int64_t>, int64_t> step_samples(std::vector<cg::Loader>& ranks, int64_t accum) {
  std::vector<int64_t> ids;
  int64_t global = -1, loss = 0;
  for (int64_t k = 0; k < accum; ++k)
    for (auto& l : ranks) {
      const cg::Batch b = l.next();
      ids.insert(ids.end(), b.sample_ids.begin(), b.sample_ids.end());
      loss += b.loss_tokens;
      if (global >= 0) EXPECT_EQ(b.global_loss_tokens, global);
      global = b.global_loss_tokens;
    }
  EXPECT_EQ(loss, global);  // the micro-steps' loss tokens add up to the step's divisor
  std::sort(ids.begin(), ids.end());
  return {ids, global};
}

TEST(Loader, GradAccumCutsTheGlobalBatchIntoMicroSteps) {
  // Global batch 8 as micro 8 x dp 1 x accum 1, micro 4 x dp 2, micro 4 x accum 2, micro 2 x dp 2 x accum 2 and
  // micro 1 x dp 4 x accum 2: every step trains on the same samples, over two epochs with a partial last batch.
  const cg::SampleSet s = synthetic(90);
  const auto layout = [&](int64_t mb, int64_t dp, int64_t accum) {
    std::vector<cg::Loader> v;
    for (int64_t r = 0; r < dp; ++r) {
      cg::LoaderOptions o = opts(mb, r, dp);
      o.grad_accum = accum;
      v.emplace_back(s, o);
    }
    return v;
  };
  auto ref = layout(8, 1, 1);
  std::vector<std::vector<cg::Loader>> others;
  const std::vector<std::array<int64_t, 3>> shapes = {{4, 2, 1}, {4, 1, 2}, {2, 2, 2}, {1, 4, 2}};
  for (const auto& [mb, dp, accum] : shapes) others.push_back(layout(mb, dp, accum));
  EXPECT_EQ(others[2][0].batches_per_epoch(), ref[0].batches_per_epoch());  // 12 steps: 11 of 8 samples + 2
  std::set<int64_t> epoch;
  for (int64_t step = 0; step < 2 * ref[0].batches_per_epoch(); ++step) {
    const auto want = step_samples(ref, 1);
    if (step < ref[0].batches_per_epoch()) epoch.insert(want.first.begin(), want.first.end());
    for (size_t i = 0; i < shapes.size(); ++i)
      EXPECT_EQ(step_samples(others[i], shapes[i][2]), want) << "layout " << i << " step " << step;
  }
  EXPECT_EQ(epoch.size(), 90u);  // exactly once per epoch
  // A saved position (between steps) resumes under another layout of the same global batch; another product is
  // refused, naming grad_accum.
  auto a = layout(2, 2, 2);
  for (int i = 0; i < 3; ++i) step_samples(a, 2);
  auto b = layout(4, 1, 2);
  for (auto& l : b) l.restore(a[0].state());
  EXPECT_EQ(step_samples(b, 2), step_samples(a, 2));
  a[0].next();  // inside a step: no state
  EXPECT_THROW(a[0].state(), cg::Error);
  auto c = layout(4, 1, 1);
  try {
    c[0].restore(b[0].state());
    ADD_FAILURE() << "global batch 4 restored a state of 8";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.grad_accum"), std::string::npos) << e.what();
  }
  // A state of a build before grad_accum was part of the global batch (no "grad_accum" in it): its 4 was
  // micro_batch x dp; under another product the error says so and how to resume.
  nlohmann::json old = nlohmann::json::parse(c[0].state().to_json());
  EXPECT_EQ(old["grad_accum"], 1);
  old.erase("grad_accum");
  const cg::LoaderState older = cg::LoaderState::from_json(old.dump());
  EXPECT_EQ(older.grad_accum, 0);
  try {
    b[0].restore(older);
    ADD_FAILURE() << "global batch 8 restored an older state of 4";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("saved by a cgtrain before 2026-12-04"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("train.grad_accum=1"), std::string::npos) << e.what();
  }
  c[0].restore(older);  // the same global batch: resumes
}

TEST(Loader, ResumeEqualsUninterruptedRun) {
  const cg::SampleSet s = synthetic(57);
  for (int64_t dp : {1, 2, 4}) {
    for (int64_t rank = 0; rank < dp; ++rank) {
      cg::Loader a(s, opts(3, rank, dp));
      const int64_t stop = a.batches_per_epoch() + 2;  // resume point inside the second epoch
      for (int64_t i = 0; i < stop; ++i) a.next();
      const std::string saved = a.state().to_json();
      cg::Loader b(s, opts(3, rank, dp));
      b.restore(cg::LoaderState::from_json(saved));
      EXPECT_EQ(b.state(), a.state());
      for (int i = 0; i < 2 * a.batches_per_epoch(); ++i) expect_same(a.next(), b.next());
    }
  }
  // The same position can be resumed with another dp when micro_batch x dp is unchanged.
  cg::Loader a(s, opts(4, 0, 1));
  for (int i = 0; i < 5; ++i) a.next();
  auto ranks = rank_loaders(s, 2, 2);
  for (auto& r : ranks) r.restore(a.state());
  cg::Batch one = a.next(), r0 = ranks[0].next(), r1 = ranks[1].next();
  std::vector<int64_t> both = r0.sample_ids;
  both.insert(both.end(), r1.sample_ids.begin(), r1.sample_ids.end());
  EXPECT_EQ(both, one.sample_ids);
  // What cannot be resumed says why.
  cg::LoaderState st = a.state();
  cg::Loader other_seed(s, opts(4, 0, 1, 99));
  EXPECT_THROW(other_seed.restore(st), cg::Error);
  cg::Loader other_batch(s, opts(5, 0, 1));
  EXPECT_THROW(other_batch.restore(st), cg::Error);
  EXPECT_THROW(cg::LoaderState::from_json("{\"epoch\": 1}"), cg::Error);
  // A hand-edited state with a number that is not whole (1e30 as int64 would be undefined behaviour) says which.
  nlohmann::json edited = nlohmann::json::parse(st.to_json());
  edited["cursor"] = 1e30;
  try {
    cg::LoaderState::from_json(edited.dump());
    ADD_FAILURE() << "cursor 1e30 was read";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"cursor\" is 1e+30, not a whole number in [0, "), std::string::npos)
        << e.what();
  }
  edited = nlohmann::json::parse(st.to_json());
  edited["seed"] = -5;
  EXPECT_THROW(cg::LoaderState::from_json(edited.dump()), cg::Error);
  // The cursor names a global batch of the epoch: 15 of 57 samples x 4 are 0..14, and 15 is none.
  ASSERT_EQ(a.batches_per_epoch(), 15);
  st.cursor = 14;
  cg::Loader same(s, opts(4, 0, 1));
  EXPECT_NO_THROW(same.restore(st));
  st.cursor = 15;
  try {
    same.restore(st);
    ADD_FAILURE() << "cursor 15 of 15 batches was restored";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("loader state cursor 15 is outside [0, 15)"), std::string::npos) << e.what();
  }
}

TEST(Loader, BucketingCutsPadding) {
  const cg::SampleSet s = synthetic(2000, 5);
  cg::LoaderOptions on = opts(8, 0, 1), off = on;
  off.bucket_batches = 1;
  cg::Loader a(s, on), b(s, off);
  for (int64_t i = 0; i < a.batches_per_epoch(); ++i) {
    a.next();
    b.next();
  }
  EXPECT_LT(a.padding_waste(), 0.5 * b.padding_waste());
  EXPECT_GT(b.padding_waste(), 0.2);  // lengths 3..40 unsorted waste a lot
}

TEST(Loader, BucketedBatchesComeInRandomOrderThePartialOneLast) {
  // 2003 samples in global batches of 8: 250 full ones and a partial one of 3, in windows of 16 sorted by length.
  const cg::SampleSet s = synthetic(2003, 5);
  cg::Loader l(s, opts(8, 0, 1));
  ASSERT_EQ(l.batches_per_epoch(), 251);
  for (int epoch = 0; epoch < 2; ++epoch) {
    int descents = 0;
    int64_t prev_t = 0;
    for (int64_t step = 0; step < 251; ++step) {
      const cg::Batch b = l.next();
      EXPECT_EQ(b.B, step < 250 ? 8 : 3) << "epoch " << epoch << " step " << step;
      descents += step < 250 && b.T < prev_t;
      prev_t = b.T;
    }
    // Shuffled, about every other batch is shorter than the one before; in window order (T rising within each of the
    // 16 windows) only the windows' first batches could be.
    EXPECT_GT(descents, 60) << "epoch " << epoch;
  }
  // bucket_batches 1 is off, as 0 is: the plain shuffled order.
  cg::LoaderOptions zero = opts(8, 0, 1), one = zero;
  zero.bucket_batches = 0;
  one.bucket_batches = 1;
  cg::Loader a(s, zero), b(s, one);
  for (int64_t i = 0; i < a.batches_per_epoch(); ++i) expect_same(a.next(), b.next());
}

TEST(Loader, ValidationSamplesDoNotDependOnLayoutOrSeed) {
  const cg::SampleSet s = synthetic(40);
  // The samples validation scores, over every dp rank of a layout: sorted ids and loss tokens.
  const auto scored = [&](int64_t mb, int64_t dp, uint64_t seed, int64_t n) {
    std::vector<int64_t> ids;
    int64_t loss_tokens = 0, global = 0, global_samples = 0;
    for (int64_t r = 0; r < dp; ++r) {
      cg::Loader l(s, opts(mb, r, dp, seed));
      l.next();  // a loader's position does not matter
      for (const auto& b : l.fixed_batches(n)) {
        ids.insert(ids.end(), b.sample_ids.begin(), b.sample_ids.end());
        loss_tokens += b.loss_tokens;
        if (r == 0) global += b.global_loss_tokens, global_samples += b.global_samples;
      }
    }
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(global, loss_tokens);  // the ranks' slices add up to the global batches
    EXPECT_EQ(global_samples, int64_t(ids.size()));  // any rank counts all ranks' samples (cgtrain's val_samples)
    return std::make_pair(ids, loss_tokens);
  };
  const auto ref = scored(4, 1, 11, 10);
  std::vector<int64_t> first10(10);
  std::iota(first10.begin(), first10.end(), int64_t(0));
  EXPECT_EQ(ref.first, first10);  // the first 10 samples in file order
  EXPECT_EQ(scored(2, 2, 11, 10), ref);
  EXPECT_EQ(scored(3, 4, 99, 10), ref);  // a partial last global batch, another seed
  EXPECT_EQ(scored(4, 2, 5, 0).first.size(), 40u);  // 0: all
  // Batches hold samples of similar length (sorted), and come back the same every time.
  cg::Loader l(s, opts(4, 0, 1));
  const auto v1 = l.fixed_batches(12), v2 = l.fixed_batches(12);
  ASSERT_EQ(v1.size(), 3u);
  for (size_t i = 0; i < v1.size(); ++i) expect_same(v1[i], v2[i]);
  for (size_t i = 1; i < v1.size(); ++i) EXPECT_LE(v1[i - 1].T, v1[i].T);
}

TEST(Loader, LongSamplesAreDroppedAndCounted) {
  cg::SampleSet s = synthetic(30);
  s.add(std::vector<int32_t>(80, 7), 2, 0, 30, 0);  // 80 tokens > seq_len + 1 = 65
  s.add(std::vector<int32_t>(66, 7), 2, 0, 31, 0);  // one over
  s.add(std::vector<int32_t>(1, 7), 1, 0, 32, 0);   // a lone token has no target
  s.add(std::vector<int32_t>(65, 7), 2, 0, 33, 0);  // seq_len + 1: kept, a row of seq_len inputs
  cg::Loader l(s, opts(4, 0, 1));
  EXPECT_EQ(l.dropped_too_long(), 3);
  EXPECT_EQ(l.num_samples(), 31);
  EXPECT_EQ(l.longest_sample(), 80);
  const std::vector<cg::Batch> v = l.fixed_batches(0);  // sorted by length: the 65-token sample comes last
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.back().T, 64);
  EXPECT_EQ(v.back().sample_ids.back(), 33);
}

TEST(Loader, FromShards) {
  const std::string dir = testing::TempDir() + "/cg_loader_shards";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  cg::SampleSet s = synthetic(20);
  cg::SampleSet a, b;
  for (size_t i = 0; i < s.size(); ++i)
    (i < 12 ? a : b).add(std::vector<int32_t>(s.sample(i), s.sample(i) + s.length(i)), s.prompt_lens[i], s.tasks[i],
                         s.rows[i], s.copies[i]);
  cg::ShardMeta m;
  m.split = "train";
  m.tokenizer_sha256 = "t1";
  m.vocab_size = 32000;
  m.num_shards = 2;
  const auto write_both = [&] {  // shards 0 and 1 with m's metadata; m keeps shard_index 1
    m.shard_index = 0;
    cg::write_shard(cg::shard_path(dir, "train", 0), a, m);
    m.shard_index = 1;
    cg::write_shard(cg::shard_path(dir, "train", 1), b, m);
  };
  write_both();
  cg::Loader from_disk = cg::Loader::from_shards(dir, "train", opts(4, 0, 1));
  cg::Loader in_memory(s, opts(4, 0, 1));
  EXPECT_EQ(from_disk.num_samples(), 20);
  EXPECT_EQ(from_disk.meta().tokenizer_sha256, "t1");
  for (int i = 0; i < 6; ++i) expect_same(from_disk.next(), in_memory.next());
  auto error = [&] {
    try {
      cg::Loader::from_shards(dir, "train", opts(4, 0, 1));
    } catch (const cg::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // A leftover shard 2 of an earlier run that wrote 3: not read as data.
  cg::ShardMeta old = m;
  old.shard_index = 2;
  old.num_shards = 3;
  cg::write_shard(cg::shard_path(dir, "train", 2), b, old);
  EXPECT_NE(error().find("files of different cgprep runs are mixed"), std::string::npos) << error();
  std::filesystem::remove(cg::shard_path(dir, "train", 2));
  EXPECT_EQ(error(), "no error");
  // Another source CSV, or another tokenizer.
  m.source_sha256 = "other csv";
  cg::write_shard(cg::shard_path(dir, "train", 1), b, m);
  EXPECT_NE(error().find("another tokenizer, settings or source CSV"), std::string::npos) << error();
  m.source_sha256 = "";
  m.tokenizer_sha256 = "t2";
  cg::write_shard(cg::shard_path(dir, "train", 1), b, m);
  EXPECT_NE(error().find("another tokenizer, settings or source CSV"), std::string::npos) << error();

  // A state saved over one cgprep run does not restore over shards made again with other settings (same count of
  // samples): the stream would not continue. A state of an older build (no digest) still restores.
  m.tokenizer_sha256 = "t1";
  write_both();
  cg::Loader first = cg::Loader::from_shards(dir, "train", opts(4, 0, 1));
  first.next();
  const cg::LoaderState saved = first.state();
  EXPECT_EQ(saved.shards.size(), 16u);
  EXPECT_EQ(cg::LoaderState::from_json(saved.to_json()), saved);
  m.settings_json = R"({"seed":43})";
  for (int k = 0; k < 2; ++k) {
    m.shard_index = k;
    cg::write_shard(cg::shard_path(dir, "train", k), k == 0 ? a : b, m);
  }
  cg::Loader again = cg::Loader::from_shards(dir, "train", opts(4, 0, 1));
  try {
    again.restore(saved);
    ADD_FAILURE() << "restored over shards made again";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("the shards were made again"), std::string::npos) << e.what();
  }
  cg::LoaderState older = saved;
  older.shards.clear();
  EXPECT_NO_THROW(again.restore(older));
  // Other shards with another count of samples: the message names the key and the way to train on other data.
  cg::LoaderState fewer = older;
  fewer.num_samples += 1;
  try {
    again.restore(fewer);
    ADD_FAILURE() << "restored over shards with another count of samples";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("resume with the shards the run trained on (data.shards_dir;"),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("start a new train.run_dir with lora.init_adapter"), std::string::npos)
        << e.what();
  }
  // The digest of other settings, given as also counting as these shards: restores (a resume across cgprep versions
  // that spell the same settings differently). shards_digest of the shards' own settings is their digest.
  EXPECT_EQ(first.shards_digest(first.meta().settings_json), saved.shards);
  EXPECT_EQ(again.shards_digest(first.meta().settings_json), saved.shards);  // same tokenizer and source
  EXPECT_NO_THROW(again.restore(saved, {again.shards_digest(first.meta().settings_json)}));
  EXPECT_THROW(again.restore(saved, {again.shards_digest(R"({"seed":44})")}), cg::Error);
}
