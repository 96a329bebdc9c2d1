// Learning-rate schedule: linear warmup from 0, then cosine | linear | constant decay to lr * min_lr_ratio.
// Step s is the 0-based index of the optimizer step about to run (Hugging Face semantics):
//   s < warmup:  lr * s / warmup                                 (so step 0 runs at lr 0 when warmup > 0)
//   else:        p = (s - warmup) / max(1, steps - warmup), clamped to [0, 1]
//                cosine:   lr * (m + (1 - m) * 0.5 * (1 + cos(pi * p)))
//                linear:   lr * (m + (1 - m) * (1 - p))
//                constant: lr
// With m = 0 this is get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup.
#pragma once
#include <cstdint>
#include <string>

namespace cg {

struct TrainConfig;

struct LrSchedule {
  double lr = 1e-4;
  std::string kind = "cosine";  // cosine | linear | constant
  int64_t warmup_steps = 0;
  int64_t steps = 1;            // total optimizer steps
  double min_lr_ratio = 0.0;

  static LrSchedule from(const TrainConfig& t);
  double at(int64_t step) const;  // throws on an unknown kind
};

}  // namespace cg
