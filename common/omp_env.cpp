#include "common/omp_env.h"

#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace cg {

void reexec_with_passive_omp(char** argv) {
  if (argv == nullptr || argv[0] == nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  // The binary's real path, not /proc/self/exe: the process name (ps, pkill, /proc/PID/comm) is the exec'd file's
  // basename, and must stay "cgtrain".
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof(exe) - 1)) return;
  exe[n] = '\0';
  if (::setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0) return;
  ::execv(exe, argv);
  // Still here: exec failed (no /proc?). Go on; the variable is set now, so a child process would get it.
  std::perror("cgtrain: re-executing with OMP_WAIT_POLICY=PASSIVE failed; continuing with libgomp's default");
}

}  // namespace cg
