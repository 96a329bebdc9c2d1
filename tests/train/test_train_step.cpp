// The training step in process, under mpirun (tp = world) on the micro LLaMA:
//   the step-0 LoRA model equals the base model (bitwise); training changes only LoRA tensors (base bitwise equal, no
//   base grads, optimizer state only for LoRA); full-parameter mode gives replicated parameters identical grads on
//   every tp rank; a non-finite step is skipped without touching parameters or optimizer state; a bf16 base trains
//   like the fp32 one within bf16 precision; a step calls no operator that would wait for a GPU; a checkpoint whose
//   dropout stream was drawn on another device type, or resumed on another dp, resumes with a re-seeded stream (one
//   per replica); a checkpoint restores every LoRA tensor, AdamW moment and step, the train state and the torch CPU
//   generator, and one of other trainables (lora.targets, lora.r, full mode) is refused; the validation loss per task
//   equals row-by-row sums; a step's loss and gradient are the mean over the loss tokens of all its micro-steps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <utility>

#include "common/error.h"
#include "data/shard.h"
#include "dist/parallel_dims.h"
#include "model/base_sample.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "tests/dist/shared_scratch.h"
#include "tests/train/train_fixture.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_dir.h"
#include "trainer/train_model.h"
#include "trainer/train_step.h"

using namespace cg;

