// LR schedule against hand-computed values (HF get_cosine/linear_schedule_with_warmup semantics).
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/config.h"
#include "trainer/schedule.h"

TEST(Schedule, CosineWithWarmup) {
  cg::LrSchedule s{1.0, "cosine", 10, 110, 0.0};
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(35), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);  // 0.853553...
  EXPECT_NEAR(s.at(60), 0.5, 1e-15);
  EXPECT_NEAR(s.at(110), 0.0, 1e-15);
  EXPECT_NEAR(s.at(500), 0.0, 1e-15);  // past the end: stays at the floor
}

TEST(Schedule, CosineFloorAndLinearAndConstant) {
  cg::LrSchedule cos{2e-4, "cosine", 0, 100, 0.1};
  EXPECT_DOUBLE_EQ(cos.at(0), 2e-4);
  EXPECT_NEAR(cos.at(50), 2e-4 * (0.1 + 0.9 * 0.5), 1e-18);  // 1.1e-4
  EXPECT_NEAR(cos.at(100), 2e-5, 1e-18);
  cg::LrSchedule lin{1.0, "linear", 4, 12, 0.0};
  EXPECT_DOUBLE_EQ(lin.at(2), 0.5);
  EXPECT_DOUBLE_EQ(lin.at(4), 1.0);
  EXPECT_DOUBLE_EQ(lin.at(6), 0.75);
  EXPECT_DOUBLE_EQ(lin.at(12), 0.0);
  cg::LrSchedule lin_floor{1.0, "linear", 0, 10, 0.5};
  EXPECT_DOUBLE_EQ(lin_floor.at(5), 0.75);
  cg::LrSchedule flat{3.0, "constant", 3, 10, 0.0};
  EXPECT_DOUBLE_EQ(flat.at(1), 1.0);
  EXPECT_DOUBLE_EQ(flat.at(3), 3.0);
  EXPECT_DOUBLE_EQ(flat.at(9), 3.0);
}

TEST(Schedule, FromConfigAndBadKind) {
  cg::TrainConfig t;
  t.lr = 0.5;
  t.warmup_steps = 2;
  t.steps = 4;
  t.schedule = "linear";
  cg::LrSchedule s = cg::LrSchedule::from(t);
  EXPECT_DOUBLE_EQ(s.at(1), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 0.25);
  s.kind = "foo";
  EXPECT_THROW(s.at(3), std::exception);
}
