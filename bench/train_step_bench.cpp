// bench_train_step: cgtrain's own training step (trainer/train_step.h: forward → vocab-parallel CE → backward →
// dp all-reduce → clip → AdamW) on random full-length sequences, timed: tokens/s, achieved FLOP/s and MFU.
//
//   [mpirun -np N] bench_train_step [CONFIG.yaml] [dotted.key=value ...] [--steps N] [--warmup N]
//                                   [--peak-tflops X] [--breakdown] [--profile N] [--kernels N [--trace FILE]]
//                                   [--shards DIR]
//
// The model is built exactly as cgtrain builds it (build_train_model: random base weights from model.init_seed,
// LoRA from lora.*, dtype from model.dtype), the optimizer by make_optimizer, the batches by the real Loader over an
// in-memory SampleSet of random sequences of seq_len + 1 tokens (every position carries loss, no padding), so
// tokens/step = micro_batch x seq_len x grad_accum x dp. --shards DIR streams real cgprep train shards instead.
// FLOPs/token come from model/accounting.h (make_plan: 4 N matmul with a frozen base, 6 N in full training, + 12 L T d
// attention + 6 N_lora). MFU = achieved / (ranks x peak); peak per device = --peak-tflops, else a measured dense
// matmul (fp32 on CPU, model dtype on CUDA) at this process's thread count, so a CPU MFU reads "share of this
// machine's GEMM speed".
// --profile N runs N more steps under bench/op_profile.h and prints the operators taking the most time (CPU).
// --kernels N runs N more steps under torch's Kineto profiler (common/kernel_profile.h: libtorch 2.x) and prints the
// GPU kernels by time per step, split into matmul / attention / other; --trace FILE also writes the chrome trace.
// --breakdown repeats the step in its phases (forward+loss, backward, grad reduce+clip, AdamW) with a timer around
// each. Rank 0 prints one line per step and a final `RESULT {json}` line (the best step; bench/compare_cpu.sh
// reads it).
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/ranges.h>

#include "bench/op_profile.h"
#include "common/error.h"
#include "common/kernel_profile.h"
#include "common/log.h"
#include "data/loader.h"
#include "data/rng.h"
#include "dist/cpu_threads.h"
#include "dist/runtime.h"
#include "dist/vocab_parallel_ce.h"
#include "model/accounting.h"
#include "trainer/config.h"
#include "trainer/train_grads.h"
#include "trainer/train_loop.h"
#include "trainer/train_model.h"
#include "trainer/train_step.h"