namespace {

dist::ParallelDims& dims() {
  static dist::ParallelDims d = [] {
    const char* w = std::getenv("OMPI_COMM_WORLD_SIZE");
    return dist::make_parallel_dims(w ? std::atoi(w) : 1, 1, dist::Backend::Mpi);
  }();
  return d;
}

std::string setup() {
  static std::string dir = [] {
    // A folder of this job's, every rank's (tests/dist/shared_scratch.h): rank 0 writes the setup there.
    const std::string d = test::shared_scratch_dir("step-setup-np" + std::to_string(dims().world));
    if (dims().rank == 0) test::make_micro_setup(d);
    dims().host_world_comm->barrier();
    return d;
  }();
  return dir;
}

Config micro_config(bool lora) {
  Config c;
  c.model.hf_dir = setup() + "/hf";
  c.model.device = "cpu";
  c.data.shards_dir = setup() + "/shards";
  c.lora.enabled = lora;
  c.lora.targets = {"all-linear"};
  c.lora.r = 4;
  c.lora.alpha = 8;
  c.lora.dropout = 0.1;
  c.parallel.tp = dims().tp;
  c.train.micro_batch = 4;
  c.train.seq_len = 48;
  return c;
}

TrainModel build(bool lora, const std::string& dtype = "fp32") {
  Config c = micro_config(lora);
  c.model.dtype = dtype;
  return build_train_model(c, dims(), 97, at::kCPU);
}

Loader loader(int64_t grad_accum = 1) {
  LoaderOptions o;
  o.micro_batch = 4;
  o.grad_accum = grad_accum;
  o.seq_len = 48;
  return Loader::from_shards(setup() + "/shards", "train", o);
}

TEST(TrainStep, StepZeroLoraModelEqualsBase) {
  TrainModel with = build(true), base = build(false);
  ASSERT_GT(with.lora.size(), 0u);
  at::Tensor tokens = torch::randint(3, 97, {2, 16}, torch::kLong);
  with.llama->train();  // dropout on: B = 0 still adds exactly nothing
  at::NoGradGuard g;
  EXPECT_TRUE(with.llama->forward(tokens).equal(base.llama->forward(tokens)));
}

// A tied base (tie_word_embeddings true, no lm_head.weight): LoRA trains on it, its lm_head the embedding's rows on
// every tp rank, the model equal to an untied copy whose lm_head.weight is the embedding, both frozen through a step.
// Full-parameter training would train them apart, which a tied model cannot hold: refused, saying what to do.
TEST(TrainStep, TiedBaseTrainsWithLoraAndRefusesFullParameter) {
  const std::string tied = setup() + "/hf_tied", untied = setup() + "/hf_untied";
  if (dims().rank == 0) {
    const model::HfCheckpoint ck(setup() + "/hf");
    std::vector<std::pair<std::string, at::Tensor>> without, copy;
    for (const std::string& name : ck.keys()) {
      if (name != "lm_head.weight") without.emplace_back(name, ck.read(name));
      copy.emplace_back(name, ck.read(name == "lm_head.weight" ? "model.embed_tokens.weight" : name));
    }
    const model::LlamaConfig lc = model::load_llama_config(setup() + "/hf");
    model::write_hf_checkpoint(untied, copy, lc);
    model::write_hf_checkpoint(tied, without, lc);
    std::string text = lc.to_hf_json("float32");
    const std::string flag = "\"tie_word_embeddings\": false";
    ASSERT_NE(text.find(flag), std::string::npos);
    std::ofstream(tied + "/config.json") << text.replace(text.find(flag), flag.size(), "\"tie_word_embeddings\": true");
  }
  dims().host_world_comm->barrier();
  Config c = micro_config(true);
  c.lora.dropout = 0;
  c.model.hf_dir = tied;
  TrainModel m = build_train_model(c, dims(), 97, at::kCPU);
  c.model.hf_dir = untied;
  TrainModel u = build_train_model(c, dims(), 97, at::kCPU);
  EXPECT_TRUE(m.llama->lm_head->weight.equal(m.llama->model->embed_tokens->weight));
  const at::Tensor tokens = torch::randint(3, 97, {2, 16}, torch::kLong);
  {
    at::NoGradGuard g;
    EXPECT_TRUE(m.llama->forward(tokens).equal(u.llama->forward(tokens)));
  }
  const at::Tensor head = m.llama->lm_head->weight.detach().clone();
  AdamW opt = make_optimizer(m, TrainConfig{});
  TrainGrads grads(m.trainable, dims());
  Loader ld = loader();
  EXPECT_TRUE(std::isfinite(train_step(m, ld, grads, opt, 1e-2, 1.0, dims()).stats.loss));
  EXPECT_TRUE(m.llama->lm_head->weight.equal(head));
  EXPECT_TRUE(m.llama->model->embed_tokens->weight.equal(head));

  Config full = micro_config(false);
  full.model.hf_dir = tied;
  try {
    build_train_model(full, dims(), 97, at::kCPU);
    ADD_FAILURE() << "full-parameter training of a tied base accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.hf_dir " + tied + " ties lm_head to embed_tokens (config.json "
                                         "tie_word_embeddings true)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("train with LoRA (lora.enabled=true"), std::string::npos) << e.what();
  }
  dims().host_world_comm->barrier();
}

TEST(TrainStep, OnlyLoraTensorsChange) {
  TrainModel m = build(true);
  AdamW opt = make_optimizer(m, TrainConfig{});
  TrainGrads grads(m.trainable, dims());
  std::vector<std::pair<std::string, at::Tensor>> before;
  for (const auto& p : m.llama->param_specs()) before.emplace_back(p.name, p.param.detach().clone());
  std::vector<at::Tensor> lora_before;
  for (const auto& p : m.trainable) lora_before.push_back(p.param.detach().clone());
  Loader ld = loader();
  for (int i = 0; i < 3; ++i) {
    StepResult r = train_step(m, ld, grads, opt, 1e-2, 1.0, dims());
    EXPECT_FALSE(r.skipped);
    EXPECT_TRUE(std::isfinite(r.stats.loss));
  }
  const auto specs = m.llama->param_specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_TRUE(specs[i].param.equal(before[i].second)) << before[i].first << " (base) changed";
    EXPECT_FALSE(specs[i].param.requires_grad()) << before[i].first;
    EXPECT_FALSE(specs[i].param.grad().defined()) << before[i].first;
  }
  for (size_t i = 0; i < m.trainable.size(); ++i)
    EXPECT_FALSE(m.trainable[i].param.equal(lora_before[i])) << m.trainable[i].name << " did not train";
  EXPECT_EQ(opt.state().size(), 3 * m.trainable.size());  // exp_avg, exp_avg_sq, step per LoRA tensor only
  for (const auto& p : m.trainable) EXPECT_TRUE(p.name.find(".lora_") != std::string::npos) << p.name;
}

// A step's loss is Σ token losses / Σ loss-carrying targets over all its micro-steps, and its gradient is that mean's:
// the reference sums batch_token_losses of the same two micro-batches, counts the targets that are not ignored
// itself, and takes the gradient by autograd of the mean; AdamW's first moment after one step holds (1 - beta1) x
// the gradient train_step used. Without dropout both paths see the same forward.
TEST(TrainStep, LossAndGradientAreTheMeanOverTheLossTokensOfEveryMicroStep) {
  Config c = micro_config(true);
  c.lora.dropout = 0;
  TrainModel m = build_train_model(c, dims(), 97, at::kCPU);
  m.llama->train();
  // Samples whose first 8 tokens are a prompt that carries no loss (data.loss_on=completion): loss tokens are fewer
  // than real tokens, so a step that divided by the one for the other would show.
  SampleSet samples;
  std::mt19937_64 rng(4);
  for (int i = 0; i < 32; ++i) {
    std::vector<int32_t> t = {1};
    const int len = std::uniform_int_distribution<int>(12, 40)(rng);
    for (int k = 0; k < len; ++k) t.push_back(std::uniform_int_distribution<int32_t>(3, 34)(rng));
    t.push_back(2);
    samples.add(t, /*prompt_len=*/8, 0, i, 0);
  }
  LoaderOptions o;
  o.micro_batch = 4;
  o.grad_accum = 2;
  o.seq_len = 48;
  o.loss_on_completion = true;
  const auto make_loader = [&] { return Loader(samples, o); };
  Loader ref_loader = make_loader();
  const Batch b1 = ref_loader.next(), b2 = ref_loader.next();
  double targets = 0;
  for (const Batch* b : {&b1, &b2})
    targets += double(std::count_if(b->targets.begin(), b->targets.end(), [](int32_t t) { return t >= 0; }));
  ASSERT_LT(targets, double(b1.real_tokens + b2.real_tokens));  // the prompt's tokens carry no loss
  const at::Tensor sum = batch_token_losses(m, b1, dims()).sum() + batch_token_losses(m, b2, dims()).sum();
  (sum / targets).backward();
  std::vector<at::Tensor> want_grads;
  for (auto& p : m.trainable) {
    want_grads.push_back(p.param.grad().clone());
    p.param.mutable_grad().reset();
  }

  const TrainConfig t;
  AdamW opt = make_optimizer(m, t);
  TrainGrads grads(m.trainable, dims());
  Loader ld = make_loader();
  const StepResult r = train_step(m, ld, grads, opt, 1e-2, /*clip_grad_norm=*/0, dims());
  ASSERT_FALSE(r.skipped);
  EXPECT_EQ(r.stats.loss_tokens, targets);
  EXPECT_EQ(r.real_tokens, b1.real_tokens + b2.real_tokens);
  EXPECT_NEAR(r.stats.loss, sum.item<double>() / targets, 1e-6);
  const auto named = opt.state();
  const std::map<std::string, at::Tensor> state(named.begin(), named.end());
  double moved = 0;
  for (size_t i = 0; i < m.trainable.size(); ++i) {
    const at::Tensor& m1 = state.at(m.trainable[i].name + ".exp_avg");
    EXPECT_TRUE(torch::allclose(m1, (1 - t.beta1) * want_grads[i], 1e-4, 1e-9)) << m.trainable[i].name;
    moved += want_grads[i].abs().sum().item<double>();
  }
  EXPECT_GT(moved, 0);  // the gradients compared are not all zero
}

// validation_loss in all and per task equals the same losses summed one row at a time (batches of one sample), in
// eval mode (dropout off), after a step has made the adapters non-zero; training mode comes back.
TEST(TrainStep, ValidationLossPerTaskEqualsRowByRowSums) {
  TrainModel m = build(true);
  AdamW opt = make_optimizer(m, TrainConfig{});
  TrainGrads grads(m.trainable, dims());
  Loader ld = loader();
  train_step(m, ld, grads, opt, 1e-2, 1.0, dims());
  LoaderOptions o;
  o.micro_batch = 4;
  o.seq_len = 48;
  std::vector<Batch> batches = Loader::from_shards(setup() + "/shards", "val", o).fixed_batches(24);
  for (auto& b : batches)
    for (size_t r = 0; r < b.tasks.size(); ++r) b.tasks[r] = int8_t(b.sample_ids[r] % 3 == 0);  // a third infill
  const ValLoss v = validation_loss(m, batches, dims());
  EXPECT_TRUE(m.llama->is_training());

  double sum[2] = {0, 0}, tokens[2] = {0, 0};
  m.llama->eval();
  {
    at::NoGradGuard g;
    for (const auto& b : batches)
      for (int64_t r = 0; r < b.B; ++r) {
        Batch one;
        one.B = 1;
        one.T = b.T;
        one.tokens.assign(b.tokens.begin() + r * b.T, b.tokens.begin() + (r + 1) * b.T);
        one.targets.assign(b.targets.begin() + r * b.T, b.targets.begin() + (r + 1) * b.T);
        const int task = b.tasks[size_t(r)];
        sum[task] += batch_loss_sum(m, one, dims()).item<double>();
        for (int32_t t : one.targets) tokens[task] += t != -100;
      }
  }
  m.llama->train();
  ASSERT_GT(tokens[0], 0);
  ASSERT_GT(tokens[1], 0);
  EXPECT_EQ(v.generation_tokens, int64_t(tokens[0]));
  EXPECT_EQ(v.infill_tokens, int64_t(tokens[1]));
  EXPECT_EQ(v.tokens, int64_t(tokens[0] + tokens[1]));
  EXPECT_NEAR(v.generation, sum[0] / tokens[0], 1e-5);
  EXPECT_NEAR(v.infill, sum[1] / tokens[1], 1e-5);
  EXPECT_NEAR(v.all, (sum[0] + sum[1]) / (tokens[0] + tokens[1]), 1e-5);
  EXPECT_GT(std::abs(v.generation - v.infill), 1e-4);  // the split is not the mean twice

  for (auto& b : batches) std::fill(b.tasks.begin(), b.tasks.end(), int8_t{0});  // generation only
  const ValLoss g = validation_loss(m, batches, dims());
  EXPECT_TRUE(std::isnan(g.infill));
  EXPECT_EQ(g.infill_tokens, 0);
  EXPECT_DOUBLE_EQ(g.generation, g.all);
  EXPECT_NEAR(g.all, v.all, 1e-12);
}

TEST(TrainStep, Bf16BaseTrainsLikeFp32) {
  // The GPU precision on CPU: a bf16 base (layer-norm RMSNorm, LoRA matmuls in bf16 with fp32 master factors, same
  // dropout masks) follows the fp32 run within bf16 precision for a few steps, and its LoRA tensors stay fp32.
  TrainModel m16 = build(true, "bf16"), m32 = build(true, "fp32");
  ASSERT_EQ(m16.llama->dtype(), at::kBFloat16);
  AdamW o16 = make_optimizer(m16, TrainConfig{}), o32 = make_optimizer(m32, TrainConfig{});
  TrainGrads g16(m16.trainable, dims()), g32(m32.trainable, dims());
  Loader l16 = loader(), l32 = loader();
  for (int i = 0; i < 3; ++i) {
    const StepResult a = train_step(m16, l16, g16, o16, 1e-3, 1.0, dims());
    const StepResult b = train_step(m32, l32, g32, o32, 1e-3, 1.0, dims());
    ASSERT_FALSE(a.skipped);
    EXPECT_NEAR(a.stats.loss, b.stats.loss, 2e-3 * std::abs(b.stats.loss)) << "step " << i;
    EXPECT_NEAR(a.stats.grad_norm, b.stats.grad_norm, 0.1 * b.stats.grad_norm) << "step " << i;
  }
  ASSERT_EQ(m16.trainable.size(), m32.trainable.size());
  double diff = 0, moved = 0;
  for (size_t i = 0; i < m16.trainable.size(); ++i) {
    EXPECT_EQ(m16.trainable[i].param.scalar_type(), at::kFloat) << m16.trainable[i].name;
    if (m16.trainable[i].name.find("lora_B") == std::string::npos) continue;  // B starts at 0: it holds the updates
    diff += (m16.trainable[i].param - m32.trainable[i].param).abs().sum().item<double>();
    moved += m32.trainable[i].param.abs().sum().item<double>();
  }
  EXPECT_GT(moved, 0);
  EXPECT_LT(diff, 0.03 * moved);  // measured 0.6%
}

// Every operator scope opened while alive (nested ones too, on every thread), by name.
class OpNames {
 public:
  OpNames() {
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&on_start).scopes({at::RecordScope::FUNCTION}));
  }
  ~OpNames() { at::removeCallback(handle_); }
  static std::map<std::string, int> take() {
    std::lock_guard<std::mutex> lock(mutex());
    return std::exchange(names(), {});
  }

 private:
  static std::mutex& mutex() { static std::mutex m; return m; }
  static std::map<std::string, int>& names() { static std::map<std::string, int> n; return n; }
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    std::lock_guard<std::mutex> lock(mutex());
    names()[fn.name()] += 1;
    return nullptr;
  }
  at::CallbackHandle handle_;
};

