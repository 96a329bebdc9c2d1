// Signal handlers for preemption and Ctrl-C: async-signal-safe (only lock-free atomics, _exit).
#include "trainer/signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace cg {
namespace {

volatile std::sig_atomic_t g_signal = 0;  // first signal received
std::atomic<int> g_count{0};
std::atomic<bool> g_interrupt_saves{false};
std::atomic<bool> g_finished{false};  // the run's outcome is saved: signals change nothing any more
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "signal handler needs lock-free atomics");

struct sigaction g_old_term, g_old_usr1, g_old_int;
bool g_installed = false;

constexpr int code_of(int sig) { return sig == SIGINT ? kExitInterrupted : kExitPreempted; }

// A second signal leaves at once, saying so on stderr (write(2) is async-signal-safe; spdlog is not).
[[noreturn]] void leave_unsaved(int sig) {
  static const char kMsg[] = "cgtrain: second signal: exiting now, without the checkpoint the first one asked for; "
                             "the next run resumes from the newest complete checkpoint\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  _exit(code_of(sig));
}

// Ctrl-C before the training loop: nothing has been trained that a save would keep, so leave at once, saying so.
[[noreturn]] void leave_before_training() {
  static const char kMsg[] = "cgtrain: interrupted (SIGINT) before the first step: nothing trained, nothing saved; "
                             "exiting with 130. The same command starts the run again, from its newest checkpoint "
                             "if it has one\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  _exit(kExitInterrupted);
}

extern "C" void on_stop_signal(int sig) {
  if (g_finished.load()) return;  // done and saved: exit with the run's own status
  if (sig == SIGINT && !g_interrupt_saves.load()) leave_before_training();  // nothing trained yet to save
  if (g_count.load() > 0) leave_unsaved(sig);  // second signal: leave at once
  g_signal = sig;                                 // before the count, which readers test first
  if (g_count.fetch_add(1) > 0) leave_unsaved(sig);
}

}  // namespace

void install_preempt_handlers() {
  g_signal = 0;
  g_count.store(0);
  g_interrupt_saves.store(false);
  g_finished.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking reads/writes resume; the trainer polls at step boundaries
  if (!g_installed) {
    sigaction(SIGTERM, &sa, &g_old_term);
    sigaction(SIGUSR1, &sa, &g_old_usr1);
    sigaction(SIGINT, &sa, &g_old_int);
    g_installed = true;
  }
}

void ignore_stop_signals() { g_finished.store(true); }

void arm_interrupt_save() { g_interrupt_saves.store(true); }

void uninstall_preempt_handlers() {
  if (!g_installed) return;
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGUSR1, &g_old_usr1, nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
  g_interrupt_saves.store(false);
  g_installed = false;
}

bool preempt_requested() { return g_count.load(std::memory_order_relaxed) > 0; }

int preempt_signal() { return static_cast<int>(g_signal); }

int stop_exit_code() { return preempt_requested() ? code_of(static_cast<int>(g_signal)) : 0; }

}  // namespace cg
