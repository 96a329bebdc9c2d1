// Signal handlers for preemption: async-signal-safe (only lock-free atomics, _exit).
#include "trainer/signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace cg {
namespace {

volatile std::sig_atomic_t g_signal = 0;  // first signal received
std::atomic<int> g_count{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal handler needs a lock-free counter");

struct sigaction g_old_term, g_old_usr1;
bool g_installed = false;

extern "C" void on_preempt_signal(int sig) {
  if (g_count.fetch_add(1) > 0) _exit(kExitPreempted);  // second signal: leave at once
  g_signal = sig;
}

}  // namespace

void install_preempt_handlers() {
  g_signal = 0;
  g_count.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_preempt_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking reads/writes resume; the trainer polls at step boundaries
  if (!g_installed) {
    sigaction(SIGTERM, &sa, &g_old_term);
    sigaction(SIGUSR1, &sa, &g_old_usr1);
    g_installed = true;
  }
}

void uninstall_preempt_handlers() {
  if (!g_installed) return;
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGUSR1, &g_old_usr1, nullptr);
  g_installed = false;
}

bool preempt_requested() { return g_count.load(std::memory_order_relaxed) > 0; }

int preempt_signal() { return static_cast<int>(g_signal); }

}  // namespace cg