TEST(TrainStep, Fp16IsRefusedForTraining) {
  try {
    build(true, "fp16");
    ADD_FAILURE() << "fp16 built a training model";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model.dtype=fp16 cannot train: cgtrain does no loss scaling"),
              std::string::npos) << e.what();
  }
}

TEST(TrainStep, CallsNoOperatorThatWaitsForTheDevice) {
  // On a GPU these operators copy a value to the host, i.e. wait for every kernel queued before them: item() and
  // tensors used as conditions (_local_scalar_dense, is_nonzero, equal, allclose) and ops whose output size depends
  // on values (nonzero, masked_select, unique, boolean indexing). A step may have none except the one transfer of
  // [loss, tokens, grad norm] in TrainGrads::reduce (a .cpu() copy, invisible on CPU). The cross-entropy's id check
  // and the vocab-parallel embedding's (one item() per micro-batch each) run on CPU tensors only and are the only
  // allowed exception here.
  TrainModel m = build(true);
  AdamW opt = make_optimizer(m, TrainConfig{});
  TrainGrads grads(m.trainable, dims());
  Loader ld = loader(/*grad_accum=*/2);
  train_step(m, ld, grads, opt, 1e-2, 1.0, dims());  // warm-up: lazy initialisation is not the step
  std::map<std::string, int> seen;
  {
    OpNames ops;
    OpNames::take();
    const StepResult r = train_step(m, ld, grads, opt, 1e-2, /*clip=*/1e-3, dims());
    ASSERT_FALSE(r.skipped);
    ASSERT_LT(r.clip_factor, 1.0);  // the clipping path ran too
    seen = OpNames::take();
  }
  ASSERT_GT(seen["aten::matmul"], 0) << "the observer saw no operators";
  const std::set<std::string> waits{"aten::is_nonzero", "aten::equal", "aten::allclose", "aten::nonzero",
                                    "aten::masked_select", "aten::unique", "aten::_unique", "aten::_unique2",
                                    "aten::unique_consecutive", "aten::unique_dim", "aten::nonzero_numpy",
                                    "aten::argwhere"};  // item() is counted as _local_scalar_dense
  for (const auto& [name, n] : seen) EXPECT_EQ(waits.count(name), 0u) << name << " called " << n << " times";
  // The CPU id checks, once per micro-batch each: the loss's targets, and at tp > 1 the vocab-parallel embedding's
  // inputs (tp 1's embedding checks its ids itself).
  EXPECT_EQ(seen["aten::_local_scalar_dense"], dims().tp > 1 ? 4 : 2) << "expected only the CPU id checks";
}

