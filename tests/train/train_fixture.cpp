// Micro model, synthetic shards, and subprocess runs of cgtrain/cgexport for the training suites.
#include "tests/train/train_fixture.h"

#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/sha256.h"
#include "data/shard.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"

namespace cg::test {

namespace fs = std::filesystem;

model::LlamaConfig micro_llama() {
  model::LlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.num_hidden_layers = 2;
  c.vocab_size = 97;
  c.max_position_embeddings = 256;
  c.rms_norm_eps = 1e-5;
  return c;
}

namespace {

// Samples of a noisy Markov chain over ids 3..34 (the rest of the vocabulary never occurs): next = succ[prev] with p 0.85, else uniform. BOS 1 ... EOS 2.
SampleSet markov_samples(int64_t n, uint64_t seed, const std::vector<int32_t>& succ) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, 34), len(12, 40);
  std::uniform_real_distribution<double> u(0, 1);
  SampleSet s;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int32_t> t = {1};
    int32_t x = tok(rng);
    const int32_t L = len(rng);
    for (int32_t k = 0; k < L; ++k) {
      t.push_back(x);
      x = u(rng) < 0.85 ? succ[size_t(x)] : tok(rng);
    }
    t.push_back(2);
    s.add(t, 1, 0, int32_t(i), 0);
  }
  return s;
}

}  // namespace

std::string make_micro_setup(const std::string& dir) {
  // The marker names the fixture's version: a build folder's older setups (shards without property_counts) are made
  // again.
  if (fs::exists(dir + "/ready-2")) return dir;
  fs::create_directories(dir + "/shards");
  // The base model.
  const model::LlamaConfig lc = micro_llama();
  model::Llama base(lc);
  model::init_weights(*base, 7);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : base->param_specs()) tensors.emplace_back(p.name, p.param.detach());
  model::write_hf_checkpoint(dir + "/hf", tensors, lc);
  // The "tokenizer": cgtrain identifies it by the sha256 of its bytes only.
  const std::string tok = dir + "/shards/tokenizer.model";
  std::ofstream(tok) << "micro tokenizer placeholder, 97 pieces";
  std::vector<int32_t> succ(97);
  std::mt19937_64 rng(3);
  for (auto& v : succ) v = std::uniform_int_distribution<int32_t>(3, 34)(rng);
  for (const auto& [split, n, seed] : {std::tuple<const char*, int64_t, uint64_t>{"train", 512, 11},
                                       {"val", 64, 12}}) {
    ShardMeta m;
    m.split = split;
    m.tokenizer_sha256 = sha256_file(tok);
    m.vocab_size = lc.vocab_size;
    // As cgprep records it: what the checkpoints' training_data.json and an exported adapter carry on.
    m.property_counts = fmt::format(R"({{"crystals": {}, "formula": {}, "spacegroup": {}, "formation_energy": 0, )"
                                    R"("band_gap": 0, "e_above_hull": 0}})", n, n, n);
    SampleSet s = markov_samples(n, seed, succ);
    m.samples = int64_t(s.size());
    m.tokens = int64_t(s.tokens.size());
    write_shard(shard_path(dir + "/shards", split, 0), s, m);
  }
  std::ofstream(dir + "/ready-2") << "ok";
  return dir;
}

void write_base_variant(const std::string& from, const std::string& to, const std::string& dtype, double shift) {
  const model::HfCheckpoint ck(from);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const std::string& name : ck.keys())
    tensors.emplace_back(name, (ck.read(name).to(at::kFloat) + shift).to(model::safetensors_scalar_type(dtype)));
  model::write_hf_checkpoint(to, tensors, model::load_llama_config(from));
}

std::vector<std::string> micro_args(const std::string& setup_dir, const std::string& run_dir) {
  return {"model.hf_dir=" + setup_dir + "/hf",
          "model.device=cpu",
          "data.shards_dir=" + setup_dir + "/shards",
          "train.run_dir=" + run_dir,
          "train.steps=20",
          "train.micro_batch=4",
          "train.seq_len=48",
          "train.lr=1e-2",
          "train.warmup_steps=2",
          "train.val_every=10",
          "train.val_samples=16",
          "train.seed=5",
          "lora.targets=[all-linear]",
          "lora.r=4",
          "lora.alpha=8",
          "lora.dropout=0",
          "parallel.tp=1",
          "checkpoint.every=10",
          "checkpoint.keep_last=3",
          "log.every=10"};
}

std::string cgtrain_exe() { return CG_CGTRAIN_EXE; }
std::string cgexport_exe() { return CG_CGEXPORT_EXE; }

namespace {
// OMP_WAIT_POLICY=PASSIVE is what the tools set for themselves when it is unset (common/omp_env.h; tested by
// test_omp_env); given here, the runs do not depend on that.
std::string mpi_command(int np, const std::string& exe, const std::vector<std::string>& args) {
  std::string cmd = fmt::format("OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 "
                                "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 exec {} --allow-run-as-root --oversubscribe "
                                "--bind-to none -np {} {}", CG_MPIEXEC, np, exe);
  for (const auto& a : args) cmd += " '" + a + "'";
  return cmd;
}
}  // namespace

int spawn_mpi(int np, const std::string& exe, const std::vector<std::string>& args, const std::string& log_path) {
  const std::string cmd = mpi_command(np, exe, args) + " >'" + log_path + "' 2>&1";
  const pid_t pid = fork();
  CG_CHECK(pid >= 0, "fork failed");
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return int(pid);
}

int wait_exit_code(int pid) {
  int status = 0;
  waitpid(pid_t(pid), &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

RunResult run_mpi(int np, const std::string& exe, const std::vector<std::string>& args) {
  const std::string cmd = mpi_command(np, exe, args) + " 2>&1";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  CG_CHECK(p, "cannot run {}", cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::vector<std::pair<int64_t, double>> read_records(const std::string& run_dir, const std::string& key) {
  std::vector<std::pair<int64_t, double>> out;
  std::ifstream f(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains(key) && !j[key].is_null()) out.emplace_back(j["step"].get<int64_t>(), j[key].get<double>());
  }
  return out;
}

std::map<int64_t, double> read_losses(const std::string& run_dir, const std::string& key) {
  std::map<int64_t, double> out;
  for (const auto& [step, v] : read_records(run_dir, key)) out[step] = v;
  return out;
}

}  // namespace cg::test
