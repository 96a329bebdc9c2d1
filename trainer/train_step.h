// One optimizer step and one validation pass: the only places where batches meet the model.
//   train_step: grad_accum micro-steps of forward → vocab-parallel CE (Σ token losses) → backward, then TrainGrads
//   (dp all-reduce, / global loss tokens, global norm); a non-finite step is skipped (grads dropped, no update),
//   otherwise clip and AdamW at the schedule's lr.
#pragma once
#include <cstdint>
#include <vector>

#include "data/loader.h"
#include "trainer/adamw.h"
#include "trainer/train_grads.h"
#include "trainer/train_model.h"

namespace cg {

struct StepResult {
  GradStats stats;          // loss, loss tokens, grad norm (before clipping), finite
  int64_t real_tokens = 0;  // non-pad tokens of this step, all ranks
  double clip_factor = 1;   // applied to the grads (1: not clipped)
  bool skipped = false;     // non-finite: no update
  int64_t epoch = 0;        // epoch of the last batch consumed
};

// Runs one optimizer step at learning rate `lr` over the loader's next global batch (its grad_accum micro-steps).
// Collective over the whole grid.
StepResult train_step(TrainModel& m, Loader& loader, TrainGrads& grads, AdamW& opt, double lr, double clip_grad_norm,
                      const dist::ParallelDims& dims);

// Mean token loss over a validation set, in all and per task: a run's samples mix the generation and infill tasks
// in the proportion data.infill_fraction draws, so runs that differ in it compare by task. NaN where no token
// carries loss (written as null).
struct ValLoss {
  double all = 0, generation = 0, infill = 0;
  int64_t tokens = 0, generation_tokens = 0, infill_tokens = 0;  // loss-carrying tokens, all ranks
};

// The ValLoss of `batches` (this rank's share of the validation set) over all dp ranks, in eval mode (no dropout)
// without gradients; restores training mode. Collective over the grid.
ValLoss validation_loss(TrainModel& m, const std::vector<Batch>& batches, const dist::ParallelDims& dims);

// Per-position token losses (B*T, fp32; 0 where the target is ignored) of one batch; the forward only.
at::Tensor batch_token_losses(TrainModel& m, const Batch& b, const dist::ParallelDims& dims);
// Σ token losses of one batch (a 0-dim fp32 tensor).
at::Tensor batch_loss_sum(TrainModel& m, const Batch& b, const dist::ParallelDims& dims);

}  // namespace cg