// Every rank reads its node's copy of model.hf_dir: copies of the same weights agree; a copy with other weights on
// the last rank is refused on every rank, naming that rank and a value that differs, before any model is built.
TEST(TrainStep, RanksWhoseBaseCopiesDifferAreRefused) {
  const int rank = dims().rank, world = dims().world;
  const std::string same = setup() + "/hf-copy" + std::to_string(rank), odd = setup() + "/hf-odd" + std::to_string(rank);
  std::filesystem::remove_all(same);
  std::filesystem::remove_all(odd);
  test::write_base_variant(setup() + "/hf", same, "F32", 0);
  EXPECT_EQ(agreed_base_sample(same), model::sample_base(setup() + "/hf").to_json());
  EXPECT_EQ(agreed_base_sample(""), "");
  if (world < 2) GTEST_SKIP() << "needs 2 ranks";
  test::write_base_variant(setup() + "/hf", odd, "F32", rank == world - 1 ? 0.01 : 0);
  try {
    agreed_base_sample(odd);
    ADD_FAILURE() << "no error on rank " << rank;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("rank " + std::to_string(world - 1) + " was given another copy of the base weights "
                        "(model.hf_dir " + odd + ") than rank 0: "), std::string::npos) << what;
    EXPECT_NE(what.find("sampled weight values differ, first "), std::string::npos) << what;
    EXPECT_NE(what.find("in rank 0's copy"), std::string::npos) << what;
  }
}