namespace {

struct BenchArgs {
  int steps = 5, warmup = 2;
  double peak_tflops = 0;  // 0: measure
  bool breakdown = false;
  int profile = 0;  // extra steps timed by operator
  int kernels = 0;  // extra steps under the Kineto profiler (GPU kernel times)
  std::string trace;  // with kernels: the chrome trace's path
  std::string shards;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// This process's CPU time (user, system) in seconds and its minor page faults so far. On a shared machine the wall
// time of a step says more about the neighbours than about the step; the CPU time does not (threads idle in a
// barrier do not count), and system time with page faults shows what the allocator costs.
struct CpuUse {
  double user = 0, sys = 0;
  long minflt = 0;
};
CpuUse cpu_use() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return {u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec, u.ru_stime.tv_sec + 1e-6 * u.ru_stime.tv_usec, u.ru_minflt};
}

void sync(const at::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Dense matmul FLOP/s of this device at the current thread count: the best of a few (n, n) x (n, n) products.
double measure_matmul_flops(const at::Device& dev, at::ScalarType dtype) {
  const int64_t n = dev.is_cuda() ? 8192 : 1024;
  const auto opt = at::TensorOptions().dtype(dev.is_cuda() ? dtype : at::kFloat).device(dev);
  at::Tensor a = at::randn({n, n}, opt), b = at::randn({n, n}, opt);
  at::Tensor c = at::matmul(a, b);
  double best = 1e30;
  for (int i = 0; i < (dev.is_cuda() ? 20 : 5); ++i) {
    sync(dev);
    const double t0 = now_s();
    c = at::matmul(a, b);
    sync(dev);
    best = std::min(best, now_s() - t0);
  }
  return 2.0 * double(n) * double(n) * double(n) / best;
}

// Random sequences of seq_len + 1 tokens in [3, vocab): full rows, every target carries loss.
cg::SampleSet random_samples(int64_t n, int64_t seq_len, int64_t vocab, uint64_t seed) {
  cg::SampleSet s;
  cg::Rng rng(seed);
  std::vector<int32_t> toks(size_t(seq_len + 1));
  for (int64_t i = 0; i < n; ++i) {
    for (auto& t : toks) t = int32_t(3 + rng.below(uint64_t(vocab - 3)));
    s.add(toks, 1, 0, int32_t(i), 0);
  }
  return s;
}

// Splits our own --flags off argv (parse_cli gets the rest).
BenchArgs take_bench_args(int argc, char** argv, std::vector<char*>* rest) {
  BenchArgs a;
  for (int i = 0; i < argc; ++i) {
    const std::string w = argv[i];
    auto value = [&]() -> std::string {
      CG_CHECK(i + 1 < argc, "{} needs a value", w);
      return argv[++i];
    };
    if (w == "--steps") {
      a.steps = std::stoi(value());
    } else if (w == "--warmup") {
      a.warmup = std::stoi(value());
    } else if (w == "--peak-tflops") {
      a.peak_tflops = std::stod(value());
    } else if (w == "--breakdown") {
      a.breakdown = true;
    } else if (w == "--profile" && i + 1 < argc) {
      a.profile = std::atoi(argv[++i]);
    } else if (w == "--kernels") {
      a.kernels = std::stoi(value());
    } else if (w == "--trace") {
      a.trace = value();
    } else if (w == "--shards") {
      a.shards = value();
    } else {
      rest->push_back(argv[i]);
    }
  }
  CG_CHECK(a.steps >= 1 && a.warmup >= 0, "--steps must be >= 1 and --warmup >= 0");
  return a;
}

int bench_main(int argc, char** argv) {
  std::vector<char*> rest;
  const BenchArgs ba = take_bench_args(argc, argv, &rest);
  auto parsed = cg::parse_cli(int(rest.size()), rest.data(), "bench_train_step",
                              "Time cgtrain's train step on random full-length sequences (tokens/s, MFU). Own flags: "
                              "--steps N (5) --warmup N (2) --peak-tflops X (measured) --breakdown --profile N "
                              "--kernels N --trace FILE --shards DIR");
  if (!parsed) return 0;
  const cg::Config cfg = *parsed;
  const cg::dist::Runtime& rt = cg::dist::runtime();
  const at::Device device = cg::resolve_device(cfg.model.device, rt);
  const auto backend = cg::dist::backend_from_name(cfg.parallel.backend, device.is_cuda());
  const int threads = cg::dist::cpu_threads(cfg.train.threads, rt.local_size);
  cg::dist::set_cpu_threads(threads);  // before the groups: MpiComm's wait follows the node's threads
  const cg::dist::ParallelDims dims =
      cg::dist::make_parallel_dims(int(cfg.parallel.tp), int(cfg.parallel.dp), backend,
                                   cg::dist::collective_wait_from_name(cfg.parallel.mpi_wait));
  cg::init_logging(dims.rank, dims.world, "warn", false);
  const bool lead = dims.rank == 0;

  // Data: the real Loader, over random sequences (or real shards).
  cg::LoaderOptions lo = cg::train_loader_options(cfg, dims.dp_rank, dims.dp);
  lo.loss_on_completion = false;  // every token carries loss: random sequences have no prompt; shards are timed alike
  const cg::model::LlamaConfig lc0 = cg::train_llama_config(cfg, 0);
  const int64_t n_samples = cfg.train.micro_batch * dims.dp * cfg.train.grad_accum * 4;
  cg::Loader loader = ba.shards.empty()
                          ? cg::Loader(random_samples(n_samples, cfg.train.seq_len, lc0.vocab_size, 7), lo)
                          : cg::Loader::from_shards(ba.shards, "train", lo);
  const int64_t vocab = ba.shards.empty() ? 0 : loader.meta().vocab_size;

  const double t_build = now_s();
  cg::TrainModel m = cg::build_train_model(cfg, dims, vocab, device);
  cg::AdamW opt = cg::make_optimizer(m, cfg.train);
  cg::TrainGrads grads(m.trainable, dims);
  sync(device);
  const double build_s = now_s() - t_build;
  const cg::model::LlamaConfig& lc = m.llama->config();

  cg::model::PlanInputs pin;
  pin.model = lc;
  pin.tp = dims.tp;
  pin.dp = dims.dp;
  pin.micro_batch = cfg.train.micro_batch;
  pin.seq_len = cfg.train.seq_len;
  pin.grad_accum = cfg.train.grad_accum;
  pin.weight_bytes = int64_t(c10::elementSize(m.llama->dtype()));
  pin.activation_checkpointing = cfg.model.activation_checkpointing;
  pin.lora = !m.full_param;
  pin.lora_r = cfg.lora.r;
  pin.lora_targets = cfg.lora.targets;
  const cg::model::Plan plan = cg::model::make_plan(pin);
  const double peak_measured = measure_matmul_flops(device, m.llama->dtype());
  const double peak = ba.peak_tflops > 0 ? ba.peak_tflops * 1e12 : peak_measured;

  int64_t n_trainable = 0;
  for (const auto& p : m.trainable) n_trainable += p.param.numel();
  if (lead)
    std::printf("bench_train_step: %s on %s, %d threads/rank; %lld layers d %lld vocab %lld, %s, %s; micro_batch %lld "
                "x seq_len %lld x grad_accum %lld; %lld trainable on rank 0; built in %.1f s\n",
                dims.describe().c_str(), device.str().c_str(), threads, (long long)lc.num_hidden_layers,
                (long long)lc.hidden_size, (long long)lc.vocab_size, c10::toString(m.llama->dtype()),
                m.full_param ? "full-parameter"
                             : fmt::format("LoRA r {} on {}", cfg.lora.r, fmt::join(cfg.lora.targets, ",")).c_str(),
                (long long)cfg.train.micro_batch, (long long)cfg.train.seq_len, (long long)cfg.train.grad_accum,
                (long long)n_trainable, build_s);

  const double lr = cfg.train.lr;
  std::vector<double> times, cpu_times;
  double tokens_per_step = 0;
  for (int i = 0; i < ba.warmup + ba.steps; ++i) {
    sync(device);
    const double t0 = now_s();
    const CpuUse c0 = cpu_use();
    const cg::StepResult r = cg::train_step(m, loader, grads, opt, lr, cfg.train.clip_grad_norm, dims);
    sync(device);
    const double dt = now_s() - t0;
    const CpuUse c1 = cpu_use();
    if (i < ba.warmup) continue;
    times.push_back(dt);
    cpu_times.push_back(c1.user - c0.user + c1.sys - c0.sys);
    tokens_per_step = r.stats.real_tokens;
    if (lead)
      std::printf("step %d: %.1f ms, %.0f tokens/s, loss %.4f%s; CPU %.1f ms (user %.1f, sys %.1f), %ld page faults\n",
                  i - ba.warmup, dt * 1e3, tokens_per_step / dt, r.stats.loss,
                  r.skipped ? " (skipped: non-finite)" : "",
                  1e3 * cpu_times.back(), 1e3 * (c1.user - c0.user), 1e3 * (c1.sys - c0.sys), c1.minflt - c0.minflt);
  }

  if (ba.profile > 0) {
    cg::bench::OpProfile prof;
    for (int i = 0; i < ba.profile; ++i)
      cg::train_step(m, loader, grads, opt, lr, cfg.train.clip_grad_norm, dims);
    sync(device);
    if (lead) cg::bench::OpProfile::print(25, ba.profile);
  }
  if (ba.kernels > 0) {  // GPU kernel times (Kineto), per step
    sync(device);
    cg::KernelProfile prof;
    for (int i = 0; i < ba.kernels; ++i)
      cg::train_step(m, loader, grads, opt, lr, cfg.train.clip_grad_norm, dims);
    sync(device);
    if (lead) prof.report(ba.kernels, 40, ba.trace);
  }

  // Phase timings: the same work as train_step, a timer around each phase (grad_accum micro-steps summed).
  double t_fwd = 0, t_bwd = 0, t_red = 0, t_opt = 0;
  if (ba.breakdown) {
    for (int i = 0; i < ba.steps; ++i) {
      at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(m.device));
      int64_t loss_tokens = 0, real_tokens = 0;
      for (int64_t k = 0; k < cfg.train.grad_accum; ++k) {
        cg::Batch b = loader.next();
        sync(device);
        double t0 = now_s();
        at::Tensor l = cg::batch_loss_sum(m, b, dims);
        sync(device);
        t_fwd += now_s() - t0;
        t0 = now_s();
        l.backward();
        sync(device);
        t_bwd += now_s() - t0;
        loss_sum += l.detach();
        loss_tokens += b.loss_tokens;
        real_tokens += b.real_tokens;
      }
      double t0 = now_s();
      const cg::GradStats st = grads.reduce(loss_sum, loss_tokens, real_tokens);
      grads.clip(cfg.train.clip_grad_norm, st.grad_norm);
      sync(device);
      t_red += now_s() - t0;
      t0 = now_s();
      opt.step(lr);
      grads.zero_grad();
      sync(device);
      t_opt += now_s() - t0;
    }
    const double n = ba.steps;
    if (lead)
      std::printf("breakdown per step: forward+loss %.1f ms, backward %.1f ms, grad reduce+clip %.1f ms, "
                  "AdamW %.1f ms\n",
                  1e3 * t_fwd / n, 1e3 * t_bwd / n, 1e3 * t_red / n, 1e3 * t_opt / n);
  }

  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double best = sorted.front(), median = sorted[sorted.size() / 2];
  const double best_cpu = *std::min_element(cpu_times.begin(), cpu_times.end());
  const double tps = tokens_per_step / best;
  const double achieved = tps * plan.flops_per_token;      // all ranks
  const double peak_all = peak * dims.world;              // MFU per device = achieved / (world x peak)
  if (lead) {
    std::printf("best step %.1f ms (median %.1f): %.0f tokens/s; %.3g FLOP/token -> %.1f GFLOP/s; MFU %.1f%% of %.1f "
                "GFLOP/s per rank (%s); measured matmul peak %.1f GFLOP/s\n",
                best * 1e3, median * 1e3, tps, plan.flops_per_token, achieved / 1e9, 100 * achieved / peak_all,
                peak / 1e9, ba.peak_tflops > 0 ? "given" : "measured", peak_measured / 1e9);
    std::printf("least CPU time of a step: %.1f ms (this process, all threads: %.0f tokens per CPU-second)\n",
                best_cpu * 1e3, tokens_per_step / best_cpu);
    nlohmann::ordered_json j;
    j["side"] = "cgtrain";
    j["device"] = device.str();
    j["grid"] = dims.describe();
    j["threads"] = threads;
    j["layers"] = lc.num_hidden_layers;
    j["hidden"] = lc.hidden_size;
    j["vocab"] = lc.vocab_size;
    j["dtype"] = c10::toString(m.llama->dtype());
    j["micro_batch"] = cfg.train.micro_batch;
    j["seq_len"] = cfg.train.seq_len;
    j["grad_accum"] = cfg.train.grad_accum;
    j["lora"] = !m.full_param;
    j["lora_r"] = cfg.lora.r;
    j["targets"] = cfg.lora.targets;
    j["trainable_params_rank0"] = n_trainable;
    j["tokens_per_step"] = tokens_per_step;
    j["best_step_s"] = best;
    j["median_step_s"] = median;
    j["best_step_cpu_s"] = best_cpu;  // user + system CPU time of this process, all its threads
    j["tokens_per_s"] = tps;
    j["flops_per_token"] = plan.flops_per_token;
    j["achieved_tflops"] = achieved / 1e12;
    j["peak_tflops"] = peak / 1e12;
    j["peak_source"] = ba.peak_tflops > 0 ? "given" : "measured matmul";
    j["mfu"] = achieved / peak_all;
    if (ba.breakdown)
      j["breakdown_ms"] = {{"forward", 1e3 * t_fwd / ba.steps}, {"backward", 1e3 * t_bwd / ba.steps},
                           {"reduce_clip", 1e3 * t_red / ba.steps}, {"adamw", 1e3 * t_opt / ba.steps}};
    std::printf("RESULT %s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cg::dist::run_main(argc, argv, bench_main); }
