#include "common/omp_env.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

// libgomp's getenv("OMP_WAIT_POLICY") in its constructor, before main (why: omp_env.h). Exported from each tool's
// executable (cg_common's link option --export-dynamic-symbol=getenv), so the dynamic linker binds every shared
// library's getenv to this one; libc's own calls stay on libc's. It runs before libc is initialised too (environ is
// still null then), so it only reads.
extern "C" char* getenv(const char* name) noexcept {
  const size_t n = std::strlen(name);
  if (environ != nullptr)
    for (char** e = environ; *e != nullptr; ++e)
      if (std::strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return std::strcmp(name, "OMP_WAIT_POLICY") == 0 ? const_cast<char*>("PASSIVE") : nullptr;
}

namespace cg {

namespace {

void set_stop_signals(int how) {
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) sigaddset(&stop, sig);
  sigprocmask(how, &stop, nullptr);
}

}  // namespace

void keep_passive_omp_for_children() { ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0); }

void hold_stop_signals() { set_stop_signals(SIG_BLOCK); }

void release_stop_signals() { set_stop_signals(SIG_UNBLOCK); }

}  // namespace cg