TEST(TrainStep, FullParamReplicatedGradsAgreeAcrossTp) {
  TrainModel m = build(false);
  Loader ld = loader();
  Batch b = ld.next();
  batch_loss_sum(m, b, dims()).backward();
  int replicated = 0;
  for (const auto& p : m.trainable) {
    ASSERT_TRUE(p.param.grad().defined()) << p.name;
    if (p.shard_dim >= 0) continue;
    ++replicated;
    at::Tensor g = p.param.grad().contiguous();
    at::Tensor all = dims().tp_comm->all_gather(g.unsqueeze(0), 0);  // (tp, ...)
    for (int r = 1; r < dims().tp; ++r) EXPECT_TRUE(all[r].equal(all[0])) << p.name << " tp rank " << r;
  }
  EXPECT_GT(replicated, 0);  // the norms
}

TEST(TrainStep, NonFiniteStepIsSkipped) {
  TrainModel m = build(true);
  AdamW opt = make_optimizer(m, TrainConfig{});
  TrainGrads grads(m.trainable, dims());
  {
    at::NoGradGuard g;
    m.trainable[0].param.fill_(std::nan(""));  // lora_A of the first layer: every rank
  }
  std::vector<at::Tensor> before;
  for (const auto& p : m.trainable) before.push_back(p.param.detach().clone());
  Loader ld = loader();
  StepResult r = train_step(m, ld, grads, opt, 1e-2, 1.0, dims());
  EXPECT_TRUE(r.skipped);
  EXPECT_FALSE(r.stats.finite);
  for (size_t i = 1; i < m.trainable.size(); ++i) EXPECT_TRUE(m.trainable[i].param.equal(before[i]));
  for (const auto& [name, t] : opt.state())
    if (name.size() > 5 && name.substr(name.size() - 5) == ".step") EXPECT_EQ(t.item<int64_t>(), 0) << name;
  for (const auto& p : m.trainable) EXPECT_EQ(p.param.grad().abs().sum().item<float>(), 0.f);  // zeroed for the next step
}

