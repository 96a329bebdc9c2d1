#include "common/omp_env.h"

#include <sys/types.h>
#include <unistd.h>

#include <csignal>
#include <initializer_list>
#include <cstdio>
#include <cstdlib>

namespace cg {

namespace {

constexpr const char* kHeldMarker = "CG_STOP_SIGNALS_HELD";

void set_stop_signals(int how) {
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) sigaddset(&stop, sig);
  sigprocmask(how, &stop, nullptr);
}

// No re-exec: let in the signals held since hold_stop_signals or across the exec (handlers are up by now).
void release_stop_signals() {
  ::unsetenv(kHeldMarker);
  set_stop_signals(SIG_UNBLOCK);
}

}  // namespace

void hold_stop_signals() { set_stop_signals(SIG_BLOCK); }

void reexec_with_passive_omp(char** argv) {
  if (std::getenv(kHeldMarker) != nullptr) return release_stop_signals();  // the re-executed image
  if (argv == nullptr || argv[0] == nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr)
    return release_stop_signals();
  // The binary's real path, not /proc/self/exe: the process name (ps, pkill, /proc/PID/comm) is the exec'd file's
  // basename, and must stay "cgtrain".
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof(exe) - 1)) return release_stop_signals();
  exe[n] = '\0';
  if (::setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0) return release_stop_signals();
  // exec resets caught signals to their default action (terminate) until the new image installs its handlers again,
  // a second or more later: blocked, a SIGTERM / SIGUSR1 of that moment stays pending (the mask survives exec) and
  // reaches those handlers instead of killing the rank with nothing saved or requeued.
  set_stop_signals(SIG_BLOCK);
  ::setenv(kHeldMarker, "1", 1);
  ::execv(exe, argv);
  release_stop_signals();
  // Still here: exec failed (no /proc?). Go on; the variable is set now, so a child process would get it.
  std::perror("cgtrain: re-executing with OMP_WAIT_POLICY=PASSIVE failed; continuing with libgomp's default");
}

}  // namespace cg
