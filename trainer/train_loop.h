// The training run: set up (grid, threads, run_dir, tokenizer/shard checks, model, optimizer, resume), then the thin
// loop  train_step → log → maybe_validate → maybe_save / preempt, until train.steps.
#pragma once
#include <cstdint>
#include <string>

#include "data/loader.h"
#include "trainer/config.h"

namespace cg {

// Runs (or resumes) the training configured by `cfg` on the MPI world (init_runtime must have run). Returns 0 when
// train.steps are done, kExitPreempted after a clean preemption checkpoint; throws cg::Error on bad input
// (tokenizer/vocab that does not match the shards, tp × dp != world, train.max_bad_steps non-finite steps in a row).
int train(const Config& cfg);

// This many finite steps in a row with a gradient norm of exactly 0 stop a run (exit 1, not saved): a too large lr
// can saturate every output, and the loss then sits still at a value no NaN check sees.
inline constexpr int64_t kZeroGradientSteps = 10;

// The loader settings of a run (train.micro_batch, seq_len, grad_accum, seed; data.loss_on) for data-parallel
// rank dp_rank of dp_size.
LoaderOptions train_loader_options(const Config& cfg, int64_t dp_rank, int64_t dp_size);

// The sentencepiece model a run uses: data.tokenizer, or <data.shards_dir>/tokenizer.model when it is "train".
std::string tokenizer_path(const DataConfig& d);

}  // namespace cg