// Stands in for a CUDA generator, whose state (seed + offset) is 16 bytes where the CPU one's is 5056: a CPU test
// cannot make a real one. set_offset/get_offset are pure in torch 2.x and absent in 1.13 (so no `override`).
struct SixteenByteGen : c10::GeneratorImpl {
  uint64_t s = 0;
  SixteenByteGen() : c10::GeneratorImpl(c10::Device(c10::kCPU), c10::DispatchKeySet(c10::DispatchKey::CPU)) {}
  void set_current_seed(uint64_t v) { s = v; }
  uint64_t current_seed() const { return s; }
  uint64_t seed() { return s; }
  void set_offset(uint64_t) {}
  uint64_t get_offset() const { return 0; }
  void set_state(const c10::TensorImpl&) {}
  c10::intrusive_ptr<c10::TensorImpl> get_state() const {
    return at::zeros({16}, at::kByte).getIntrusivePtr();
  }
  SixteenByteGen* clone_impl() const {
    auto* g = new SixteenByteGen();
    g->s = s;
    return g;
  }
};

// An empty run folder `name` in the setup folder.
std::string fresh_run(const std::string& name) {
  const std::string run = setup() + "/" + name;
  std::filesystem::remove_all(run);
  return run;
}

// The folder of a checkpoint of `m` at `step`, written by this one process, as a resume finds it.
CheckpointInfo saved_checkpoint(const std::string& run, int64_t step, const TrainModel& m, const AdamW& opt,
                                const TrainState& st) {
  save_checkpoint(run, step, 0, CheckpointLayout{1, 1, 1}, "h",
                  [&](const std::string& dir) { write_rank_checkpoint(dir, m, opt, st, dims(), "h"); },
                  [](bool ok) { return ok; }, 5);
  CheckpointInfo ck;
  ck.step = step;
  ck.path = step_folder(run, step);
  ck.manifest = read_manifest(ck.path);
  return ck;
}

