// TrainState: every resumable number of a training run in one serialisable struct (the tensors — LoRA params, AdamW
// moments, RNG states — travel next to it in the checkpoint, see trainer/checkpoint.h).
#pragma once
#include <cstdint>
#include <string>

#include "data/loader.h"

namespace cg {

struct TrainState {
  int64_t step = 0;              // optimizer steps done (skipped non-finite steps count: the schedule moves on)
  int64_t tokens_seen = 0;       // real (non-pad) tokens trained on, all ranks
  int64_t loss_tokens_seen = 0;  // tokens that carried loss, all ranks
  int64_t bad_steps = 0;         // non-finite steps skipped, in total
  int64_t bad_in_row = 0;        // consecutive non-finite steps (abort at train.max_bad_steps)
  double last_val_loss = -1;     // < 0: not measured yet
  LoaderState loader;            // train loader position

  std::string to_json() const;
  static TrainState from_json(const std::string& json);  // throws cg::Error naming a missing key
  bool operator==(const TrainState& o) const;
};

}  // namespace cg
