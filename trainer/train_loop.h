// The training run: set up (grid, threads, run_dir, tokenizer/shard checks, model, optimizer, resume), then the thin
// loop  train_step → log → maybe_validate → maybe_save / preempt, until train.steps.
#pragma once
#include <cstdint>
#include <string>

#include "trainer/config.h"

namespace cg {

// Runs (or resumes) the training configured by `cfg` on the MPI world (init_runtime must have run). Returns 0 when
// train.steps are done, kExitPreempted after a clean preemption checkpoint; throws cg::Error on bad input
// (tokenizer/vocab that does not match the shards, tp × dp != world, train.max_bad_steps non-finite steps in a row).
int train(const Config& cfg);

// The sentencepiece model a run uses: data.tokenizer, or <data.shards_dir>/tokenizer.model when it is "train".
std::string tokenizer_path(const DataConfig& d);

}  // namespace cg
