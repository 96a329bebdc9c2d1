// Stop signals: the first sets the flag (SIGINT only once armed: before, it exits at once with 130, saying that
// nothing was saved), a second exits with its own code (75 for SIGTERM/SIGUSR1, 130 for SIGINT).
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
    EXPECT_EQ(cg::stop_exit_code(), cg::kExitPreempted);
    cg::uninstall_preempt_handlers();
  }
}

TEST(Signals, SigintOnceArmedSetsTheFlagWithItsOwnCode) {
  cg::install_preempt_handlers();
  cg::arm_interrupt_save();
  EXPECT_EQ(cg::stop_exit_code(), 0);
  ASSERT_EQ(std::raise(SIGINT), 0);
  EXPECT_TRUE(cg::preempt_requested());
  EXPECT_EQ(cg::preempt_signal(), SIGINT);
  EXPECT_EQ(cg::stop_exit_code(), cg::kExitInterrupted);
  cg::uninstall_preempt_handlers();
  // A new install disarms SIGINT again and clears the request.
  cg::install_preempt_handlers();
  EXPECT_FALSE(cg::preempt_requested());
  EXPECT_EQ(cg::stop_exit_code(), 0);
  cg::uninstall_preempt_handlers();
}

TEST(SignalsDeathTest, SigintBeforeTrainingExitsAtOnce) {
  static_assert(cg::kExitInterrupted == 128 + SIGINT, "the shell's code for Ctrl-C");
  EXPECT_EXIT(
      {
        cg::install_preempt_handlers();
        std::raise(SIGINT);
        std::exit(0);  // not reached
      },
      ::testing::ExitedWithCode(cg::kExitInterrupted), "interrupted \\(SIGINT\\) before the first step: nothing "
      "trained, nothing saved; exiting with 130");
}

TEST(SignalsDeathTest, SecondSigintExitsAtOnceWithItsCode) {
  EXPECT_EXIT(
      {
        cg::install_preempt_handlers();
        cg::arm_interrupt_save();
        std::raise(SIGUSR1);
        std::raise(SIGINT);
        std::exit(0);  // not reached
      },
      ::testing::ExitedWithCode(cg::kExitInterrupted), "second signal: exiting now, without the checkpoint");
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
      ::testing::ExitedWithCode(cg::kExitPreempted), "second signal: exiting now, without the checkpoint");
}

// After the run has ended and saved, late signals (one or several, SIGINT too) leave the process to exit with its own
// status: the child exits 0, where a restored default action would end it with 128 + the signal.
TEST(SignalsDeathTest, SignalsAfterTheEndAreDropped) {
  EXPECT_EXIT(
      {
        cg::install_preempt_handlers();
        cg::arm_interrupt_save();
        cg::ignore_stop_signals();
        for (int sig : {SIGTERM, SIGUSR1, SIGINT, SIGTERM}) std::raise(sig);
        std::exit(cg::preempt_requested() ? 3 : 0);
      },
      ::testing::ExitedWithCode(0), "");
  // A new install (a next run in the same process) answers signals again.
  cg::install_preempt_handlers();
  cg::ignore_stop_signals();
  cg::install_preempt_handlers();
  ASSERT_EQ(std::raise(SIGUSR1), 0);
  EXPECT_TRUE(cg::preempt_requested());
  cg::uninstall_preempt_handlers();
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