TEST(TrainStep, CheckpointFromAnotherDeviceTypeReseedsDropout) {
  if (dims().world != 1) GTEST_SKIP() << "one process writes and reads the folder";
  const std::string run = fresh_run("rng-run");
  TrainModel a = build(true);
  AdamW opt = make_optimizer(a, TrainConfig{});
  TrainState st;
  a.lora.dropout_gen->set_current_seed(11);
  const at::Tensor cpu_state = a.lora.dropout_gen->get_state();
  st.step = 3;
  // Step 3 on the same device type: the stream itself carries over. Step 4 "written on a GPU".
  std::vector<CheckpointInfo> saved = {saved_checkpoint(run, 3, a, opt, st)};
  a.lora.dropout_gen = std::make_shared<at::Generator>(at::make_generator<SixteenByteGen>());
  st.step = 4;
  saved.push_back(saved_checkpoint(run, 4, a, opt, st));

  TrainModel b = build(true);
  AdamW opt_b = make_optimizer(b, TrainConfig{});
  const uint64_t seed = 42;
  for (const CheckpointInfo& ck : saved) {
    const int64_t step = ck.step;
    b.lora.dropout_gen->set_current_seed(99);
    const TrainState got = load_rank_checkpoint(ck, b, opt_b, dims(), seed);
    EXPECT_EQ(got.step, step);
    if (step == 3) {
      EXPECT_TRUE(b.lora.dropout_gen->get_state().equal(cpu_state));
    } else {
      EXPECT_EQ(b.lora.dropout_gen->current_seed(),
                model::stable_hash("lora-dropout-resume/" + std::to_string(seed) + "/0/4"));
    }
  }
}

// What a same-layout resume restores, against the trained model it was saved from: every LoRA tensor, both AdamW
// moments and the per-tensor step under their own names, the TrainState with the loader position, and the torch CPU
// generator (the numbers drawn after the save are drawn again after the load).
TEST(TrainStep, CheckpointRestoresTensorsMomentsStepsStateAndRng) {
  if (dims().world != 1) GTEST_SKIP() << "one process writes and reads the folder";
  const std::string run = fresh_run("restore-run");
  TrainModel a = build(true);
  AdamW opt = make_optimizer(a, TrainConfig{});
  TrainGrads grads(a.trainable, dims());
  Loader ld = loader();
  for (int i = 0; i < 2; ++i) ASSERT_FALSE(train_step(a, ld, grads, opt, 1e-2, 1.0, dims()).skipped);
  TrainState st;
  st.step = 2;
  st.tokens_seen = 777;
  st.loss_tokens_seen = 555;
  st.bad_steps = 1;
  st.last_val_loss = 1.5;
  st.loader = ld.state();
  const CheckpointInfo ck = saved_checkpoint(run, 2, a, opt, st);
  const at::Tensor drawn_after_save = at::rand({16});

  TrainModel b = build(true);
  AdamW opt_b = make_optimizer(b, TrainConfig{});
  const TrainState got = load_rank_checkpoint(ck, b, opt_b, dims(), 42);
  EXPECT_TRUE(at::rand({16}).equal(drawn_after_save)) << "the torch CPU generator was not restored";
  EXPECT_EQ(got, st);
  EXPECT_EQ(got.loader.cursor, 2);  // two global batches of one micro-batch each consumed
  ASSERT_EQ(b.trainable.size(), a.trainable.size());
  const TrainModel fresh = build(true);
  int trained = 0;
  for (size_t i = 0; i < a.trainable.size(); ++i) {
    EXPECT_TRUE(b.trainable[i].param.equal(a.trainable[i].param)) << a.trainable[i].name;
    trained += !b.trainable[i].param.equal(fresh.trainable[i].param);
  }
  EXPECT_GT(trained, 0);  // the tensors compared are not the fresh model's
  std::map<std::string, at::Tensor> want;
  for (const auto& [name, t] : opt.state()) want[name] = t;
  const auto have = opt_b.state();
  ASSERT_EQ(have.size(), want.size());
  for (const auto& [name, t] : have) {
    ASSERT_TRUE(want.count(name)) << name;
    EXPECT_TRUE(t.equal(want[name])) << name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".step") == 0) EXPECT_EQ(t.item<int64_t>(), 2) << name;
  }
}

