// Learning-rate schedule (see schedule.h for the formulas).
#include "trainer/schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "trainer/config.h"

namespace cg {

LrSchedule LrSchedule::from(const TrainConfig& t) {
  return {t.lr, t.schedule, t.warmup_steps, t.steps, t.min_lr_ratio};
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  double p = static_cast<double>(step - warmup_steps) / static_cast<double>(std::max<int64_t>(1, steps - warmup_steps));
  p = std::clamp(p, 0.0, 1.0);
  const double m = min_lr_ratio;
  if (kind == "cosine") return lr * (m + (1 - m) * 0.5 * (1 + std::cos(M_PI * p)));
  if (kind == "linear") return lr * (m + (1 - m) * (1 - p));
  if (kind == "constant") return lr;
  CG_FAIL("train.schedule '{}' is not one of cosine | linear | constant", kind);
}

}  // namespace cg
