// Preemption signals: first signal sets the flag, second exits with kExitPreempted.
#include <gtest/gtest.h>

#include <csignal>

#include "trainer/signals.h"

TEST(Signals, SigtermAndSigusr1SetTheFlag) {
  for (int sig : {SIGTERM, SIGUSR1}) {
    cg::install_preempt_handlers();
    EXPECT_FALSE(cg::preempt_requested());
    EXPECT_EQ(cg::preempt_signal(), 0);
    ASSERT_EQ(std::raise(sig), 0);
    EXPECT_TRUE(cg::preempt_requested());
    EXPECT_EQ(cg::preempt_signal(), sig);
    cg::uninstall_preempt_handlers();
  }
}

TEST(SignalsDeathTest, SecondSignalExitsAtOnceWithPreemptedCode) {
  static_assert(cg::kExitPreempted == 75, "launch scripts requeue on 75");
  EXPECT_EXIT(
      {
        cg::install_preempt_handlers();
        std::raise(SIGUSR1);
        std::raise(SIGTERM);
        std::exit(0);  // not reached
      },
      ::testing::ExitedWithCode(cg::kExitPreempted), "");
}

TEST(Signals, UninstallRestoresPreviousHandler) {
  static volatile std::sig_atomic_t seen = 0;
  auto prev = std::signal(SIGUSR1, [](int) { seen = 1; });
  cg::install_preempt_handlers();
  cg::uninstall_preempt_handlers();
  std::raise(SIGUSR1);
  EXPECT_EQ(seen, 1);
  std::signal(SIGUSR1, prev);
}