// A checkpoint whose trainable tensors are not this run's is refused naming what to change (the load's own checks,
// all that guards checkpoints of builds that kept no config.yaml): fewer lora.targets, another lora.r, full mode.
TEST(TrainStep, CheckpointOfOtherTrainablesIsRefused) {
  if (dims().world != 1) GTEST_SKIP() << "one process writes and reads the folder";
  const std::string run = fresh_run("refuse-run");
  TrainModel a = build(true);
  const CheckpointInfo ck = saved_checkpoint(run, 1, a, make_optimizer(a, TrainConfig{}), TrainState{});
  auto refusal = [&](TrainModel m) {
    AdamW o = make_optimizer(m, TrainConfig{});
    try {
      load_rank_checkpoint(ck, m, o, dims(), 42);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  Config fewer = micro_config(true);
  fewer.lora.targets = {"q_proj", "v_proj"};
  const TrainModel qv = build_train_model(fewer, dims(), 97, at::kCPU);
  const std::string why = refusal(build_train_model(fewer, dims(), 97, at::kCPU));
  EXPECT_NE(why.find(fmt::format("holds {} trainable tensors, this run has {}", a.trainable.size(),
                                 qv.trainable.size())), std::string::npos) << why;
  Config r2 = micro_config(true);
  r2.lora.r = 2;
  const std::string shape = refusal(build_train_model(r2, dims(), 97, at::kCPU));
  EXPECT_NE(shape.find("in the checkpoint, [2, "), std::string::npos) << shape;
  EXPECT_NE(shape.find("(lora.r or the model changed?)"), std::string::npos) << shape;
  const std::string full = refusal(build(false));
  EXPECT_NE(full.find("was written in lora mode but this run has lora.enabled=false"), std::string::npos) << full;
}

// A resume on another dp gives every replica a dropout stream of its own, re-seeded from (seed, dp_rank, step): the
// saved stream (one replica's) is not reused, nor the fresh model's. The load itself needs no collective, so one
// process plays dp rank 1 of 2.
TEST(TrainStep, CheckpointResumedOnAnotherDpReseedsDropoutPerReplica) {
  if (dims().world != 1) GTEST_SKIP() << "one process writes and reads the folder";
  const std::string run = fresh_run("dp-run");
  TrainModel a = build(true);
  a.lora.dropout_gen->set_current_seed(11);
  TrainState st;
  st.step = 6;
  const CheckpointInfo ck = saved_checkpoint(run, 6, a, make_optimizer(a, TrainConfig{}), st);

  dist::ParallelDims dp2 = dims();
  dp2.world = dp2.dp = 2;
  dp2.rank = dp2.dp_rank = 1;
  TrainModel b = build(true);
  b.lora.dropout_gen->set_current_seed(99);
  AdamW opt_b = make_optimizer(b, TrainConfig{});
  EXPECT_EQ(load_rank_checkpoint(ck, b, opt_b, dp2, 42).step, 6);
  EXPECT_EQ(b.lora.dropout_gen->current_seed(), model::stable_hash("lora-dropout-resume/42/1/6"));
}

}  // namespace
