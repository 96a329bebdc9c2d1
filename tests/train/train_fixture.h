// Shared by the training suites: a micro LLaMA written as an HF checkpoint, synthetic token shards with learnable
// structure (a noisy Markov chain), and running cgtrain / cgexport under mpirun and reading metrics.jsonl.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/llama_config.h"

namespace cg::test {

// hidden 64, 2 layers, 4 heads (4 kv), MLP 128, vocab 97 (padded at tp 2 and 4).
model::LlamaConfig micro_llama();

// Writes (once per `dir`): dir/hf (config.json + model.safetensors, random init seed 7), dir/shards/{train,val}-00000.h5
// (512 / 64 samples of 12..40 tokens) and dir/shards/tokenizer.model (placeholder bytes whose sha256 the shards
// carry). Returns dir.
std::string make_micro_setup(const std::string& dir);

// A copy of the HF folder `from` at `to` with every weight cast to `dtype` and `shift` added (a fine-tune of it;
// 0: the same base).
void write_base_variant(const std::string& from, const std::string& to, const std::string& dtype, double shift);

// Overrides for a short micro run in `run_dir` (tp 1, LoRA all-linear r 4, no dropout, 20 steps, b 4, seq 48).
std::vector<std::string> micro_args(const std::string& setup_dir, const std::string& run_dir);

struct RunResult {
  int rc = -1;
  std::string output;  // stdout + stderr
};
// mpirun -np np <cgtrain|cgexport> args... (OMP_NUM_THREADS=1), waiting for it.
RunResult run_mpi(int np, const std::string& exe, const std::vector<std::string>& args);
// Started in the background (its own process, `exec`ed mpirun: signal it by pid), output into log_path.
int spawn_mpi(int np, const std::string& exe, const std::vector<std::string>& args, const std::string& log_path);
// Waits for a spawned run; returns its exit code (-1 if killed by a signal).
int wait_exit_code(int pid);
std::string cgtrain_exe();
std::string cgexport_exe();

// step -> loss (the last record per step wins, as after a resume) and step -> val_loss.
std::map<int64_t, double> read_losses(const std::string& run_dir, const std::string& key = "loss");
// Every (step, value) record of `key` in file order (a resumed run repeats the steps after its checkpoint).
std::vector<std::pair<int64_t, double>> read_records(const std::string& run_dir, const std::string& key = "loss");

}  // namespace cg::test
